"""Signing keys in encrypted keystore files (Web3 Secret Storage, as written by geth,
``cast wallet`` or eth-account): the one place that writes and decrypts them, for the service
(issuer and relayer keys), the stack and the administration commands. A command's signer may
also come from ``MICROCRED_PRIVATE_KEY``. Keys never touch the database or the logs; errors
never print key material or passwords. Keystore files are owner-only from their first byte
(:mod:`anchor_service._files`)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchor_service._files import private_dir, write_private
from anchor_service.errors import KeyLoadError
from anchor_service.settings import CommandSettings, revealed

__all__ = ["keystore_path", "read_keystore", "signer_account", "write_keystore"]


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
