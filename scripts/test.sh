#!/usr/bin/env bash
# The README's second command: set up with the test extras, check style and layering
# (scripts/lint.sh), and run the whole test suite.
# Usage: bash scripts/test.sh [pytest args]   (with arguments: only pytest, no lint)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh cpu,dev
bin=.venv/bin                     # a venv's programs: bin/, or Scripts/ on Windows
[ -d "$bin" ] || bin=.venv/Scripts
if [ $# -eq 0 ]; then
    bash scripts/lint.sh
fi
# Debian packages some tests use; under CI (a fresh machine) they are installed here, so
# no test skips for want of them (on a developer's machine those tests say what to install).
if [ "${CI:-}" = "true" ] && command -v apt-get >/dev/null && ! command -v desktop-file-validate >/dev/null; then
    echo "==> installing desktop-file-utils (the .desktop entry check)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y -q desktop-file-utils >/dev/null 2>&1 \
        || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q desktop-file-utils >/dev/null; }
fi
# PostgreSQL 15 with pgvector and the team extra, for the team collections' tests
# (tests/team start their own server): installed under CI, where those tests must not skip.
if [ "${CI:-}" = "true" ]; then
    if command -v apt-get >/dev/null; then
        bash scripts/setup-postgres.sh
    fi
    if ! "$bin/python" -c 'import psycopg, pgvector, ray' 2>/dev/null; then
        echo "==> installing the team extra (psycopg, pgvector, ray)"
        "$bin/python" -m pip install --quiet --disable-pip-version-check -e ".[team]"
    fi
fi
export QT_QPA_PLATFORM=offscreen
if ! "$bin/python" -c 'import archivist_notebooks' 2>/dev/null; then
    echo "==> installing the template plugin (plugins/template) as a third party would"
    "$bin/python" -m pip install --quiet --disable-pip-version-check -e plugins/template
fi
# models built once for the tests, reused by later runs (pwd -W: the Windows form in Git Bash)
ARCHIVIST_TEST_CACHE="$(pwd -W 2>/dev/null || pwd)/.cache"
export ARCHIVIST_TEST_CACHE
"$bin/python" -m pytest "$@"
# The template plugin is its own project (own rootdir and config), tested the way its author would.
if [ $# -eq 0 ]; then
    exec "$bin/python" -m pytest plugins/template/tests
fi
