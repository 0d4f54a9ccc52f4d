#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtual environment .venv with Archivist in it.
# Usage: bash scripts/setup.sh [EXTRAS]   (EXTRAS defaults to "cpu"; the tests use "cpu,dev")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-cpu}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: Archivist needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ] && [ ! -x .venv/Scripts/python.exe ]; then
    echo "==> creating .venv"
    "$python" -m venv .venv
fi
bin=.venv/bin                     # a venv's programs: bin/, or Scripts/ on Windows
[ -d "$bin" ] || bin=.venv/Scripts
stamp=".venv/.archivist-setup-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "==> installing archivist[$extras] into .venv (first time takes a minute)"
    "$bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    touch "$stamp"
fi
