#!/usr/bin/env bash
# Runs Countersign's main job: the desktop console in demo mode. It starts an embedded reference
# gateway streaming realistic agents' requests on a loopback port, enrols this profile's key with
# it, pins it and subscribes — live requests appear within seconds.
#   bash scripts/demo.sh            (COUNTERSIGN_HOME picks the profile; default: the platform data dir)
#   bash scripts/demo.sh --mcp      also an MCP agent whose tool call waits in the console for your approval
#                                   (countersign-mcp in front of the real server-everything; see crates/mcp)
set -euo pipefail
cd "$(dirname "$0")/.."
MCP=""
if [ "${1:-}" = "--mcp" ]; then MCP=1; shift; fi
source scripts/setup.sh
build_ui
cargo build --quiet -p countersign-console-app -p countersign-console-core
APP=target/debug/countersign-console

if [ -n "$MCP" ]; then
  install_mcp_servers
  cargo build --quiet -p countersign-mcp -p countersign-gateway
  # The agent reads the demo gateway's URL from the app's log and registers itself in the gateway's data.
  export COUNTERSIGN_HOME="${COUNTERSIGN_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/countersign}"
  MCP_LOG="$(mktemp -t countersign-demo-log.XXXXXX)"
  python3 scripts/demo_mcp_agent.py "$MCP_LOG" "$COUNTERSIGN_HOME" &
  exec 2> >(tee -a "$MCP_LOG" >&2)
fi

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "demo: no display. Run it from a desktop session, or see it headless with:" >&2
  echo "  bash scripts/with-session.sh $APP --demo   # on a virtual display (Xvfb)" >&2
  exit 1
fi
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  # No session bus, so no Secret Service: use a private one with a throwaway unlocked keyring.
  echo "demo: no D-Bus session; using a private one with a temporary keyring (the demo key will not persist)"
  COUNTERSIGN_USE_OUTER_DISPLAY=1 exec bash scripts/with-session.sh "$APP" --demo "$@"
fi
exec "$APP" --demo "$@"
