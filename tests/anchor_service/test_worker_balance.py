"""The workers' shares of connections: the shared counts, when a worker closes a connection
after its answer, and, over real sockets, that the server then answers ``Connection: close``
and closes it while a worker holding its share keeps its connections open."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from starlette.types import Receive, Scope, Send

from anchor_service._balance import EXCESS, PAUSE, WorkerBalance
from anchor_service.server import build_server
from anchor_service.settings import ServiceSettings
from testkit.net import free_port
from tests.anchor_service.harness import running


def _with_counts(balance: WorkerBalance, mine: int, others: list[int]) -> None:
    """Make ``balance`` this worker's (slot 0) with ``mine`` connections, the other slots
    holding ``others`` (-1: a dead worker)."""
    for slot, count in enumerate(others, start=1):
        balance.join(slot)
        for _ in range(count):
            balance.opened()
        if count < 0:
            balance.left(slot)
    balance.join(0)
    for _ in range(mine):
        balance.opened()


def test_a_worker_well_above_the_mean_closes_one_connection_at_a_time() -> None:
    balance = WorkerBalance(2)
    try:
        _with_counts(balance, 10, [6])
        assert balance.counts() == [10, 6]
        assert balance.shed()  # 10 is the mean (8) plus EXCESS
        assert not balance.shed()  # at most one every PAUSE seconds
        time.sleep(PAUSE * 1.5)
        assert balance.shed()
        balance.closed()
        time.sleep(PAUSE * 1.5)
        assert not balance.shed()  # 9 against 7: within EXCESS of the mean
    finally:
        balance.close()


def test_a_dead_worker_or_a_single_one_makes_nobody_close() -> None:
    balance = WorkerBalance(3)
    try:
        _with_counts(balance, 12, [0, -1])
        assert balance.counts() == [12, 0, -1]
        assert balance.shed()  # against the live one: mean 6
        time.sleep(PAUSE * 1.5)
        balance.join(1)
        balance.left(1)
        balance.join(0)
        for _ in range(12):
            balance.opened()
        assert balance.counts() == [12, -1, -1]
        assert not balance.shed()  # no other live worker to take a connection
        assert not WorkerBalance(1).shed()  # (never joined: one process serves)
    finally:
        balance.close()


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def _served(balance: WorkerBalance) -> Iterator[int]:
    settings = ServiceSettings(host="127.0.0.1", port=free_port(), max_connections=64)
    server, _ = build_server(_app, settings, balance=balance)
    with running(server):
        yield settings.port


def _answer(sock: socket.socket) -> tuple[bytes, bool]:
    """One answer on a kept-alive connection, and whether the server closed it after."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    sock.settimeout(0.5)
    try:
        closed = sock.recv(1) == b""
    except TimeoutError:
        closed = False
    return data, closed


@pytest.mark.parametrize("others", [[0], [20]])
def test_the_server_closes_a_connection_of_a_worker_above_its_share(others: list[int]) -> None:
    balance = WorkerBalance(2)
    try:
        _with_counts(balance, 0, others)
        with _served(balance) as port:
            sockets = [socket.create_connection(("127.0.0.1", port), timeout=10)
                       for _ in range(EXCESS + 3)]
            try:
                answers = [_answer(sock) for sock in sockets]
            finally:
                for sock in sockets:
                    sock.close()
        closing = [(b"connection: close" in head.lower(), closed) for head, closed in answers]
        if others == [0]:
            # Alone with every connection: some are closed after their answer, each with
            # the header (at most one every PAUSE seconds), and never all of them.
            assert set(closing) <= {(True, True), (False, False)}
            assert 1 <= closing.count((True, True)) < len(sockets)
        else:  # far below the other worker's share: every connection kept
            assert closing == [(False, False)] * len(sockets)
    finally:
        balance.close()
