"""Multikey: public and secret keys as multibase base58btc strings with a multicodec header.

A Multikey (W3C Controlled Identifiers 1.0, and the Data Integrity EdDSA and ECDSA
cryptosuites) is ``"z" + base58btc(header || key bytes)``, where the header is the unsigned
varint of the key type's multicodec code:

============  ========  ===========  ===========================================
key           code      header       key bytes
============  ========  ===========  ===========================================
ed25519-pub   0xed      ``ed 01``    32-byte Ed25519 public key (RFC 8032)
p256-pub      0x1200    ``80 24``    33-byte compressed SEC1 point
p384-pub      0x1201    ``81 24``    49-byte compressed SEC1 point
ed25519-priv  0x1300    ``80 26``    32-byte Ed25519 seed
p256-priv     0x1306    ``86 26``    32-byte big-endian secret scalar
p384-priv     0x1307    ``87 26``    48-byte big-endian secret scalar
============  ========  ===========  ===========================================

Strings reach this module from untrusted documents, so :func:`decode_multibase` refuses any
string longer than :data:`MAX_MULTIBASE_LENGTH` characters before decoding it; base58 decoding
is then bounded work.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from verifier.errors import MultibaseError, MultikeyError

__all__ = [
    "MAX_MULTIBASE_LENGTH",
    "KeyType",
    "Multikey",
    "PrivateKey",
    "PublicKey",
    "b58decode",
    "b58encode",
    "decode_multibase",
    "decode_secret_multikey",
    "encode_multibase",
    "encode_secret_multikey",
    "key_type_of_curve",
]

BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: The longest multibase string read (prefix included). The longest value this package decodes
#: is a P-384 signature, 96 bytes or 132 base58 characters; keys are shorter.
MAX_MULTIBASE_LENGTH: Final = 256

_DIGIT: Final = {char: value for value, char in enumerate(BASE58_ALPHABET)}
_DIGITS: Final = bytes(_DIGIT.get(chr(code), 0xFF) for code in range(256))
# Digits are converted ten at a time (58**10 < 2**59), so the big-integer work is a tenth of the
# digit-by-digit loop.
_CHUNK: Final = 10
_CHUNK_BASE: Final = 58**_CHUNK
# Every pair of digits, for the value 58 * high + low: a chunk is written two digits a step
# (a signature is encoded for every credential the service signs).
_PAIRS: Final = tuple(high + low for high in BASE58_ALPHABET for low in BASE58_ALPHABET)

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet): each leading zero byte becomes ``1``, the rest is the
    big-endian number in base 58."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    pairs: list[str] = []  # the lowest pair of digits first
    while number:
        number, chunk = divmod(number, _CHUNK_BASE)
        for _ in range(_CHUNK // 2):
            chunk, pair = divmod(chunk, 58 * 58)
            pairs.append(_PAIRS[pair])
    # The last chunk is padded with zero digits above the number's top digit: drop them.
    return "1" * zeros + "".join(reversed(pairs)).lstrip("1")


def b58decode(text: str, *, max_length: int = MAX_MULTIBASE_LENGTH) -> bytes:
    """Inverse of :func:`b58encode`. Raises :class:`MultibaseError` for a string longer than
    ``max_length`` (before decoding) or a character outside the alphabet."""
    if len(text) > max_length:
        raise MultibaseError(f"base58 string of {len(text)} characters is longer than the "
                             f"limit of {max_length}")
    # One C-level pass maps every character to its digit value (0xff: not base58).
    digits = text.encode("ascii").translate(_DIGITS) if text.isascii() else b"\xff"
    if b"\xff" in digits:
        bad = next((char for char in text if char not in _DIGIT), text[:1])
        raise MultibaseError(f"character {bad!r} is not in the base58btc alphabet")
    number = 0
    for start in range(0, len(digits), _CHUNK):
        piece = digits[start:start + _CHUNK]
        value = 0
        for digit in piece:
            value = value * 58 + digit
        number = number * 58 ** len(piece) + value
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def encode_multibase(data: bytes) -> str:
    """Multibase base58btc: ``"z" + base58(data)``."""
    return "z" + b58encode(data)


def decode_multibase(text: object, *, what: str = "multibase value") -> bytes:
    """Decode a multibase base58btc string (``z`` prefix). Anything else (not a string, another
    multibase prefix, over :data:`MAX_MULTIBASE_LENGTH` characters, a non-base58 character)
    raises :class:`MultibaseError` naming ``what``."""
    if not isinstance(text, str):
        raise MultibaseError(f"{what}: expected a string, got {type(text).__name__}")
    if len(text) > MAX_MULTIBASE_LENGTH:
        raise MultibaseError(f"{what}: {len(text)} characters, longer than the limit of "
                             f"{MAX_MULTIBASE_LENGTH}")
    if not text.startswith("z"):
        raise MultibaseError(f"{what}: not multibase base58btc (must start with 'z')")
    if len(text) == 1:
        raise MultibaseError(f"{what}: empty")
    try:
        return b58decode(text[1:])
    except MultibaseError as exc:
        raise MultibaseError(f"{what}: {exc}") from None


class KeyType(enum.Enum):
    """The key types a Multikey names here, with their multicodec headers and sizes."""

    label: str
    public_header: bytes  # the multicodec varint of the public key type
    public_size: int
    secret_header: bytes
    secret_size: int

    ED25519 = ("Ed25519", b"\xed\x01", 32, b"\x80\x26", 32)
    P256 = ("P-256", b"\x80\x24", 33, b"\x86\x26", 32)
    P384 = ("P-384", b"\x81\x24", 49, b"\x87\x26", 48)

    def __init__(self, label: str, public_header: bytes, public_size: int,
                 secret_header: bytes, secret_size: int) -> None:
        self.label = label
        self.public_header = public_header
        self.public_size = public_size
        self.secret_header = secret_header
        self.secret_size = secret_size

    def curve(self) -> ec.EllipticCurve:
        """The ECDSA curve (P-256, P-384); Ed25519 has none."""
        if self is KeyType.P256:
            return ec.SECP256R1()
        if self is KeyType.P384:
            return ec.SECP384R1()
        raise MultikeyError("Ed25519 is not an ECDSA curve")


def key_type_of_curve(curve: ec.EllipticCurve) -> KeyType:
    """The key type of an ECDSA curve; :class:`MultikeyError` for any but P-256 and P-384."""
    if isinstance(curve, ec.SECP256R1):
        return KeyType.P256
    if isinstance(curve, ec.SECP384R1):
        return KeyType.P384
    raise MultikeyError(f"curve {curve.name} is not supported (P-256 and P-384 are)")


@lru_cache(maxsize=1024)
def _multibase_of(multicodec: bytes) -> str:
    """``encode_multibase``, remembered: the service compares its signing key's string at
    every request, and base58 costs tens of microseconds a key in Python."""
    return encode_multibase(multicodec)


@dataclass(frozen=True, slots=True)
class Multikey:
    """A public key: its type and its raw bytes (Ed25519: 32 bytes; P-256/P-384: the
    compressed point). Build one with :meth:`from_multibase` or :meth:`from_public_key`; both
    check that the bytes are a valid key, so :meth:`public_key` cannot fail afterwards."""

    key_type: KeyType
    raw: bytes
    _key: PublicKey = field(compare=False, repr=False)

    @classmethod
    def from_multibase(cls, text: object) -> Multikey:
        """Read a ``publicKeyMultibase`` value. Raises :class:`MultibaseError` or
        :class:`MultikeyError` saying why it is not an Ed25519, P-256 or P-384 public key."""
        data = decode_multibase(text, what="publicKeyMultibase")
        for key_type in KeyType:
            if data.startswith(key_type.public_header):
                return cls.from_raw(key_type, data[len(key_type.public_header):])
        raise MultikeyError(
            f"publicKeyMultibase: unknown multicodec header {data[:2].hex()} (Ed25519 ed01, "
            "P-256 8024 and P-384 8124 are read)")

    @classmethod
    def from_raw(cls, key_type: KeyType, raw: bytes) -> Multikey:
        """A key from its raw bytes, checked."""
        if len(raw) != key_type.public_size:
            raise MultikeyError(f"{key_type.label} public key must be {key_type.public_size} "
                                f"bytes, got {len(raw)}")
        key: PublicKey
        try:
            if key_type is KeyType.ED25519:
                key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            else:
                if raw[0] not in (2, 3):  # only the compressed form is a Multikey
                    raise MultikeyError(f"{key_type.label} public key is not a compressed point")
                key = ec.EllipticCurvePublicKey.from_encoded_point(key_type.curve(), raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise MultikeyError(f"{key_type.label} public key is not a valid point: {exc}") \
                from None
        return cls(key_type, bytes(raw), key)

    @classmethod
    def from_public_key(cls, key: PublicKey) -> Multikey:
        """The Multikey of a ``cryptography`` public key (Ed25519, P-256 or P-384)."""
        if isinstance(key, ed25519.Ed25519PublicKey):
            return cls(KeyType.ED25519, key.public_bytes(Encoding.Raw, PublicFormat.Raw), key)
        if isinstance(key, ec.EllipticCurvePublicKey):
            key_type = key_type_of_curve(key.curve)
            raw = key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
            return cls(key_type, raw, key)
        raise MultikeyError(f"unsupported public key type {type(key).__name__}")

    @property
    def multicodec(self) -> bytes:
        """The Multikey's bytes: multicodec header and raw key (what ``publicKeyMultibase``
        encodes, and what the issuer registry stores and hashes into a signing key's id)."""
        return self.key_type.public_header + self.raw

    @property
    def multibase(self) -> str:
        """The ``publicKeyMultibase`` string."""
        return _multibase_of(self.multicodec)

    def public_key(self) -> PublicKey:
        """The ``cryptography`` public key object."""
        return self._key

    def __repr__(self) -> str:
        return f"Multikey({self.key_type.label}, {self.multibase})"


def encode_secret_multikey(key: PrivateKey) -> str:
    """The ``secretKeyMultibase`` of a private key (ed25519-priv, p256-priv, p384-priv)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return encode_multibase(KeyType.ED25519.secret_header + raw)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key_type = key_type_of_curve(key.curve)
        scalar = key.private_numbers().private_value.to_bytes(key_type.secret_size, "big")
        return encode_multibase(key_type.secret_header + scalar)
    raise MultikeyError(f"unsupported private key type {type(key).__name__}")


def decode_secret_multikey(text: object) -> PrivateKey:
    """Read a ``secretKeyMultibase`` (or the EdDSA vectors' ``privateKeyMultibase``) value."""
    data = decode_multibase(text, what="secretKeyMultibase")
    for key_type in KeyType:
        if not data.startswith(key_type.secret_header):
            continue
        raw = data[len(key_type.secret_header):]
        if len(raw) != key_type.secret_size:
            raise MultikeyError(f"{key_type.label} secret key must be {key_type.secret_size} "
                                f"bytes, got {len(raw)}")
        try:
            if key_type is KeyType.ED25519:
                return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
            return ec.derive_private_key(int.from_bytes(raw, "big"), key_type.curve())
        except ValueError as exc:
            raise MultikeyError(f"{key_type.label} secret key is invalid: {exc}") from None
    raise MultikeyError(f"secretKeyMultibase: unknown multicodec header {data[:2].hex()}")
