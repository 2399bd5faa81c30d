"""Receipt format v2 and the credential bundle a learner keeps.

A receipt holds everything a verifier needs apart from the chain: the algorithms, the
credential's digest and salt, its status list and index (bound into the Merkle leaf), its place
in the batch's Merkle tree with the audit path and root, and where the root was anchored (chain
id, contract, transaction, block, anchoring key). The JSON Schemas are
``verifier/schemas/receipt-v2.schema.json`` and ``bundle-v2.schema.json``, generated from these
models by ``scripts/generate_schemas.py``.

Version 1 documents come from CredentialAnchor 1.x deployments, which kept status per batch;
this verifier refuses them with a message that says so (verifier 0.1.x reads them).

Parsing is strict: unknown or missing fields, wrong types, upper-case or malformed hex, wrong
lengths, duplicate JSON keys, an unknown format or version, and a leaf index or audit path that
does not fit the tree size are all rejected with a :class:`~verifier.errors.ReceiptError`
whose ``field`` names the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeVar

import rfc8785
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from verifier.contract_types import STATUS_LIST_SIZE
from verifier.credential import (
    DIGEST_SIZE,
    MAX_SAFE_INTEGER,
    MAX_SALT_SIZE,
    MIN_SALT_SIZE,
    canonicalize,
    leaf_input,
    parse_json_object,
)
from verifier.errors import (
    CredentialError,
    ReceiptError,
    UnreadableDocumentError,
    UnreadableJSONError,
)
from verifier.merkle import HASH_SIZE, inclusion_proof_length

__all__ = [
    "BUNDLE_FORMAT",
    "RECEIPT_FORMAT",
    "Anchor",
    "Bundle",
    "Receipt",
    "document_kind",
]

RECEIPT_FORMAT: Final = "microcred-anchor-receipt"
BUNDLE_FORMAT: Final = "microcred-anchor-bundle"
SUPPORTED_VERSIONS: Final = (2,)
#: Why a version 1 document is refused, and what reads it.
_VERSION_1: Final = ("version 1 comes from a CredentialAnchor 1.x deployment, whose per-batch "
                     "status this verifier does not read; verify it with verifier 0.1.x "
                     "(pip install 'microcred-anchor<0.2')")


def document_kind(document: Mapping[str, Any]) -> str | None:
    """``"bundle"`` or ``"receipt"`` when a JSON object is one of this project's documents
    (by its ``format`` marker, well formed or not), else None (a credential, for example)."""
    marker = document.get("format")
    if not isinstance(marker, str):
        return None
    return {BUNDLE_FORMAT: "bundle", RECEIPT_FORMAT: "receipt"}.get(marker)
_M = TypeVar("_M", bound=BaseModel)


def _hex_field(
    min_size: int, max_size: int | None = None
) -> tuple[BeforeValidator, WithJsonSchema]:
    """Validator and schema of a bytes field written in JSON as ``0x`` + lower-case hex of a
    fixed (or bounded) length. Lower case only, so that each value has exactly one spelling."""
    max_size = min_size if max_size is None else max_size
    if min_size == max_size:
        regex = f"^0x[0-9a-f]{{{2 * min_size}}}$"
        wanted = f"0x followed by {2 * min_size} lower-case hex digits ({min_size} bytes)"
    else:
        regex = f"^0x(?:[0-9a-f]{{2}}){{{min_size},{max_size}}}$"
        wanted = f"0x followed by {min_size} to {max_size} bytes of lower-case hex"
    compiled = re.compile(regex)

    def parse(value: object) -> bytes:
        if isinstance(value, bytes):  # built in Python
            if not min_size <= len(value) <= max_size:
                raise ValueError(f"expected {wanted}, got {len(value)} bytes")
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected a string: {wanted}")  # pydantic reports ValueErrors
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {wanted}, got {_shorten(value)!r}")
        return bytes.fromhex(value[2:])

    return BeforeValidator(parse), WithJsonSchema({"type": "string", "pattern": regex,
                                                   "description": wanted})


_AS_HEX = PlainSerializer(lambda b: "0x" + b.hex(), return_type=str)
_HASH = _hex_field(HASH_SIZE)
_DIGEST = _hex_field(DIGEST_SIZE)
_SALT = _hex_field(MIN_SALT_SIZE, MAX_SALT_SIZE)
_ADDRESS = _hex_field(20)
Hash32 = Annotated[bytes, _HASH[0], _AS_HEX, _HASH[1]]
Digest = Annotated[bytes, _DIGEST[0], _AS_HEX, _DIGEST[1]]
Salt = Annotated[bytes, _SALT[0], _AS_HEX, _SALT[1]]
Address = Annotated[bytes, _ADDRESS[0], _AS_HEX, _ADDRESS[1]]
SafeUInt = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Anchor(BaseModel):
    """Where and by whom a batch root was anchored."""

    model_config = _STRICT

    chain_id: Annotated[int, Field(alias="chainId", ge=1, le=MAX_SAFE_INTEGER)]
    contract: Annotated[Address, Field(description="The CredentialAnchor contract address.")]
    transaction_hash: Annotated[Hash32, Field(alias="transactionHash")]
    block_number: Annotated[SafeUInt, Field(alias="blockNumber")]
    block_hash: Annotated[Hash32, Field(alias="blockHash")]
    anchoring_key: Annotated[
        Address, Field(alias="anchoringKey", description="Address of the anchoring key")
    ]


class Receipt(BaseModel):
    """Proof that one credential belongs to an anchored batch (format v2)."""

    model_config = ConfigDict(
        **_STRICT,
        title="Receipt",
        json_schema_extra={
            "$comment": "Also required: leafIndex < treeSize, and auditPath has exactly the "
            "RFC 9162 path length for (leafIndex, treeSize)."
        },
    )

    format: Literal["microcred-anchor-receipt"]
    version: Literal[2]
    hash_algorithm: Annotated[Literal["sha-256"], Field(alias="hashAlgorithm")]
    canonicalization: Literal["RFC8785"]
    merkle_tree: Annotated[Literal["RFC9162"], Field(alias="merkleTree")]
    credential_digest: Annotated[Digest, Field(alias="credentialDigest")]
    salt: Salt
    status_list: Annotated[int, Field(
        alias="statusList", ge=0, le=2**32 - 1,
        description="The issuer's status list number that holds the credential's status.")]
    status_list_index: Annotated[int, Field(
        alias="statusListIndex", ge=0, le=STATUS_LIST_SIZE - 1,
        description="The credential's index in that list (revocation and suspension alike).")]
    tree_size: Annotated[int, Field(alias="treeSize", ge=1, le=MAX_SAFE_INTEGER)]
    leaf_index: Annotated[SafeUInt, Field(alias="leafIndex")]
    # Not strict, only so that a JSON array may become a tuple: each item is still checked
    # strictly by the hex validator.
    audit_path: Annotated[tuple[Hash32, ...], Field(alias="auditPath", max_length=64, strict=False)]
    root: Hash32
    anchor: Anchor

    # Fields are validated in the order declared, so treeSize is known here when valid.
    @field_validator("leaf_index")
    @classmethod
    def _index_in_tree(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("tree_size")
        if size is not None and value >= size:
            raise ValueError(f"leaf index {value} is not below treeSize {size}")
        return value

    @field_validator("audit_path")
    @classmethod
    def _path_fits_tree(cls, value: tuple[bytes, ...], info: ValidationInfo) -> tuple[bytes, ...]:
        size, index = info.data.get("tree_size"), info.data.get("leaf_index")
        if size is not None and index is not None:
            expected = inclusion_proof_length(index, size)
            if len(value) != expected:
                raise ValueError(
                    f"has {len(value)} hashes; leaf {index} of a {size}-leaf tree needs "
                    f"exactly {expected}"
                )
        return value

    @property
    def leaf_input(self) -> bytes:
        """The Merkle leaf input: ``salt || credentialDigest || statusList ||
        statusListIndex`` (:func:`verifier.credential.leaf_input`)."""
        return leaf_input(self.salt, self.credential_digest, self.status_list,
                          self.status_list_index)

    @classmethod
    def create(
        cls,
        *,
        credential_digest: bytes,
        salt: bytes,
        status_list: int,
        status_list_index: int,
        leaf_index: int,
        tree_size: int,
        audit_path: list[bytes],
        root: bytes,
        anchor: Anchor,
    ) -> Receipt:
        """Build a v2 receipt, validating it exactly as parsing would."""
        return _validated(cls, {
            "format": RECEIPT_FORMAT,
            "version": 2,
            "hashAlgorithm": "sha-256",
            "canonicalization": "RFC8785",
            "merkleTree": "RFC9162",
            "credentialDigest": credential_digest,
            "salt": salt,
            "statusList": status_list,
            "statusListIndex": status_list_index,
            "leafIndex": leaf_index,
            "treeSize": tree_size,
            "auditPath": tuple(audit_path),
            "root": root,
            "anchor": anchor,
        }, "receipt")

    @classmethod
    def from_json(cls, text: str | bytes) -> Receipt:
        """Parse a receipt from JSON text, strictly."""
        return cls.from_dict(_parse_document(text, "receipt"))

    @classmethod
    def from_dict(cls, data: object) -> Receipt:
        """Validate an already-parsed JSON object as a receipt, strictly."""
        _check_header(data, RECEIPT_FORMAT, "receipt")
        return _validated(cls, data, "receipt")

    def to_dict(self) -> dict[str, Any]:
        """The receipt as JSON-ready data (camelCase keys, hex strings)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        """The receipt as canonical (RFC 8785) JSON text: one spelling per receipt."""
        return rfc8785.dumps(self.to_dict()).decode("utf-8")


class Bundle(BaseModel):
    """A credential and its receipt in one file: what a learner keeps in their wallet."""

    model_config = ConfigDict(**_STRICT, title="Bundle")

    format: Literal["microcred-anchor-bundle"]
    version: Literal[2]
    credential: dict[str, Any] = Field(description="The credential, any JSON object.")
    receipt: Receipt

    @field_validator("credential")
    @classmethod
    def _canonicalisable(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            canonicalize(value)
        except CredentialError as exc:
            raise ValueError(str(exc).removeprefix("credential: ")) from None
        return value

    @classmethod
    def create(cls, credential: dict[str, Any], receipt: Receipt) -> Bundle:
        """Bundle a credential with its receipt."""
        data = {"format": BUNDLE_FORMAT, "version": 2, "credential": credential,
                "receipt": receipt}
        return _validated(cls, data, "bundle")

    @classmethod
    def from_json(cls, text: str | bytes) -> Bundle:
        """Parse a bundle from JSON text, strictly."""
        # The credential sits one level inside the bundle: its own nesting is what is bounded.
        data = _parse_document(text, "bundle", wrapper_depth=1)
        _check_header(data, BUNDLE_FORMAT, "bundle")
        receipt = data.get("receipt")
        if isinstance(receipt, dict):
            _check_header(receipt, RECEIPT_FORMAT, "bundle.receipt")
        return _validated(cls, data, "bundle")

    def to_dict(self) -> dict[str, Any]:
        """The bundle as JSON-ready data."""
        return {"format": self.format, "version": self.version,
                "credential": self.credential, "receipt": self.receipt.to_dict()}

    def to_json(self) -> str:
        """The bundle as canonical (RFC 8785) JSON text."""
        return rfc8785.dumps(self.to_dict()).decode("utf-8")


def _parse_document(text: str | bytes, what: str, *, wrapper_depth: int = 0) -> dict[str, Any]:
    try:
        return parse_json_object(text, what, wrapper_depth=wrapper_depth)
    except UnreadableJSONError as exc:
        raise UnreadableDocumentError(what, str(exc).removeprefix(f"{what}: ")) from None
    except CredentialError as exc:
        raise ReceiptError(what, str(exc).removeprefix(f"{what}: ")) from None


def _check_header(data: object, expected_format: str, where: str) -> None:
    """Reject a foreign format or an unknown version before anything else is looked at."""
    if not isinstance(data, dict):
        raise ReceiptError(where, "must be a JSON object")
    fmt = data.get("format")
    if fmt != expected_format:
        raise ReceiptError(f"{where}.format", f"expected {expected_format!r}, got {fmt!r}")
    version = data.get("version")
    if version == 1 and type(version) is int:
        raise ReceiptError(f"{where}.version", _VERSION_1)
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise ReceiptError(
            f"{where}.version",
            f"unsupported version {version!r}; this verifier reads version "
            + ", ".join(map(str, SUPPORTED_VERSIONS)),
        )


def _validated(model: type[_M], data: object, where: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _receipt_error(exc, where) from None


def _receipt_error(exc: ValidationError, where: str) -> ReceiptError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = ".".join([where, *(str(part) for part in first["loc"])])
    message = first["msg"].removeprefix("Value error, ")
    message = _FRIENDLY_MESSAGES.get(first["type"], message)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ReceiptError(field, message)


_FRIENDLY_MESSAGES: Final = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
    "tuple_type": "expected a JSON array",
    "dict_type": "expected a JSON object",
    "model_type": "expected a JSON object",
    "int_type": "expected an integer",
    "string_type": "expected a string",
}


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
