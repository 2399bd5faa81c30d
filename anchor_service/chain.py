"""Chain adapter: deploy the contracts, send transactions signed by a local key, and turn
reverts into :class:`RevertError` errors that name the contract's custom error.

It talks to any JSON-RPC node through a ``web3.Web3`` given by the caller (a real anvil, the
in-process chain, or a public network); nothing here starts a chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.datastructures import SignedTransaction
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError
from web3.types import TxParams, TxReceipt, Wei

from anchor_service.errors import ChainError, ContractVersionError, RevertError
from verifier.contract_types import ADDRESS_TEXT, Kind, Scope, signing_key_id
from verifier.contracts_abi import Artifact, load_artifact
from verifier.multikey import KeyType, Multikey

__all__ = [
    "Deployment",
    "Transactor",
    "accredit",
    "add_signing_key",
    "check_contract_versions",
    "contract_version",
    "decode_revert",
    "deploy",
    "revoke_signing_key",
    "shorten_signing_key_expiry",
    "sign_anchor",
    "signing_key_id",
]

REGISTRY: Final = "IssuerRegistry"
ANCHOR: Final = "CredentialAnchor"
#: The major version of the contracts this release reads and writes (their ``version()``).
CONTRACTS_MAJOR: Final = 2
_VERSION_SELECTOR: Final = keccak(text="version()")[:4]
_ERROR_SELECTOR: Final = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR: Final = bytes.fromhex("4e487b71")  # Panic(uint256)


# A deployment record's JSON keys, camelCase like every JSON document of the project, by field.
# Release 0.1.0 wrote the field names themselves (snake_case): records in that spelling are
# still read (and the stack rewrites its own record in this one when it reuses it).
_RECORD_KEYS: Final = {"chain_id": "chainId", "registry": "registry", "anchor": "anchor",
                       "block_number": "blockNumber", "deployer": "deployer",
                       "artifact_hash": "artifactHash"}
_ADDRESS: Final = re.compile(ADDRESS_TEXT)
_HASH: Final = re.compile(r"0x[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live on one chain: what ``anchor-service deploy`` (and the stack's
    ``deployment.json``) records."""

    chain_id: int
    registry: str
    anchor: str
    block_number: int
    deployer: str
    artifact_hash: str

    def to_json(self) -> str:
        """The record: ``{"anchor", "artifactHash", "blockNumber", "chainId", "deployer",
        "registry"}``, keys sorted."""
        record = {_RECORD_KEYS[field]: value for field, value in asdict(self).items()}
        return json.dumps(record, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        """Read a record in the camelCase spelling that :meth:`to_json` writes, or in the
        snake_case one of release 0.1.0; a record that mixes the two, lacks a key or has one
        of neither is refused (:class:`ChainError`), as is a value of the wrong type."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChainError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ChainError("not a JSON object")
        keys = set(data)
        for spelling in (_RECORD_KEYS, {field: field for field in _RECORD_KEYS}):
            if keys == set(spelling.values()):
                fields = {field: data[key] for field, key in spelling.items()}
                break
        else:
            raise ChainError(_record_keys_problem(keys))
        for field in ("chain_id", "block_number"):
            value = fields[field]
            if type(value) is not int or value < (1 if field == "chain_id" else 0):
                raise ChainError(f"{_RECORD_KEYS[field]} must be a "
                                 f"{'positive' if field == 'chain_id' else 'non-negative'} "
                                 f"integer, not {value!r}")
        for field, pattern in (("registry", _ADDRESS), ("anchor", _ADDRESS),
                               ("deployer", _ADDRESS), ("artifact_hash", _HASH)):
            value = fields[field]
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise ChainError(f"{_RECORD_KEYS[field]} must be 0x and "
                                 f"{40 if pattern is _ADDRESS else 64} hex digits, "
                                 f"not {value!r}")
        return cls(**fields)

    def contracts(self, w3: Web3) -> tuple[Contract, Contract]:
        """The registry and anchor contract objects bound to ``w3``."""
        return (
            w3.eth.contract(
                address=to_checksum_address(self.registry), abi=load_artifact(REGISTRY).abi
            ),
            w3.eth.contract(
                address=to_checksum_address(self.anchor), abi=load_artifact(ANCHOR).abi
            ),
        )


def artifact_hash(artifacts: Iterable[Artifact]) -> str:
    """SHA-256 over the deployed creation bytecodes, to tell which build a deployment used."""
    digest = hashlib.sha256()
    for artifact in artifacts:
        digest.update(artifact.bytecode)
    return "0x" + digest.hexdigest()


class Transactor:
    """Sends transactions from one local key and waits for their receipts."""

    def __init__(self, w3: Web3, account: LocalAccount, *, timeout: float = 60.0) -> None:
        self.w3 = w3
        self.account = account
        self._timeout = timeout
        self._errors = _error_table([load_artifact(REGISTRY), load_artifact(ANCHOR)])

    @property
    def address(self) -> str:
        return str(self.account.address)

    def transact(self, call: ContractFunction, *, gas: int | None = None) -> TxReceipt:
        """Send ``call`` as a transaction and wait for it; raise :class:`RevertError` if it
        reverts."""
        return self.wait(self.send(call, gas=gas), call)

    def send(self, call: ContractFunction, *, gas: int | None = None,
             replace: bool = False) -> bytes:
        """Sign and send ``call`` without waiting; return the transaction hash. A call that
        would revert raises :class:`RevertError` here, before anything is sent.

        With ``replace``, the transaction takes the lowest nonce not yet mined and twice the
        suggested fees, so that it replaces whatever is stuck there (a transaction that was
        underpriced or dropped) instead of queueing behind it."""
        return self.broadcast(self.sign(call, gas=gas, replace=replace))

    def sign(self, call: ContractFunction, *, gas: int | None = None,
             replace: bool = False) -> SignedTransaction:
        """The signed transaction :meth:`send` would send, not sent: its hash is known before
        anything leaves, so that it can be recorded first."""
        params: TxParams = {"from": self.account.address}
        if gas is None:
            try:
                estimate = call.estimate_gas(params)
            except (ContractCustomError, ContractPanicError, ContractLogicError) as exc:
                raise self._revert_from(exc) from None
            gas = estimate + estimate // 5 + 10_000
        nonce_of: Literal["latest", "pending"] = "latest" if replace else "pending"
        tx = call.build_transaction(
            {
                **params,
                "gas": gas,
                "nonce": self.w3.eth.get_transaction_count(self.account.address, nonce_of),
                "chainId": self.w3.eth.chain_id,
            }
        )
        if replace and "maxFeePerGas" in tx and "maxPriorityFeePerGas" in tx:
            tx["maxFeePerGas"] = Wei(2 * int(tx["maxFeePerGas"]))
            tx["maxPriorityFeePerGas"] = Wei(2 * int(tx["maxPriorityFeePerGas"]))
        return self.account.sign_transaction(tx)  # type: ignore[arg-type]

    def broadcast(self, signed: SignedTransaction) -> bytes:
        """Send a transaction signed by :meth:`sign`; its hash."""
        return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))

    def wait(self, tx_hash: bytes, call: ContractFunction | None = None) -> TxReceipt:
        """The receipt of ``tx_hash``; if it reverted, the typed error (replaying ``call``)."""
        receipt = self.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=self._timeout)
        if receipt["status"] != 1:
            if call is not None:
                # Replay the call on the failing block's state to learn why it reverted (best
                # effort: exact when the transaction was alone in its block, as when auto-mining).
                try:
                    call.call({"from": self.account.address}, receipt["blockNumber"])
                except (ContractCustomError, ContractPanicError, ContractLogicError) as exc:
                    raise self._revert_from(exc) from None
            raise ChainError(f"transaction 0x{bytes(tx_hash).hex()} reverted")
        return receipt

    def deploy(self, artifact: Artifact, *args: Any) -> TxReceipt:
        """Deploy ``artifact`` with constructor ``args``; return the receipt."""
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor(*args).build_transaction(
            {
                "from": self.account.address,
                "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
                "chainId": self.w3.eth.chain_id,
            }
        )
        return self.wait(self._send_raw(tx))

    def decode(self, data: bytes) -> RevertError:
        """The typed error for revert ``data`` of one of our contracts."""
        return decode_revert(data, self._errors)

    def _send_raw(self, tx: TxParams) -> bytes:
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))

    def _revert_from(self, exc: ContractLogicError) -> RevertError:
        data = exc.data
        if isinstance(data, dict):  # some nodes wrap the revert data in an object
            data = data.get("data")
        if isinstance(data, str):
            return self.decode(bytes.fromhex(data.removeprefix("0x")))
        return RevertError("Revert", (str(exc),), b"")


def sign_anchor(
    anchor: Contract,
    signer: LocalAccount,
    root: bytes,
    *,
    tree_size: int,
    nonce: int,
    deadline: int,
    chain_id: int | None = None,
    verifying_contract: str | None = None,
) -> bytes:
    """An EIP-712 signature of an anchoring request for ``anchor`` (a CredentialAnchor
    contract), as an issuer makes it offline for a relayer to submit."""
    typed: dict[str, Any] = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Anchor": [
                {"name": "root", "type": "bytes32"},
                {"name": "treeSize", "type": "uint64"},
                {"name": "key", "type": "address"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Anchor",
        "domain": {
            "name": "CredentialAnchor",
            "version": "2",
            "chainId": chain_id if chain_id is not None else anchor.w3.eth.chain_id,
            "verifyingContract": verifying_contract or anchor.address,
        },
        "message": {
            "root": root,
            "treeSize": tree_size,
            "key": signer.address,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
    signed = signer.sign_message(encode_typed_data(full_message=typed))
    return bytes(signed.signature)


def accredit(transactor: Transactor, registry: Contract, *, parent: int, kind: Kind, did: str,
             scope: Scope, metadata_uri: str = "", metadata_hash: bytes = bytes(32)) -> int:
    """Accredit an entity in the registry; return its new id (from the EntityAccredited event)."""
    receipt = transactor.transact(registry.functions.accredit(
        parent, kind, did, scope, metadata_uri, metadata_hash))
    (event,) = registry.events.EntityAccredited().process_receipt(receipt)
    return int(event["args"]["id"])


# The key types the registry takes as signing keys (IssuerRegistry._isSigningKeyForm).
_SIGNING_KEY_TYPES: Final = (KeyType.ED25519, KeyType.P256)


def add_signing_key(transactor: Transactor, registry: Contract, *, entity_id: int,
                    key: Multikey, valid_from: int = 0, valid_until: int = 0) -> bytes:
    """Register ``key`` (Ed25519 or P-256) as a signing key of entity ``entity_id``, valid
    from ``valid_from`` (0: now) until ``valid_until`` (0: no expiry); return its key id
    (keccak256 of the Multikey bytes, as the SigningKeyAdded event names it). The caller must
    be a root administrator or a trusted key of the entity's accreditor; a refusal is a
    :class:`RevertError` naming the contract's error. A P-384 key is refused here
    (:class:`ChainError`): the registry takes Ed25519 and P-256 only."""
    if key.key_type not in _SIGNING_KEY_TYPES:
        raise ChainError(f"the registry takes Ed25519 and P-256 signing keys, not "
                         f"{key.key_type.label}")
    receipt = transactor.transact(registry.functions.addSigningKey(
        entity_id, key.multicodec, valid_from, valid_until))
    (event,) = registry.events.SigningKeyAdded().process_receipt(receipt)
    key_id = bytes(event["args"]["keyId"])
    if key_id != signing_key_id(key):  # the contract hashes what it was given: cannot differ
        raise ChainError(f"the registry named the key 0x{key_id.hex()}, expected "
                         f"0x{signing_key_id(key).hex()}")
    return key_id


def revoke_signing_key(transactor: Transactor, registry: Contract, *, key_id: bytes,
                       effective_from: int = 0) -> int:
    """Revoke signing key ``key_id`` from ``effective_from`` (unix seconds, not in the future;
    0: from the next second); return the effective time the registry recorded. Back-dating
    needs a root administrator or a trusted key of the accreditor."""
    receipt = transactor.transact(registry.functions.revokeSigningKey(key_id, effective_from))
    (event,) = registry.events.SigningKeyRevoked().process_receipt(receipt)
    return int(event["args"]["effectiveFrom"])


def shorten_signing_key_expiry(transactor: Transactor, registry: Contract, *, key_id: bytes,
                               valid_until: int) -> None:
    """Move signing key ``key_id``'s expiry earlier, to ``valid_until`` (unix seconds, in the
    future): key rotation."""
    transactor.transact(registry.functions.shortenSigningKeyExpiry(key_id, valid_until))


def deploy(
    transactor: Transactor,
    *,
    admin_transfer_delay: int = 3 * 24 * 3600,
    initial_admin: str | None = None,
) -> Deployment:
    """Deploy the registry and the anchor contract; the deployer (or ``initial_admin``)
    becomes the top administrator and first root administrator."""
    registry_artifact, anchor_artifact = load_artifact(REGISTRY), load_artifact(ANCHOR)
    admin = initial_admin or transactor.address
    registry_receipt = transactor.deploy(
        registry_artifact, admin_transfer_delay, to_checksum_address(admin)
    )
    registry = registry_receipt["contractAddress"]
    anchor_receipt = transactor.deploy(anchor_artifact, registry)
    return Deployment(
        chain_id=transactor.w3.eth.chain_id,
        registry=str(registry),
        anchor=str(anchor_receipt["contractAddress"]),
        block_number=int(anchor_receipt["blockNumber"]),
        deployer=transactor.address,
        artifact_hash=artifact_hash([registry_artifact, anchor_artifact]),
    )


def decode_revert(data: bytes, errors: Mapping[bytes, tuple[str, list[str]]]) -> RevertError:
    """Decode revert ``data`` against an error table (selector -> name, argument types)."""
    selector, body = data[:4], data[4:]
    try:
        if selector == _ERROR_SELECTOR:
            return RevertError("Error", tuple(abi_decode(["string"], body)), data)
        if selector == _PANIC_SELECTOR:
            return RevertError("Panic", tuple(abi_decode(["uint256"], body)), data)
        if selector in errors:
            name, types = errors[selector]
            values = abi_decode(types, body)
            return RevertError(
                name,
                tuple(
                    to_checksum_address(v) if t == "address" else v
                    for t, v in zip(types, values, strict=True)
                ),
                data,
            )
    except Exception:  # undecodable data is reported raw
        return RevertError("UndecodableError", ("0x" + data.hex(),), data)
    return RevertError("UnknownError", ("0x" + data.hex(),), data)


def _error_table(artifacts: Sequence[Artifact]) -> dict[bytes, tuple[str, list[str]]]:
    table: dict[bytes, tuple[str, list[str]]] = {}
    for artifact in artifacts:
        for item in artifact.abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(arg) for arg in item.get("inputs", [])]
            signature = f"{item['name']}({','.join(types)})"
            table[keccak(text=signature)[:4]] = (str(item["name"]), types)
    return table


def _abi_type(arg: Mapping[str, Any]) -> str:
    kind = str(arg["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in arg["components"])
        return f"({inner}){kind[5:]}"
    return kind


def _record_keys_problem(keys: set[str]) -> str:
    """What is wrong with the keys of a deployment record, for the error message."""
    current, old = set(_RECORD_KEYS.values()), set(_RECORD_KEYS)
    unknown = sorted(keys - current - old)
    if unknown:
        return f"unknown keys {unknown}: a deployment record has {sorted(current)}"
    if keys & (current - old) and keys & (old - current):
        return (f"mixes the camelCase keys {sorted(keys & (current - old))} with the "
                f"snake_case keys of release 0.1.0 {sorted(keys & (old - current))}: "
                "use one spelling")
    spelling = old if keys & (old - current) else current
    return f"missing keys {sorted(spelling - keys)}"


def load_deployment(path: Path) -> Deployment:
    """Read a deployment record written by ``anchor-service deploy`` (either spelling, see
    :meth:`Deployment.from_json`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChainError(f"cannot read deployment record {path}: {exc}") from None
    try:
        return Deployment.from_json(text)
    except ChainError as exc:
        raise ChainError(f"deployment record {path}: {exc}") from None


def contract_version(w3: Web3, address: str) -> str | None:
    """The ``version()`` of the contract at ``address``, or None when there is no contract
    there or it answers no version string. Errors of the node itself (unreachable, timeout)
    are raised as they are: nothing is known then."""
    try:
        answer = bytes(w3.eth.call({"to": to_checksum_address(address),
                                    "data": HexBytes(_VERSION_SELECTOR)}))
    except ContractLogicError:
        return None  # reverted: a contract without version()
    try:
        (version,) = abi_decode(["string"], answer)
    except DecodingError:  # eth_abi's own: too short, malformed offsets or text
        return None
    return str(version) if isinstance(version, str) else None


def check_contract_versions(w3: Web3, deployment: Deployment) -> None:
    """Refuse a deployment whose registry or anchor is not a 2.x contract
    (:class:`~anchor_service.errors.ContractVersionError`, the message says which and what to
    do). ``anchor(bytes32,uint64)`` has the same selector in 1.x and 2.x, so without this a
    service would anchor 2.x leaves (with status positions) on a 1.x anchor, where neither
    their status nor their verification works. Node errors (``Web3Exception``,
    ``OSError``) are raised as they are."""
    for name, address in ((REGISTRY, deployment.registry), (ANCHOR, deployment.anchor)):
        version = contract_version(w3, address)
        if version is not None and version.split(".")[0] == str(CONTRACTS_MAJOR):
            continue
        found = ("has no contract or answers no version()" if version is None
                 else f"is version {version}")
        older = (" (a 1.x deployment keeps status per batch; anchor-service 0.1.x serves it)"
                 if version is not None and version.split(".")[0] == "1" else "")
        raise ContractVersionError(
            f"the deployment's {name} at {address} {found}, but this release reads and "
            f"writes only {name} {CONTRACTS_MAJOR}.x{older}: deploy the {CONTRACTS_MAJOR}.x "
            "contracts (anchor-service deploy) and point MICROCRED_DEPLOYMENT at the new "
            "record")
