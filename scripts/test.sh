#!/usr/bin/env bash
# Installs everything and runs the whole test suite, with the linters. Arguments go to pytest:
# .ci/run passes --full (the full run sizes, README "Two commands").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
