"""Run sizes are chosen by ``--full`` (testkit.pytest_plugin), never by the environment: the
default run and the full run do what the README's table says, and .ci/run asks for the full
one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.pytest_plugin import DEFAULT_SIZES, FULL_SIZES, RunSizes

ROOT = Path(__file__).resolve().parents[1]

PROBE = '''
import json
import os

from hypothesis import settings


def test_sizes(sizes):
    with open(os.environ["SIZES_OUT"], "w") as out:
        json.dump({**vars(sizes), "hypothesis": settings.default.max_examples}, out)
'''


def _sizes_of_a_run(tmp_path: Path, *options: str, ci: bool) -> dict[str, int]:
    """Run a probe test under the plugin (with CI set or unset) and read the sizes it saw."""
    tmp_path.mkdir()
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["testkit.pytest_plugin"]\n',
                                          encoding="utf-8")
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    out = tmp_path / "sizes.json"
    env = {"PATH": "/usr/bin:/bin", "SIZES_OUT": str(out), **({"CI": "true"} if ci else {})}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options,
         str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    sizes: dict[str, int] = json.loads(out.read_text(encoding="utf-8"))
    return sizes


def _expected(sizes: RunSizes) -> dict[str, int]:
    return {**vars(sizes), "hypothesis": sizes.hypothesis_examples}


@pytest.mark.parametrize("ci", [False, True], ids=["CI unset", "CI set"])
def test_full_selects_the_full_sizes_whatever_the_environment(tmp_path: Path, ci: bool) -> None:
    assert _sizes_of_a_run(tmp_path / "default", ci=ci) == _expected(DEFAULT_SIZES)
    assert _sizes_of_a_run(tmp_path / "full", "--full", ci=ci) == _expected(FULL_SIZES)


def test_the_readme_table_states_both_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {match[0]: (match[1], match[2]) for match in re.findall(
        r"^\| ([^|]+?) \| (\d+(?: s)?) \| (\d+(?: s)?) \|$", readme, flags=re.MULTILINE)}
    seconds = f"{DEFAULT_SIZES.load_seconds} s", f"{FULL_SIZES.load_seconds} s"
    assert sorted(rows.values()) == sorted([
        (str(DEFAULT_SIZES.sigkills), str(FULL_SIZES.sigkills)),
        seconds,
        (str(DEFAULT_SIZES.schema_examples), str(FULL_SIZES.schema_examples)),
        (str(DEFAULT_SIZES.hypothesis_examples), str(FULL_SIZES.hypothesis_examples)),
        (str(DEFAULT_SIZES.state_machine_sequences), str(FULL_SIZES.state_machine_sequences)),
    ])
    assert "exec bash scripts/test.sh --full" in (ROOT / ".ci" / "run").read_text("utf-8")


def test_nothing_reads_the_ci_variable() -> None:
    """Sizes come from --full alone: no test, test support, script or CI file looks at CI."""
    reads = re.compile(r"""environ(?:\.get\(|\[)\s*["']CI["']|\$\{?CI\b|getenv\(\s*["']CI["']""")
    files = [path for folder in ("tests", "testkit", "scripts", ".ci")
             for path in (ROOT / folder).rglob("*") if path.is_file()
             and path.suffix in {".py", ".sh", ""} and path != Path(__file__)]
    assert files
    offenders = [str(path.relative_to(ROOT)) for path in files
                 if reads.search(path.read_text(encoding="utf-8", errors="replace"))]
    assert offenders == []
