#!/usr/bin/env bash
# Starts the real gateway in demo mode, enrols a key made by Python, and runs the PyJWT client.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/pyenv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "pyjwt[crypto]>=2.8,<3" "rfc8785>=0.1,<1" "requests>=2,<3"

WORK=$(mktemp -d)
GW=target/debug/countersign-gateway
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$VENV/bin/python" tests/interop/pyjwt_client.py keygen "$WORK/approver.pem" "$WORK/approver.jwk"
"$GW" approvers add --data "$WORK/gw" --name "PyJWT approver" --principal interop@acme.example --jwk "$WORK/approver.jwk"
"$GW" serve --listen 127.0.0.1:0 --data "$WORK/gw" --demo --demo-initial 10 --demo-interval-ms 60000 \
  > "$WORK/out" 2> "$WORK/log" &
PID=$!
for _ in $(seq 1 100); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(awk '{print $NF}' "$WORK/out")
[ -n "$URL" ] || { echo "interop: the gateway did not start" >&2; cat "$WORK/log" >&2; exit 1; }
# The client waits (bounded) for the demo's first requests and prints its own count of checks.
"$VENV/bin/python" tests/interop/pyjwt_client.py approve "$URL" "$WORK/approver.pem" interop@acme.example
