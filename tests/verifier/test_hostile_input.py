"""Hostile JSON against the verifier library: the nesting check agrees with a plain scanner on
any text, brackets inside strings never count, huge integers are clean errors, and one nesting
limit is counted on the credential itself whatever wraps it."""

from __future__ import annotations

import json
import re
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from verifier.credential import (
    MAX_DEPTH,
    _check_nesting,
    canonicalize,
    credential_digest,
    leaf_input,
    parse_credential,
    parse_json_object,
)
from verifier.errors import CredentialError, ReceiptError, TrustConfigError
from verifier.merkle import MerkleTree
from verifier.receipt import Bundle, Receipt
from verifier.trust import TrustConfig
from verifier.verify import VerificationReport, verify

VECTORS = Path(__file__).parent / "vectors" / "receipts"
BUNDLE: dict[str, Any] = json.loads((VECTORS / "valid-bundle.json").read_text("utf-8"))


def reference_depth(text: str) -> int:
    """The deepest bracket nesting outside strings, one character at a time.

    A backslash escapes a following quote or backslash (inside a string that is JSON's rule;
    outside one the text is not JSON anyway)."""
    depth = deepest = 0
    in_string = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        elif not in_string and char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif not in_string and char in "]}":
            depth -= 1
        i += 1
    return deepest


def _rejected(text: str | bytes, wrapper_depth: int = 0) -> bool:
    try:
        _check_nesting(text, "doc", wrapper_depth)
    except CredentialError as exc:
        return "nested deeper than 128 levels" in str(exc)
    return False


# Texts made of the characters that matter, in runs long enough to nest past the limit.
_PIECES = st.sampled_from(['"', "\\", "\\\\", '\\"', "[", "]", "{", "}", "a", ",", "é",
                           "[" * 40, "{" * 40, "]" * 40, '"' + "[" * 60 + '"', "\\" * 7])


@given(st.lists(_PIECES, max_size=60).map("".join), st.integers(0, 3))
@example('{"x": "' + '\\"[{' * 200, 0)  # brackets inside an unterminated string
@example("[" * (MAX_DEPTH + 1) + '"\\\\"' + "]", 0)  # an escaped backslash ends the string
@example("[" * (MAX_DEPTH + 2) + '"\\\\\\"[' + "]", 0)
@example("[" * (MAX_DEPTH + 3), 2)
def test_nesting_check_agrees_with_a_plain_scanner(text: str, wrapper: int) -> None:
    expected = reference_depth(text) > MAX_DEPTH + 1 + wrapper
    assert _rejected(text, wrapper) is expected
    assert _rejected(text.encode("utf-8"), wrapper) is expected  # bytes: the same answer


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10)
    | st.text(alphabet='[]{}"\\ab', max_size=12),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=5), inner, max_size=3),
    max_leaves=30))
def test_nesting_check_on_real_json_counts_only_structure(value: Any) -> None:
    # Strings full of brackets, quotes and backslashes, wrapped until close to the limit.
    text = "[" * (MAX_DEPTH - 2) + json.dumps(value) + "]" * (MAX_DEPTH - 2)
    assert _rejected(text) is (reference_depth(text) > MAX_DEPTH + 1)


def test_the_48_kb_adversarial_document_is_rejected_for_what_it_is() -> None:
    # Many escaped quotes among brackets, all inside one string that never ends: the
    # brackets do not nest anything, the document is simply not JSON.
    text = '{"x": "' + '\\"[{' * 12_000
    assert len(text) > 48_000
    with pytest.raises(CredentialError, match=r"invalid JSON.*Unterminated string"):
        parse_json_object(text)
    with pytest.raises(CredentialError, match="nested deeper than 128 levels"):
        parse_json_object("[" * 48_000)


def test_deep_nesting_after_an_escaped_backslash_is_still_counted() -> None:
    # '"\\\\"' is a string holding one backslash: what follows is outside again.
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        with pytest.raises(CredentialError, match="nested deeper"):
            parse_credential('{"s": "\\\\", "d": ' + "[" * 100_000 + "]" * 100_000 + "}")
    finally:
        sys.setrecursionlimit(previous)


def nested(depth: int) -> dict[str, Any]:
    """A credential whose deepest value (an empty object) sits ``depth`` levels down."""
    credential: dict[str, Any] = {}
    for _ in range(depth - 1):
        credential = {"d": credential}
    return {"id": f"urn:deep:{depth}", "d": credential}


def bundle_text(credential: dict[str, Any]) -> str:
    return json.dumps({**BUNDLE, "credential": credential})


def test_one_nesting_limit_counted_on_the_credential_on_every_library_path() -> None:
    deepest, too_deep = nested(MAX_DEPTH), nested(MAX_DEPTH + 1)
    canonicalize(deepest)
    assert parse_credential(json.dumps(deepest)) == deepest
    assert Bundle.from_json(bundle_text(deepest)).credential == deepest
    assert parse_json_object(json.dumps({"credentials": [deepest]}), "request body",
                             wrapper_depth=2)["credentials"] == [deepest]
    with pytest.raises(CredentialError, match="nested deeper than 128"):
        canonicalize(too_deep)
    with pytest.raises(CredentialError, match="nested deeper than 128"):
        parse_credential(json.dumps(too_deep))
    with pytest.raises(ReceiptError, match="nested deeper than 128"):
        Bundle.from_json(bundle_text(too_deep))


HUGE = "9" * 5000


@pytest.mark.parametrize("literal", [HUGE, "-" + HUGE, "1" + "0" * 16, "12345678901234567890"])
def test_huge_integers_are_clean_errors_on_every_parse_path(
    literal: str, tmp_path: Path
) -> None:
    with pytest.raises(CredentialError, match=r"integer .*digits\) is outside \+-\(2\*\*53"):
        parse_credential('{"n": ' + literal + "}")
    document = json.dumps({**BUNDLE, "credential": {"n": 0}}).replace(
        '"n": 0', '"n": ' + literal)
    with pytest.raises(ReceiptError, match="bundle: integer"):
        Bundle.from_json(document)
    receipt = json.dumps(BUNDLE["receipt"]).replace(
        f'"leafIndex": {BUNDLE["receipt"]["leafIndex"]}', '"leafIndex": ' + literal)
    with pytest.raises(ReceiptError, match="receipt: integer"):
        Receipt.from_json(receipt)
    trust = tmp_path / "trust.json"
    trust.write_text('{"deployments": [], "minConfirmations": ' + literal + "}")
    with pytest.raises(TrustConfigError, match="integer"):
        TrustConfig.load(trust)


def test_the_largest_safe_integers_still_parse() -> None:
    assert parse_credential('{"a": 9007199254740991, "b": -9007199254740991}') == {
        "a": 2**53 - 1, "b": -(2**53 - 1)}
    with pytest.raises(CredentialError, match=r"credential\.a: integer 9007199254740992"):
        parse_credential('{"a": 9007199254740992}')  # 16 digits: the path is named


def _long_keyed(depth: int, key_size: int, leaves: list[Any]) -> dict[str, Any]:
    """``depth`` objects nested under keys of ``key_size`` characters, ``leaves`` at the
    bottom: the shape where naming every value's path costs depth * key_size bytes each."""
    document: dict[str, Any] = {"leaves": leaves}
    for level in range(depth):
        document = {f"{level:04d}" + "k" * key_size: document}
    return document


def _peak_bytes(work: Any) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_locating_an_unrepresentable_value_holds_memory_proportional_to_the_document() -> None:
    # ~100 KB of keys above 2,000 values and one float JCS cannot write exactly: naming a path
    # per value would hold 2,000 copies of those 100 KB (200 MB).
    credential = _long_keyed(100, 1000, [[] for _ in range(2000)] + [1e16])
    size = len(json.dumps(credential))
    refused: list[str] = []

    def attempt() -> None:
        try:
            canonicalize(credential)
        except CredentialError as exc:
            refused.append(str(exc))

    peak = _peak_bytes(attempt)
    assert peak < 20 * size, (peak, size)
    (message,) = refused
    assert re.search(r"\.\.\..*leaves\[2000\]: number 1e\+16", message), message
    assert len(message) < 400  # the path is shortened in the middle


def test_the_scope_rule_holds_memory_proportional_to_the_credential() -> None:
    """A credential that names a learningScope is walked for stray ones: the walk must not
    name every value's path (which costs the depth's keys for each value)."""
    credential = {"learningScope": "non-formal",
                  **_long_keyed(100, 1000, [[] for _ in range(2000)])}
    size = len(json.dumps(credential))
    digest = credential_digest(credential)
    position = BUNDLE["receipt"]["statusList"], BUNDLE["receipt"]["statusListIndex"]
    tree = MerkleTree([leaf_input(bytes(16), digest, *position)])
    receipt = Receipt.model_validate({
        **{k: v for k, v in BUNDLE["receipt"].items() if k != "auditPath"}, "auditPath": [],
        "salt": "0x" + bytes(16).hex(), "credentialDigest": "0x" + digest.hex(),
        "treeSize": 1, "leafIndex": 0, "root": "0x" + tree.root.hex()})
    trust = TrustConfig.model_validate({"deployments": [{
        "chainId": receipt.anchor.chain_id, "anchor": "0x" + receipt.anchor.contract.hex(),
        "registry": "0x" + "11" * 20}], "requireSignature": False})  # about the scope walk
    reports: list[VerificationReport] = []
    peak = _peak_bytes(lambda: reports.append(verify(credential, receipt, trust=trust,
                                                      reader=None)))
    assert reports[0].offline_checks_passed, reports[0].to_dict()
    assert peak < 20 * size, (peak, size)
