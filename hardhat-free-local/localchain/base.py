"""The interface both local chains implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from eth_account.signers.local import LocalAccount
from web3 import Web3

__all__ = ["LocalChain"]


class LocalChain(ABC):
    """A disposable development chain: anvil (:class:`~localchain.AnvilChain`) or in-process
    eth-tester (:class:`~localchain.InProcessChain`).

    Attributes:
        w3: a connected web3.py client.
        chain_id: the EIP-155 chain id the node reports and signs against.
        rpc_url: the HTTP JSON-RPC address, or ``None`` for the in-process chain.
        accounts: the funded development accounts, with their private keys.

    Both backends auto-mine: every transaction is mined into its own block as it arrives
    (unless anvil was started with a ``block_time``).
    """

    w3: Web3
    chain_id: int
    rpc_url: str | None
    accounts: list[LocalAccount]

    def __init__(
        self, w3: Web3, chain_id: int, rpc_url: str | None, accounts: list[LocalAccount]
    ) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.rpc_url = rpc_url
        self.accounts = accounts

    @abstractmethod
    def increase_time(self, seconds: int) -> None:
        """Move the clock forward and mine one block whose timestamp is at least the previous
        latest block's timestamp plus ``seconds``."""

    @abstractmethod
    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (0 does nothing)."""

    @abstractmethod
    def snapshot(self) -> str:
        """Record the current state; returns an id for :meth:`revert`."""

    @abstractmethod
    def revert(self, snapshot_id: str) -> None:
        """Return to the state of ``snapshot_id``.

        As on anvil (and Hardhat), that snapshot and every later one are used up: take a new
        snapshot to revert again. Raises :class:`~localchain.SnapshotError` for an unknown id.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the chain (for anvil: stop the process). Safe to call more than once."""

    def latest_timestamp(self) -> int:
        """Timestamp of the latest mined block (``block.timestamp`` seen by ``eth_call``)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _check_count(name: str, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
