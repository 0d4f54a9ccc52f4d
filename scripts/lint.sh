#!/usr/bin/env bash
# Style and layering, configured in pyproject.toml: ruff (lint rules, no reformatting),
# mypy, and the import-linter contracts for ARCHITECTURE.md's rules. Every step runs;
# the script fails, naming the steps that failed, if any did.
# Usage: bash scripts/lint.sh   (needs the dev extra: bash scripts/setup.sh cpu,dev;
#        bash scripts/test.sh with no arguments runs it first)
set -uo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin                     # a venv's programs: bin/, or Scripts/ on Windows
[ -d "$bin" ] || bin=.venv/Scripts
if [ ! -e "$bin/lint-imports" ] && [ ! -e "$bin/lint-imports.exe" ]; then
    echo "error: the linters are not in .venv; run: bash scripts/setup.sh cpu,dev" >&2
    exit 1
fi
failed=()
step() {
    local name=$1
    shift
    echo "==> $name"
    "$@" || failed+=("$name")
}
step "ruff" "$bin/ruff" check app plugins models tests bench installer
step "mypy" "$bin/mypy"           # the files to check are in [tool.mypy]
step "import-linter" "$bin/lint-imports"
if [ ${#failed[@]} -gt 0 ]; then
    echo "lint failed: ${failed[*]}" >&2
    exit 1
fi
echo "==> lint passed"
