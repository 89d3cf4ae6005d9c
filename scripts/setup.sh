#!/usr/bin/env bash
# Installs what building and testing Countersign needs on a fresh Debian/Ubuntu machine.
# Idempotent: installs only what is missing. Sourced by scripts/test.sh and scripts/demo.sh.
set -euo pipefail

# gnome-keyring, dbus-x11, libsecret-tools: the real Secret Service for the console's tests (secret-tool to inspect it);
# libdbus-1-dev: the keyring crate's Secret Service client; dunst + xvfb: a real notification daemon on a virtual display.
# libwebkit2gtk-4.1-dev, libayatana-appindicator3-dev, librsvg2-dev: the Tauri desktop app (web view, tray);
# webkit2gtk-driver: WebKitWebDriver, which tauri-driver forwards to in the end-to-end tests;
# imagemagick: `import`, the end-to-end tests' screenshot of the display when the web view's own snapshot stalls;
# nodejs + npm: the front end's build and tests (kept when a newer Node is already installed).
APT_PACKAGES=(build-essential pkg-config libssl-dev sqlite3 python3-venv curl
  gnome-keyring dbus-x11 libsecret-tools libdbus-1-dev dunst xvfb
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev webkit2gtk-driver imagemagick)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing nodejs and npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

# The WebDriver bridge for the desktop app's end-to-end tests.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [ ! -x "$CARGO_BIN/tauri-driver" ]; then
  echo "setup: cargo install tauri-driver"
  cargo install tauri-driver --locked --version "^2" --quiet
fi

# The front end, built into ui/dist (the app embeds it at compile time).
build_ui() {
  (cd ui && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build)
}

# The real MCP servers the proxy's black-box tests run (tests/mcp/package.json, pinned by its lock file).
install_mcp_servers() {
  (cd tests/mcp && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; })
}
