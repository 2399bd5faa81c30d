"""Local chains without Hardhat: a real anvil node and an in-process eth-tester chain behind one
interface, :class:`LocalChain`.

>>> from localchain import InProcessChain, send_transaction
>>> with InProcessChain.start() as chain:  # or AnvilChain.start()
...     alice, bob = chain.accounts[:2]
...     receipt = send_transaction(chain, alice, {"to": bob.address, "value": 1})
...     receipt["status"]
1

``InProcessChain`` is imported on first use: it needs the ``local`` extra (eth-tester, py-evm),
which anvil users do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localchain.accounts import (
    DEFAULT_ACCOUNT_COUNT,
    DEFAULT_BALANCE_WEI,
    DEFAULT_CHAIN_ID,
    DEFAULT_MNEMONIC,
    DERIVATION_PATH_PREFIX,
    derive_accounts,
)
from localchain.anvil import AnvilChain, find_anvil
from localchain.base import LocalChain
from localchain.errors import (
    AnvilError,
    AnvilNotFoundError,
    AnvilStartError,
    LocalChainError,
    PortInUseError,
    SnapshotError,
    TransactionError,
    TransactionRejectedError,
    TransactionRevertedError,
    decode_revert_reason,
)
from localchain.transactions import call, send_transaction

if TYPE_CHECKING:
    from localchain.inprocess import InProcessChain

__all__ = [
    "DEFAULT_ACCOUNT_COUNT",
    "DEFAULT_BALANCE_WEI",
    "DEFAULT_CHAIN_ID",
    "DEFAULT_MNEMONIC",
    "DERIVATION_PATH_PREFIX",
    "AnvilChain",
    "AnvilError",
    "AnvilNotFoundError",
    "AnvilStartError",
    "InProcessChain",
    "LocalChain",
    "LocalChainError",
    "PortInUseError",
    "SnapshotError",
    "TransactionError",
    "TransactionRejectedError",
    "TransactionRevertedError",
    "call",
    "decode_revert_reason",
    "derive_accounts",
    "find_anvil",
    "send_transaction",
]


def __getattr__(name: str) -> Any:
    # Lazy: importing eth-tester pulls in py-evm (about a second, and an optional extra).
    if name == "InProcessChain":
        from localchain.inprocess import InProcessChain  # noqa: PLC0415  # deliberately lazy

        return InProcessChain
    raise AttributeError(f"module 'localchain' has no attribute {name!r}")
