#!/usr/bin/env bash
# Runs every test of Countersign: front end, format, lints, unit and black-box tests (CLI, gateway,
# desktop app over WebDriver), PyJWT interop.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

step "front end: build, unit tests (Vitest), lint (no raw HTML), type check"
build_ui
install_mcp_servers
mkdir -p target
(cd ui && NO_COLOR=1 npm test --silent 2>&1) | tee target/vitest.log
(cd ui && npm run --silent lint)

step "cargo fmt --check"
cargo fmt --all -- --check

# Every cargo command builds from the committed Cargo.lock (--locked): a lock file that disagrees
# with the manifests fails the run instead of being rewritten with whatever versions resolve today.
step "cargo clippy -D warnings"
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings

step "build binaries (black-box tests run them)"
cargo build --locked --workspace --bins --quiet

step "cargo test (on a private D-Bus session with gnome-keyring, dunst and Xvfb: the real Secret Service, notification daemon and app window)"
bash scripts/with-session.sh cargo test --locked --workspace -- --test-threads=2 2>&1 | tee target/cargo-test.log
grep -q "test result: FAILED" target/cargo-test.log && exit 1

step "interop: a PyJWT + rfc8785 client against the demo gateway"
bash tests/interop/run.sh 2>&1 | tee target/interop.log

step "python client: pytest against the real gateway"
bash clients/python/run.sh 2>&1 | tee target/python-client.log

step "benchmarks compile"
cargo bench --locked --no-run --quiet -p countersign-protocol -p countersign-gateway -p countersign-console-core -p countersign-blackbox

# The summary counts what each suite itself reported: cargo's "test result" lines (field 4 is the
# passed count, field 6 the failed count: "test result: ok. 14 passed; 0 failed; …"), Vitest's
# "Tests  N passed" line, the interop client's "interop: N passed" and pytest's closing line of the
# Python client ("28 passed in 14.7s"). The total is the plain sum of those four reports, nothing
# added. A suite that reported nothing fails the run.
count() { # FILE REGEX FIELD — sum FIELD of the lines matching REGEX; fail when none matched
  local n
  n=$(grep -E "$2" "$1" | awk -v f="$3" '{s += $f; c++} END {if (c) print s; else print "none"}')
  [ "$n" != none ] || { echo "no result line matching '$2' in $1" >&2; exit 1; }
  echo "$n"
}
rust_passed=$(count target/cargo-test.log "^test result:" 4)
rust_failed=$(count target/cargo-test.log "^test result:" 6)
vitest_passed=$(sed 's/\x1b\[[0-9;]*m//g' target/vitest.log | count /dev/stdin "^ +Tests +[0-9]+ passed" 2)
interop_passed=$(count target/interop.log "^interop: [0-9]+ passed" 2)
python_passed=$(count target/python-client.log "^[0-9]+ passed" 1)
echo
echo "rust: $rust_passed passed, $rust_failed failed; vitest: $vitest_passed passed; interop: $interop_passed checks passed; python client: $python_passed passed"
echo "summary: $((rust_passed + vitest_passed + interop_passed + python_passed)) passed, $rust_failed failed"
echo "build directory: $(du -sh target 2>/dev/null | cut -f1) (disk left: $(df -h --output=avail . | tail -1 | tr -d " "))"
[ "$rust_failed" -eq 0 ]
