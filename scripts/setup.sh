#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtual environment .venv with Archivist in it,
# OCR included (the "ocr" extra and its engine, below).
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
    "$bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras,ocr]"
    touch "$stamp"
fi
# The OCR engine, without the dependencies it declares (pyproject.toml's "ocr" extra says why
# and brings the others); its wheel holds its models, so nothing is downloaded when it runs.
# It is published for Python up to 3.12: on a newer one, scanned pages are skipped with a reason.
ocr_engine="rapidocr-onnxruntime==1.4.4"
if ! "$bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("rapidocr_onnxruntime") is None)' 2>/dev/null; then
    if "$bin/python" -c 'import sys; sys.exit(sys.version_info >= (3, 13))'; then
        echo "==> installing the OCR engine ($ocr_engine)"
        "$bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$ocr_engine"
    else
        echo "note: $ocr_engine is not published for this Python: scanned pages will not be read" >&2
    fi
fi
