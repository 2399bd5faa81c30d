#!/usr/bin/env bash
# Installs everything the project needs into ./.venv. Idempotent; run.sh and test.sh call it.
#   Debian packages: python3 (>= 3.11) with venv, only if the machine lacks them.
#   Python packages: the project and its test tools, pinned by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

have_python() {
    command -v "$PYTHON" >/dev/null 2>&1 \
        && "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

if ! have_python; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages python3 python3-venv python3-pip"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
        PYTHON=python3
    fi
    if ! have_python; then
        echo "setup: need Python >= 3.11 with venv (Debian: apt-get install python3 python3-venv)" >&2
        exit 2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
pip_install() {
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"
}
pip_install --upgrade "pip>=24"
# constraints.txt pins every Python package to the versions the suite was last run with.
pip_install -c constraints.txt -e ".[test]"
