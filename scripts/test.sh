#!/usr/bin/env bash
# The README's second command: set up with the test extras and run the whole test suite.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh cpu,dev
export QT_QPA_PLATFORM=offscreen
if ! .venv/bin/python -c 'import archivist_notebooks' 2>/dev/null; then
    echo "==> installing the template plugin (plugins/template) as a third party would"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e plugins/template
fi
export ARCHIVIST_TEST_CACHE="$PWD/.cache"   # models built once for the tests, reused by later runs
.venv/bin/python -m pytest "$@"
# The template plugin is its own project (own rootdir and config), tested the way its author would.
if [ $# -eq 0 ]; then
    exec .venv/bin/python -m pytest plugins/template/tests
fi
