"""Multikey and multibase base58btc: the spec key pairs, known base58 values, round trips, and
the refusals a public endpoint relies on (over-long strings before decoding, foreign prefixes,
non-base58 characters, unknown headers, off-curve points)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given
from hypothesis import strategies as st

from testkit.vectors import vector_json
from verifier.errors import DataIntegrityError, MultibaseError, MultikeyError
from verifier.multikey import (
    MAX_MULTIBASE_LENGTH,
    KeyType,
    Multikey,
    b58decode,
    b58encode,
    decode_multibase,
    decode_secret_multikey,
    encode_multibase,
    encode_secret_multikey,
)

# The specifications' key pairs: (file, secret member, key type, multicodec header of the
# public key as hex).
KEY_PAIRS = [
    ("di-eddsa/keyPair.json", "privateKeyMultibase", KeyType.ED25519, "ed01"),
    ("di-ecdsa/p256KeyPair.json", "secretKeyMultibase", KeyType.P256, "8024"),
    ("di-ecdsa/p384KeyPair.json", "secretKeyMultibase", KeyType.P384, "8124"),
]


@pytest.mark.parametrize(("file", "secret_member", "key_type", "header"), KEY_PAIRS)
def test_spec_key_pairs_decode_and_re_encode(file: str, secret_member: str,
                                             key_type: KeyType, header: str) -> None:
    pair = vector_json(file)
    key = Multikey.from_multibase(pair["publicKeyMultibase"])
    assert key.key_type is key_type
    assert decode_multibase(pair["publicKeyMultibase"])[:2].hex() == header
    assert len(key.raw) == key_type.public_size
    assert key.multibase == pair["publicKeyMultibase"]
    secret = decode_secret_multikey(pair[secret_member])
    # The secret key belongs to the public key, and encodes back to the same string.
    assert Multikey.from_public_key(secret.public_key()) == key
    assert encode_secret_multikey(secret) == pair[secret_member]


@pytest.mark.parametrize(("data", "text"), [
    (b"", ""),
    (b"\0", "1"),
    (b"\0\0\x01", "112"),
    (b"hello world", "StV1DL6CwTryKyV"),
    (bytes.fromhex("00eb15231dfceb60925886b67d065299925915aeb172c06647"),
     "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"),  # a Bitcoin address, a well-known base58 value
])
def test_base58_known_values(data: bytes, text: str) -> None:
    assert b58encode(data) == text
    assert b58decode(text) == data


@given(st.binary(max_size=150))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data
    if data:  # "z" alone is refused as empty
        assert decode_multibase(encode_multibase(data)) == data


def test_overlong_string_is_refused_before_decoding() -> None:
    # A million characters, and an invalid one at the end: the length check answers first.
    text = "z" + "2" * 1_000_000 + "0"
    with pytest.raises(MultibaseError, match="longer than the limit"):
        decode_multibase(text)
    with pytest.raises(MultibaseError, match="longer than the limit"):
        b58decode("2" * (MAX_MULTIBASE_LENGTH + 1))
    # The limit itself is accepted.
    assert decode_multibase("z" + "2" * (MAX_MULTIBASE_LENGTH - 1))


@pytest.mark.parametrize(("value", "message"), [
    ("uAAAA", "must start with 'z'"),
    ("", "must start with 'z'"),
    ("z", "empty"),
    ("z0OIl", "not in the base58btc alphabet"),
    ("z6Mk+", "not in the base58btc alphabet"),
    ("z6Mké", "not in the base58btc alphabet"),
    (12, "expected a string"),
    (None, "expected a string"),
])
def test_malformed_multibase(value: object, message: str) -> None:
    with pytest.raises(MultibaseError, match=message):
        decode_multibase(value)


def _multikey(header: bytes, raw: bytes) -> str:
    return encode_multibase(header + raw)


@pytest.mark.parametrize(("value", "error", "message"), [
    (_multikey(b"\xe7\x01", b"\x02" * 33), MultikeyError, "unknown multicodec header e701"),
    (_multikey(b"\xed\x01", b"\x01" * 31), MultikeyError, "must be 32 bytes, got 31"),
    (_multikey(b"\x80\x24", b"\x02" * 32), MultikeyError, "must be 33 bytes, got 32"),
    # An uncompressed P-256 point is not a Multikey, even with the right header.
    (_multikey(b"\x80\x24", b"\x04" + b"\x01" * 32), MultikeyError, "not a compressed point"),
    # x = 1 is not the x coordinate of any P-256 point.
    (_multikey(b"\x80\x24", b"\x02" + (1).to_bytes(32, "big")), MultikeyError,
     "not a valid point"),
    (_multikey(b"\x81\x24", b"\x02" * 33), MultikeyError, "must be 49 bytes"),
    ("z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ0", MultibaseError, "alphabet"),
])
def test_malformed_multikey(value: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Multikey.from_multibase(value)


def test_errors_are_typed() -> None:
    assert issubclass(MultibaseError, DataIntegrityError)
    assert issubclass(MultikeyError, DataIntegrityError)


@pytest.mark.parametrize("make", [
    ed25519.Ed25519PrivateKey.generate,
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: ec.generate_private_key(ec.SECP384R1()),
])
def test_generated_keys_round_trip(make: Any) -> None:
    private = make()
    key = Multikey.from_public_key(private.public_key())
    again = Multikey.from_multibase(key.multibase)
    assert again == key
    secret = decode_secret_multikey(encode_secret_multikey(private))
    assert Multikey.from_public_key(secret.public_key()) == key


def test_unsupported_curve_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(MultikeyError, match="not supported"):
        Multikey.from_public_key(private.public_key())
    with pytest.raises(MultikeyError, match="not supported"):
        encode_secret_multikey(private)


@pytest.mark.parametrize(("value", "message"), [
    (encode_multibase(b"\x80\x26" + b"\x01" * 31), "must be 32 bytes"),
    (encode_multibase(b"\x86\x26" + b"\0" * 32), "invalid"),  # zero is not a secret scalar
    (encode_multibase(b"\x99\x99" + b"\x01" * 32), "unknown multicodec header"),
])
def test_malformed_secret_multikey(value: str, message: str) -> None:
    with pytest.raises(MultikeyError, match=message):
        decode_secret_multikey(value)
