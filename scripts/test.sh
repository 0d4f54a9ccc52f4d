#!/usr/bin/env bash
# The README's second command: set up with the test extras and run the whole test suite.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh cpu,dev
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
