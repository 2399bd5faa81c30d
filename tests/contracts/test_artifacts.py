"""The Solidity toolchain: the solc-js wrapper, the compile script and the shipped artifacts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import solcx
from packaging.version import Version
from solcx.exceptions import UnknownOption

from scripts import compile_contracts as cc
from verifier import contracts_abi
from verifier.contracts_abi import artifact_names, load_artifact
from verifier.errors import ArtifactError, VerifierError

WRAPPER = str(cc.SOLC_WRAPPER)
NPM_SOLC_VERSION = json.loads((cc.NODE_MODULES / "solc" / "package.json").read_text())["version"]

# Imports OpenZeppelin to prove that the wrapper resolves npm packages.
TINY = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ITiny} from "./interfaces/ITiny.sol";

contract Tiny is ITiny, Ownable(msg.sender) {
    uint256 public value;

    function set(uint256 newValue) external onlyOwner {
        value = newValue;
    }
}
"""
ITINY = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface ITiny {
    function set(uint256 newValue) external;
}
"""
BROKEN = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

contract Broken {
    function f() external { uint256 x = ; }
}
"""


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root / "contracts"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A compiled two-file project: (contracts dir, artifacts dir)."""
    root = tmp_path_factory.mktemp("tiny")
    contracts = _project(
        root, {"contracts/Tiny.sol": TINY, "contracts/interfaces/ITiny.sol": ITINY}
    )
    out = root / "artifacts"
    assert cc.main(["--contracts-dir", str(contracts), "--artifacts-dir", str(out)]) == 0
    return contracts, out


# -- the wrapper ---------------------------------------------------------------------------------


def test_wrapper_version_is_what_native_solc_prints_and_solcx_parses() -> None:
    result = subprocess.run(
        [WRAPPER, "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    first, second = result.stdout.splitlines()
    assert first == "solc, the solidity compiler commandline interface"
    assert second.startswith(f"Version: {NPM_SOLC_VERSION}+commit.")
    version = solcx.wrapper.get_solc_version(WRAPPER, with_commit_hash=True)
    assert version.base_version == NPM_SOLC_VERSION
    assert version.local is not None
    assert version.local.startswith("commit.")
    assert solcx.wrapper.get_solc_version(WRAPPER) == Version(NPM_SOLC_VERSION)


def test_wrapper_rejects_an_unknown_flag_with_exit_2() -> None:
    result = subprocess.run(
        [WRAPPER, "--standard-json", "--frobnicate"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("unrecognised option '--frobnicate'")
    # The wording is native solc's, so py-solc-x turns it into its own exception.
    with pytest.raises(UnknownOption, match="--frobnicate"):
        solcx.wrapper.solc_wrapper(solc_binary=WRAPPER, frobnicate=True)


@pytest.mark.parametrize("args", [[], ["--combined-json", "abi"], ["--base-path"]])
def test_wrapper_rejects_unsupported_usage_with_exit_2(args: list[str]) -> None:
    result = subprocess.run(
        [WRAPPER, *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()


def test_wrapper_accepts_the_paths_solcx_passes() -> None:
    """compile_standard() may add --base-path and --allow-paths; imports still resolve."""
    output = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {
                "contracts/Tiny.sol": {"content": TINY},
                "contracts/interfaces/ITiny.sol": {"content": ITINY},
            },
            "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
        },
        solc_binary=WRAPPER,
        base_path=cc.ROOT,
        allow_paths=[cc.ROOT, cc.NODE_MODULES],
    )
    assert "@openzeppelin/contracts/access/Ownable.sol" in output["sources"]
    assert output["contracts"]["contracts/Tiny.sol"]["Tiny"]["abi"]


def test_imports_cannot_leave_the_allowed_directories() -> None:
    source = 'pragma solidity ^0.8.24;\nimport "/etc/hostname";\nimport "../../etc/hosts";\n'
    with pytest.raises(cc.CompileError) as excinfo:
        cc.compile_sources({"contracts/Escape.sol": source})
    message = str(excinfo.value)
    assert "outside the allowed directories" in message
    assert 'Source "etc/hosts" not found' in message  # solc normalises the '..' away


# -- the compile script ---------------------------------------------------------------------------


def test_committed_artifacts_match_a_fresh_compile(capsys: pytest.CaptureFixture[str]) -> None:
    assert cc.main(["--check"]) == 0, capsys.readouterr().err


def test_tiny_project_artifacts(tiny: tuple[Path, Path]) -> None:
    _, out = tiny
    # Interfaces are kept (their ABI is useful); OpenZeppelin's contracts are not ours to ship.
    assert sorted(path.name for path in out.iterdir()) == ["ITiny.json", "Tiny.json"]
    artifact = json.loads((out / "Tiny.json").read_text(encoding="utf-8"))
    assert artifact["contractName"] == "Tiny"
    assert artifact["sourceName"] == "contracts/Tiny.sol"
    assert artifact["compiler"]["name"] == "solc-js"
    assert artifact["compiler"]["version"].startswith(f"{NPM_SOLC_VERSION}+commit.")
    assert artifact["compiler"]["settings"] == cc.SETTINGS
    assert artifact["bytecode"].startswith("0x6080")
    assert len(artifact["deployedBytecode"]) > 2
    metadata = json.loads(artifact["metadata"])
    assert "@openzeppelin/contracts/access/Ownable.sol" in metadata["sources"]
    interface = json.loads((out / "ITiny.json").read_text(encoding="utf-8"))
    assert (interface["bytecode"], interface["deployedBytecode"]) == ("0x", "0x")
    assert [entry["name"] for entry in interface["abi"]] == ["set"]


def test_sources_hash_covers_imports_with_framing(tiny: tuple[Path, Path]) -> None:
    _, out = tiny
    units = {
        "contracts/Tiny.sol": TINY.encode(),
        "contracts/interfaces/ITiny.sol": ITINY.encode(),
        **{
            name: (cc.NODE_MODULES / name).read_bytes()
            for name in (
                "@openzeppelin/contracts/access/Ownable.sol",
                "@openzeppelin/contracts/utils/Context.sol",
            )
        },
    }
    artifact = json.loads((out / "Tiny.json").read_text(encoding="utf-8"))
    assert artifact["sourcesSha256"] == cc.sources_sha256(units)
    assert cc.sources_sha256({"a": b"bc"}) != cc.sources_sha256({"ab": b"c"})


def test_recompiling_is_byte_identical_and_check_reports_changes(
    tiny: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    contracts, out = tiny
    copy = tmp_path / "artifacts"
    shutil.copytree(out, copy)
    dirs = ["--contracts-dir", str(contracts), "--artifacts-dir", str(copy)]
    assert cc.main(["--check", *dirs]) == 0
    (copy / "Tiny.json").write_text((copy / "Tiny.json").read_text().replace("0x6080", "0x6081"))
    (copy / "Gone.json").write_text("{}\n")
    (copy / "ITiny.json").unlink()
    capsys.readouterr()
    assert cc.main(["--check", *dirs]) == 1
    err = capsys.readouterr().err
    assert "Tiny.json: differs" in err
    assert "ITiny.json: missing" in err
    assert "Gone.json: not produced by the sources" in err
    # Writing repairs all three, byte for byte.
    assert cc.main(dirs) == 0
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == {
        p.name: p.read_bytes() for p in out.iterdir()
    }


def test_a_syntax_error_is_a_clear_message_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    contracts = _project(tmp_path, {"contracts/Broken.sol": BROKEN})
    with pytest.raises(cc.CompileError) as excinfo:
        cc.compile_sources(cc.find_sources(contracts))
    assert "ParserError" in str(excinfo.value)
    assert "contracts/Broken.sol:5:" in str(excinfo.value)

    out = tmp_path / "artifacts"
    assert cc.main(["--contracts-dir", str(contracts), "--artifacts-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compile_contracts: compilation failed:\nParserError")
    assert "Traceback" not in err
    assert not out.exists()


def test_no_sources_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "README.md").write_text("soon\n")
    assert cc.main(["--contracts-dir", str(tmp_path / "contracts")]) == 2
    assert "no Solidity sources" in capsys.readouterr().err


# -- loading the shipped artifacts ----------------------------------------------------------------


def test_every_shipped_artifact_loads() -> None:
    names = artifact_names()
    assert names == sorted(p.stem for p in cc.ARTIFACTS_DIR.glob("*.json"))
    assert names, "no artifacts: run scripts/compile_contracts.py"
    for name in names:
        artifact = load_artifact(name)
        assert artifact.name == name
        assert artifact.abi
        assert artifact.compiler_version.startswith(f"{NPM_SOLC_VERSION}+commit.")
        assert artifact.settings == cc.SETTINGS
        assert len(artifact.source_hash) == 64
        # Deployable contracts have both codes; interfaces and abstract contracts neither.
        assert bool(artifact.bytecode) == bool(artifact.deployed_bytecode)


@pytest.mark.parametrize("name", ["NoSuchContract", "../errors", "", "IssuerRegistry.json"])
def test_unknown_artifact_is_an_artifact_error(name: str) -> None:
    with pytest.raises(ArtifactError, match="no artifact for contract"):
        load_artifact(name)
    assert issubclass(ArtifactError, VerifierError)


def test_artifacts_load_from_a_compiled_project(
    tiny: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, out = tiny
    monkeypatch.setattr(contracts_abi, "_artifacts_dir", lambda: out)
    assert artifact_names() == ["ITiny", "Tiny"]
    tiny_artifact = load_artifact("Tiny")
    assert tiny_artifact.bytecode[:2] == b"\x60\x80"
    assert load_artifact("ITiny").bytecode == b""


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not json", "cannot read it as JSON"),
        ("[]", "contractName is missing"),
        ('{"contractName": "Other"}', "contractName is 'Other'"),
        ('{"contractName": "Bad", "abi": [1]}', "abi entries must be objects"),
        (
            '{"contractName": "Bad", "abi": [], "compiler": {}, "sourcesSha256": "00"}',
            "sourcesSha256 is not",
        ),
    ],
)
def test_malformed_artifact_is_an_artifact_error(
    text: str,
    complaint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "Bad.json").write_text(text, encoding="utf-8")
    monkeypatch.setattr(contracts_abi, "_artifacts_dir", lambda: tmp_path)
    with pytest.raises(ArtifactError, match=complaint):
        load_artifact("Bad")


def test_malformed_bytecode_and_compiler_are_artifact_errors(
    tiny: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = json.loads((tiny[1] / "Tiny.json").read_text(encoding="utf-8"))
    monkeypatch.setattr(contracts_abi, "_artifacts_dir", lambda: tmp_path)
    for key, value, complaint in [
        ("bytecode", "6080", "bytecode is not 0x-prefixed"),
        ("deployedBytecode", "0xabc", "deployedBytecode is not"),
        ("compiler", {"settings": {}}, "compiler.version is missing"),
    ]:
        (tmp_path / "Tiny.json").write_text(json.dumps({**good, key: value}), encoding="utf-8")
        with pytest.raises(ArtifactError, match=complaint):
            load_artifact("Tiny")
