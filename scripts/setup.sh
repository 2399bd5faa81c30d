#!/usr/bin/env bash
# Installs everything the project needs into ./.venv. Idempotent; run.sh and test.sh call it.
#   Debian packages: python3 (>= 3.11) with venv, nodejs and npm, only if the machine lacks them.
#   Python packages: the project and its test tools, hash-checked against requirements.lock
#   (pip and the build backend against requirements-build.lock; scripts/update_pins.sh
#   regenerates both).
#   npm packages: solc, OpenZeppelin Contracts and anvil, pinned by
#   hardhat-free-local/package-lock.json.
#   With --tests: Debian's chromium and postgresql too, for the browser and database tests,
#   and Slither in .venv-tools (hash-checked against requirements-tools.lock) for the contract
#   analysis, the Data Integrity reference implementation in interop/ (pinned by
#   interop/package-lock.json) for the interop tests, and Debian's wrk for the HTTP benchmark
#   (scripts/bench_verify_http.py).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
FOR_TESTS=$([ "${1:-}" = "--tests" ] && echo 1 || echo 0)

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
# Every Python package comes from a lock that pins its exact release with the sha256 of each of
# its published files, so a changed or substituted file fails the install. pip and the build
# backend (setuptools, wheel) come first; the rest follow with --no-deps (the lock is complete) and
# --no-build-isolation, so that anything built from source, the project included, is built by the
# pinned backend instead of one that pip would fetch unchecked into an isolated environment.
locked_install() {  # VENV LOCK: installs LOCK into VENV; skipped when VENV already has it.
    local stamp="$1/.microcred-installed"
    if cat requirements-build.lock "$2" pyproject.toml hardhat-free-local/pyproject.toml \
            testkit/pyproject.toml | cmp -s - "$stamp" 2>/dev/null; then
        return 0
    fi
    "$1/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-hashes --no-deps -r requirements-build.lock
    "$1/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-hashes --no-deps --no-build-isolation -r "$2"
    if [ "$1" = .venv ]; then
        # The project, localchain: the development package in hardhat-free-local/ (local
        # chains for the tests, the benchmarks and `anchor-service stack`), and testkit: the
        # development package of the test support the tests and the benchmark scripts share;
        # each a distribution of its own so that the project's wheel does not ship them. Their
        # dependencies are in the lock. setuptools tells, as a warning, that an editable install maps packages with a
        # finder: nothing to act on, so it stays quiet.
        PYTHONWARNINGS="ignore:Editable installation" "$1/bin/python" -m pip install --quiet \
            --disable-pip-version-check --no-deps --no-build-isolation -e . \
            -e ./hardhat-free-local -e ./testkit
    fi
    # --no-deps relies on the lock being complete; pip check confirms that it is.
    "$1/bin/python" -m pip check >/dev/null || {
        "$1/bin/python" -m pip check >&2
        echo "setup: $2 misses a dependency; regenerate it with bash scripts/update_pins.sh" >&2
        exit 2
    }
    cat requirements-build.lock "$2" pyproject.toml hardhat-free-local/pyproject.toml \
        testkit/pyproject.toml >"$stamp"
}
locked_install .venv requirements.lock

have_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
        && node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)'
}
# The version matches "engines" in hardhat-free-local/package.json.
if ! have_node; then
    apt_install nodejs npm
    if ! have_node; then
        echo "setup: need Node.js >= 20 with npm (Debian: apt-get install nodejs npm)" >&2
        exit 2
    fi
fi
# npm ci installs exactly the lockfile; skipped when node_modules already matches it.
if ! cmp -s hardhat-free-local/package-lock.json \
        hardhat-free-local/node_modules/.microcred-installed-lock 2>/dev/null; then
    npm ci --prefix hardhat-free-local --no-audit --no-fund --loglevel=error
    cp hardhat-free-local/package-lock.json hardhat-free-local/node_modules/.microcred-installed-lock
fi

# With --tests: Debian's PACKAGES are installed unless CHECK (a command) succeeds already, and
# setup stops with WHY if it still fails afterwards.
tests_need() {  # WHY "PACKAGE..." CHECK [ARG...]
    local why=$1 packages=$2
    shift 2
    if [ "${FOR_TESTS}" = 1 ] && ! "$@"; then
        # shellcheck disable=SC2086 # the packages are separate words
        apt_install --no-install-recommends $packages
        if ! "$@"; then
            echo "setup: $why (Debian: apt-get install $packages)" >&2
            exit 2
        fi
    fi
}
have_command() { command -v "$1" >/dev/null 2>&1; }
# The store and fault tests start a private PostgreSQL server from Debian's binaries.
have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
# Playwright cannot download its own browser here, so the browser tests drive Debian's.
tests_need "the browser tests need Chromium" "chromium fonts-liberation" have_command chromium
# The HTTP benchmark of POST /v1/verify drives the service with wrk.
tests_need "the HTTP benchmark needs wrk" "wrk" have_command wrk
tests_need "the tests need PostgreSQL" "postgresql" have_postgres
# Slither (static analysis of the contracts) pins web3 7, so it lives in a venv of its own.
if [ "$FOR_TESTS" = 1 ]; then
    if [ ! -x .venv-tools/bin/python ]; then "$PYTHON" -m venv .venv-tools; fi
    locked_install .venv-tools requirements-tools.lock
    # The Data Integrity reference implementation (Digital Bazaar's npm packages) that the
    # interop tests run through interop/di.mjs; pinned by interop/package-lock.json.
    if ! cmp -s interop/package-lock.json \
            interop/node_modules/.microcred-installed-lock 2>/dev/null; then
        npm ci --prefix interop --no-audit --no-fund --loglevel=error
        cp interop/package-lock.json interop/node_modules/.microcred-installed-lock
    fi
fi
