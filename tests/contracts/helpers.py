"""Small helpers shared by the contract tests."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError

from anchor_service.chain import Transactor, sign_anchor
from anchor_service.errors import RevertError
from verifier.contract_types import encode_status_indices
from verifier.credential import leaf_input

__all__ = ["credential_leaves", "funded_account", "outcome", "packed", "random_root",
           "raw_indices", "refusal", "sign_anchor", "view_error", "view_refusal"]


def random_root() -> bytes:
    return os.urandom(32)


def outcome(tx: Transactor, call: Any) -> str:
    """'ok' if the transaction succeeds, else the name of the custom error it reverts with."""
    try:
        tx.transact(call)
    except RevertError as exc:
        return exc.name
    return "ok"


def refusal(tx: Transactor, call: Any) -> tuple[str, tuple[Any, ...]]:
    """('ok', ()) if the transaction succeeds, else the custom error it reverts with and its
    arguments."""
    try:
        tx.transact(call)
    except RevertError as exc:
        return exc.name, exc.args_
    return "ok", ()


def view_error(tx: Transactor, call: Any) -> str:
    """'ok' if the view answers, else the name of the custom error it reverts with."""
    try:
        call.call()
    except ContractCustomError as exc:
        data = exc.data
        if isinstance(data, dict):  # some nodes wrap the revert data in an object
            data = data.get("data")
        return tx.decode(bytes.fromhex(str(data).removeprefix("0x"))).name
    return "ok"


def view_refusal(tx: Transactor, call: Any) -> tuple[str, tuple[Any, ...]]:
    """('ok', ()) if the view answers, else the custom error it reverts with and its
    arguments."""
    try:
        call.call()
    except ContractCustomError as exc:
        data = exc.data
        if isinstance(data, dict):
            data = data.get("data")
        error = tx.decode(bytes.fromhex(str(data).removeprefix("0x")))
        return error.name, error.args_
    return "ok", ()


def funded_account(w3: Web3, funder: LocalAccount) -> LocalAccount:
    """A fresh account with 1 ether from ``funder``: for tests that need more callers than
    the ten development accounts."""
    account: LocalAccount = Account.create()
    signed = funder.sign_transaction({
        "to": account.address, "value": 10**18, "gas": 21_000, "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(funder.address, "pending"),
        "chainId": w3.eth.chain_id})
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    return account


def packed(*indices: int) -> bytes:
    """Status list indices as the status functions take them (checked: each in range)."""
    return encode_status_indices(indices)


def raw_indices(indices: Iterable[int], *, width: int = 4) -> bytes:
    """Indices packed big-endian without any check: for indices the contract must refuse."""
    return b"".join(index.to_bytes(width, "big") for index in indices)


def credential_leaves(positions: Sequence[tuple[int, int]]) -> list[bytes]:
    """Leaf inputs of credentials at the given (status list, index) positions: a fresh salt and
    digest each, the position bound in the last 8 bytes (verifier.credential.leaf_input)."""
    return [leaf_input(os.urandom(16), os.urandom(32), status_list, index)
            for status_list, index in positions]
