"""The guarded HTTP protocol of anchor_service/server.py over real sockets: the server that
``build_server`` makes (uvicorn, the service's limits) serving a small app in a thread.
Pipelined requests, heads over the size limit, and bodies that come after their answer."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from anchor_service.server import (
    MAX_HEAD_BYTES,
    PARSE_PIECE,
    BodyTimeout,
    GuardedHttpToolsProtocol,
    build_server,
)
from anchor_service.settings import ServiceSettings
from testkit.net import free_port
from tests.anchor_service.harness import running

HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0
BIG = 2 * 2**20  # the size of GET /big's answer: far more than the socket buffers hold


class App:
    """``GET /n/{text}`` answers ``text``; ``GET /big`` answers :data:`BIG` bytes;
    ``POST /read`` answers the length of its body; ``POST /early`` answers 413 without
    reading its body; ``GET /hold`` answers once :attr:`release` is set; ``GET /slow``
    answers after longer than the body timeout."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.held = threading.Event()  # a /hold request is waiting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, status, body = scope["path"], 200, b""
        if path.startswith("/n/"):
            body = path[3:].encode()
        elif path == "/big":
            body = b"x" * BIG
        elif path == "/read":
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            body = str(len(body)).encode()
        elif path == "/early":
            status, body = 413, b"too large"
        elif path == "/slow":
            await asyncio.sleep(BODY_TIMEOUT + 1.0)
        elif path == "/hold":
            self.held.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        elif path == "/late":  # the head at once, the body a while later
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"4")]})
            await asyncio.sleep(1.0)
            await send({"type": "http.response.body", "body": b"late"})
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


@contextmanager
def _served(app: App) -> Iterator[tuple[int, uvicorn.Server]]:
    """``app`` behind the service's server (its body timeout too), on a free loopback port;
    the port and the server."""
    settings = ServiceSettings(host="127.0.0.1", port=free_port(), header_timeout=HEADER_TIMEOUT,
                               body_timeout=BODY_TIMEOUT, max_connections=64)
    server, _ = build_server(BodyTimeout(app, BODY_TIMEOUT), settings)
    with running(server):
        yield settings.port, server


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def served(app: App) -> Iterator[tuple[int, uvicorn.Server]]:
    with _served(app) as served:
        yield served


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def _read_answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """``count`` answers (status, body) read from ``sock``, each with a Content-Length."""
    buffer = b""
    answers: list[tuple[int, bytes]] = []
    while len(answers) < count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = buffer[:end].decode("latin-1").split("\r\n")
            length = next(int(line.split(":", 1)[1]) for line in head
                          if line.lower().startswith("content-length:"))
            if len(buffer) >= end + 4 + length:
                answers.append((int(head[0].split()[1]), buffer[end + 4:end + 4 + length]))
                buffer = buffer[end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(answers)} answers"
        buffer += chunk
    return answers


def _closed_by_server(sock: socket.socket, within: float) -> bytes:
    """What the server sent before closing ``sock`` (it must close within ``within`` s)."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def test_the_service_is_served_by_uvicorns_httptools_protocol(
        served: tuple[int, uvicorn.Server]) -> None:
    """httptools parses the requests (about 40 % more of them a second than h11, whose
    pure-Python parser the service used before)."""
    _, server = served
    protocol = server.config.http
    assert isinstance(protocol, type)
    assert issubclass(protocol, HttpToolsProtocol)


def test_pipelined_requests_are_answered_in_order(served: tuple[int, uvicorn.Server]) -> None:
    """Thousands of tiny requests in one go, with a body-carrying one among them: each is
    answered, in order, on the one connection."""
    port, _ = served
    post = b"POST /read HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n" + b"b" * 5000
    requests = [_get(f"/n/{n}") for n in range(3000)]
    requests.insert(1500, post)
    with _connect(port) as sock:
        sock.sendall(b"".join(requests))
        answers = _read_answers(sock, len(requests))
    expected = [(200, str(n).encode()) for n in range(3000)]
    expected.insert(1500, (200, b"5000"))
    assert answers == expected


def test_pipelined_requests_for_large_answers_read_slowly_are_answered_whole(
        served: tuple[int, uvicorn.Server]) -> None:
    """A client that pipelines requests for answers far larger than the socket buffers and
    reads them as they come gets every byte of each (the server's writes to it wait for it
    again and again)."""
    port, _ = served
    with _connect(port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(_get("/big") * 3 + _get("/n/last"))
        received = b""
        total = 3 * (BIG + 40) + 40  # the answers' bodies, and more than their heads
        while b"\r\n\r\nlast" not in received:
            chunk = sock.recv(65536)
            assert chunk, "closed"
            received += chunk
            assert len(received) < total + 4096
        assert received.count(b"HTTP/1.1 200 ") == 4
        assert received.count(b"x") == 3 * BIG


def test_a_request_head_over_the_limit_is_answered_400_and_closed(
        served: tuple[int, uvicorn.Server]) -> None:
    port, _ = served
    with _connect(port) as sock:  # just under the limit: served
        sock.sendall(b"GET /n/ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "
                     + b"p" * (MAX_HEAD_BYTES - 100) + b"\r\n\r\n")
        assert _read_answers(sock, 1) == [(200, b"ok")]
    with _connect(port) as sock:  # over it, in one go, and never finished
        sock.sendall(b"GET /n/ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "
                     + b"p" * (MAX_HEAD_BYTES + 1000))
        assert _closed_by_server(sock, 20).startswith(b"HTTP/1.1 400 ")
    with _connect(port) as sock:  # over it a piece at a time, each well within the timeout
        sock.sendall(b"GET /n/ok HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for n in range(MAX_HEAD_BYTES // 1000 + 5):
            try:
                sock.sendall(f"X-Pad-{n}: ".encode() + b"p" * 1000 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.01)
        answer = _closed_by_server(sock, 20)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]


def test_a_body_sent_after_its_answer_is_dropped_and_the_connection_serves_on(
        served: tuple[int, uvicorn.Server]) -> None:
    """A request answered before its body was read (413): the body that follows at once is
    read and dropped, and the next requests on the connection are served."""
    port, _ = served
    with _connect(port) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200000\r\n\r\n")
        assert _read_answers(sock, 1) == [(413, b"too large")]
        sock.sendall(b"z" * 200_000 + _get("/n/next"))
        assert _read_answers(sock, 1) == [(200, b"next")]


def test_a_request_after_a_dropped_body_may_take_longer_than_the_body_timeout(
        served: tuple[int, uvicorn.Server]) -> None:
    """The time allowed for the rest of an answered request's body ends with that body,
    also when the next request comes in the same packet as its end: that request's answer
    may take longer than the body timeout."""
    port, _ = served
    with _connect(port) as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
        assert _read_answers(sock, 1) == [(413, b"too large")]
        sock.sendall(b"z" * 1000 + _get("/slow") + _get("/n/after"))
        assert _read_answers(sock, 2) == [(200, b""), (200, b"after")]


def test_a_kept_alive_connection_that_starts_no_next_request_is_closed(
        served: tuple[int, uvicorn.Server]) -> None:
    """After an answer, the connection has the head timeout for its next head: a head begun
    and never finished is closed."""
    port, _ = served
    with _connect(port) as sock:
        sock.sendall(_get("/n/first"))
        assert _read_answers(sock, 1) == [(200, b"first")]
        sock.sendall(b"GET /n/second HTTP/1.1\r\nHost: 127.")
        assert _closed_by_server(sock, HEADER_TIMEOUT + 20) == b""


def test_pipelined_requests_wait_as_bytes_not_as_parsed_requests(
        app: App, served: tuple[int, uvicorn.Server]) -> None:
    """Behind a request being answered, at most the requests of one parser piece are parsed
    and queued; the rest wait unparsed (uvicorn alone would queue thousands, each about
    2 KiB of objects), and are answered in order once their turn comes."""
    port, server = served
    tiny = [_get(f"/n/{n}") for n in range(10_000)]
    with _connect(port) as sock:
        sock.sendall(_get("/hold"))
        assert app.held.wait(20)
        sock.sendall(b"".join(tiny))
        (connection,) = server.server_state.connections
        assert isinstance(connection, HttpToolsProtocol)
        deadline = time.monotonic() + 20
        while not connection.pipeline:  # until the first of them is queued
            assert time.monotonic() < deadline, "no pipelined request queued"
            time.sleep(0.05)
        time.sleep(0.5)  # the rest received meanwhile: held, not parsed
        assert len(connection.pipeline) <= PARSE_PIECE // len(tiny[0])
        app.release.set()
        answers = _read_answers(sock, 1 + len(tiny))
    assert answers[1:] == [(200, str(n).encode()) for n in range(len(tiny))]


def test_a_small_answer_goes_out_in_one_send(served: tuple[int, uvicorn.Server],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn writes an answer's head and body apart: the head is held for the body, so that
    a small answer is one write to the connection's transport (one send, one segment for its
    client to wake for). A head whose body comes later still goes out at once, and a HEAD
    request's answer too."""
    port, _ = served
    sends: list[bytes] = []

    class Counted:
        """The event loop's transport, its writes counted."""

        def __init__(self, transport: asyncio.Transport) -> None:
            self._transport = transport

        def write(self, data: bytes) -> None:
            sends.append(bytes(data))
            self._transport.write(data)

        def writelines(self, pieces: list[bytes]) -> None:
            sends.append(b"".join(pieces))
            self._transport.writelines(pieces)

        def __getattr__(self, name: str) -> object:
            return getattr(self._transport, name)

    made = GuardedHttpToolsProtocol.connection_made

    def counted(protocol: GuardedHttpToolsProtocol, transport: asyncio.Transport) -> None:
        made(protocol, Counted(transport))  # type: ignore[arg-type]

    monkeypatch.setattr(GuardedHttpToolsProtocol, "connection_made", counted)
    with _connect(port) as sock:
        for n in range(3):
            sock.sendall(_get(f"/n/answer-{n}"))
            assert _read_answers(sock, 1) == [(200, f"answer-{n}".encode())]
        answers = [sent for sent in sends if sent.startswith(b"HTTP/1.1 ")]
        assert len(answers) == 3
        assert all(sent.endswith(b"answer-%d" % n) for n, sent in enumerate(answers))
        assert len(sends) == 3
        sock.sendall(_get("/late"))
        sock.settimeout(0.8)  # the body comes after a second: the head is there before
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 ")
        sock.settimeout(20)
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < 4:
            body += sock.recv(65536)
        assert body == b"late"
        sock.sendall(b"HEAD /n/headless HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 ")
