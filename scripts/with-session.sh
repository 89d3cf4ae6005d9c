#!/usr/bin/env bash
# Runs its arguments with the real desktop services the console uses, on a private session:
# gnome-keyring (Secret Service, unlocked, throwaway HOME) and dunst (notifications) on an Xvfb display.
#   bash scripts/with-session.sh cargo test --workspace
# It always starts its own `dbus-run-session` first, so it never touches a desktop's real keyring.
set -euo pipefail

# Without a display on the bus, a keyring unlock prompt is dismissed at once instead of waiting for a click
# (a locked keyring must give the console's clear error, never a hang).
if [ "${1:-}" != "--inside-private-bus" ]; then
  exec env -u DISPLAY -u WAYLAND_DISPLAY COUNTERSIGN_OUTER_DISPLAY="${DISPLAY:-}" \
    dbus-run-session -- bash "$0" --inside-private-bus "$@"
fi
shift

session_tmp="$(mktemp -d -t countersign-session.XXXXXX)"
mkdir -p "$session_tmp/home" "$session_tmp/run"
chmod 700 "$session_tmp/run"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$session_tmp"
}
trap cleanup EXIT

# A fresh `login` collection unlocks with this password only under a HOME with no keyring yet.
eval "$(echo -n countersign-test | HOME="$session_tmp/home" XDG_RUNTIME_DIR="$session_tmp/run" \
  gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL="${GNOME_KEYRING_CONTROL:-}"
if [ -n "${GNOME_KEYRING_PID:-}" ]; then pids+=("$GNOME_KEYRING_PID"); fi

# dunst needs a display; a private Xvfb on a display number nothing else uses (or, with
# COUNTERSIGN_USE_OUTER_DISPLAY=1, the caller's own display, e.g. for scripts/demo.sh).
if [ -n "${COUNTERSIGN_USE_OUTER_DISPLAY:-}" ] && [ -n "${COUNTERSIGN_OUTER_DISPLAY:-}" ]; then
  export DISPLAY="$COUNTERSIGN_OUTER_DISPLAY"
else
  display=":$((90 + RANDOM % 400))"
  Xvfb "$display" -screen 0 1440x900x24 -nolisten tcp >"$session_tmp/xvfb.log" 2>&1 &
  pids+=("$!")
  export DISPLAY="$display"
  for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done
fi
dunst >"$session_tmp/dunst.log" 2>&1 &
pids+=("$!")

# Tests that need these services check this marker and say how to get them when it is missing.
export COUNTERSIGN_TEST_SESSION=1
"$@"
