"""Work that public requests cannot multiply: ``/metrics`` counts the queue and the blocked
batches at most about once a second however often it is asked, and when the chain node does
not answer, the first trust check of an issuer holds one thread, not every submission."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchor_service.pipeline import BlockedBatches, Pipeline
from anchor_service.trust import IssuerTrust
from testkit.world import World
from tests.anchor_service.harness import running_service, trust_view_of_node


def test_metrics_count_the_queue_about_once_a_second(
        anvil_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans = 0
    blocked = Pipeline.blocked

    def counting(self: Pipeline) -> list[BlockedBatches]:
        nonlocal scans
        scans += 1
        return blocked(self)

    monkeypatch.setattr(Pipeline, "blocked", counting)
    with running_service(anvil_world, tmp_path, max_body_bytes=64 * 1024,
                         public_rate_limit=0) as service, service.client() as client:
        started = time.monotonic()
        for _ in range(100):
            answer = client.get("/metrics")
            assert answer.status_code == 200, answer.text
            assert "microcred_queue_depth" in answer.text
        elapsed = time.monotonic() - started
    assert 1 <= scans <= elapsed / 1.0 + 2, (scans, elapsed)


class Blackhole:
    """A TCP listener that takes connections and never answers, until closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.asked = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            self._held.append(connection)
            self.asked.set()

    def close(self) -> None:
        self.listener.close()
        for connection in self._held:
            connection.close()
        self._thread.join(10)


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    node = Blackhole()
    try:
        yield node
    finally:
        node.close()


def test_the_first_trust_check_holds_one_thread(tmp_path: Path, blackhole: Blackhole) -> None:
    store, issuer, view = trust_view_of_node(tmp_path / "db.sqlite3",
                                             f"http://127.0.0.1:{blackhole.port}", timeout=120)
    answers: dict[str, IssuerTrust | None] = {}

    def ask(name: str) -> None:
        answers[name] = view.cached(issuer.id)

    first = threading.Thread(target=ask, args=("first",), daemon=True)
    second = threading.Thread(target=ask, args=("second",), daemon=True)
    try:
        first.start()
        assert blackhole.asked.wait(30), "the first check never asked the node"
        second.start()
        second.join(20)  # bounded: on a blocking first check it would wait for the node
        assert not second.is_alive(), "the second caller waits for the first one's answer"
        assert answers == {"second": None}  # unknown: the caller goes on as if trusted
        assert first.is_alive()  # still waiting for the node
    finally:
        blackhole.close()  # the first check gets its error and ends
        first.join(30)
        second.join(30)
        store.close()
    assert answers == {"first": None, "second": None}
