"""The shared chain reader on real chains (in-process and anvil, some through a counting and
faulting JSON-RPC proxy): one verification reads one state of the chain, a reorganisation
never lets an answer of the abandoned branch be mixed with the new one, a node that hangs or
refuses is not asked again and again, and errors name neither the node's URL nor any part of
it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_utils.crypto import keccak

from testkit.world import World
from tests.anchor_service.rpc_proxy import CountingRpcProxy
from tests.verifier.test_bounded_chain_reads import (
    MAX_TREE_SIZE,
    POSITION,
    FakeClock,
    HugeBatch,
    anchor_huge_batch,
    change_status,
    reader_for,
)
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import AnchorInfo, read
from verifier.errors import ChainReadError
from verifier.receipt import Bundle, Receipt
from verifier.verify import CheckStatus, VerificationReport

TRUSTED_AT = "0x" + keccak(text="trustedAt(address,uint40)")[:4].hex()
STATUS_WORDS = "0x" + keccak(text="statusWords(uint64,uint32,uint256,uint256)")[:4].hex()


def _failed(report: VerificationReport) -> list[str]:
    return [c.name for c in report.checks if c.status is CheckStatus.FAILED]


@contextmanager
def after_call(reader: JsonRpcChainReader, selector: str,
               action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` once, right after the first ``eth_call`` of ``selector`` that the
    reader's node answers (in the middle of a verification)."""
    provider: Any = reader.w3.provider
    original = provider.make_request
    fired = threading.Event()

    def hooked(method: str, params: Any) -> Any:
        answer = original(method, params)
        if (method == "eth_call" and not fired.is_set()
                and str(params[0].get("data", "")).startswith(selector)):
            fired.set()  # first: the action's own requests may pass through here too
            action()
        return answer

    provider.make_request = hooked
    provider._request_func_cache = (None, None)  # web3 keeps the composed function
    try:
        yield
    finally:
        provider.make_request = original
        provider._request_func_cache = (None, None)
    assert fired.is_set(), "the hooked call was never made"


def test_a_change_between_the_reads_of_one_verification_never_mixes_two_states(
        world: World) -> None:
    """At one head the credential is suspended (not valid); at the next its suspension is
    lifted but its key revoked back to before it anchored (not valid either). The change lands
    right after the verification has read the key's trust, with the reader asking for the
    head as often as it likes: the report is that of one head, never a VALID mix of both."""
    batch = anchor_huge_batch(world, 5, tree_size=16)
    root = batch.bundle.receipt.root
    change_status(world, "suspend", POSITION, 1)
    anchor = world.anchor.functions
    anchored_at = read(AnchorInfo, anchor.anchorOf(world.issuer.address, root)).anchored_at

    def lift_and_revoke_key() -> None:
        change_status(world, "reinstate", POSITION, 1)
        world.tx(world.body).transact(world.registry.functions.revokeKey(
            world.issuer.address, anchored_at))

    reader = reader_for(world, head_max_age=0)  # a head as fresh as can be, for every read
    with after_call(reader, TRUSTED_AT, lift_and_revoke_key):
        report = batch.verify(reader)
    assert not report.valid, report.to_dict()
    assert _failed(report) == ["not_suspended"], report.to_dict()  # the first head's state
    # And the next verification judges the second head's state, whole.
    assert _failed(batch.verify(reader)) == ["issuer_trusted_at_anchoring"]


def test_a_read_after_an_unseen_reorganisation_is_not_mixed_with_the_old_branch(
        world: World) -> None:
    """Branch A: the root anchored, the credential revoked. Branch B (same height): the root
    anchored one block later, nothing revoked. A reader whose cache holds A's anchor, block,
    trust and entity, but not yet the credential's status, is asked after the switch to B
    before it has looked at the head again: it must not combine A's anchor with B's status
    (VALID, though neither branch says so); it sees the reorganisation and judges by B."""
    before_anchoring = world.chain.snapshot()
    batch = anchor_huge_batch(world, 7)
    receipt = batch.bundle.receipt
    change_status(world, "revoke", POSITION, 1)
    world.chain.mine(3)
    clock = FakeClock()
    reader = reader_for(world, clock=clock)
    key = world.issuer.address
    status = reader.anchor_of(world.anchor.address, key, receipt.root)
    # What other verifications of this batch leave in the cache (not this one's status).
    assert reader.block(status.block_number) is not None
    reader.trusted_at(world.registry.address, key, status.anchored_at)
    reader.entity(world.registry.address, status.entity_id)

    height = world.chain.w3.eth.block_number
    world.chain.revert(before_anchoring)
    world.chain.mine(1)
    world.tx(world.issuer).transact(world.anchor.functions.anchor(receipt.root,
                                                                  MAX_TREE_SIZE))
    world.chain.mine(height - world.chain.w3.eth.block_number)
    assert world.chain.w3.eth.block_number == height  # same height, another branch

    report = batch.verify(reader)  # the clock has not moved: no reason to ask for the head
    assert not report.valid, report.to_dict()
    assert _failed(report) == ["anchored_on_chain"], report.to_dict()  # B's truth, whole
    assert "not in the stated block" in report.check("anchored_on_chain").detail


def test_a_status_window_of_an_abandoned_branch_is_not_served(world: World) -> None:
    """A reader holds the status window of an entry as one head showed it (not revoked); the
    chain is reorganised to a branch where that entry is revoked. Once the reader has looked
    at the head again, it answers from the new branch: a head with another hash replaces the
    view, and its windows go with it."""
    before = world.chain.snapshot()
    world.chain.mine(3)
    clock = FakeClock()
    reader = reader_for(world, clock=clock)
    anchor, entity = world.anchor.address, world.issuer_id
    status_list, index = POSITION
    assert reader.status_bits(anchor, entity, status_list, index) == (False, False)
    height = reader.latest_block()

    world.chain.revert(before)
    change_status(world, "revoke", POSITION, 1)
    world.chain.mine(height - world.chain.w3.eth.block_number)
    assert world.chain.w3.eth.block_number == height  # same height, another branch
    assert reader.status_bits(anchor, entity, status_list, index) == (False, False)  # cached
    clock.now += 1.5  # past head_max_age: the reader looks at the head again
    assert reader.status_bits(anchor, entity, status_list, index) == (True, False)
    assert reader.status_bits(anchor, entity, status_list, index + 1) == (False, False)


@pytest.fixture
def node(anvil_world: World) -> Iterator[CountingRpcProxy]:
    with CountingRpcProxy(str(anvil_world.chain.rpc_url)) as proxy:
        yield proxy


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


class WatchedLock:
    """A lock that counts the threads that have come to take it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.arrived = 0

    def __enter__(self) -> WatchedLock:
        with self._count_lock:
            self.arrived += 1
        self._lock.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self._lock.release()


def test_a_head_request_that_hangs_is_made_once_for_every_waiting_thread(
        node: CountingRpcProxy) -> None:
    """The node hangs. Five threads need the head at once: one request is made and fails,
    and all five get that failure; none of the four that waited behind it makes a request of
    its own after it (each would keep the rest waiting for a whole timeout more)."""
    reader = JsonRpcChainReader(node.url, retries=False, clock=FakeClock())
    watched = WatchedLock()
    reader._refreshing = watched  # type: ignore[assignment]  # to know when all are queued
    node.hanging = True
    errors: list[str] = []
    lock = threading.Lock()

    def ask() -> None:
        try:
            reader.latest_block()
        except ChainReadError as exc:
            with lock:
                errors.append(str(exc))

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for thread in threads:
        thread.start()
    _wait_for(lambda: watched.arrived == 5 and node.calls("eth_getBlockByNumber") == 1,
              "every thread waits for the one head request")
    node.hanging = False
    node.release()  # the held request ends without an answer
    for thread in threads:
        thread.join(60)
    assert len(errors) == 5, errors
    assert len(set(errors)) == 1, errors
    assert "cannot connect to the node" in errors[0]
    assert node.calls("eth_getBlockByNumber") == 1

    # The next request for the head is made: a failure is not kept for later ones.
    assert reader.latest_block() > 0
    assert node.calls("eth_getBlockByNumber") == 2


def test_an_http_error_is_not_answered_with_more_requests(node: CountingRpcProxy,
                                                           anvil_world: World) -> None:
    """A node over its quota answers 429: the read fails with that, and the reader does not
    add a request for the head on top of it (which would only feed the quota)."""
    reader = JsonRpcChainReader(node.url, retries=False, clock=FakeClock())
    assert reader.latest_block() > 0
    before = sum(node.methods.values())
    node.rate_limited = True
    with pytest.raises(ChainReadError, match="HTTP 429"):
        reader.anchor_of(anvil_world.anchor.address, anvil_world.issuer.address, b"\x01" * 32)
    assert sum(node.methods.values()) == before + 1, node.methods


def test_a_node_error_that_is_not_missing_state_is_not_called_so(node: CountingRpcProxy,
                                                                 anvil_world: World) -> None:
    """The node refuses the status call, with an error that is not about missing state. As
    of a time after the last block, the status is read at the head, and the report gives the
    node's answer, not "no state for block"; as of a past time, it says it could not read
    the chain as of that block, with the node's answer, and still does not claim missing
    state."""
    world = anvil_world
    batch = anchor_huge_batch(world, 2, tree_size=4)
    anchored_at = read(AnchorInfo, world.anchor.functions.anchorOf(
        world.issuer.address, batch.bundle.receipt.root)).anchored_at
    world.chain.increase_time(100)
    world.chain.mine(5)
    node.errors[STATUS_WORDS] = "request refused: made up for the test"
    for as_of in (datetime(2100, 1, 1, tzinfo=UTC),
                  datetime.fromtimestamp(anchored_at + 1, UTC)):
        report = batch.verify(JsonRpcChainReader(node.url), as_of=as_of)
        check = report.check("not_revoked")
        assert check.status is CheckStatus.NOT_CHECKED, report.to_dict()
        assert "request refused: made up for the test" in check.detail
        assert "no state" not in check.detail, check.detail
        assert "archive" not in check.detail, check.detail
    assert "as of block" in check.detail, check.detail


def test_no_part_of_the_node_url_reaches_an_error(node: CountingRpcProxy,
                                                  anvil_world: World) -> None:
    """The URL's user, each path segment and each query value may be an API key, and a node
    may echo any one of them alone in its error: none reaches the error or the report."""
    secrets = ["user-key-4d1f9a", "path-key-77c0e2", "query-key-a81b3c", "second-seg-0f9e"]
    host = node.url.removeprefix("http://")
    url = (f"http://{secrets[0]}@{host}/{secrets[1]}/v1/{secrets[3]}"
           f"?apikey={secrets[2]}&chain=1")
    node.errors["eth_getBlockByNumber"] = (
        f"unknown project {secrets[1]}; user {secrets[0]}; key {secrets[2]}; "
        f"segment {secrets[3]}")
    reader = JsonRpcChainReader(url, retries=False)
    with pytest.raises(ChainReadError) as caught:
        reader.latest_block()
    message = str(caught.value)
    assert "unknown project" in message  # the node's answer is there, its secrets are not
    assert not [secret for secret in secrets if secret in message], message

    batch = anchor_huge_batch(anvil_world, 1, tree_size=2)
    report = batch.verify(JsonRpcChainReader(url, retries=False))
    text = str(report.to_dict())
    assert "unknown project" in text
    assert not [secret for secret in secrets if secret in text], text


def test_a_receipt_newer_than_the_cached_head_is_judged_at_a_newer_head(world: World) -> None:
    """A verification right after an anchor (a receipt served as soon as its batch is
    anchored) must not be judged at a head cached from before that anchor: there the root is
    not anchored yet, and a genuine credential would be reported not valid."""
    clock = FakeClock()  # never moves: the cached head is used as long as the reader may
    reader = reader_for(world, clock=clock)
    seen = reader.latest_block()
    batch = anchor_huge_batch(world, 3, tree_size=16)
    assert batch.bundle.receipt.anchor.block_number > seen
    report = batch.verify(reader)
    assert report.valid, report.to_dict()


def test_a_receipt_from_a_block_the_node_has_not_reached_is_not_checked(world: World) -> None:
    """A receipt naming a block after the node's head (a lagging node, or a made-up block) is
    neither valid nor evidence against the credential: the chain checks are not made."""
    batch = anchor_huge_batch(world, 3, tree_size=16)
    document = batch.bundle.receipt.to_dict()
    document["anchor"]["blockNumber"] += 1_000
    ahead = HugeBatch(world, Bundle.create(batch.bundle.credential, Receipt.from_dict(document)),
                      batch.trust)
    report = ahead.verify(reader_for(world))
    assert report.verdict == "not_checked", report.to_dict()
    detail = report.check("anchored_on_chain").detail
    assert detail.startswith("the node is behind the receipt: its head is block "), detail
