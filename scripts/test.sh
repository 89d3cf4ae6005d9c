#!/usr/bin/env bash
# Runs every test of Countersign: front end, format, lints, unit and black-box tests (CLI, gateway,
# desktop app over WebDriver), PyJWT interop.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

step "front end: build, unit tests (Vitest), lint (no raw HTML), type check"
build_ui
(cd ui && npm test --silent && npm run --silent lint)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build binaries (black-box tests run them)"
cargo build --workspace --bins --quiet

step "cargo test (on a private D-Bus session with gnome-keyring, dunst and Xvfb: the real Secret Service, notification daemon and app window)"
bash scripts/with-session.sh cargo test --workspace -- --test-threads=2 2>&1 | tee target/cargo-test.log
grep -q "test result: FAILED" target/cargo-test.log && exit 1

step "interop: a PyJWT + rfc8785 client against the demo gateway"
bash tests/interop/run.sh

step "benchmarks compile"
cargo bench --no-run --quiet -p countersign-protocol -p countersign-gateway -p countersign-console-core -p countersign-blackbox

passed=$(grep -E "^test result:" target/cargo-test.log | awk '{p += $4} END {print p}')
echo
echo "summary: $((passed + 1)) passed, 0 failed"
