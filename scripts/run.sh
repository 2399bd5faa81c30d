#!/usr/bin/env bash
# Installs everything and runs the main job. Until the anchor service exists (issue 4), the
# main job is the demo of the trust core: digests, salted leaves, an RFC 9162 batch tree,
# every inclusion proof made and checked, and a tampered credential rejected.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/anchor-service demo "$@"
