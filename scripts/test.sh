#!/usr/bin/env bash
# Installs everything and runs the whole test suite, with the linters, and prints the figures
# of a short load run on SQLite and on PostgreSQL. Arguments go to pytest: .ci/run passes
# --full (the full run sizes, README "Two commands").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy
# Before the suite, so that pytest's summary stays the last line; a failed load run fails
# the whole run at the end (the suite runs anyway, to show everything that fails).
echo "== load test: short runs, their figures (scripts/load_test.py)"
load=0
.venv/bin/python scripts/load_test.py --duration 15 || load=1
.venv/bin/python scripts/load_test.py --duration 15 --postgres || load=1
echo "== pytest"
tests=0
.venv/bin/python -m pytest "$@" || tests=$?
if [ "$load" -ne 0 ]; then
    echo "the load test failed: errors or lost credentials (its figures are above)"
    exit 1
fi
exit "$tests"
