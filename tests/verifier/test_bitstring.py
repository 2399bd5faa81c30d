"""verifier.bitstring: the Bitstring Status List encoding (GZIP, multibase base64url with the
``u`` prefix, entry 0 the most significant bit of byte 0), its bounded and strict decoder, and
this project's list URLs and status entries."""

from __future__ import annotations

import base64
import gzip

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.bitstring import (
    MAX_LIST_BYTES,
    bit,
    decode_list,
    encode_list,
    parse_status_list_url,
    status_entries,
    status_list_url,
    words_to_bitstring,
)
from verifier.contract_types import STATUS_LIST_SIZE, StatusPurpose
from verifier.errors import StatusListError, VerifierError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@given(st.binary(max_size=2048))
def test_encoding_round_trips_and_always_has_the_prefix(bits: bytes) -> None:
    encoded = encode_list(bits)
    assert encoded.startswith("u")
    assert "=" not in encoded
    assert decode_list(encoded) == bits
    # Equal lists encode equally (no time or name in the GZIP header).
    assert encode_list(bytes(bits)) == encoded


def test_a_list_without_the_multibase_prefix_is_read_on_input() -> None:
    bits = bytes(STATUS_LIST_SIZE // 8)
    assert decode_list(_b64(gzip.compress(bits))) == bits


@pytest.mark.parametrize(("encoded", "message"), [
    (123, "must be a string"),
    ("u" + "A" * 5, "not base64url"),  # 5 characters: no whole byte
    ("uH4sI+AAA", "not base64url"),  # '+' is base64, not base64url
    ("uH4sI=AA", "not base64url"),
    (_b64(b"not gzip at all"), "not GZIP"),
    ("u" + _b64(gzip.compress(bytes(100))[:-6]), "truncated"),
    ("u" + _b64(gzip.compress(bytes(100)) + b"junk"), "after its GZIP stream"),
    ("u" + _b64(b"\x1f\x8b" + bytes(30)), "not valid GZIP"),
])
def test_malformed_lists_are_refused_with_a_reason(encoded: object, message: str) -> None:
    with pytest.raises(StatusListError, match=message) as caught:
        decode_list(encoded)
    assert isinstance(caught.value, VerifierError)


def test_decompression_is_bounded() -> None:
    """A few KB that expand beyond MAX_LIST_BYTES are refused, without expanding them all."""
    bomb = gzip.compress(bytes(MAX_LIST_BYTES + 1), compresslevel=9)
    assert len(bomb) < 40_000
    with pytest.raises(StatusListError, match="decompresses to more than"):
        decode_list("u" + _b64(bomb))
    assert len(decode_list("u" + _b64(gzip.compress(bytes(MAX_LIST_BYTES))))) == MAX_LIST_BYTES


def test_entry_0_is_the_most_significant_bit_of_byte_0() -> None:
    bits = bytes([0b1000_0001, 0b0100_0000])
    assert [i for i in range(16) if bit(bits, i)] == [0, 7, 9]
    for index in (-1, 16):
        with pytest.raises(StatusListError, match="outside a list of 16 entries"):
            bit(bits, index)


def test_words_are_the_bitstring_in_big_endian_order() -> None:
    """CredentialAnchor keeps entry i in bit 255 - i % 256 of word i / 256: the words'
    big-endian bytes are the bitstring."""
    words = [1 << 255 | 1, 1 << 254]  # entries 0 and 255, then 257
    bits = words_to_bitstring(words)
    assert len(bits) == 64
    assert [i for i in range(512) if bit(bits, i)] == [0, 255, 257]


def test_list_urls_are_on_the_did_web_host() -> None:
    url = status_list_url("did:web:uni-a.example", "uni a", 3, StatusPurpose.SUSPENSION)
    assert url == "https://uni-a.example/issuers/uni%20a/status-lists/3/suspension"
    assert status_list_url("did:web:localhost%3A8080:issuers:acme", "acme", 0, "revocation") \
        == "https://localhost:8080/issuers/acme/status-lists/0/revocation"
    assert parse_status_list_url(url) == (3, StatusPurpose.SUSPENSION)
    for bad in (("did:key:z6Mk", "a", 0, "revocation"),
                ("did:web:x.example", "a", -1, "revocation"),
                ("did:web:x.example", "a", 2**32, "revocation")):
        with pytest.raises(StatusListError):
            status_list_url(*bad)
    with pytest.raises(ValueError, match="refresh"):
        status_list_url("did:web:x.example", "a", 0, "refresh")


@pytest.mark.parametrize("url", [
    "https://x.example/issuers/a/status-lists/01/revocation",  # a leading zero
    "https://x.example/issuers/a/status-lists/4294967296/revocation",
    "https://x.example/issuers/a/status-lists/-1/revocation",
    "https://x.example/issuers/a/status-lists/0/refresh",
    "https://x.example/issuers/a/lists/0/revocation",
    "ftp://x.example/issuers/a/status-lists/0/revocation",
    "https://x.example/status-lists/\u0661/revocation",  # an Arabic-Indic digit
    "not a url",
])
def test_other_urls_are_not_status_list_urls(url: str) -> None:
    with pytest.raises(StatusListError):
        parse_status_list_url(url)


def test_status_entries_are_the_two_purposes_at_one_index() -> None:
    urls = {purpose: status_list_url("did:web:x.example", "a", 1, purpose)
            for purpose in StatusPurpose}
    revocation, suspension = status_entries(urls, 131_071)
    assert revocation == {
        "id": "https://x.example/issuers/a/status-lists/1/revocation#131071",
        "type": "BitstringStatusListEntry", "statusPurpose": "revocation",
        "statusListIndex": "131071",
        "statusListCredential": "https://x.example/issuers/a/status-lists/1/revocation"}
    assert suspension["statusPurpose"] == "suspension"
    assert suspension["statusListCredential"].endswith("/1/suspension")
    for index in (-1, STATUS_LIST_SIZE, True):
        with pytest.raises(StatusListError):
            status_entries(urls, index)
