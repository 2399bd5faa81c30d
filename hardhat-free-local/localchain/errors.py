"""Errors raised by :mod:`localchain`. Everything derives from :class:`LocalChainError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_abi import abi
from eth_abi.exceptions import DecodingError

if TYPE_CHECKING:
    from web3.types import TxReceipt

__all__ = [
    "AnvilError",
    "AnvilNotFoundError",
    "AnvilStartError",
    "LocalChainError",
    "PortInUseError",
    "SnapshotError",
    "TransactionError",
    "TransactionRejectedError",
    "TransactionRevertedError",
    "decode_revert_reason",
]

# Selectors of the two revert payloads Solidity itself produces.
ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


class LocalChainError(Exception):
    """Root of every error this package raises on purpose."""


class AnvilError(LocalChainError):
    """The anvil node could not be found, started or stopped."""


class AnvilNotFoundError(AnvilError):
    """No anvil binary: neither ``ANVIL_BIN``, nor ``node_modules``, nor ``PATH`` has one."""


class AnvilStartError(AnvilError):
    """anvil exited, or never answered JSON-RPC, while starting.

    ``log_tail`` holds the last lines anvil wrote (stdout and stderr), which usually name the
    cause.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        full = f"{message}\n--- anvil output (last lines) ---\n{log_tail}" if log_tail else message
        super().__init__(full)
        self.log_tail = log_tail


class PortInUseError(AnvilStartError):
    """The requested TCP port on 127.0.0.1 is already taken by another process."""


class SnapshotError(LocalChainError):
    """Unknown snapshot id (a snapshot can be reverted to only once, on both backends)."""


class TransactionError(LocalChainError):
    """A transaction sent through :func:`localchain.send_transaction` did not succeed."""


class TransactionRejectedError(TransactionError):
    """The node refused the transaction before executing it (nonce, funds, fee or gas fields)."""


class TransactionRevertedError(TransactionError):
    """Execution failed: the EVM reverted (``data`` is the revert payload) or halted.

    ``receipt`` is the mined receipt (status 0) when the transaction made it into a block, or
    ``None`` when the failure was caught by gas estimation or ``eth_call`` before sending.
    ``data`` is ``None`` when the node reports no payload (an exceptional halt such as an
    invalid opcode, or a mined failure that no longer reproduces when replayed).
    """

    def __init__(
        self,
        data: bytes | None,
        *,
        receipt: TxReceipt | None = None,
        detail: str | None = None,
    ) -> None:
        self.data = data
        self.receipt = receipt
        self.reason = decode_revert_reason(data) if data is not None else None
        where = "mined and failed" if receipt is not None else "would revert"
        if self.reason is not None:
            message = f"transaction {where}: {self.reason}"
        elif data:
            message = f"transaction {where} with data 0x{data.hex()}"
        else:
            message = f"transaction {where}" + (f" ({detail})" if detail else "")
        if receipt is not None:
            message += f" [tx 0x{bytes(receipt['transactionHash']).hex()}]"
        super().__init__(message)


def decode_revert_reason(data: bytes) -> str | None:
    """The human-readable reason of a Solidity ``Error(string)`` or ``Panic(uint256)`` payload.

    Returns ``None`` for anything else (custom errors, empty or malformed data).
    """
    try:
        if data[:4] == ERROR_STRING_SELECTOR:
            (reason,) = abi.decode(["string"], data[4:])
            return str(reason)
        if data[:4] == PANIC_SELECTOR:
            (code,) = abi.decode(["uint256"], data[4:])
            return f"panic 0x{int(code):02x}"
    except (DecodingError, UnicodeDecodeError, OverflowError):
        return None
    return None
