#!/usr/bin/env bash
# Runs the Python client's pytest suite against the real gateway binary; prints pytest's summary line.
# The venv (target/pyenv-client) is made once; the package is reinstalled from the working tree every run.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/pyenv-client
GW=target/debug/countersign-gateway
[ -x "$GW" ] || { echo "python client: $GW is missing (cargo build -p countersign-gateway)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/pip" install --quiet --disable-pip-version-check)
# Test-only dependencies; the package itself needs requests alone. setuptools is the build backend,
# installed here so later runs build without fetching it (--no-build-isolation).
"${PIP[@]}" "setuptools>=70.1" "requests>=2,<3" "pyjwt[crypto]>=2.8,<3" "rfc8785>=0.1,<1" "pytest>=8,<10"
# Stale build output could carry modules deleted from the tree into the wheel.
rm -rf clients/python/build clients/python/src/countersign.egg-info
"${PIP[@]}" --no-build-isolation --no-deps --force-reinstall ./clients/python
rm -rf clients/python/build clients/python/src/countersign.egg-info

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
set +e
(cd clients/python && "../../$VENV/bin/python" -m pytest -q -p no:cacheprovider --color=no) > "$LOG" 2>&1
status=$?
set -e
if [ "$status" -eq 0 ]; then
  tail -n 1 "$LOG"
  exit 0
fi
cat "$LOG"
# pytest exits 5 when it collected no tests: that is a failure here too, never a pass.
[ "$status" -eq 5 ] && echo "python client: pytest collected no tests" >&2
exit "$status"
