"""Signing keys in encrypted keystore files (Web3 Secret Storage, as written by geth,
``cast wallet`` or eth-account): the one place that writes and decrypts them, for the service
(issuer and relayer keys), the stack and the administration commands. A command's signer may
also come from ``MICROCRED_PRIVATE_KEY``. Keys never touch the database or the logs; errors
never print key material or passwords. Keystore files are owner-only from their first byte
(:mod:`anchor_service._files`)."""

from __future__ import annotations

import base64
import getpass
import json
import secrets
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchor_service._files import private_dir, write_private
from anchor_service.errors import KeyLoadError
from anchor_service.settings import CommandSettings, revealed
from verifier.errors import MultikeyError
from verifier.multikey import Multikey, PrivateKey

__all__ = [
    "keystore_path",
    "read_keystore",
    "read_signing_key",
    "signer_account",
    "signing_key_path",
    "write_keystore",
    "write_signing_key",
]


def keystore_path(directory: Path, address: str) -> Path:
    """Where the keystore of ``address`` lives in ``directory``: ``<address>.json``, lower
    case, without ``0x``."""
    return directory / f"{address.lower().removeprefix('0x')}.json"


def write_keystore(directory: Path, account: LocalAccount, password: str, *,
                   scrypt_cost: int | None = None) -> Path:
    """Encrypt ``account`` into ``directory``: the file is created owner-only (0600) and the
    folder is made 0700. ``scrypt_cost`` is scrypt's N (default eth-account's 2**18, about a
    second to decrypt); tests that start services over and over use less."""
    private_dir(directory)
    path = keystore_path(directory, account.address)
    document = Account.encrypt(bytes(account.key), password, kdf="scrypt",
                               iterations=scrypt_cost)
    return write_private(path, json.dumps(document))


def read_keystore(path: Path, password: str) -> LocalAccount:
    """The account in the keystore file ``path``, decrypted with ``password``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyLoadError(f"cannot read keystore {path}: {exc}") from None
    try:
        account: LocalAccount = Account.from_key(Account.decrypt(document, password))
    except (ValueError, KeyError, TypeError):
        # eth-account's messages may quote parts of the document; the cause is one of these.
        raise KeyLoadError(f"cannot decrypt {path}: wrong password or not a keystore") from None
    return account


def signer_account(keystore: Path | None, settings: CommandSettings) -> LocalAccount:
    """The signer of a command: the account of ``keystore`` (decrypted with
    ``MICROCRED_KEYSTORE_PASSWORD``, else a prompt), or without one the hex private key in
    ``MICROCRED_PRIVATE_KEY``."""
    if keystore is not None:
        password = (revealed(settings.keystore_password) if settings.keystore_password
                    is not None else getpass.getpass(f"password for {keystore}: "))
        return read_keystore(keystore, password)
    secret = revealed(settings.private_key).strip()
    if not secret:
        raise KeyLoadError("no key: pass --keystore FILE or set MICROCRED_PRIVATE_KEY")
    try:
        account: LocalAccount = Account.from_key(secret)
    except (ValueError, TypeError):
        raise KeyLoadError("MICROCRED_PRIVATE_KEY is not a 32-byte hex private key") from None
    return account


# ---------------------------------------------------------------- issuer signing keys
#
# Issuer signing keys (Ed25519, P-256) are encrypted PKCS #8 PEM files ("ENCRYPTED PRIVATE
# KEY", RFC 5958). The encryption is PBES2 with scrypt (RFC 7914) and AES-256-CBC, written here
# because cryptography's own PKCS #8 encryption derives the key with PBKDF2 at 2048
# iterations, far cheaper to guess at than the keystores' scrypt.

#: scrypt's N for signing key files: 2**17 with r = 8 is 128 MiB and about half a second, paid
#: once per key when the service starts. (OpenSSL's command line reads such files only up to
#: N = 2**14: its scrypt memory cap is 32 MiB.)
SIGNING_KEY_SCRYPT_COST: Final = 2**17
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_OID_PBES2: Final = bytes.fromhex("06092a864886f70d01050d")
_OID_SCRYPT: Final = bytes.fromhex("06092b06010401da47040b")
_OID_AES256_CBC: Final = bytes.fromhex("060960864801650304012a")


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        length = bytes([size])
    else:
        octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + body


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def signing_key_path(directory: Path, key_id: bytes) -> Path:
    """Where the signing key with on-chain id ``key_id`` lives in ``directory``:
    ``signing-<keyId hex>.pem``."""
    return directory / f"signing-{key_id.hex()}.pem"


def write_signing_key(path: Path, private_key: PrivateKey, password: str, *,
                      scrypt_cost: int | None = None) -> Path:
    """Write ``private_key`` to ``path`` as an encrypted PKCS #8 PEM file, owner-only (its
    folder 0700). ``scrypt_cost`` is scrypt's N (default :data:`SIGNING_KEY_SCRYPT_COST`)."""
    if not password:
        raise KeyLoadError("a signing key file needs a password (MICROCRED_KEYSTORE_PASSWORD)")
    cost = scrypt_cost or SIGNING_KEY_SCRYPT_COST
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    secret = Scrypt(salt=salt, length=32, n=cost, r=_SCRYPT_R, p=_SCRYPT_P).derive(
        password.encode("utf-8"))
    padder = padding.PKCS7(128).padder()
    plain = padder.update(private_key.private_bytes(
        Encoding.DER, PrivateFormat.PKCS8, NoEncryption())) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(plain) + encryptor.finalize()
    kdf = _der(0x30, _OID_SCRYPT + _der(0x30, _der(0x04, salt) + _der_int(cost)
                                          + _der_int(_SCRYPT_R) + _der_int(_SCRYPT_P)))
    scheme = _der(0x30, _OID_AES256_CBC + _der(0x04, iv))
    algorithm = _der(0x30, _OID_PBES2 + _der(0x30, kdf + scheme))
    document = _der(0x30, algorithm + _der(0x04, encrypted))
    text = base64.encodebytes(document).decode("ascii").replace("\n", "")
    lines = [text[start:start + 64] for start in range(0, len(text), 64)]
    pem = "\n".join(["-----BEGIN ENCRYPTED PRIVATE KEY-----", *lines,
                      "-----END ENCRYPTED PRIVATE KEY-----", ""])
    private_dir(path.parent)
    return write_private(path, pem)


def read_signing_key(path: Path, password: str, *, expected: Multikey | None = None
                     ) -> PrivateKey:
    """The private key in the encrypted PKCS #8 PEM file ``path``; with ``expected``, it must
    be that public key's. :class:`KeyLoadError` otherwise (the message names the file, never
    key material)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"cannot read signing key {path}: {exc.strerror or exc}") from None
    try:
        key = load_pem_private_key(data, password.encode("utf-8"))
    except (ValueError, TypeError):
        raise KeyLoadError(f"cannot decrypt signing key {path}: wrong password or not an "
                           "encrypted PKCS #8 key") from None
    if not isinstance(key, PrivateKey):
        raise KeyLoadError(f"{path} holds a {type(key).__name__}, not an Ed25519 or P-256 key")
    try:
        public = Multikey.from_public_key(key.public_key())
    except MultikeyError as exc:
        raise KeyLoadError(f"{path}: {exc}") from None
    if expected is not None and public != expected:
        raise KeyLoadError(f"{path} holds key {public.multibase}, not {expected.multibase}")
    return key
