#!/usr/bin/env bash
# Install genobs with its test extra into a virtualenv and run the test suite.
# The virtualenv is $GENOBS_VENV (default: .venv in the checkout); extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${GENOBS_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -e '.[test]'
"$venv/bin/python" -m pytest "$@"
