"""Compile contracts/**/*.sol into the committed artifacts verifier/artifacts/<Contract>.json.

    python scripts/compile_contracts.py          # (re)write verifier/artifacts/*.json
    python scripts/compile_contracts.py --check  # exit 1 if the committed artifacts are stale

The compiler is the npm package `solc` (solc-js) pinned by hardhat-free-local/package-lock.json,
driven by py-solc-x through hardhat-free-local/solc/solc.js, which behaves like a native solc
binary. Imports such as `@openzeppelin/contracts/...` resolve from hardhat-free-local/node_modules.

One artifact is written per contract, abstract contract, interface or library defined in the
compiled sources (not in imported ones such as OpenZeppelin). Interfaces are kept, with bytecode
"0x": their ABI is what a verifier needs to read a deployment. Only a definition with neither ABI
nor bytecode gets no artifact. Each artifact also carries the compiler's metadata JSON verbatim:
the bytecode ends in its IPFS hash, so it is what source verification (e.g. Sourcify) checks.

`sourcesSha256` is the SHA-256 over the source units the contract was compiled from (its
metadata's `sources`: its own file and every file it imports), in sorted name order, each framed
as  name "\\n" byte-length "\\n" content  so that no two source sets share an encoding.

Exit codes: 0 success, 1 `--check` found stale artifacts, 2 no sources or a compiler error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import solcx
from eth_hash.auto import keccak
from solcx.exceptions import SolcError

ROOT: Final = Path(__file__).resolve().parents[1]
CONTRACTS_DIR: Final = ROOT / "contracts"
ARTIFACTS_DIR: Final = ROOT / "verifier" / "artifacts"
SOLC_WRAPPER: Final = ROOT / "hardhat-free-local" / "solc" / "solc.js"
NODE_MODULES: Final = ROOT / "hardhat-free-local" / "node_modules"
# Where the wrapper looks up an imported source unit name, in this order.
IMPORT_ROOTS: Final = (ROOT, NODE_MODULES)

# Part of every artifact: changing anything here changes the bytecode, so --check notices.
SETTINGS: Final[dict[str, Any]] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 100_000},
    "viaIR": True,
    "outputSelection": {
        "*": {
            "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"],
        },
    },
}


class CompileError(Exception):
    """A user-facing failure: no sources, a compiler error, an unusable compiler."""


@dataclass(frozen=True)
class Compilation:
    sources: dict[str, str]  # the compiled source units (name -> content), imports excluded
    output: dict[str, Any]  # the Standard JSON output
    warnings: list[str]  # formatted warnings and infos


def find_sources(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, str]:
    """Every .sol file under contracts_dir, sorted, keyed by its path relative to the folder
    above (the repository root for contracts/): "contracts/IssuerRegistry.sol". Relative names
    keep absolute paths out of the metadata, hence out of the bytecode."""
    base = contracts_dir.parent
    files = {path.relative_to(base).as_posix(): path for path in contracts_dir.rglob("*.sol")}
    if not files:
        raise CompileError(f"no Solidity sources (*.sol) under {contracts_dir}; nothing to compile")
    # Bytes decoded as is: read_text() would translate CRLF, and the compiled text would no
    # longer be the file (whose keccak256 the metadata records for source verification).
    sources = {}
    for name in sorted(files):
        try:
            sources[name] = files[name].read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CompileError(f"{files[name]} is not UTF-8: {exc}") from None
    return sources


def _solc_failure(exc: SolcError) -> str:
    if exc.error_dict:
        return "\n\n".join(
            str(error.get("formattedMessage", error.get("message", error))).rstrip()
            for error in exc.error_dict
            if error.get("severity") == "error"
        )
    detail = (exc.stderr_data or "").strip()
    return f"{exc.message}: {detail}" if detail else exc.message


def compile_sources(sources: Mapping[str, str], solc_binary: Path = SOLC_WRAPPER) -> Compilation:
    """Compile the given source units (name -> content) with the pinned SETTINGS."""
    if not solc_binary.is_file():
        raise CompileError(f"compiler wrapper {solc_binary} is missing")
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sorted(sources.items())},
        "settings": SETTINGS,
    }
    try:
        output: dict[str, Any] = solcx.compile_standard(standard_input, solc_binary=solc_binary)
    except SolcError as exc:
        raise CompileError(f"compilation failed:\n{_solc_failure(exc)}") from None
    # OSError: the wrapper is not executable; SubprocessError: `--version` failed (node
    # missing?); ValueError: its stdout was not JSON.
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise CompileError(f"cannot run the compiler {solc_binary}: {exc}") from None
    warnings = [
        str(error.get("formattedMessage", error.get("message"))).rstrip()
        for error in output.get("errors", [])
        if error.get("severity") != "error"
    ]
    return Compilation(dict(sorted(sources.items())), output, warnings)


def _source_text(name: str, compilation: Compilation, keccak256: str) -> bytes:
    """The bytes of a source unit, found the way the wrapper finds imports and checked against
    the keccak256 the compiler recorded, so the hash covers exactly what was compiled."""
    if name in compilation.sources:
        data = compilation.sources[name].encode("utf-8")
    else:
        path = next((r / name for r in IMPORT_ROOTS if (r / name).is_file()), None)
        if path is None:
            raise CompileError(f"cannot find imported source {name} under {IMPORT_ROOTS}")
        data = path.read_bytes()
    if "0x" + keccak(data).hex() != keccak256:
        raise CompileError(f"source {name} on disk differs from the one the compiler read")
    return data


def sources_sha256(units: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(units):
        digest.update(f"{name}\n{len(units[name])}\n".encode())
        digest.update(units[name])
    return digest.hexdigest()


def _artifact(compilation: Compilation, source: str, name: str, data: Any) -> dict[str, Any]:
    bytecode = data["evm"]["bytecode"]["object"]
    if "__$" in bytecode:
        # The artifact format has no link references, so a deployable file must be complete.
        raise CompileError(f"{source}:{name} needs library linking, which is not supported")
    metadata = json.loads(data["metadata"])
    units = {
        unit: _source_text(unit, compilation, info["keccak256"])
        for unit, info in metadata["sources"].items()
    }
    return {
        "contractName": name,
        "sourceName": source,
        "abi": data["abi"],
        "bytecode": "0x" + bytecode,
        "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
        "compiler": {
            "name": "solc-js",
            "version": metadata["compiler"]["version"],
            "settings": SETTINGS,
        },
        "metadata": data["metadata"],
        "sourcesSha256": sources_sha256(units),
    }


def build_artifacts(compilation: Compilation) -> dict[str, str]:
    """File name -> rendered artifact, for the contracts defined in the compiled sources."""
    contracts = compilation.output.get("contracts", {})
    rendered: dict[str, str] = {}
    origin: dict[str, str] = {}
    for source in compilation.sources:  # imported files (OpenZeppelin) are not ours to ship
        for name, data in sorted(contracts.get(source, {}).items()):
            if not data["abi"] and not data["evm"]["bytecode"]["object"]:
                continue
            if name in origin:
                raise CompileError(f"contract {name} is defined in both {origin[name]} and "
                                   f"{source}; artifact names must be unique")
            origin[name] = source
            rendered[f"{name}.json"] = render(_artifact(compilation, source, name, data))
    return rendered


def render(artifact: Mapping[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_artifacts(artifacts: Mapping[str, str], out_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """What differs between the rendered artifacts and out_dir, one line per file."""
    present = {path.name for path in out_dir.glob("*.json")}
    extra = sorted(present - artifacts.keys())
    problems = [f"{name}: not produced by the sources" for name in extra]
    for name, text in sorted(artifacts.items()):
        if name not in present:
            problems.append(f"{name}: missing")
        elif (out_dir / name).read_bytes() != text.encode("utf-8"):
            problems.append(f"{name}: differs")
    return problems


def write_artifacts(artifacts: Mapping[str, str], out_dir: Path = ARTIFACTS_DIR) -> list[str]:
    """Make out_dir/*.json exactly the given artifacts; returns what changed. out_dir holds only
    generated files, so a .json no source produces any more is removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    changes = []
    for path in sorted(out_dir.glob("*.json")):
        if path.name not in artifacts:
            path.unlink()
            changes.append(f"removed {path}")
    for name, text in sorted(artifacts.items()):
        path = out_dir / name
        data = text.encode("utf-8")  # bytes: no newline translation, byte-for-byte output
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)  # only on change: no mtime churn
            changes.append(f"wrote {path}")
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    parser.add_argument("--contracts-dir", type=Path, default=CONTRACTS_DIR, metavar="DIR",
                        help="the sources to compile (default: contracts/)")
    parser.add_argument("--artifacts-dir", type=Path, default=ARTIFACTS_DIR, metavar="DIR",
                        help="where the artifacts go (default: verifier/artifacts/)")
    args = parser.parse_args(argv)
    try:
        compilation = compile_sources(find_sources(args.contracts_dir))
        for warning in compilation.warnings:
            print(warning, end="\n\n", file=sys.stderr)
        artifacts = build_artifacts(compilation)
    except CompileError as exc:
        print(f"compile_contracts: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_artifacts(artifacts, args.artifacts_dir)
        for line in stale:
            print(f"stale artifact {line}", file=sys.stderr)
        if stale:
            print("run scripts/compile_contracts.py to update them", file=sys.stderr)
            return 1
        print(f"{len(artifacts)} artifacts up to date")
        return 0
    changes = write_artifacts(artifacts, args.artifacts_dir)
    for line in changes or [f"{len(artifacts)} artifacts already up to date"]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
