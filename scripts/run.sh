#!/usr/bin/env bash
# Installs everything and runs the main job: the whole stack on this machine.
#   a local anvil chain (state kept in data/chain), the contracts (deployed once, reused),
#   an accredited demo issuer, a SQLite database in data/, and the service on 127.0.0.1:8080.
# Ctrl-C stops it; running it again picks up where it stopped.
# `bash scripts/run.sh demo` runs the offline demo of the trust core instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "demo" ]; then
    shift
    exec .venv/bin/anchor-service demo "$@"
fi
exec .venv/bin/anchor-service stack "$@"
