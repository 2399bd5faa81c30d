"""Send and call with one behaviour on both backends: local signing, typed errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import BlockIdentifier, TxParams, TxReceipt

from localchain.base import LocalChain
from localchain.errors import (
    TransactionError,
    TransactionRejectedError,
    TransactionRevertedError,
)

__all__ = ["call", "send_transaction"]

RECEIPT_TIMEOUT = 30.0
# Both backends report an exceptional halt (invalid opcode, out of gas) with this prefix; the
# in-process chain copies anvil's wording on purpose (localchain.inprocess).
EVM_HALT_PREFIX = "EVM error"


def send_transaction(
    chain: LocalChain,
    account: LocalAccount,
    tx_params: TxParams | Mapping[str, Any],
    *,
    timeout: float = RECEIPT_TIMEOUT,
) -> TxReceipt:
    """Sign ``tx_params`` with ``account``'s key, send it raw and return the mined receipt.

    Missing fields are filled in: ``chainId``, ``value`` (0), ``nonce`` (the account's pending
    count), ``gas`` (the node's estimate) and EIP-1559 fees (priority fee from the node, max fee
    twice the latest base fee plus that). A contract creation is a ``tx_params`` without ``to``.

    Raises:
        TransactionRevertedError: estimation showed that it would revert (``receipt`` is ``None``),
            or it was mined with status 0 (``receipt`` set; ``data`` from replaying the
            transaction on the previous block, when that still reverts).
        TransactionRejectedError: the node refused it (nonce, balance, fee fields, ...).
        TransactionError: no receipt within ``timeout`` seconds.
        ValueError: ``tx_params["from"]`` is not ``account``.
    """
    w3 = chain.w3
    tx: dict[str, Any] = dict(tx_params)
    sender = tx.pop("from", None)
    if sender is not None and Web3.to_checksum_address(str(sender)) != account.address:
        raise ValueError(f"tx_params['from'] is {sender}, but the signing account is "
                         f"{account.address}")
    tx.setdefault("chainId", chain.chain_id)
    tx.setdefault("value", 0)
    if "nonce" not in tx:
        tx["nonce"] = w3.eth.get_transaction_count(account.address, "pending")
    if "gas" not in tx:
        tx["gas"] = _estimate_gas(w3, _execution_fields(tx, account.address))
    if "gasPrice" not in tx:
        _fill_fees(w3, tx)

    signed = account.sign_transaction(tx)
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    except ContractLogicError as exc:
        raise TransactionRevertedError(revert_data(exc)) from None
    except Web3RPCError as exc:
        message = rpc_message(exc)
        raise TransactionRejectedError(f"the node rejected the transaction: {message}") from None
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)
    except TimeExhausted:
        raise TransactionError(
            f"no receipt for transaction 0x{bytes(tx_hash).hex()} within {timeout:g} s"
        ) from None
    if receipt["status"] != 1:
        data = _replay(w3, _execution_fields(tx, account.address), receipt["blockNumber"] - 1)
        raise TransactionRevertedError(data, receipt=receipt)
    return receipt


def call(
    chain: LocalChain,
    tx_params: TxParams | Mapping[str, Any],
    block_identifier: BlockIdentifier = "latest",
) -> bytes:
    """``eth_call``: the return data, or :class:`TransactionRevertedError` if execution fails."""
    try:
        return bytes(chain.w3.eth.call(cast(TxParams, dict(tx_params)), block_identifier))
    except ContractLogicError as exc:
        raise TransactionRevertedError(revert_data(exc)) from None
    except Web3RPCError as exc:
        raise _rpc_failure(exc) from None


def revert_data(exc: ContractLogicError) -> bytes | None:
    """The raw revert payload web3 attached to ``exc`` (hex string, or a node's dict)."""
    data: Any = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str):
        try:
            return bytes.fromhex(data.removeprefix("0x"))
        except ValueError:
            return None
    return None


def rpc_message(exc: Web3RPCError) -> str:
    """The node's own error message (web3 keeps the repr of the whole error object)."""
    response = exc.rpc_response or {}
    error: Any = response.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return str(exc.message)


def _estimate_gas(w3: Web3, fields: TxParams) -> int:
    try:
        return int(w3.eth.estimate_gas(fields))
    except ContractLogicError as exc:
        raise TransactionRevertedError(revert_data(exc)) from None
    except Web3RPCError as exc:
        raise _rpc_failure(exc) from None


def _rpc_failure(exc: Web3RPCError) -> TransactionError:
    message = rpc_message(exc)
    if message.startswith(EVM_HALT_PREFIX):
        return TransactionRevertedError(None, detail=message)
    return TransactionRejectedError(f"the node rejected the transaction: {message}")


def _fill_fees(w3: Web3, tx: dict[str, Any]) -> None:
    if "maxFeePerGas" in tx and "maxPriorityFeePerGas" in tx:
        return
    priority = int(w3.eth.max_priority_fee)
    if "maxFeePerGas" in tx:
        tx["maxPriorityFeePerGas"] = min(priority, int(tx["maxFeePerGas"]))
        return
    tx.setdefault("maxPriorityFeePerGas", priority)
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    # Twice the base fee survives several full blocks of base-fee growth (12.5 % each).
    tx["maxFeePerGas"] = 2 * base_fee + int(tx["maxPriorityFeePerGas"])


def _execution_fields(tx: dict[str, Any], sender: str) -> TxParams:
    # What determines execution; fee fields are left out so estimation does not depend on them.
    fields: dict[str, Any] = {"from": sender, "value": tx.get("value", 0)}
    for key in ("to", "data", "gas"):
        if tx.get(key) is not None:
            fields[key] = tx[key]
    return cast(TxParams, fields)


def _replay(w3: Web3, fields: TxParams, block_number: int) -> bytes | None:
    # A mined failure keeps no revert data in its receipt; re-running it on the state before
    # its block recovers it (exact when it was the block's only transaction, as with
    # auto-mining).
    try:
        w3.eth.call(fields, block_number)
    except ContractLogicError as exc:
        return revert_data(exc)
    except Web3RPCError:
        return None
    return None
