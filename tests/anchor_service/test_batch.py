"""The pure batching core: a batch becomes one tree and verifiable receipts."""

from __future__ import annotations

import pytest

from anchor_service import BatchError, BatchItem, PreparedBatch
from anchor_service.samples import make_credential
from testkit.net import check_inclusion
from verifier.credential import credential_digest
from verifier.errors import ProofError
from verifier.merkle import MerkleTree, verify_inclusion
from verifier.receipt import Anchor, Receipt

ANCHOR = Anchor.model_validate({
    "chainId": 1337, "contract": "0x" + "11" * 20, "transactionHash": "0x" + "22" * 32,
    "blockNumber": 7, "blockHash": "0x" + "33" * 32, "anchoringKey": "0x" + "44" * 20,
})


def _batch(n: int) -> tuple[list[dict[str, object]], PreparedBatch]:
    credentials = [make_credential(i, score=i) for i in range(n)]
    return credentials, PreparedBatch([BatchItem.salted(credential_digest(c), 0, i)
                                        for i, c in enumerate(credentials)])


@pytest.mark.parametrize("n", [1, 2, 3, 17, 64, 100])
def test_every_receipt_verifies_against_the_batch_root(n: int) -> None:
    credentials, batch = _batch(n)
    assert batch.size == n
    assert batch.root == MerkleTree([item.leaf_input for item in batch.items]).root
    receipts = list(batch.receipts(ANCHOR))
    assert len(receipts) == n
    for index, (credential, receipt) in enumerate(zip(credentials, receipts, strict=True)):
        assert receipt == batch.receipt(index, ANCHOR)
        assert receipt.credential_digest == credential_digest(credential)
        assert receipt.root == batch.root
        assert (receipt.status_list, receipt.status_list_index) == (0, index)
        assert receipt.leaf_input == batch.items[index].leaf_input
        # The receipt survives serialisation and still verifies on its own.
        parsed = Receipt.from_json(receipt.to_json())
        check_inclusion(parsed)


def test_salts_hide_equal_credentials() -> None:
    digest = credential_digest({"same": True})
    batch = PreparedBatch([BatchItem.salted(digest, 0, 0), BatchItem.salted(digest, 0, 1)])
    first, second = batch.items
    assert first.salt != second.salt
    assert first.leaf_input != second.leaf_input
    # One learner's receipt does not validate the other's leaf position.
    receipt = batch.receipt(0, ANCHOR)
    with pytest.raises(ProofError):
        verify_inclusion(second.leaf_input, 0, 2, list(receipt.audit_path), batch.root)


def test_bad_batches_raise_batch_errors() -> None:
    with pytest.raises(BatchError, match="at least one"):
        PreparedBatch([])
    with pytest.raises(BatchError, match="digest"):
        BatchItem(b"short", b"\x00" * 16, 0, 0)
    with pytest.raises(BatchError, match="salt"):
        BatchItem(b"\x00" * 32, b"\x00" * 8, 0, 0)
    with pytest.raises(BatchError, match="status list index"):
        BatchItem(b"\x00" * 32, b"\x00" * 16, 0, 131072)
    with pytest.raises(BatchError, match="status list"):
        BatchItem(b"\x00" * 32, b"\x00" * 16, -1, 0)
    _, batch = _batch(3)
    with pytest.raises(BatchError, match="not in this batch"):
        batch.receipt(3, ANCHOR)
