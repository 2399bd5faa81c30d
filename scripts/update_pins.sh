#!/usr/bin/env bash
# Regenerates the hash-checked pins that scripts/setup.sh installs:
#   requirements.lock        the project's packages and its test tools (pyproject.toml, "test" extra),
#                            and those of localchain (hardhat-free-local/pyproject.toml)
#                            and testkit (testkit/pyproject.toml)
#   requirements-build.lock  pip and the build backend (setuptools, wheel), installed first
#   requirements-tools.lock  Slither for .venv-tools (requirements-tools.in)
# Each pinned release carries the sha256 of every file it has on the index, so whichever wheel or
# sdist a machine picks is checked. The pins already in the locks are kept unless asked otherwise:
#   bash scripts/update_pins.sh                            add or drop what pyproject.toml changed
#   bash scripts/update_pins.sh --upgrade                  move every package to its newest release
#   bash scripts/update_pins.sh --upgrade-package NAME     move one package (repeatable)
# Then run `bash scripts/test.sh` and commit the three locks together.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# pip-tools only writes the locks here; setup.sh never installs it, and the hashes it writes come
# from the index and are reviewed in the locks' diff.
PIP_TOOLS=pip-tools==7.6.2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-hashes --no-deps -r requirements-build.lock
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$PIP_TOOLS"

compile() {
    CUSTOM_COMPILE_COMMAND="bash scripts/update_pins.sh" "$work/venv/bin/pip-compile" --quiet \
        --generate-hashes --allow-unsafe --strip-extras \
        --no-emit-index-url --no-emit-find-links --no-emit-trusted-host "$@"
}
compile --extra test --output-file requirements.lock "$@" pyproject.toml \
    hardhat-free-local/pyproject.toml testkit/pyproject.toml 2>"$work/stderr" || {
    cat "$work/stderr" >&2
    exit 1
}
# pip-compile warns that the project's own path entry cannot be hashed; it is removed below.
grep -v "may be rejected by pip install" "$work/stderr" >&2 || true
# The "test" extra names the project itself (microcred-anchor[chain,...]); setup.sh installs the
# project from this tree with `pip install -e .`, so its path entry is not a pin.
"$work/venv/bin/python" - <<'PY'
import re
from pathlib import Path

lock = Path("requirements.lock")
text = lock.read_text()
text = re.sub(
    r"(# WARNING: pip install will require the following package to be hashed\.\n"
    r"(#[^\n]*\n)*)?microcred-anchor @ [^\n]*\n(    #[^\n]*\n)*",
    "",
    text,
)
lock.write_text(text)
PY
compile --constraint requirements.lock --output-file requirements-build.lock "$@" \
    requirements-build.in
compile --constraint requirements-build.lock --output-file requirements-tools.lock "$@" \
    requirements-tools.in
echo "update_pins: wrote requirements.lock, requirements-build.lock, requirements-tools.lock"
