"""The contracts' types in Python: the registry's enums and scope bits, and an immutable model
of every struct and named multi-value result the contracts return, decoded by name.

One place for every Python user, the verifier and the service alike:

* :class:`Kind`, :class:`Status` and :class:`TrustCode` are the enums of ``IIssuerRegistry``
  (same members, same values); :class:`Scope` holds the scope bits (``SCOPE_*``). Each carries
  the word the CLI and the API show for it (:attr:`Kind.label`, :attr:`TrustCode.reason`,
  :func:`scope_names`...).
* :class:`Entity`, :class:`KeyInfo`, :class:`SigningKeyInfo`, :class:`Trust`,
  :class:`StatusChange`, :class:`Recognition`, :class:`RecognitionAnswer`,
  :class:`AnchorInfo`, :class:`CredentialStatus` and :class:`StatusBits` are the contracts'
  structs (:class:`RecognitionPath` names how a recognition answer was reached);
  :class:`KeyCheck`, :class:`CredentialCheck` and :class:`StatusWords` are the named results
  of ``checkKeyNow``, ``checkCredential`` and ``statusWords``.
* Status lists: :data:`STATUS_LIST_SIZE` entries per list, :class:`StatusPurpose`, and
  :func:`encode_status_indices` / :func:`decode_status_indices`, the packed form (big-endian
  uint32s) in which the status functions and events carry indices.

web3 returns a struct as a bare tuple in the ABI's order. :func:`decode` turns one into its
model by the ABI's component names, read from the shipped artifacts
(:func:`verifier.contracts_abi.load_artifact`), never by a position written in code::

    entity = read(Entity, registry.functions.entity(entity_id))
    entity.status is Status.ACTIVE

The first decode of a model reads its components from the ABI once and checks that they name
exactly the model's fields (``parentId`` is ``parent_id``), each of a fitting type (an enum
field where the ABI says ``enum IIssuerRegistry.Kind``...); a model that has drifted from the
contracts raises :class:`ContractTypeError` instead of decoding a wrong field. After that a
decode is one conversion per field, no ABI work. Values keep the form the caller's ABI decoder
gave them: an address is checksummed when web3's ``call`` decoded it and lower case when
:mod:`verifier.chain` decoded a raw answer (checksumming would cost a keccak per address), so
compare addresses case-insensitively.
"""

from __future__ import annotations

import re
import threading
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from enum import IntEnum, IntFlag, StrEnum
from typing import Any, Final, TypeVar

from verifier.contracts_abi import load_artifact
from verifier.errors import ChainReadError, ContractTypeError, MultikeyError
from verifier.multikey import Multikey, encode_multibase

__all__ = [
    "ADDRESS_TEXT",
    "ALL_SCOPES",
    "MODELS",
    "OPEN_UNTIL",
    "SCOPES",
    "STATUS_LIST_SIZE",
    "STATUS_LIST_WORDS",
    "AnchorInfo",
    "ContractTypeError",
    "CredentialCheck",
    "CredentialStatus",
    "Entity",
    "KeyCheck",
    "KeyInfo",
    "Kind",
    "Recognition",
    "RecognitionAnswer",
    "RecognitionPath",
    "Scope",
    "SigningKeyInfo",
    "Status",
    "StatusBits",
    "StatusChange",
    "StatusPurpose",
    "StatusWords",
    "Trust",
    "TrustCode",
    "abi_components",
    "check_model",
    "check_status_list",
    "decode",
    "decode_all",
    "decode_status_indices",
    "encode_status_indices",
    "field_name",
    "read",
    "scope_names",
    "scope_of",
    "signing_key_id",
]

#: An address as text: ``0x`` and 40 hex digits, of either case (a regular expression).
ADDRESS_TEXT: Final = r"0x[0-9a-fA-F]{40}"


# ---------------------------------------------------------------------- status lists

#: Entries in one status list, per purpose (``CredentialAnchor.STATUS_LIST_SIZE``): the
#: Bitstring Status List's minimum of 131,072 bits (16 KiB).
STATUS_LIST_SIZE: Final = 131_072
#: 256-bit words in one status list (``CredentialAnchor.STATUS_LIST_WORDS``).
STATUS_LIST_WORDS: Final = STATUS_LIST_SIZE // 256
_MAX_STATUS_LIST: Final = 2**32 - 1


class StatusPurpose(StrEnum):
    """The two status lists every issuer list number has: the Bitstring Status List
    ``statusPurpose`` values this project publishes."""

    REVOCATION = "revocation"
    SUSPENSION = "suspension"


def encode_status_indices(indices: Sequence[int]) -> bytes:
    """Status list indices packed as the status functions take them: big-endian uint32s, in
    the order given (ascending order costs the least gas). Raises :class:`ValueError` for an
    empty sequence or an index outside ``0 .. STATUS_LIST_SIZE - 1``."""
    if not indices:
        raise ValueError("no status list index given")
    for index in indices:
        if type(index) is not int or not 0 <= index < STATUS_LIST_SIZE:
            raise ValueError(f"status list index {index!r} is not in 0..{STATUS_LIST_SIZE - 1}")
    return b"".join(index.to_bytes(4, "big") for index in indices)


def decode_status_indices(packed: bytes) -> tuple[int, ...]:
    """The indices of a status event or call (:func:`encode_status_indices`'s form). Raises
    :class:`ValueError` when the length is not a multiple of 4."""
    if len(packed) % 4:
        raise ValueError(f"packed status indices are {len(packed)} bytes, not a multiple of 4")
    return tuple(int.from_bytes(packed[at:at + 4], "big") for at in range(0, len(packed), 4))


def check_status_list(status_list: int) -> int:
    """``status_list`` if it is a list number the contract can address (a uint32), else
    :class:`ValueError`."""
    if type(status_list) is not int or not 0 <= status_list <= _MAX_STATUS_LIST:
        raise ValueError(f"status list {status_list!r} is not in 0..{_MAX_STATUS_LIST}")
    return status_list


# ---------------------------------------------------------------------------- enums


class Kind(IntEnum):
    """``IIssuerRegistry.Kind``: what an entity is."""

    NONE = 0
    ACCREDITATION_BODY = 1
    TRUSTED_ISSUER = 2

    @property
    def label(self) -> str:
        """The word the CLI and the API use: "body", "issuer" ("none" for an unknown key)."""
        return _KIND_LABELS[self]


class Status(IntEnum):
    """``IIssuerRegistry.Status``: an entity's lifecycle; ``REVOKED`` is final."""

    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3

    @property
    def label(self) -> str:
        """The word the CLI and the API use: "active", "suspended", "revoked"."""
        return self.name.lower()


class TrustCode(IntEnum):
    """``IIssuerRegistry.TrustCode``: why a key is, or is not, trusted at a time."""

    TRUSTED = 0
    UNKNOWN_KEY = 1
    KEY_NOT_YET_VALID = 2
    KEY_EXPIRED = 3
    KEY_REVOKED = 4
    ENTITY_NOT_ACTIVE = 5
    ACCREDITOR_NOT_ACTIVE = 6

    @property
    def reason(self) -> str:
        """The code in words: "trusted", "unknown key", "key revoked"..."""
        return self.name.lower().replace("_", " ")

    @property
    def is_key_window(self) -> bool:
        """Whether the key itself is the reason: not yet valid, expired or revoked."""
        return self in (TrustCode.KEY_NOT_YET_VALID, TrustCode.KEY_EXPIRED,
                        TrustCode.KEY_REVOKED)

    @property
    def is_entity_status(self) -> bool:
        """Whether an entity of the chain is the reason: the key's own or a body above it."""
        return self in (TrustCode.ENTITY_NOT_ACTIVE, TrustCode.ACCREDITOR_NOT_ACTIVE)


class Scope(IntFlag):
    """The scope bits of an entity (``IssuerRegistry.SCOPE_*``): which kinds of credentials
    it may issue, and a body may accredit for."""

    FORMAL_DEGREE = 1
    FORMAL_NON_DEGREE = 2
    NON_FORMAL = 4

    # Not iterable over its bits: web3 maps every iterable call argument element by element
    # and rebuilds it with its type, which fails for a flag. Iterate the class, or use
    # scope_names(), instead.
    __iter__ = None  # type: ignore[assignment]

    @property
    def label(self) -> str:
        """The scope's name in credentials' ``learningScope``: "formal-degree"..."""
        return (self.name or "").lower().replace("_", "-")


_KIND_LABELS: Final = {Kind.NONE: "none", Kind.ACCREDITATION_BODY: "body",
                       Kind.TRUSTED_ISSUER: "issuer"}

#: Scope name (as in credentials, the CLI and the API) → bit.
SCOPES: Final[dict[str, Scope]] = {scope.label: scope for scope in Scope}
#: Every scope bit (``IssuerRegistry.SCOPE_ALL``).
ALL_SCOPES: Final = Scope.FORMAL_DEGREE | Scope.FORMAL_NON_DEGREE | Scope.NON_FORMAL


def scope_names(bits: int) -> list[str]:
    """The scope names set in ``bits``, in declaration order."""
    return [scope.label for scope in Scope if bits & scope]


def scope_of(names: Iterable[str]) -> Scope:
    """The scope bits ``names`` name (the inverse of :func:`scope_names`); ValueError for a
    name that is not one of :data:`SCOPES`."""
    bits = Scope(0)
    for name in names:
        if name not in SCOPES:
            raise ValueError(f"unknown scope {name!r}; use {', '.join(SCOPES)}")
        bits |= SCOPES[name]
    return bits


# ---------------------------------------------------------------------------- models
# Field names are the ABI's component names in snake_case (see field_name); the order of the
# fields here does not matter, decoding goes by name.


@dataclass(frozen=True, slots=True)
class Entity:
    """``IIssuerRegistry.Entity``, as ``entity(id)`` returns it."""

    id: int
    parent_id: int
    kind: Kind
    status: Status
    scope: Scope
    depth: int
    accredited_at: int
    status_since: int
    accredited_by: str
    did: str
    metadata_uri: str
    metadata_hash: bytes
    revoked_from: int  # back-dated revocation time (unix seconds), 0 when none


@dataclass(frozen=True, slots=True)
class StatusChange:
    """``IIssuerRegistry.StatusChange``: ``status`` holds from ``since`` on."""

    status: Status
    since: int


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """``IIssuerRegistry.KeyInfo``, as ``keyInfo(key)`` returns it; ``revoked_at`` is 0 when
    the key is not revoked."""

    key: str
    entity_id: int
    index: int
    valid_from: int
    valid_until: int
    revoked_at: int


@dataclass(frozen=True, slots=True)
class SigningKeyInfo:
    """``IIssuerRegistry.SigningKeyInfo``, as ``signingKeyInfo(keyId)`` returns it: a signing
    key (verification method) of an entity. For a key no entity holds, ``entity_id`` is 0 and
    ``public_key`` empty (see :attr:`known`); ``revoked_at`` is 0 when the key is not revoked.
    ``public_key`` is the Multikey's bytes (multicodec header and raw key), ``key_id`` their
    keccak256 (:func:`signing_key_id`)."""

    key_id: bytes
    entity_id: int
    index: int
    valid_from: int
    valid_until: int
    revoked_at: int
    public_key: bytes

    @property
    def known(self) -> bool:
        """Whether an entity holds the key (the registry answers all zero otherwise)."""
        return self.entity_id != 0

    def multikey(self) -> Multikey:
        """The public key as a :class:`~verifier.multikey.Multikey` (checked: a key the
        registry holds has the right form, but only this checks that it is a curve point);
        :class:`~verifier.errors.MultikeyError` for an unknown key or one that is not valid."""
        if not self.known:
            raise MultikeyError(f"signing key 0x{self.key_id.hex()} is not registered")
        return Multikey.from_multibase(encode_multibase(self.public_key))


def signing_key_id(key: Multikey) -> bytes:
    """The registry's id of a signing key: keccak256 of the Multikey's bytes (multicodec header
    and raw key), 32 bytes. Needs the chain extra (keccak), as every registry read does."""
    try:
        from eth_hash.auto import keccak  # noqa: PLC0415 - the chain extra is optional
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ChainReadError("signing key ids need the chain extra: "
                             "pip install 'microcred-anchor[chain]'") from exc
    return bytes(keccak(key.multicodec))


@dataclass(frozen=True, slots=True)
class Trust:
    """``IIssuerRegistry.Trust``, the answer of ``trustedAt(key, when)``."""

    trusted: bool
    code: TrustCode
    entity_id: int
    failing_entity_id: int  # the entity that was not active, for the entity-status codes
    key_index: int
    kind: Kind
    scope: Scope

    @property
    def reason(self) -> str:
        return self.code.reason


#: The largest uint40: the registry's "no end" for a window (a key's or a recognition's
#: ``validUntil``).
OPEN_UNTIL: Final = 2**40 - 1


def _single_kind(kind: int) -> Scope:
    """``kind`` as one scope bit; :class:`ValueError` otherwise (the registry's
    ``InvalidScope``)."""
    if type(kind) not in (int, Scope) or kind not in (1, 2, 4):
        raise ValueError(f"a kind is exactly one scope bit (1, 2 or 4), not {kind!r}")
    return Scope(kind)


@dataclass(frozen=True, slots=True)
class Recognition:
    """``IIssuerRegistry.Recognition``, as ``recognition(id)`` returns it: entity
    ``recogniser_id`` recognises the credentials of ``subject_id`` (and, for a body, of every
    entity below it) of the kinds in ``scope``, issued from ``valid_from`` until
    ``valid_until`` (exclusive; :data:`OPEN_UNTIL` when open) and before ``withdrawn_at``
    (0: not withdrawn)."""

    id: int
    recogniser_id: int
    subject_id: int
    scope: Scope
    valid_from: int
    valid_until: int
    recorded_at: int
    withdrawn_at: int

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at != 0

    def covers(self, kind: Scope, when: int) -> bool:
        """Whether this recognition covers a credential of ``kind`` (one scope bit, else
        :class:`ValueError`) issued at ``when``: the registry's rule, ``scope & kind``,
        ``valid_from <= when < valid_until`` and, when withdrawn, ``when < withdrawn_at``."""
        bit = _single_kind(kind)
        return (bool(self.scope & bit) and self.valid_from <= when < self.valid_until
                and (self.withdrawn_at == 0 or when < self.withdrawn_at))

    def to_dict(self) -> dict[str, Any]:
        """The recognition as JSON (camelCase): ``scope`` as names, ``validUntil`` null when
        open and ``withdrawnAt`` null when not withdrawn."""
        return {
            "id": self.id,
            "recogniserId": self.recogniser_id,
            "subjectId": self.subject_id,
            "scope": scope_names(self.scope),
            "validFrom": self.valid_from,
            "validUntil": None if self.valid_until == OPEN_UNTIL else self.valid_until,
            "recordedAt": self.recorded_at,
            "withdrawnAt": self.withdrawn_at or None,
        }


class RecognitionPath(StrEnum):
    """How a :class:`RecognitionAnswer` was reached, relative to the entities asked about."""

    SELF = "self"  # the entity asked about is the issuer: it recognises itself
    DIRECT = "direct"  # a recognition the recogniser recorded of the issuer itself
    # Recorded by a body above the recogniser (for its members), or of a body above the issuer.
    THROUGH_BODY = "through-body"
    NONE = "none"  # not recognised


@dataclass(frozen=True, slots=True)
class RecognitionAnswer:
    """``IIssuerRegistry.RecognitionAnswer``, the answer of ``recognisedAt``: the recognition
    that answers (``recognition_id`` 0 for an entity recognising itself), the entity that
    recorded it and the entity it names; all zero when not recognised."""

    recognised: bool
    recognition_id: int
    recogniser_id: int
    subject_id: int

    def path(self, asked_recogniser: int, asked_subject: int) -> RecognitionPath:
        """The answer's path for the question "does ``asked_recogniser`` recognise
        ``asked_subject``?": self, direct, through a body, or none."""
        if not self.recognised:
            return RecognitionPath.NONE
        if self.recognition_id == 0:
            return RecognitionPath.SELF
        if self.recogniser_id == asked_recogniser and self.subject_id == asked_subject:
            return RecognitionPath.DIRECT
        return RecognitionPath.THROUGH_BODY


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """The result of ``checkKeyNow(key)``: the lean form of :class:`Trust` for now."""

    code: TrustCode
    entity_id: int
    key_index: int
    kind: Kind


@dataclass(frozen=True, slots=True)
class AnchorInfo:
    """``ICredentialAnchor.AnchorInfo``, as ``anchorOf(key, root)`` returns it; all zero when
    the root is not anchored by that key's issuer."""

    anchored: bool
    entity_id: int
    key: str
    anchored_at: int
    block_number: int
    tree_size: int


@dataclass(frozen=True, slots=True)
class CredentialStatus(AnchorInfo):
    """``ICredentialAnchor.CredentialStatus``, the ``status`` that ``checkCredential`` returns:
    the batch's anchor (the struct begins with the fields of ``AnchorInfo``), the issuer's trust
    then, and the status at the list and index the leaf input binds."""

    index_in_tree: bool
    issuer_trusted_at_anchoring: bool
    trust_code: TrustCode
    status_list: int
    status_list_index: int
    revoked: bool
    suspended: bool


@dataclass(frozen=True, slots=True)
class StatusBits:
    """``ICredentialAnchor.StatusBits``, as ``statusOf(entityId, statusList, index)`` returns
    it."""

    revoked: bool
    suspended: bool


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """The result of ``checkCredential``: the credential's status and whether its inclusion
    proof holds against the anchored root and size."""

    status: CredentialStatus
    included: bool


@dataclass(frozen=True, slots=True)
class StatusWords:
    """The result of ``statusWords``: words of the revocation and suspension lists, entry
    ``256w + i`` of word ``w`` in bit ``255 - i`` (most significant first, as in the W3C
    bitstring)."""

    revoked: tuple[int, ...]
    suspended: tuple[int, ...]


# Where each model's fields are declared: (artifact, function) or (artifact, function, output).
# A function with one tuple output is decoded from that tuple's components (the struct), any
# other from its outputs; a named output from that output's components.
_SOURCES: Final[dict[type, tuple[str, ...]]] = {
    Entity: ("IssuerRegistry", "entity"),
    StatusChange: ("IssuerRegistry", "statusHistory"),
    KeyInfo: ("IssuerRegistry", "keyInfo"),
    SigningKeyInfo: ("IssuerRegistry", "signingKeyInfo"),
    Trust: ("IssuerRegistry", "trustedAt"),
    KeyCheck: ("IssuerRegistry", "checkKeyNow"),
    Recognition: ("IssuerRegistry", "recognition"),
    RecognitionAnswer: ("IssuerRegistry", "recognisedAt"),
    AnchorInfo: ("CredentialAnchor", "anchorOf"),
    CredentialStatus: ("CredentialAnchor", "checkCredential", "status"),
    StatusBits: ("CredentialAnchor", "statusOf"),
    CredentialCheck: ("CredentialAnchor", "checkCredential"),
    StatusWords: ("CredentialAnchor", "statusWords"),
}
MODELS: Final = tuple(_SOURCES)

# ---------------------------------------------------------------------------- decoding

_M = TypeVar("_M")
_Convert = Callable[[Any], Any]
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def field_name(component: str) -> str:
    """The model field of an ABI component name: ``parentId`` → ``parent_id``,
    ``metadataURI`` → ``metadata_uri``."""
    return _CAMEL.sub("_", component).lower()


def abi_components(model: type,
                   abi: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The ABI components (or outputs) that ``model`` is decoded from, from ``abi`` or else
    from the shipped artifact; :class:`ContractTypeError` if the function is missing."""
    source = _SOURCES.get(model)
    if source is None:
        raise ContractTypeError(f"{model.__name__} is not a contract type")
    artifact, function, *output = source
    entries = load_artifact(artifact).abi if abi is None else abi
    found = [entry for entry in entries
             if entry.get("type") == "function" and entry.get("name") == function]
    if len(found) != 1:
        raise ContractTypeError(f"{artifact}.{function}: {len(found)} functions of that name "
                                f"in the ABI, need exactly one to decode {model.__name__}")
    outputs: list[dict[str, Any]] = list(found[0].get("outputs") or [])
    if output:
        named = [entry for entry in outputs if entry.get("name") == output[0]]
        if len(named) != 1 or named[0].get("type") != "tuple":
            raise ContractTypeError(f"{artifact}.{function} has no struct output named "
                                    f"{output[0]!r} to decode {model.__name__}")
        return list(named[0].get("components") or [])
    if len(outputs) == 1 and str(outputs[0].get("type", "")).startswith("tuple"):
        return list(outputs[0].get("components") or [])
    return outputs


@dataclass(frozen=True, slots=True)
class _Plan:
    model: type
    size: int
    steps: tuple[tuple[int, _Convert], ...]  # (ABI position, conversion), in field order


def _converter(model: type, name: str, hint: Any, component: dict[str, Any]) -> _Convert:
    """How one ABI value becomes the field's value; :class:`ContractTypeError` if the ABI type
    does not fit the field's type."""
    abi_type = str(component.get("type", ""))
    internal = str(component.get("internalType", ""))
    where = f"{model.__name__}.{name}"

    def refuse() -> ContractTypeError:
        return ContractTypeError(f"{where} is {getattr(hint, '__name__', hint)}, but the ABI "
                                 f"declares {internal or abi_type}: update the model")

    if typing.get_origin(hint) is tuple:
        (item, _) = typing.get_args(hint)
        if abi_type.endswith("[]") and item is int and abi_type.startswith("uint"):
            return tuple
        raise refuse()
    if isinstance(hint, type) and hint in _SOURCES:
        if abi_type != "tuple":
            raise refuse()
        plan = _build(hint, list(component.get("components") or []))
        return lambda value: _apply(plan, value)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        # The ABI names the Solidity enum: its name must be the model's enum.
        if internal.rpartition(".")[2] != hint.__name__ or not internal.startswith("enum "):
            raise refuse()
        return _lookup(hint, {member.value: member for member in hint})
    if isinstance(hint, type) and issubclass(hint, IntFlag):
        if not abi_type.startswith("uint") or internal.startswith("enum "):
            raise refuse()
        every = sum(hint)  # the class iterates its members
        return _lookup(hint, {bits: hint(bits) for bits in range(every + 1)})
    expected = {bool: ("bool",), str: ("address", "string"), bytes: ("bytes",),
                int: ("uint", "int")}.get(hint)
    if expected is None or internal.startswith("enum ") or not abi_type.startswith(expected) \
            or abi_type.endswith("]"):
        raise refuse()
    return hint  # type: ignore[no-any-return]


def _build(model: type, components: list[dict[str, Any]]) -> _Plan:
    """The decoding plan of ``model`` for these ABI components (checked against its fields)."""
    hints = typing.get_type_hints(model)
    model_fields = [f.name for f in fields(model)]
    positions: dict[str, int] = {}
    for position, component in enumerate(components):
        name = field_name(str(component.get("name", "")))
        if not name or name in positions:
            raise ContractTypeError(f"{model.__name__}: ABI component {position} has no name "
                                    f"or a repeated one ({component.get('name')!r})")
        positions[name] = position
    missing = [name for name in model_fields if name not in positions]
    extra = [name for name in positions if name not in model_fields]
    if missing or extra:
        raise ContractTypeError(
            f"{model.__name__} does not match the contract's ABI: "
            + "; ".join(part for part in (
                f"fields not in the ABI: {', '.join(missing)}" if missing else "",
                f"ABI components not in the model: {', '.join(extra)}" if extra else "")
                if part) + ": update the model")
    steps = tuple((positions[name], _converter(model, name, hints[name],
                                               components[positions[name]]))
                  for name in model_fields)
    return _Plan(model, len(components), steps)


def _lookup(kind: type, members: dict[int, Any]) -> _Convert:
    """An enum or flag conversion as one dict lookup (calling an enum class costs several
    times more); a value the contracts do not have is refused."""
    find = members.get

    def convert(value: Any) -> Any:
        found = find(value)
        if found is None:
            raise ContractTypeError(f"{value!r} is not a valid {kind.__name__}")
        return found

    return convert


def _apply(plan: _Plan, value: Any) -> Any:
    if not isinstance(value, tuple | list) or len(value) != plan.size:
        raise ContractTypeError(
            f"{plan.model.__name__}: expected {plan.size} values in the ABI's order, got "
            + (f"{len(value)}" if isinstance(value, tuple | list) else type(value).__name__))
    try:
        return plan.model(*[convert(value[position]) for position, convert in plan.steps])
    except ContractTypeError as exc:
        raise ContractTypeError(f"{plan.model.__name__}: {exc}") from None


_plans: dict[type, _Plan] = {}
_plans_lock = threading.Lock()


def _plan(model: type) -> _Plan:
    plan = _plans.get(model)
    if plan is None:
        with _plans_lock:
            plan = _plans.get(model)
            if plan is None:
                plan = _plans[model] = _build(model, abi_components(model))
    return plan


def check_model(model: type, abi: Sequence[dict[str, Any]] | None = None) -> None:
    """Raise :class:`ContractTypeError` unless ``model``'s fields are exactly the components
    of its ABI (``abi``, or the shipped artifact's), by name, each of a fitting type."""
    _build(model, abi_components(model, abi))


def decode(model: type[_M], value: Any, *, abi: Sequence[dict[str, Any]] | None = None) -> _M:
    """``value`` (a struct or a multi-value result as web3 returns it: a tuple in the ABI's
    order) as ``model``, field by field by the ABI's component names. ``abi`` overrides the
    shipped artifact's ABI (and is then read on every call)."""
    plan = _plan(model) if abi is None else _build(model, abi_components(model, abi))
    return _apply(plan, value)  # type: ignore[no-any-return]


def decode_all(model: type[_M], values: Any) -> tuple[_M, ...]:
    """A list of structs (such as ``statusHistory``'s) as ``model``s."""
    plan = _plan(model)
    return tuple(_apply(plan, value) for value in values)


def read(model: type[_M], function: Any, *args: Any, **kwargs: Any) -> _M:
    """Call a web3 contract function (``function.call(*args, **kwargs)``) and decode its
    result as ``model``."""
    return decode(model, function.call(*args, **kwargs))
