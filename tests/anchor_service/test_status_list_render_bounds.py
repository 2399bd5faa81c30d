"""The public status-list route bounds the work and the waiting one list costs: a request for
a list that another request is rendering waits a bounded time, then is served the previous
rendering while it is within its validity, else 503 ``busy``; a rendering that failed is
answered again for a second instead of being tried by each waiter in turn; a rendering in
flight while the status watcher starts is not trusted as up to date. The renderer on
the in-process chain and on anvil; a rendering held in flight by a signer lookup that waits
for the test."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from anchor_service.errors import StatusListRequestError
from anchor_service.signing import IssuerSigner
from anchor_service.status_lists import RenderedList, StatusLists, StatusWatcher
from anchor_service.store import Store
from testkit.net import free_port
from testkit.world import World, issuer_signing_key, serve_issuer
from verifier.bitstring import bit, decode_list
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import StatusPurpose, encode_status_indices


class HeldSigner:
    """The signer lookup of the renderer: counts its calls and, once ``hold`` is set, keeps
    the rendering in flight until ``release``."""

    def __init__(self, signer: IssuerSigner) -> None:
        self.signer = signer
        self.calls = 0
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, _issuer_id: int) -> IssuerSigner:
        self.calls += 1
        if self.hold:
            self.entered.set()
            self.release.wait(60)
        return self.signer


def renderer(world: World, tmp_path: Path, clock: Any) -> tuple[StatusLists, str, HeldSigner]:
    store = Store(tmp_path / "service.sqlite3")
    issuer = serve_issuer(store, world, keystore_dir=tmp_path / "keys")
    held = HeldSigner(IssuerSigner(issuer.did, issuer_signing_key()))
    lists = StatusLists(world.chain.w3, world.deployment, store, held, validity=100,
                        confirmations=1, clock=clock, render_wait=0.2)
    return lists, issuer.name, held


def _in_flight(lists: StatusLists, name: str, held: HeldSigner) -> threading.Thread:
    """A request rendering the list, held in flight until ``held.release``."""
    held.hold = True
    thread = threading.Thread(
        target=lambda: lists.current(name, 0, StatusPurpose.REVOCATION), daemon=True)
    thread.start()
    assert held.entered.wait(60)
    return thread


def test_a_waiter_gets_503_busy_when_no_rendering_is_there(world: World,
                                                            tmp_path: Path) -> None:
    lists, name, held = renderer(world, tmp_path, time.time)
    thread = _in_flight(lists, name, held)
    try:
        with pytest.raises(StatusListRequestError) as busy:
            lists.current(name, 0, StatusPurpose.REVOCATION)
    finally:
        held.release.set()
        thread.join(60)
    assert busy.value.http_status == 503
    assert busy.value.error_code == "busy"
    assert held.calls == 1  # the waiter did not render on its own


def test_a_waiter_gets_the_previous_rendering_while_it_is_valid(world: World,
                                                                 tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    lists, name, held = renderer(world, tmp_path, lambda: now[0])
    first = lists.current(name, 0, StatusPurpose.REVOCATION)
    now[0] += 60  # past half of its validity: rendered again at the next request
    thread = _in_flight(lists, name, held)
    try:
        served: RenderedList = lists.current(name, 0, StatusPurpose.REVOCATION)
    finally:
        held.release.set()
        thread.join(60)
    assert served is first
    assert held.calls == 2  # the first rendering, and the one held in flight


def test_a_failed_rendering_is_answered_again_for_a_second(world: World,
                                                           tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    lists, name, _held = renderer(world, tmp_path, lambda: now[0])
    # The node goes away before anything is rendered: nothing listens on this port.
    lists.reader = JsonRpcChainReader(f"http://127.0.0.1:{free_port()}", timeout=2,
                                      retries=False, head_max_age=0)
    reads = [0]
    head = lists.head

    def counted() -> Any:  # the real read, counted: each rendering asks for the head first
        reads[0] += 1
        return head()

    lists.head = counted  # type: ignore[method-assign]
    refusals = []
    for _ in range(3):
        with pytest.raises(StatusListRequestError) as refused:
            lists.current(name, 0, StatusPurpose.REVOCATION)
        refusals.append(refused.value.error_code)
    tried_once = reads[0]
    now[0] += 1.5
    with pytest.raises(StatusListRequestError):
        lists.current(name, 0, StatusPurpose.REVOCATION)

    assert refusals == ["chain_unavailable"] * 3
    assert tried_once == 1
    assert reads[0] == 2  # tried again once the second had passed


def test_a_rendering_in_flight_while_the_watcher_starts_is_not_trusted(
        world: World, tmp_path: Path) -> None:
    """A list read at block R, kept only after the watcher's first round began past R, may
    miss a change between the two: it is rendered again at its next request."""
    lists, name, held = renderer(world, tmp_path, time.time)
    watcher = StatusWatcher(lists, interval=3600)
    thread = _in_flight(lists, name, held)  # its block is read: the rendering waits to sign
    try:
        world.tx(world.issuer).transact(world.anchor.functions.revoke(
            world.issuer_id, 0, encode_status_indices([9]), 0))
        watcher.poll()  # its first round: nothing kept yet, so it starts after the head
    finally:
        held.hold = False
        held.release.set()
        thread.join(60)
    served = lists.current(name, 0, StatusPurpose.REVOCATION)
    bits = decode_list(json.loads(served.body)["credentialSubject"]["encodedList"])
    assert bit(bits, 9)
    assert lists.renders == 2
