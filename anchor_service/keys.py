"""Loading signing keys: from an encrypted keystore file (Web3 Secret Storage, as written by
geth, ``cast wallet`` or eth-account) or from an environment variable. Keys never touch the
database or the logs; errors never print key material."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from anchor_service.errors import AnchorServiceError

__all__ = ["KeyLoadError", "load_account"]

PRIVATE_KEY_ENV = "MICROCRED_PRIVATE_KEY"
PASSWORD_ENV = "MICROCRED_KEYSTORE_PASSWORD"  # noqa: S105 - a variable's name, not a password


class KeyLoadError(AnchorServiceError):
    """No usable key: missing, unreadable, wrong password or malformed."""


def load_account(
    keystore: Path | None = None,
    *,
    env: str = PRIVATE_KEY_ENV,
    password_env: str = PASSWORD_ENV,
    prompt: bool = True,
) -> LocalAccount:
    """The account of ``keystore`` (decrypted with ``$password_env`` or a prompt), else of the
    hex private key in ``$env``."""
    if keystore is not None:
        try:
            document = json.loads(keystore.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeyLoadError(f"cannot read keystore {keystore}: {exc}") from None
        password = os.environ.get(password_env)
        if password is None:
            if not prompt:
                raise KeyLoadError(f"set {password_env} to decrypt {keystore}")
            password = getpass.getpass(f"password for {keystore}: ")
        try:
            private_key = Account.decrypt(document, password)
        except (ValueError, KeyError, TypeError):
            raise KeyLoadError(
                f"cannot decrypt {keystore}: wrong password or not a keystore"
            ) from None
        account: LocalAccount = Account.from_key(private_key)
        return account
    secret = os.environ.get(env)
    if not secret:
        raise KeyLoadError(f"no key: pass --keystore FILE or set {env}")
    try:
        account = Account.from_key(secret.strip())
    except (ValueError, TypeError):
        raise KeyLoadError(f"{env} is not a 32-byte hex private key") from None
    return account
