"""The HTTP server around the app: uvicorn with its httptools protocol (the C parser of
llhttp), with the limits that keep slow or idle clients from exhausting the process.

- **Request head time**: a connection has ``header_timeout`` seconds to send its request line
  and headers (again after each response, on a kept-alive connection); then it is closed.
  uvicorn itself has no such timeout: a client that never finishes its headers would hold
  its socket for ever.
- **Request head size**: a head still incomplete after :data:`MAX_HEAD_BYTES` (16 KiB) is
  answered 400 and its connection closed (reset at once if an answer to an earlier request
  on it is being written). httptools itself would gather a head of any size.
- **Pipelined requests**: the parser is given :data:`PARSE_PIECE` bytes at a time, and once
  a request waits behind the one being answered, the rest of what came is held unparsed and
  reading paused until its turn: a client pipelining thousands of tiny requests makes the
  process hold its bytes, not thousands of queued requests.
- **Connection cap**: at most ``max_connections`` open connections. A new one beyond the cap
  closes the connection whose request has been unfinished for the longest time (no complete
  head yet, a body still coming, or idle between kept-alive requests: a client that sends
  its request at once is served before slow ones can push it out), or is itself closed when
  every open connection has a whole request being answered. The cap is kept well below the
  open-files limit (whose soft value is raised to the hard one at start), so that the
  database, the chain node's connections and the anchoring pipeline always find file
  descriptors.
- **Body time**: :class:`BodyTimeout` gives a request ``body_timeout`` seconds to send its
  whole body, then answers 408 and closes the connection. A request answered before its
  body was read (413, 401, 429) has ``body_timeout`` seconds from the end of its answer to
  finish sending the body it announced, which is read and dropped; then the connection is
  closed.
- **Reading the answer**: each connection's write buffer is small
  (:data:`WRITE_BUFFER_HIGH` bytes), and :class:`ChunkedAnswers` hands a large answer to the
  server in pieces of :data:`ANSWER_CHUNK` bytes, each written once the client has taken the
  previous ones, so a client that does not read makes the process queue at most about that
  much for it. A connection whose client has read nothing for
  ``body_timeout`` seconds while its answer waits is closed, and such a stalled connection
  may be closed at once for a new one at the cap, like one with an unfinished request.
- **Proxy headers**: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the
  configured ``trusted_proxies`` (none by default): otherwise anyone could pick the address
  that rate limits count against.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import resource
import socket
import struct
from collections.abc import Callable
from typing import Any, ClassVar

import uvicorn
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from anchor_service._balance import WorkerBalance
from anchor_service.settings import ServiceSettings

__all__ = [
    "BodyTimeout",
    "ChunkedAnswers",
    "ConnectionGuard",
    "build_server",
    "connection_cap",
    "guarded_protocol",
    "raise_open_files_limit",
    "run_server",
]

log = logging.getLogger("anchor_service.server")

MAX_HEAD_BYTES = 16 * 1024  # a request line and headers larger than this get 400
# The most bytes given to the HTTP parser at once: it parses all it is given, and every
# request found behind the one being answered is queued as Python objects (see
# GuardedHttpToolsProtocol._parse).
PARSE_PIECE = 4 * 1024
# The listen backlog, which asyncio also uses as the number of connections it accepts in one
# go before any of them reaches the protocol (and the cap): a burst of 2,048 (uvicorn's
# default) would hold that many descriptors, whatever the cap, until they are refused.
BACKLOG = 64
# The write buffer of a connection: past this many bytes waiting for a client that does not
# read, the answer's sender waits (and the connection counts as stalled). With answers written
# in pieces of ANSWER_CHUNK bytes, a stalled connection holds about the two of them in the
# process, beyond the kernel's socket buffer.
WRITE_BUFFER_HIGH = 16 * 1024
ANSWER_CHUNK = 16 * 1024  # the largest piece of an answer written at once
# The kernel's send buffer of a connection (Linux doubles it). Left to autotuning, it grows to
# megabytes (about 3 MB on loopback) for a client that does not read; this keeps a stalled
# connection's kernel memory small while allowing about 2.5 MB/s at a 100 ms round trip.
SEND_BUFFER = 128 * 1024


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard limit (where allowed); return the soft
    limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, exc)
    return soft


def connection_cap(requested: int, open_files: int) -> int:
    """``requested``, lowered if needed so that two bursts of accepted connections that have
    not reached the cap yet (see :data:`BACKLOG`) fit beside it, and half of ``open_files``
    (no fewer than 128) stays free for everything that is not an HTTP client: the database
    (a SQLite connection per worker thread, each with its WAL files), the chain node,
    keystores, the pipeline. (A quarter was found too little under a full test run's load.)"""
    if open_files == resource.RLIM_INFINITY:
        return requested
    available = max(1, open_files - max(128, open_files // 2) - 2 * BACKLOG)
    if requested > available:
        log.warning("max_connections %d lowered to %d: the open-files limit is %d",
                    requested, available, open_files)
        return available
    return requested


class ConnectionGuard:
    """The shared state of one server's connections: how many are open, which have an
    unfinished request (no complete head yet, or a body still coming: the slow clients) and
    which have an answer their client does not read (stalled), oldest first; with counts of
    what it closed."""

    def __init__(self, max_connections: int, header_timeout: float,
                 body_timeout: float | None = None, *,
                 balance: WorkerBalance | None = None) -> None:
        self.max_connections = max_connections
        # The workers' shares of connections (with several workers): see _balance.
        self.balance = balance
        self.header_timeout = header_timeout
        self.body_timeout = header_timeout if body_timeout is None else body_timeout
        self.open = 0
        # Insertion-ordered, oldest first. A connection keeps its place from its head to the
        # end of its body; a kept-alive one goes to the end when it is idle again.
        self.unfinished: dict[GuardedHttpToolsProtocol, None] = {}
        # Connections whose write buffer is full (their client reads nothing), oldest first.
        self.stalled: dict[GuardedHttpToolsProtocol, None] = {}
        self.refused = 0  # new connections closed at once: the cap was reached
        self.evicted = 0  # connections with an unfinished request or stalled, closed for a new one
        self.timed_out = 0  # connections closed for a head, body or read not done in time

    def make_room(self) -> bool:
        """Whether a new connection may stay open: under the cap, or made so by closing the
        connection whose request is unfinished for the longest time. A client that sends
        its request at once is thus served before any slow one can push it out, and slow
        bodies cannot hold the cap until the body timeout. Failing those, the connection
        whose client has not read its answer for the longest time is closed: clients that
        never read (a pipelined request for a large answer) cannot hold the cap either."""
        if self.open < self.max_connections:
            return True
        for waiting, what in ((self.unfinished, "whose request is unfinished"),
                              (self.stalled, "whose client reads nothing of its answer")):
            for oldest in waiting:
                oldest.evict()
                self.evicted += 1
                log.warning("connection cap of %d reached: closing the connection %s for the "
                            "longest time", self.max_connections, what)
                return True
        return False


# An answer's head (uvicorn writes it on its own, before the body) up to this size is held
# for the next write: see _OneSendAnswers.
HELD_WRITE = 4 * 1024


class _OneSendAnswers:
    """A connection's transport as the protocol and its request cycles see it: a small write
    (an answer's head, which uvicorn writes on its own, before the body) is held until the
    next write and goes out with it, so that a small answer takes one send (one system call,
    one TCP segment, one wake-up of its client), not two; a write that no other follows
    within the event loop's turn (a HEAD request's answer, a body that takes time to come)
    goes out at the end of the turn. Everything else is the transport's own."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif len(data) <= HELD_WRITE and not self._transport.is_closing():
            self._held = bytes(data)
            self._loop.call_soon(self._write_held)
        else:
            self._transport.write(data)

    def _write_held(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._write_held()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module docstring: a request-head
    timeout and size limit, a connection cap, stall and drain timers, and a bound on the
    pipelined requests parsed ahead. Use :func:`guarded_protocol` for a class bound to a
    :class:`ConnectionGuard`.

    The current request (the one being answered, or the next one once the answers so far
    are complete) is followed by counting heads parsed whole, requests parsed whole (head and
    body) and answers sent whole: with ``n`` answers sent, request ``n + 1`` is current,
    and the counts say whether its head, its body, or neither is still coming; a body still
    coming with ``n`` answers sent is the rest of an answered request's."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admitted = False  # connection_made of uvicorn ran (the connection was not refused)
        self._counted = False  # counted in guard.open
        self._head_timer: asyncio.TimerHandle | None = None
        # Runs while the client has read nothing of its answer (write buffer full), or sends
        # the rest of a body after its request was answered: closes the connection when due.
        self._stall_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._heads = 0  # request heads parsed whole
        self._messages = 0  # requests parsed whole (head and body)
        self._answered = 0  # answers sent whole
        self._head_bytes = 0  # bytes received of an incomplete head (see data_received)
        # Received bytes not yet parsed: held while a parsed request waits for its turn.
        self._held = b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard
        if not guard.make_room():
            guard.refused += 1
            log.warning("connection cap of %d reached, every connection busy: refusing new "
                        "connections", guard.max_connections)
            transport.abort()
            return
        guard.open += 1
        if guard.balance is not None:
            guard.balance.opened()
        self._counted = self._admitted = True
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        super().connection_made(transport)
        self.transport = _OneSendAnswers(transport, self.loop)  # type: ignore[assignment]
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._release()
        self._held = b""
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._held:  # a request still waits its turn (uvicorn resumed reading for a
            self._held += data  # body being read): kept in order, and reading paused again
            self.flow.pause_reading()
            return
        self._parse(data)

    def _parse(self, data: bytes) -> None:
        """Parse ``data`` a piece of :data:`PARSE_PIECE` bytes at a time, holding the rest
        once a request is queued behind the one being answered; count the bytes of an
        incomplete head. httptools parses all it is given at once, and uvicorn queues every
        request it finds: one 256 KiB read of tiny pipelined requests would be over 10,000
        queued requests, each about 2.3 KiB of Python objects (30 MB for the connection).
        Held, they wait as bytes until the queued ones are answered, and reading stays
        paused meanwhile: a connection holds at most a piece's worth of queued requests
        (about 0.5 MB) and a read of bytes."""
        for start in range(0, len(data), PARSE_PIECE):
            if self.pipeline:
                self._held = data[start:]
                return
            piece = data[start:start + PARSE_PIECE] if len(data) > PARSE_PIECE else data
            messages = self._messages
            in_head = self._heads == self._messages  # awaiting or reading a head
            super().data_received(piece)
            if self.transport.is_closing():
                break
            if self._heads == self._messages:  # a head is incomplete after this piece
                # httptools has no limit of its own (it would gather a head of any size).
                # Every byte received while the head is incomplete counts, except those of
                # the piece in which an earlier request ended (not told apart from that
                # request's: at most a piece more).
                self._head_bytes = (self._head_bytes + len(piece)
                                    if in_head and self._messages == messages else 0)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._head_too_large()
                    break
            else:
                self._head_bytes = 0
        self._track()

    def _head_too_large(self) -> None:
        log.info("closing a connection whose request head is over %d bytes", MAX_HEAD_BYTES)
        if self._answered == self._heads:  # nothing being answered: the 400 can go out
            self.send_400_response("Request head too large.")
        else:  # behind an answer being written: no room for ours in the stream
            self._release()
            self._reset()

    def on_headers_complete(self) -> None:
        self._heads += 1
        super().on_headers_complete()
        balance = self.guard.balance
        if balance is not None and self.cycle is not None and balance.shed():
            # This worker holds clearly more than its share of the connections: this one
            # ends after its answer, and its client's next one may reach another worker.
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        self._messages += 1
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._answered += 1
        super().on_response_complete()  # starts the next pipelined request, if any
        self._track()  # idle until the next request: a slow client again, for the cap
        if (self._drain_timer is None and not self.transport.is_closing()
                and self._messages < self._answered):
            # Answered before its body was read (413, 401, 429...): uvicorn reads and drops
            # the rest, and no other timer runs (its keep-alive timer stops whenever data
            # comes), so a client sending a byte now and then would keep it for ever.
            self._drain_timer = self.loop.call_later(self.guard.body_timeout, self._time_out,
                                                     "sent the rest of an answered request's "
                                                     "body")
        if self._held and not self.pipeline and not self.transport.is_closing():
            held, self._held = self._held, b""
            self._parse(held)

    def pause_writing(self) -> None:
        super().pause_writing()
        # The client reads nothing: evictable at the cap, and closed if it goes on.
        self.guard.stalled.setdefault(self, None)
        if self._stall_timer is None and not self.transport.is_closing():
            self._stall_timer = self.loop.call_later(self.guard.body_timeout, self._time_out,
                                                     "read any of its answer")

    def resume_writing(self) -> None:
        super().resume_writing()
        self._stop_stall_timer()

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn's warning asks for a WebSocket library to be installed: the service has no
        # WebSocket routes on purpose (ws="none"), and the request is answered as plain HTTP.
        log.debug("upgrade request answered as plain HTTP: no WebSocket routes")

    def evict(self) -> None:
        """Close this connection at once (the cap is reached, and its request is unfinished
        or its client reads nothing)."""
        self._release()
        self._reset()

    def _reset(self) -> None:
        """Close with a reset: what is still queued for the client is dropped at once. A plain
        close would leave the kernel sending it to a client that reads nothing, holding the
        memory and leaving the client's side open, for minutes."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _track(self) -> None:
        """Follow the current request's progress: waiting for its head (timer running),
        receiving its body (before or after its answer), or whole."""
        if self.transport.is_closing():
            self._release()
            return
        if self._messages >= self._answered:
            # The rest of an answered request's body has come (the next request may have
            # come with it, in the same piece).
            self._stop_drain_timer()
        if self._heads == self._answered == self._messages:
            self._await_head()  # a new connection, or the next request on a kept-alive one
        else:
            self._stop_head_timer()
            if self._messages > self._answered:
                self.guard.unfinished.pop(self, None)  # whole: being answered

    def _await_head(self) -> None:
        self.guard.unfinished.setdefault(self, None)
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.guard.header_timeout,
                                                    self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _stop_stall_timer(self) -> None:
        self.guard.stalled.pop(self, None)
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _stop_drain_timer(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.guard.timed_out += 1
            log.info("closing a connection that sent no complete request head in %g s",
                     self.guard.header_timeout)
            self._release()
            self._reset()

    def _time_out(self, what: str) -> None:
        self._stall_timer = self._drain_timer = None
        if not self.transport.is_closing():
            self.guard.timed_out += 1
            log.info("closing a connection whose client has not %s in %g s", what,
                     self.guard.body_timeout)
            self._release()
            self._reset()

    def _release(self) -> None:
        """Stop counting this connection: it is closed, or about to be."""
        self._stop_head_timer()
        self._stop_stall_timer()
        self._stop_drain_timer()
        self.guard.unfinished.pop(self, None)
        if self._counted:
            self._counted = False
            self.guard.open -= 1
            if self.guard.balance is not None:
                self.guard.balance.closed()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedHttpToolsProtocol]:
    """A protocol class (for ``uvicorn.Config(http=...)``) whose connections ``guard``
    limits."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": guard})


class BodyTimeout:
    """Pure ASGI middleware: a request has ``seconds`` from its head to the end of its body.
    Beyond that the request gets 408 and the connection is closed, whatever the app was doing
    with the body. A client that disconnects before its body is whole ends its request
    quietly."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_done = False
        timed_out = False
        started = False  # a response start went out (the app's or ours)

        async def bounded_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:  # waiting for a disconnect afterwards is not reading the body
                return await receive()
            try:
                # (A timeout scope, not wait_for: that made a task of every receive.)
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise _BodyTimeoutError from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the app's answer to a body it never got whole: ours goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except _BodyTimeoutError:
            pass  # answered below
        except ClientDisconnect:
            # Gone before its body was whole: nobody to answer, and no traceback to log
            # (a client that does this on purpose would fill the log with them).
            return
        if timed_out:
            log.warning("request body not received in %g s: 408", self.seconds)
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": "body_timeout",
                           "detail": f"request body not received in {self.seconds:g} s"}).encode()
        await send({"type": "http.response.start", "status": 408,
                    "headers": [(b"content-type", b"application/json"),
                                (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTimeoutError(Exception):
    pass


class ChunkedAnswers:
    """Pure ASGI middleware: an answer body larger than :data:`ANSWER_CHUNK` goes to the
    server in pieces of that size. The server writes a piece only once the connection's
    write buffer has drained, so a client that reads nothing makes the process copy and queue
    one piece, not the whole answer (the API page's script is 1.5 MB)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def chunked_send(message: Message) -> None:
            body = message.get("body", b"")
            if message["type"] != "http.response.body" or len(body) <= ANSWER_CHUNK:
                await send(message)
                return
            more = message.get("more_body", False)
            view = memoryview(body)
            for start in range(0, len(body), ANSWER_CHUNK):
                last = start + ANSWER_CHUNK >= len(body)
                await send({"type": "http.response.body",
                            "body": bytes(view[start:start + ANSWER_CHUNK]),
                            "more_body": more or not last})

        await self.app(scope, receive, chunked_send)


def trusted_proxies(settings: ServiceSettings) -> list[str]:
    """The configured proxy addresses (empty: trust no forwarding header)."""
    return [entry.strip() for entry in settings.trusted_proxies.split(",") if entry.strip()]


class _Server(uvicorn.Server):
    """uvicorn's server, calling ``on_started`` once it serves (a worker tells its
    supervisor so).

    Once started, what exists (the app, its components, the libraries) is moved out of the
    garbage collector's view (``gc.freeze``): a full collection otherwise walked all of it,
    taking a worker's interpreter lock for 100-120 ms every few seconds under load, while
    its group commit might hold the database's writer slot that every worker needs."""

    def __init__(self, config: uvicorn.Config,
                 on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            gc.collect()
            gc.freeze()
            if self._on_started is not None:
                self._on_started()


def build_server(app: ASGIApp, settings: ServiceSettings, *,
                 on_started: Callable[[], None] | None = None,
                 balance: WorkerBalance | None = None) -> tuple[uvicorn.Server,
                                                                ConnectionGuard]:
    """A uvicorn server for ``app`` with the limits of ``settings``, and its guard;
    ``on_started`` is called once it serves; ``balance``: a worker's share of connections."""
    cap = connection_cap(settings.max_connections, raise_open_files_limit())
    guard = ConnectionGuard(cap, settings.header_timeout, settings.body_timeout,
                            balance=balance)
    proxies = trusted_proxies(settings)
    config = uvicorn.Config(
        ChunkedAnswers(app), host=settings.host, port=settings.port, http=guarded_protocol(guard),
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
        timeout_keep_alive=5, backlog=BACKLOG,
        # No WebSocket routes: an upgrade request is answered as plain HTTP, so every
        # connection stays a guarded one (a WebSocket protocol would take it over unguarded).
        ws="none", log_config=None, access_log=False)
    return _Server(config, on_started), guard


def run_server(app: ASGIApp, settings: ServiceSettings, *,
               sockets: list[socket.socket] | None = None,
               on_started: Callable[[], None] | None = None,
               balance: WorkerBalance | None = None) -> None:
    """Serve ``app`` in the foreground until interrupted: on ``settings``' host and port, or
    on ``sockets`` already listening (a worker's, bound by its supervisor, with ``balance``
    its share of the workers' connections)."""
    server, guard = build_server(app, settings, on_started=on_started, balance=balance)
    try:
        server.run(sockets=sockets)
    finally:
        if guard.refused or guard.evicted or guard.timed_out:
            log.info("connections closed by the limits: %d refused at the cap, %d with an "
                     "unfinished request or an unread answer closed for new ones, %d for a "
                     "head, body or read not done in time",
                     guard.refused, guard.evicted, guard.timed_out)
