#!/usr/bin/env bash
# Runs Countersign's main job in demo mode: the reference enforcement point streaming a steady,
# realistic flow of agents' step-up requests on http://127.0.0.1:8787.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DATA=${COUNTERSIGN_DEMO_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/countersign/demo-gateway}
cargo build --quiet -p countersign-gateway
echo "Demo gateway data: $DATA"
echo "Enrol an approver:  target/debug/countersign-gateway approvers add --data '$DATA' --name NAME --principal EMAIL --jwk KEY.jwk"
echo "Its identity:       target/debug/countersign-gateway info --data '$DATA'"
exec target/debug/countersign-gateway serve --listen "${COUNTERSIGN_DEMO_LISTEN:-127.0.0.1:8787}" --data "$DATA" --demo "$@"
