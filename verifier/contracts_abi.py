"""The compiled contracts shipped with the package: ABI and bytecode of every contract and
interface under ``contracts/``, as written by ``scripts/compile_contracts.py`` into
``verifier/artifacts/<Name>.json``.

    registry = load_artifact("IIssuerRegistry")
    registry.abi  # for web3 or any other ABI encoder

``source_hash`` is the SHA-256 over the source units the contract was compiled from, in sorted
name order, each framed as ``name "\\n" byte-length "\\n" content``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from verifier.errors import ArtifactError

__all__ = ["Artifact", "artifact_names", "load_artifact"]

# A Solidity identifier; anything else cannot name an artifact (and cannot escape the folder).
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_HEX = re.compile(r"0x(?:[0-9a-f]{2})*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Artifact:
    """One compiled contract. ``bytecode`` is empty for interfaces and abstract contracts."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    compiler_version: str  # e.g. "0.8.37+commit.f401782d"
    settings: dict[str, Any]  # the Standard JSON settings the bytecode was compiled with
    source_hash: str  # hex SHA-256, see the module docstring


def _artifacts_dir() -> Traversable:
    return resources.files("verifier") / "artifacts"


def artifact_names() -> list[str]:
    """Names of the shipped artifacts, sorted."""
    folder = _artifacts_dir()
    if not folder.is_dir():
        return []
    return sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json") and entry.is_file()
    )


def load_artifact(name: str) -> Artifact:
    """The artifact of contract ``name``; :class:`ArtifactError` if it is unknown or malformed."""
    path = _artifacts_dir() / f"{name}.json"
    if not _NAME.fullmatch(name) or not path.is_file():
        known = ", ".join(artifact_names()) or "none"
        raise ArtifactError(f"no artifact for contract {name!r} (known: {known})")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"artifact {name}: cannot read it as JSON: {exc}") from None
    return _parse(name, document)


def _field(name: str, document: Any, label: str, kind: type) -> Any:
    """document[key] for the last component of the dotted label, checked to be a kind."""
    key = label.rpartition(".")[2]
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, kind):
        raise ArtifactError(f"artifact {name}: {label} is missing or not a {kind.__name__}")
    return value


def _hex(name: str, document: Any, key: str) -> bytes:
    value = _field(name, document, key, str)
    if not _HEX.fullmatch(value):
        raise ArtifactError(f"artifact {name}: {key} is not 0x-prefixed lowercase hex bytes")
    return bytes.fromhex(value[2:])


def _parse(name: str, document: Any) -> Artifact:
    if _field(name, document, "contractName", str) != name:
        raise ArtifactError(f"artifact {name}: contractName is {document['contractName']!r}")
    abi = _field(name, document, "abi", list)
    if not all(isinstance(entry, dict) for entry in abi):
        raise ArtifactError(f"artifact {name}: abi entries must be objects")
    compiler = _field(name, document, "compiler", dict)
    source_hash = _field(name, document, "sourcesSha256", str)
    if not _SHA256.fullmatch(source_hash):
        raise ArtifactError(f"artifact {name}: sourcesSha256 is not a hex SHA-256")
    return Artifact(
        name=name,
        abi=abi,
        bytecode=_hex(name, document, "bytecode"),
        deployed_bytecode=_hex(name, document, "deployedBytecode"),
        compiler_version=_field(name, compiler, "compiler.version", str),
        settings=_field(name, compiler, "compiler.settings", dict),
        source_hash=source_hash,
    )
