#!/usr/bin/env bash
# Installs everything the project needs into ./.venv. Idempotent; run.sh and test.sh call it.
#   Debian packages: python3 (>= 3.11) with venv, nodejs and npm, only if the machine lacks them.
#   Python packages: the project and its test tools, pinned by constraints.txt.
#   npm packages: solc, OpenZeppelin Contracts and anvil, pinned by
#   hardhat-free-local/package-lock.json.
#   With --tests: Debian's chromium and postgresql too, for the browser and database tests,
#   and Slither in .venv-tools (pinned by constraints-tools.txt) for the contract analysis.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian packages $*"
        if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    fi
}

have_python() {
    command -v "$PYTHON" >/dev/null 2>&1 \
        && "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

if ! have_python; then
    apt_install python3 python3-venv python3-pip
    PYTHON=python3
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

have_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
        && node -e 'process.exit(parseInt(process.versions.node) >= 18 ? 0 : 1)'
}
if ! have_node; then
    apt_install nodejs npm
    if ! have_node; then
        echo "setup: need Node.js >= 18 with npm (Debian: apt-get install nodejs npm)" >&2
        exit 2
    fi
fi
# npm ci installs exactly the lockfile; skipped when node_modules already matches it.
if ! cmp -s hardhat-free-local/package-lock.json \
        hardhat-free-local/node_modules/.microcred-installed-lock 2>/dev/null; then
    npm ci --prefix hardhat-free-local --no-audit --no-fund --loglevel=error
    cp hardhat-free-local/package-lock.json hardhat-free-local/node_modules/.microcred-installed-lock
fi

# Playwright cannot download its own browser here, so the browser tests drive Debian's.
if [ "${1:-}" = "--tests" ] && ! command -v chromium >/dev/null 2>&1; then
    apt_install --no-install-recommends chromium fonts-liberation
    if ! command -v chromium >/dev/null 2>&1; then
        echo "setup: the browser tests need Chromium (Debian: apt-get install chromium)" >&2
        exit 2
    fi
fi
# Slither (static analysis of the contracts) pins web3 7, so it lives in a venv of its own.
if [ "${1:-}" = "--tests" ]; then
    if [ ! -x .venv-tools/bin/python ]; then "$PYTHON" -m venv .venv-tools; fi
    if ! cmp -s constraints-tools.txt .venv-tools/.microcred-installed 2>/dev/null; then
        .venv-tools/bin/python -m pip install --quiet --disable-pip-version-check \
            -c constraints-tools.txt slither-analyzer
        cp constraints-tools.txt .venv-tools/.microcred-installed
    fi
fi
# The store and fault tests start a private PostgreSQL server from Debian's binaries.
have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
if [ "${1:-}" = "--tests" ] && ! have_postgres; then
    apt_install --no-install-recommends postgresql
    if ! have_postgres; then
        echo "setup: the tests need PostgreSQL (Debian: apt-get install postgresql)" >&2
        exit 2
    fi
fi
