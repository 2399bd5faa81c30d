"""Small helpers shared by the contract tests."""

from __future__ import annotations

import os
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from anchor_service.chain import RevertError, Transactor


def random_root() -> bytes:
    return os.urandom(32)


def sign_anchor(
    anchor: Contract,
    signer: LocalAccount,
    root: bytes,
    *,
    tree_size: int,
    nonce: int,
    deadline: int,
    chain_id: int | None = None,
    verifying_contract: str | None = None,
) -> bytes:
    """An EIP-712 signature of an anchoring request, as an issuer would make it offline."""
    typed: dict[str, Any] = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Anchor": [
                {"name": "root", "type": "bytes32"},
                {"name": "treeSize", "type": "uint64"},
                {"name": "key", "type": "address"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Anchor",
        "domain": {
            "name": "CredentialAnchor",
            "version": "1",
            "chainId": chain_id if chain_id is not None else anchor.w3.eth.chain_id,
            "verifyingContract": verifying_contract or anchor.address,
        },
        "message": {
            "root": root,
            "treeSize": tree_size,
            "key": signer.address,
            "nonce": nonce,
            "deadline": deadline,
        },
    }
    signed = signer.sign_message(encode_typed_data(full_message=typed))
    return bytes(signed.signature)


def outcome(tx: Transactor, call: Any) -> str:
    """'ok' if the transaction succeeds, else the name of the custom error it reverts with."""
    try:
        tx.transact(call)
    except RevertError as exc:
        return exc.name
    return "ok"
