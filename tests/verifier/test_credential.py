"""Credential digests against RFC 8785 vectors kept as data files."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.credential import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    SALT_SIZE,
    canonicalize,
    credential_digest,
    leaf_input,
    new_salt,
    parse_credential,
)
from verifier.errors import CredentialError, VerifierError

VECTOR_DIR = Path(__file__).parent / "vectors" / "jcs"
DIGESTS: dict[str, str] = json.loads((VECTOR_DIR / "digests.json").read_text("utf-8"))["digests"]
REJECTED: list[dict[str, str]] = json.loads((VECTOR_DIR / "rejected.json").read_text("utf-8"))[
    "cases"
]
EXAMPLES = sorted((Path(__file__).parents[2] / "anchor_service" / "examples").glob("*.json"))


def test_every_vector_has_input_canonical_and_digest() -> None:
    names = {p.name.removesuffix(".input.json") for p in VECTOR_DIR.glob("*.input.json")}
    assert names == set(DIGESTS)
    assert len(names) >= 7


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_canonical_form_and_digest_match_vector(name: str) -> None:
    credential = parse_credential((VECTOR_DIR / f"{name}.input.json").read_bytes())
    expected = (VECTOR_DIR / f"{name}.canonical.json").read_bytes()
    assert canonicalize(credential) == expected
    assert credential_digest(credential).hex() == DIGESTS[name]
    assert hashlib.sha256(expected).hexdigest() == DIGESTS[name]


@pytest.mark.parametrize("case", REJECTED, ids=lambda c: c["name"])
def test_unrepresentable_input_is_rejected_with_clear_error(case: dict[str, str]) -> None:
    text: str | bytes = bytes.fromhex(case["inputHex"]) if "inputHex" in case else case["input"]
    with pytest.raises(CredentialError) as caught:
        parse_credential(text)
    assert case["error"] in str(caught.value)
    assert isinstance(caught.value, VerifierError)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": float("nan")}, "credential.a: nan is not a JSON number"),
        ({"a": [float("-inf")]}, r"credential.a\[0\]: -inf"),
        ({"a": 2**53}, "outside"),
        ({"a": 1e16}, "written by JCS as the integer 10000000000000000"),
        ({"a": -9007199254740992.0}, "as the integer -9007199254740992"),
        ({"a": {1: "x"}}, "key 1 is not a string"),
        ({"a": {1, 2}}, "set is not a JSON value"),
        ({"a": b"bytes"}, "bytes is not a JSON value"),
        ([1], "top level must be a JSON object, got array"),
        ("{}", "got string"),
    ],
)
def test_python_values_jcs_cannot_represent_are_rejected(value: Any, message: str) -> None:
    with pytest.raises(CredentialError, match=message):
        canonicalize(value)


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(MAX_DEPTH + 1):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(CredentialError, match="nested deeper"):
        credential_digest(deep)
    with pytest.raises(CredentialError, match="nested deeper than 128"):
        parse_credential("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("empty", [[], {}])
def test_an_empty_array_or_object_inside_an_array_counts_its_level(empty: Any) -> None:
    def nested(levels: int) -> dict[str, Any]:
        """An object whose deepest value, an empty array or object in an array, is at level
        ``levels`` (the credential itself is level 0)."""
        value: Any = [copy.deepcopy(empty)]
        for _ in range(levels - 2):
            value = [value]
        return {"a": value}

    canonicalize(nested(MAX_DEPTH))
    with pytest.raises(CredentialError, match="nested deeper than 128"):
        canonicalize(nested(MAX_DEPTH + 1))


def test_deep_nesting_is_rejected_even_with_a_raised_recursion_limit() -> None:
    # Some libraries raise the recursion limit; the json module's C recursion then overflows
    # the C stack (a segfault, found by this suite) unless depth is checked first.
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        for text in ('{"a":' * 50_000 + "1" + "}" * 50_000, "[" * 200_000):
            with pytest.raises(CredentialError, match="nested deeper"):
                parse_credential(text)
    finally:
        sys.setrecursionlimit(previous)
    # Brackets inside strings do not count.
    assert parse_credential('{"s": "' + "[" * 500 + '\\\" {"}')["s"].startswith("[[[")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_credentials_digest_is_independent_of_spelling(path: Path) -> None:
    credential = parse_credential(path.read_bytes())
    digest = credential_digest(credential)
    # Same credential, keys shuffled, compact and ASCII-escaped: same digest.
    shuffled = _shuffle_keys(credential, random.Random(path.name))  # noqa: S311
    respelled = json.dumps(shuffled, ensure_ascii=True, separators=(",", ":"))
    assert credential_digest(parse_credential(respelled)) == digest
    # Any change to content changes the digest.
    assert credential_digest({**credential, "id": "urn:other"}) != digest


def _shuffle_keys(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffle_keys(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffle_keys(v, rng) for v in value]
    return value


# Doubles that JCS writes as a bare integer beyond +-(2**53 - 1): the only finite numbers the
# library refuses (text() draws no unpaired surrogates, the other refusal).
HUGE_INTEGRAL = st.floats(min_value=float(2**53), max_value=1e21, exclude_max=True)


def _representable(number: float) -> bool:
    return not float(2**53) <= abs(number) < 1e21


# Every value here is one the library must accept: the properties below cannot pass by
# refusing their input.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False).filter(_representable) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_form_is_a_fixed_point(credential: dict[str, Any]) -> None:
    canonical = canonicalize(credential)
    reparsed = parse_credential(canonical)
    assert canonicalize(reparsed) == canonical
    assert credential_digest(reparsed) == hashlib.sha256(canonical).digest()


def test_salts_are_fresh_and_leaf_input_is_salt_digest_then_status_position() -> None:
    salts = {new_salt() for _ in range(1000)}
    assert len(salts) == 1000
    assert all(len(s) == SALT_SIZE >= 16 for s in salts)
    digest = credential_digest({"a": 1})
    salt = new_salt()
    # The status list and index close the leaf, as big-endian uint32s: the 8 bytes
    # CredentialAnchor.checkCredential reads the status position from.
    assert leaf_input(salt, digest, 7, 131_071) == (salt + digest + bytes.fromhex("00000007")
                                                    + bytes.fromhex("0001ffff"))
    assert leaf_input(salt, digest, 2**32 - 1, 0)[-8:] == bytes.fromhex("ffffffff00000000")
    with pytest.raises(CredentialError, match=r"^salt must be 16\.\.64 bytes$"):
        leaf_input(b"short", digest, 0, 0)
    with pytest.raises(CredentialError, match=r"^digest must be 32 bytes$"):
        leaf_input(salt, digest[:31], 0, 0)
    for status_list, index in ((-1, 0), (2**32, 0), (0, -1), (0, 131_072), (True, 0), (0, 1.0)):
        with pytest.raises(CredentialError, match="status list"):
            leaf_input(salt, digest, status_list, index)  # type: ignore[arg-type]
    with pytest.raises(CredentialError, match=r"^salt size must be 16\.\.64 bytes$"):
        new_salt(8)


@settings(max_examples=1000)
@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_fast_path_writes_exactly_what_the_reference_encoder_writes(
    credential: dict[str, Any],
) -> None:
    assert canonicalize(credential) == rfc8785.dumps(credential)


@given(st.dictionaries(st.text(), json_values, max_size=6), st.text(), HUGE_INTEGRAL,
       st.booleans())
def test_a_number_jcs_writes_as_a_huge_integer_is_refused_and_nothing_else(
    credential: dict[str, Any], key: str, number: float, negative: bool,
) -> None:
    """The refusal the properties above exclude, on its own: the reference encoder writes the
    number as an integer outside the exact range, the library refuses it naming why, and the
    same credential with a representable number in its place is accepted."""
    number = -number if negative else number
    assert abs(int(rfc8785.dumps(number))) > MAX_SAFE_INTEGER
    with pytest.raises(CredentialError, match=r"is written by JCS as the integer -?\d+, outside"):
        canonicalize({**credential, key: number})
    fine = {**credential, key: 2.5}
    assert canonicalize(fine) == rfc8785.dumps(fine)


@pytest.mark.parametrize(
    "value",
    [1.0, -0.0, 0.0, 2.5, 1e-7, 0.000001, 0.0001, 123456789012.25, 1e21, 1e22, 5e-324,
     "\x00\x1f\x7f\u2028\u2029\"\\/", "😀", {"é": 1, "e": 2, "\ufb33": 3, "\U0001F600": 4},
     [1, [2, [3]]], True, None, 9007199254740991],
)
def test_fast_path_edge_cases_match_the_reference_encoder(value: Any) -> None:
    credential = {"v": value, "a": [value], "z": {"k": value}}
    assert canonicalize(credential) == rfc8785.dumps(credential)
