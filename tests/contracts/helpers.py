"""Small helpers shared by the contract tests."""

from __future__ import annotations

import os
from typing import Any

from anchor_service.chain import Transactor, sign_anchor
from anchor_service.errors import RevertError

__all__ = ["outcome", "random_root", "sign_anchor"]


def random_root() -> bytes:
    return os.urandom(32)


def outcome(tx: Transactor, call: Any) -> str:
    """'ok' if the transaction succeeds, else the name of the custom error it reverts with."""
    try:
        tx.transact(call)
    except RevertError as exc:
        return exc.name
    return "ok"
