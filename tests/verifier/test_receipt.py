"""Receipt format v2 and bundles: round trips, strict rejection, the committed JSON Schemas, and
the refusal of version 1 documents (from CredentialAnchor 1.x deployments) with a message."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from scripts import generate_schemas
from testkit.net import check_inclusion
from verifier.credential import credential_digest
from verifier.errors import ReceiptError, VerifierError
from verifier.receipt import Bundle, Receipt

ROOT = Path(__file__).parents[2]
VECTORS = Path(__file__).parent / "vectors" / "receipts"
VALID_TEXT = (VECTORS / "valid-receipt.json").read_text("utf-8")
VALID: dict[str, Any] = json.loads(VALID_TEXT)
BUNDLE_TEXT = (VECTORS / "valid-bundle.json").read_text("utf-8")
MALFORMED: list[dict[str, Any]] = json.loads((VECTORS / "malformed.json").read_text("utf-8"))[
    "cases"
]
RECEIPT_SCHEMA = json.loads((ROOT / "verifier/schemas/receipt-v2.schema.json").read_text("utf-8"))
BUNDLE_SCHEMA = json.loads((ROOT / "verifier/schemas/bundle-v2.schema.json").read_text("utf-8"))
# Constraints JSON Schema cannot state (cross-field), or states differently (3.0 is an integer
# in JSON Schema, but not to a strict parser).
NOT_IN_SCHEMA = {"path-too-short", "index-beyond-size", "index-as-float"}


def _mutate(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    *parents, last = case["path"].split(".")
    target: Any = doc
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if case["op"] == "remove":
        del target[key]
    else:
        target[key] = case["value"]
    return doc


def test_valid_receipt_parses_and_its_proof_verifies() -> None:
    receipt = Receipt.from_json(VALID_TEXT)
    assert receipt.version == 2
    assert receipt.tree_size == 4
    assert receipt.leaf_index == 3
    assert (receipt.status_list, receipt.status_list_index) == (2, 1234)
    assert receipt.anchor.chain_id == 31337
    assert receipt.anchor.block_number == 42
    # The status position is bound into the leaf, after the digest: big-endian uint32s.
    assert receipt.leaf_input == (receipt.salt + receipt.credential_digest
                                  + (2).to_bytes(4, "big") + (1234).to_bytes(4, "big"))
    check_inclusion(receipt)


def test_receipt_round_trips_and_serialises_canonically() -> None:
    receipt = Receipt.from_json(VALID_TEXT)
    assert receipt.to_dict() == VALID
    text = receipt.to_json()
    assert text.encode() == rfc8785.dumps(VALID)
    assert Receipt.from_json(text) == receipt
    assert Receipt.from_json(text.encode()) == receipt
    assert Receipt.from_dict(VALID) == receipt


def test_receipt_is_immutable() -> None:
    receipt = Receipt.from_json(VALID_TEXT)
    with pytest.raises(pydantic.ValidationError, match="Instance is frozen"):
        receipt.leaf_index = 0
    assert receipt == Receipt.from_json(VALID_TEXT)


@pytest.mark.parametrize("case", MALFORMED, ids=lambda c: c["name"])
def test_malformed_receipt_is_rejected_naming_the_field(case: dict[str, Any]) -> None:
    document = _mutate(VALID, case)
    with pytest.raises(ReceiptError) as caught:
        Receipt.from_json(json.dumps(document))
    assert caught.value.field == case["field"], str(caught.value)
    assert case["error"] in str(caught.value)
    assert str(caught.value).startswith(case["field"] + ":")
    assert isinstance(caught.value, VerifierError)
    if case["name"] not in NOT_IN_SCHEMA:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(document, RECEIPT_SCHEMA)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid JSON"),
        ("[]", "must be a JSON object"),
        ('{"version": 1, "version": 1}', "duplicate key 'version'"),
        (b"\xff", "not UTF-8"),
        ('{"format": "microcred-anchor-receipt", "version": 1, "v": NaN}', "NaN"),
    ],
)
def test_receipt_text_that_is_not_a_json_object_is_rejected(
    text: str | bytes, message: str
) -> None:
    with pytest.raises(ReceiptError, match=message) as caught:
        Receipt.from_json(text)
    assert caught.value.field == "receipt"


def test_valid_documents_satisfy_committed_schemas() -> None:
    jsonschema.validate(VALID, RECEIPT_SCHEMA)
    jsonschema.validate(json.loads(BUNDLE_TEXT), BUNDLE_SCHEMA)


def test_committed_schemas_are_generated_from_the_models() -> None:
    assert generate_schemas.main(["--check"]) == 0
    for name, schema in generate_schemas.schemas().items():
        committed = json.loads((ROOT / "verifier/schemas" / name).read_text("utf-8"))
        assert committed == schema


def test_bundle_round_trips_and_binds_credential_to_receipt() -> None:
    bundle = Bundle.from_json(BUNDLE_TEXT)
    assert credential_digest(bundle.credential) == bundle.receipt.credential_digest
    assert bundle.receipt == Receipt.from_json(VALID_TEXT)
    assert Bundle.from_json(bundle.to_json()) == bundle
    assert Bundle.create(bundle.credential, bundle.receipt) == bundle


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda b: b.update(version=3), "bundle.version", "unsupported version 3"),
        (lambda b: b.update(version=1), "bundle.version", "CredentialAnchor 1.x"),
        (lambda b: b.update(format="microcred-anchor-receipt"), "bundle.format", "expected"),
        (lambda b: b.pop("receipt"), "bundle.receipt", "required field is missing"),
        (lambda b: b.pop("credential"), "bundle.credential", "required field is missing"),
        (lambda b: b.update(extra=1), "bundle.extra", "unknown field"),
        (lambda b: b.update(credential=[1]), "bundle.credential", "expected a JSON object"),
        (lambda b: b["credential"].update(n=1e16), "bundle.credential",
         r"credential.n: number 1e\+16"),
        (lambda b: b["receipt"].update(version=3), "bundle.receipt.version", "unsupported"),
        (lambda b: b["receipt"].update(version=1), "bundle.receipt.version",
         "CredentialAnchor 1.x"),
        (lambda b: b["receipt"].pop("salt"), "bundle.receipt.salt", "missing"),
    ],
)
def test_malformed_bundle_is_rejected_naming_the_field(
    mutate: Any, field: str, message: str
) -> None:
    document = json.loads(BUNDLE_TEXT)
    mutate(document)
    with pytest.raises(ReceiptError, match=message) as caught:
        Bundle.from_json(json.dumps(document))
    assert caught.value.field == field


def _version_1(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as version 1 wrote it: no status position, version 1."""
    old = {k: v for k, v in document.items() if k not in ("statusList", "statusListIndex")}
    return {**old, "version": 1}


def test_a_version_1_receipt_or_bundle_is_refused_with_the_1x_message() -> None:
    """Documents from a CredentialAnchor 1.x deployment are refused, saying why and what reads
    them (verifier 0.1.x), not with a generic schema error."""
    bundle = json.loads(BUNDLE_TEXT)
    for parse, document, field in (
            (Receipt.from_json, _version_1(VALID), "receipt.version"),
            (Bundle.from_json, {**_version_1(bundle), "receipt": _version_1(bundle["receipt"])},
             "bundle.version")):
        with pytest.raises(ReceiptError) as caught:
            parse(json.dumps(document))
        assert caught.value.field == field
        message = str(caught.value)
        assert "CredentialAnchor 1.x" in message
        assert "microcred-anchor<0.2" in message


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_input_raises_only_receipt_errors(data: str | bytes) -> None:
    for parse in (Receipt.from_json, Bundle.from_json):
        with contextlib.suppress(ReceiptError):
            parse(data)


@given(st.sampled_from(sorted(VALID)), st.sampled_from([None, -1, "", "0x", [], {}, 1.5]))
def test_any_field_replaced_by_junk_raises_receipt_error(key: str, junk: Any) -> None:
    document = {**VALID, key: junk}
    with pytest.raises(ReceiptError) as caught:
        Receipt.from_json(json.dumps(document))
    assert caught.value.field.startswith("receipt")
