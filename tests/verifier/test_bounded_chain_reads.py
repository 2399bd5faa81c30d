"""The chain reader on real chains (in-process and anvil): a receipt costs a bounded number of
calls whatever tree size its batch declares, a shared reader never answers from an abandoned
branch after a reorganisation, and a node without past state is named as such."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak
from web3 import Web3

from anchor_service.samples import make_credential
from localchain import AnvilChain
from testkit.world import World, build_world
from tests.verifier.wallet import register_signing_key, sign
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import encode_status_indices
from verifier.credential import credential_digest, leaf_input, new_salt
from verifier.merkle import inclusion_proof_length
from verifier.receipt import Anchor, Bundle, Receipt
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import CheckStatus, VerificationReport, verify

MAX_TREE_SIZE = 2**53 - 1  # CredentialAnchor.MAX_TREE_SIZE, the receipt format's maximum too
STATUS_WINDOW_WORDS = 8  # the bound SECURITY.md states: status words read per receipt
STATUS_WORDS = keccak(text="statusWords(uint64,uint32,uint256,uint256)")[:4]
# Where the huge batches' credential has its status: list 5 of the issuer, entry 70,000 (in the
# aligned window of entries 69,632..71,679, 8 words of 256).
POSITION = (5, 70_000)
WINDOW = (69_632, 71_679)
# Requests one cold verification of a signed credential makes through a reader with a
# connection of its own, which reads at the head's block hash: head, chain id, anchor, the
# anchor's registry (once per lineage), anchor block and the check that the head still stands
# after it, trust, entity, signing key, signing key trust, status window. Anything that grew
# with the tree would blow far past this.
CALLS_PER_RECEIPT = 11
# Through the in-process chain, which takes no block hashes: the head, the chain id, and each
# read (anchor, the anchor's registry, anchor block, trust, entity, signing key, signing key
# trust, status window) made by number and followed by the check that the head still stands.
CALLS_PER_RECEIPT_BY_NUMBER = 18

CREDENTIAL = make_credential(1, id_prefix="urn:huge", subject={"name": "Zoë"})
SIGNED = sign(CREDENTIAL)


class CountingCalls:
    """Counts the JSON-RPC requests a Web3 sends, by method, and the status words asked for.
    Past ``budget`` requests it refuses, so that a reader that would read forever fails fast
    instead of hanging the test."""

    def __init__(self, budget: int = 200) -> None:
        self.methods: Counter[str] = Counter()
        self.status_words = 0
        self.budget = budget

    def wrap(self, make_request: Callable[..., Any]) -> Callable[..., Any]:
        def counting(method: str, params: Any) -> Any:
            self.methods[method] += 1
            if method == "eth_call":
                data = bytes.fromhex(str(params[0]["data"]).removeprefix("0x"))
                if data[:4] == STATUS_WORDS:
                    self.status_words += int.from_bytes(data[4 + 96:4 + 128], "big")
            if self.total > self.budget:
                raise RuntimeError(f"more than {self.budget} JSON-RPC requests")
            return make_request(method, params)

        return counting

    @property
    def total(self) -> int:
        return sum(self.methods.values())

    def reset(self) -> None:
        self.methods.clear()
        self.status_words = 0


@contextmanager
def counted(w3: Web3, budget: int = 200) -> Iterator[CountingCalls]:
    """Count the requests ``w3``'s provider makes within the block."""
    counter = CountingCalls(budget)
    provider: Any = w3.provider
    original = provider.make_request
    provider.make_request = counter.wrap(original)
    provider._request_func_cache = (None, None)  # web3 keeps the composed function
    try:
        yield counter
    finally:
        provider.make_request = original
        provider._request_func_cache = (None, None)


def _root_from_path(leaf_input: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """The RFC 9162 root that ``path`` leads to from leaf ``index`` of ``size`` leaves (the
    verification walk of section 2.1.3.2, run forwards)."""
    fn, sn = index, size - 1
    r = hashlib.sha256(b"\x00" + leaf_input).digest()
    for p in path:
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    assert sn == 0
    return r


@dataclass
class HugeBatch:
    world: World
    bundle: Bundle
    trust: TrustConfig

    def verify(self, reader: JsonRpcChainReader,
               as_of: datetime | None = None) -> VerificationReport:
        return verify(self.bundle.credential, self.bundle.receipt, trust=self.trust,
                      reader=reader, as_of=as_of)


def anchor_huge_batch(world: World, leaf_index: int, tree_size: int = MAX_TREE_SIZE,
                      position: tuple[int, int] = POSITION) -> HugeBatch:
    """One real credential at ``leaf_index`` of a batch that declares ``tree_size`` leaves
    (by default the contract's largest), its status at ``position`` (list, index) of the
    issuer's lists: the audit path's other hashes are made up, and the issuer anchors the root
    they lead to. Any issuer key can do this."""
    salt = new_salt()
    register_signing_key(world)
    digest = credential_digest(SIGNED)
    path = [secrets.token_bytes(32)
            for _ in range(inclusion_proof_length(leaf_index, tree_size))]
    root = _root_from_path(leaf_input(salt, digest, *position), leaf_index, tree_size, path)
    anchored = world.tx(world.issuer).transact(world.anchor.functions.anchor(root, tree_size))
    receipt = Receipt.create(
        credential_digest=digest, salt=salt, status_list=position[0],
        status_list_index=position[1], leaf_index=leaf_index, tree_size=tree_size,
        audit_path=path, root=root,
        anchor=Anchor(chain_id=world.chain.chain_id,
                      contract=bytes.fromhex(world.anchor.address[2:]),
                      transaction_hash=bytes(anchored["transactionHash"]),
                      block_number=anchored["blockNumber"],
                      block_hash=bytes(anchored["blockHash"]),
                      anchoring_key=bytes.fromhex(world.issuer.address[2:])))
    trust = TrustConfig(deployments=(TrustedDeployment(
        chain_id=world.chain.chain_id, anchor=world.anchor.address,
        registry=world.registry.address),))
    return HugeBatch(world, Bundle.create(SIGNED, receipt), trust)


def reader_for(world: World, **options: Any) -> JsonRpcChainReader:
    """A reader as the CLI and the service make one: by URL (anvil); the in-process chain has
    no URL, so its reader gets a Web3 of its own over the chain's provider, without web3's
    validation middleware, as a reader by URL has (it would ask for the chain id before every
    eth_call)."""
    url = world.chain.rpc_url
    if url:
        return JsonRpcChainReader(url, **options)
    w3 = Web3(world.chain.w3.provider)
    w3.middleware_onion.remove("validation")
    return JsonRpcChainReader(w3, **options)


def _per_receipt(world: World) -> int:
    return CALLS_PER_RECEIPT if world.chain.rpc_url else CALLS_PER_RECEIPT_BY_NUMBER


def _own_requests(calls: CountingCalls) -> int:
    """Requests the reader made. eth-tester's provider (the in-process chain) asks itself for
    its accounts three times per eth_call, to fill in a sender; those never reach a node, and
    the assertion on them keeps this count honest."""
    assert calls.methods["eth_accounts"] in (0, 3 * calls.methods["eth_call"]), calls.methods
    return calls.total - calls.methods["eth_accounts"]


def _failed(report: VerificationReport) -> list[str]:
    return [c.name for c in report.checks if c.status is CheckStatus.FAILED]


def change_status(world: World, action: str, position: tuple[int, int], reason: int = 2) -> None:
    """``revoke``/``suspend``/``reinstate`` entry ``position`` (list, index) of the world's
    issuer's lists, by the issuer."""
    status_list, index = position
    world.tx(world.issuer).transact(getattr(world.anchor.functions, action)(
        world.issuer_id, status_list, encode_status_indices([index]), reason))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("leaf_index", [0, 2**52 + 12_345, MAX_TREE_SIZE - 1])
def test_a_receipt_of_a_batch_of_2_53_leaves_costs_a_few_calls(world: World,
                                                                leaf_index: int) -> None:
    batch = anchor_huge_batch(world, leaf_index)
    receipt = batch.bundle.receipt
    per_receipt = _per_receipt(world)
    first = reader_for(world)
    with counted(first.w3) as calls:
        report = batch.verify(first)
    assert report.valid, report.to_dict()
    assert _own_requests(calls) <= per_receipt, calls.methods
    # anchor, its registry, trust, entity, signing key, signing key trust, status
    assert calls.methods["eth_call"] <= 7, calls.methods
    assert 0 < calls.status_words <= STATUS_WINDOW_WORDS

    # Later (blocks come), its issuer revokes it: a fresh reader sees it, at the same cost.
    world.chain.increase_time(100)
    world.chain.mine(40)
    change_status(world, "revoke", (receipt.status_list, receipt.status_list_index))
    world.chain.mine(20)
    second = reader_for(world)
    with counted(second.w3) as calls:
        revoked = batch.verify(second)
    assert _failed(revoked) == ["not_revoked"]
    assert _own_requests(calls) <= per_receipt, calls.methods
    assert calls.status_words <= STATUS_WINDOW_WORDS

    # As of just after anchoring: the status as it stood then (not revoked), found by a
    # binary search over block times that grows with the chain's height (log2), never with
    # the tree, and then one check that the head still stands.
    anchored_at = revoked.anchored_at
    assert anchored_at is not None
    third = reader_for(world)
    with counted(third.w3) as calls:
        then = batch.verify(third, as_of=datetime.fromtimestamp(anchored_at + 1, UTC))
    assert then.valid, then.to_dict()
    height = world.chain.w3.eth.block_number
    assert then.check("not_revoked").evidence["atBlock"] < height - 60
    search = height.bit_length() + 2  # block reads of the search, and the head's check
    assert calls.methods["eth_getBlockByNumber"] >= height.bit_length() - 1, calls.methods
    assert _own_requests(calls) <= per_receipt + search, calls.methods
    assert calls.status_words <= STATUS_WINDOW_WORDS


def test_neighbours_in_a_list_share_their_status_window(world: World) -> None:
    """Neighbouring entries of an issuer's list are judged from one window read: credentials
    issued together cost one status call per 2,048 of them, not one each; each entry reads its
    own bit (entry 0 the word's most significant)."""
    batch = anchor_huge_batch(world, 2**40)
    status_list = POSITION[0]
    first_entry, last_entry = WINDOW
    change_status(world, "revoke", (status_list, first_entry))
    change_status(world, "suspend", (status_list, last_entry))
    reader = reader_for(world, head_max_age=3600)
    anchor, entity = world.anchor.address, world.issuer_id
    with counted(reader.w3) as calls:
        assert batch.verify(reader).valid
        first = calls.total
        for _ in range(20):
            assert batch.verify(reader).valid
        # Same window: answered from it, each its own bit.
        assert reader.status_bits(anchor, entity, status_list, first_entry) == (True, False)
        assert reader.status_bits(anchor, entity, status_list, first_entry + 1) \
            == (False, False)
        assert reader.status_bits(anchor, entity, status_list, last_entry) == (False, True)
        assert calls.total == first, calls.methods  # all from the head's view
        assert calls.status_words == STATUS_WINDOW_WORDS
        # The next window is another read (so the ones above really were answered from one),
        # as is the same entry of another list.
        status_calls = calls.methods["eth_call"]
        assert reader.status_bits(anchor, entity, status_list, last_entry + 1) \
            == (False, False)
        assert reader.status_bits(anchor, entity, status_list + 1, last_entry) \
            == (False, False)
        assert calls.methods["eth_call"] == status_calls + 2, calls.methods


def test_a_shared_reader_never_answers_from_an_abandoned_branch(world: World) -> None:
    """One reader, its caches warm: the chain is reorganised (the anchor's block replaced),
    then the credential is judged again through the same reader once it has looked at the
    head again. It says what the new branch holds, though every cache entry of the old one
    would still be within its size limits."""
    before_anchoring = world.chain.snapshot()
    batch = anchor_huge_batch(world, 7)
    clock = FakeClock()
    reader = reader_for(world, clock=clock)
    assert batch.verify(reader).valid
    old_head = reader.latest_block()

    # The anchor's block is reorganised away; as many blocks are mined in its place, so the
    # head has the same number and another hash.
    world.chain.revert(before_anchoring)
    world.chain.mine(old_head - world.chain.w3.eth.block_number)
    assert world.chain.w3.eth.block_number == old_head
    clock.now += 1.5  # past head_max_age: the reader looks at the head again
    report = batch.verify(reader)
    assert _failed(report) == ["anchored_on_chain"], report.to_dict()

    # And on the new branch, the issuer anchors the same root again and revokes the
    # credential: the same reader sees exactly that.
    again = anchor_huge_batch_again(world, batch)
    change_status(world, "revoke", POSITION, 1)
    clock.now += 1.5
    assert _failed(again.verify(reader)) == ["not_revoked"]


def anchor_huge_batch_again(world: World, batch: HugeBatch) -> HugeBatch:
    """``batch``'s root anchored once more (on another branch), with a receipt naming the new
    block."""
    receipt = batch.bundle.receipt
    register_signing_key(world)  # its registration went with the old branch
    anchored = world.tx(world.issuer).transact(world.anchor.functions.anchor(receipt.root,
                                                                             MAX_TREE_SIZE))
    document = receipt.to_dict()
    document["anchor"].update(blockNumber=anchored["blockNumber"],
                              blockHash="0x" + bytes(anchored["blockHash"]).hex(),
                              transactionHash="0x" + bytes(anchored["transactionHash"]).hex())
    return HugeBatch(world, Bundle.create(SIGNED, Receipt.from_dict(document)),
                     batch.trust)


def test_a_node_without_past_state_is_named_not_called_unreachable(tmp_path: Path) -> None:
    """anvil restarted from its state file keeps the blocks but not the state of old ones:
    judging a credential as of a time before the restart is refused by the node, and the
    report says so plainly."""
    state = tmp_path / "anvil-state.json"
    first = AnvilChain.start(state_path=state)
    try:
        world = build_world(first)
        batch = anchor_huge_batch(world, 3, tree_size=8)
        first.increase_time(3600)
        first.mine(3)
    finally:
        first.close()
    restarted = AnvilChain.start(state_path=state)
    try:
        # The clock shift is not saved with the state: shift it again, so that block times
        # still grow.
        restarted.increase_time(7200)
        restarted.mine(2)
        then = datetime.fromtimestamp(restarted.w3.eth.get_block(
            batch.bundle.receipt.anchor.block_number)["timestamp"] + 1, UTC)
        report = verify(batch.bundle.credential, batch.bundle.receipt, trust=batch.trust,
                        reader=JsonRpcChainReader(restarted.w3), as_of=then)
        now = verify(batch.bundle.credential, batch.bundle.receipt, trust=batch.trust,
                     reader=JsonRpcChainReader(restarted.w3))
        # The CLI says the same.
        bundle, trust = tmp_path / "bundle.json", tmp_path / "trust.json"
        bundle.write_text(batch.bundle.to_json(), encoding="utf-8")
        trust.write_text(batch.trust.model_dump_json(by_alias=True), encoding="utf-8")
        cli = subprocess.run(
            [sys.executable, "-m", "verifier.cli", str(bundle), "--trust", str(trust),
             "--rpc-url", str(restarted.rpc_url), "--as-of", then.isoformat()],
            capture_output=True, text=True, timeout=120, check=False)
    finally:
        restarted.close()
    assert "the node has no state for block" in cli.stdout, cli.stdout + cli.stderr
    assert "unreachable" not in cli.stdout
    assert now.valid, now.to_dict()  # the present state is there
    status = report.check("not_revoked")
    assert status.status is CheckStatus.NOT_CHECKED
    block = batch.bundle.receipt.anchor.block_number
    assert f"the node has no state for block {block}" in status.detail, status.detail
    assert "not an archive node, or restarted" in status.detail
    assert "unreachable" not in status.detail


def test_one_reader_shared_by_threads_while_blocks_come(anvil_world: World) -> None:
    """Eight threads verify through one reader that asks for the head for every
    verification, while blocks are mined (each a new head, so views are replaced under the
    verifications' feet): every answer is right, the valid bundle valid and the revoked one
    revoked. (That a change of state between two reads of one verification is never mixed
    into it is tested deterministically in test_shared_reader_consistency.py.)"""
    valid = anchor_huge_batch(anvil_world, 2**30, position=(1, 10))
    revoked = anchor_huge_batch(anvil_world, 2**31, position=(1, 11))
    change_status(anvil_world, "revoke", (1, 11))
    reader = JsonRpcChainReader(str(anvil_world.chain.rpc_url), head_max_age=0)
    outcomes: list[tuple[bool, list[str]]] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(8):
            good, bad = valid.verify(reader), revoked.verify(reader)
            with lock:
                outcomes.append((good.valid, _failed(bad)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    pause = threading.Event()  # never set: a wait between blocks leaves the cores to readers
    while any(thread.is_alive() for thread in threads):
        anvil_world.chain.mine(1)
        pause.wait(0.02)
    for thread in threads:
        thread.join()
    assert len(outcomes) == 8 * 8
    assert all(outcome == (True, ["not_revoked"]) for outcome in outcomes), outcomes[:3]
