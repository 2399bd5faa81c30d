"""Limits on requests: body size (larger bodies get 413 before they are read into memory) and
request rate (429 with Retry-After), as pure ASGI middleware."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import mmap
import os
import struct
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anchor_service.store import StoreError

__all__ = [
    "AUTHENTICATED",
    "BodySizeLimit",
    "Buckets",
    "LocalBuckets",
    "RateLimit",
    "SharedBuckets",
    "mark_authenticated",
]


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length, and counts chunked bodies as they come.
    ``max_bytes`` holds for every route but those of ``path_limits`` (path: bytes), which
    have their own (the public verification route's is much smaller)."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send, limit)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLargeError
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLargeError:
            await self._reject(send, limit)

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        detail = f"request body over the limit: at most {limit} bytes"
        body = json.dumps({"error": "body_too_large", "detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLargeError(Exception):
    pass


AUTHENTICATED = "authenticated"  # key in scope["state"]: set once a request's token is known


class Buckets(Protocol):
    """The table of token buckets behind :class:`RateLimit`, keyed by client."""

    def take(self, key: str, rate: float, burst: int, now: float) -> float:
        """Take one request from ``key``'s bucket (full when new); 0 if allowed, else seconds
        to wait. A rate of 0 takes nothing: the bucket is only made."""

    def take_known(self, key: str, rate: float, burst: int, now: float) -> float | None:
        """As :meth:`take` if ``key`` has a bucket; None, and nothing done, if it has none."""

    def known(self, key: str) -> bool:
        """Whether ``key`` has a bucket."""

    def give_back(self, key: str, burst: int) -> None:
        """Return one request to ``key``'s bucket, if it has one."""


def _refill(tokens: float, when: float, rate: float, burst: int, now: float) -> tuple[
        float, float]:
    """A bucket's tokens at ``now`` after one request is taken if it can be, and the wait
    (0 when allowed). A rate of 0 is no limit: nothing is taken."""
    if rate <= 0:
        return tokens, 0.0
    tokens = min(float(burst), tokens + max(0.0, now - when) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class LocalBuckets:
    """Buckets in this process's memory, the ``capacity`` most recently seen clients kept."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: int, now: float) -> float:
        with self._lock:
            tokens, when = self._buckets.pop(key, (float(burst), now))
            tokens, wait = _refill(tokens, when, rate, burst, now)
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
        return wait

    def take_known(self, key: str, rate: float, burst: int, now: float) -> float | None:
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                return None
            tokens, wait = _refill(*bucket, rate, burst, now)
            self._buckets[key] = (tokens, now)
        return wait

    def known(self, key: str) -> bool:
        with self._lock:
            return key in self._buckets

    def give_back(self, key: str, burst: int) -> None:
        with self._lock:
            if key in self._buckets:
                tokens, when = self._buckets[key]
                self._buckets[key] = (min(float(burst), tokens + 1.0), when)


class SharedBuckets:
    """Buckets in an anonymous shared memory mapping, for the worker processes that one
    process forks after creating this (``anchor-service serve --workers N``): a client's
    bucket is the same whichever worker its connection reaches, so it gets the configured
    rate from the service, not N times it.

    The table is fixed in size (``sets`` x :data:`WAYS` slots, about 4 MiB by default): a
    client's key, hashed with a key drawn at start (nobody can aim many clients at one set
    to push a bucket out), picks a set of :data:`WAYS` slots, and a new client takes the slot
    of that set seen least recently. Each slot holds 16 bytes of the hash, the tokens and
    when they were counted (``time.monotonic``, one clock for every process of the
    machine). Updates hold a lock on an unlinked temporary file (``fcntl`` record locks
    belong to a process and die with it: a worker killed inside an update leaves no lock
    behind; each set has its own byte of it) and a thread lock (record locks do not exclude the
    threads of one process)."""

    WAYS = 8
    _KEY = 16  # bytes of a slot's key hash
    _SLOT = struct.Struct("<dd")  # tokens, when

    def __init__(self, sets: int = 16_384) -> None:
        self.sets = sets
        self._set_bytes = self.WAYS * (self._KEY + self._SLOT.size)
        self._memory = mmap.mmap(-1, sets * self._set_bytes)  # MAP_SHARED: seen after fork
        self._salt = os.urandom(16)
        self._lockfile = tempfile.TemporaryFile()  # noqa: SIM115 - held for the table's life
        self._thread_lock = threading.Lock()

    @property
    def capacity(self) -> int:
        """Clients the table holds at most."""
        return self.sets * self.WAYS

    def close(self) -> None:
        self._memory.close()
        self._lockfile.close()

    @contextlib.contextmanager
    def _locked(self, base: int) -> Iterator[None]:
        """Exclusive use of the set at ``base``: a record lock on that set's byte of the lock
        file, so that workers updating different clients' sets do not wait for each other
        (one lock for the whole table made every request of every worker take turns)."""
        index = base // self._set_bytes
        with self._thread_lock:
            fcntl.lockf(self._lockfile, fcntl.LOCK_EX, 1, index)
            try:
                yield
            finally:
                fcntl.lockf(self._lockfile, fcntl.LOCK_UN, 1, index)

    def _place(self, key: str) -> tuple[bytes, int]:
        """``key``'s hash and the offset of its set."""
        digest = hashlib.blake2b(key.encode(), digest_size=self._KEY, key=self._salt).digest()
        return digest, int.from_bytes(digest[:8], "little") % self.sets * self._set_bytes

    def _find(self, digest: bytes, base: int) -> int | None:
        """The way of the set at ``base`` that holds ``digest``, if any."""
        keys = self._memory[base:base + self.WAYS * self._KEY]
        start = 0
        while (found := keys.find(digest, start)) >= 0:
            if found % self._KEY == 0:
                return found // self._KEY
            start = found + 1
        return None

    def _slot(self, base: int, way: int) -> int:
        return base + self.WAYS * self._KEY + way * self._SLOT.size

    def take(self, key: str, rate: float, burst: int, now: float) -> float:
        digest, base = self._place(key)
        with self._locked(base):
            way = self._find(digest, base)
            if way is None:
                # A new client: the slot of its set seen least recently (an empty slot's
                # time is 0) becomes its, with a full bucket.
                times = [self._SLOT.unpack_from(self._memory, self._slot(base, n))[1]
                         for n in range(self.WAYS)]
                way = times.index(min(times))
                start = base + way * self._KEY
                self._memory[start:start + self._KEY] = digest
                tokens, when = float(burst), now
            else:
                tokens, when = self._SLOT.unpack_from(self._memory, self._slot(base, way))
            tokens, wait = _refill(tokens, when, rate, burst, now)
            self._SLOT.pack_into(self._memory, self._slot(base, way), tokens, now)
        return wait

    def take_known(self, key: str, rate: float, burst: int, now: float) -> float | None:
        digest, base = self._place(key)
        with self._locked(base):
            way = self._find(digest, base)
            if way is None:
                return None
            tokens, when = self._SLOT.unpack_from(self._memory, self._slot(base, way))
            tokens, wait = _refill(tokens, when, rate, burst, now)
            self._SLOT.pack_into(self._memory, self._slot(base, way), tokens, now)
        return wait

    def known(self, key: str) -> bool:
        digest, base = self._place(key)
        with self._locked(base):
            return self._find(digest, base) is not None

    def give_back(self, key: str, burst: int) -> None:
        digest, base = self._place(key)
        with self._locked(base):
            way = self._find(digest, base)
            if way is not None:
                tokens, when = self._SLOT.unpack_from(self._memory, self._slot(base, way))
                self._SLOT.pack_into(self._memory, self._slot(base, way),
                                     min(float(burst), tokens + 1.0), when)


def mark_authenticated(state: dict[str, object]) -> None:
    """Record in a request's ASGI ``scope["state"]`` that its token authenticated, so that
    :class:`RateLimit` counts it against the token rather than the client's address."""
    state[AUTHENTICATED] = True


class RateLimit:
    """Token buckets: one per API token (``rate`` requests a second, bursts of ``burst``), and
    one per client address (``public_rate``) for every request whose token did not
    authenticate: requests without a token (the public verification routes and page), with a
    made-up one (on any route, public ones included), or refused 401. A token gets a bucket
    once it has authenticated, so made-up tokens neither buy fresh buckets nor fill the table.
    A token not seen yet is counted against its address until it authenticates (then the
    request is given back to the address), or, when the address has used up its bucket,
    looked up in the store (``app.state.components``): a real one gets its bucket there and
    then, so public traffic from a shared address never locks an issuer out.
    A token's bucket is its own however the header spells it (the scheme in any case, any
    spacing). Readiness and metrics are limited by address whatever token comes with them;
    liveness (``/healthz``) is never limited. A rate of 0 turns that limit off. The buckets
    are ``buckets``: by default in this process (:class:`LocalBuckets`); the workers of one
    ``serve --workers N`` share theirs (:class:`SharedBuckets`); separate replicas each
    enforce their own. The address is
    the TCP peer's, or the client's as a configured trusted proxy forwards it
    (``trusted_proxies``; see :mod:`anchor_service.server`)."""

    EXEMPT = frozenset({"/healthz"})
    BY_ADDRESS = frozenset({"/readyz", "/metrics"})  # limited by address, tokens or not
    MAX_CLIENTS = 100_000  # buckets kept; the least recently seen are forgotten first

    def __init__(self, app: ASGIApp, *, rate: float, burst: int, public_rate: float,
                 public_burst: int, clock: Callable[[], float] = time.monotonic,
                 buckets: Buckets | None = None) -> None:
        self.app = app
        self._limits = {"token": (rate, burst), "address": (public_rate, public_burst)}
        self._clock = clock
        self._buckets: Buckets = buckets or LocalBuckets(self.MAX_CLIENTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        token, raw_token, address = self._client(scope)
        if scope.get("path") in self.BY_ADDRESS:
            token = None
        public_rate, public_burst = self._limits["address"]
        rate, burst = self._limits["token"]
        token_key = None if token is None else f"token:{token}"
        # A token that has authenticated before has its own bucket, whatever the public
        # requests from its address have spent (at most its own rate if it is refused now: a
        # revoked token, say; such requests are charged to the address too). One look at the
        # table finds it and takes from it.
        known_wait = (None if token_key is None
                      else self._buckets.take_known(token_key, rate, burst, self._clock()))
        if known_wait is not None:
            wait = known_wait
            charged = "token"
        else:
            # No token, or one never seen to authenticate: the address pays, up front.
            wait = self._take(f"address:{address}", public_rate, public_burst)
            charged = "address"
            if wait > 0 and token_key is not None and await self._is_real(scope, raw_token):
                wait = self._open(token_key, rate, burst)  # its bucket, from now on
                charged = "token"
        if wait > 0:
            await self._reject(send, wait)
            return
        if token_key is None:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        known_key: str = token_key

        async def charging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if not state.get(AUTHENTICATED):
                    # Not authenticated (a public route, or refused 401): the address pays.
                    if charged == "token":
                        self._take(f"address:{address}", public_rate, public_burst)
                elif charged == "address":
                    # First seen to authenticate: from now on the token has its bucket, and
                    # this request is its, not the address's.
                    self._open(known_key, rate, burst)
                    self._give_back(f"address:{address}", public_burst)
            await send(message)

        await self.app(scope, receive, charging_send)

    def _give_back(self, key: str, burst: int) -> None:
        """Return one request to ``key``'s bucket (taken from it for a request that turned out
        to be someone else's to pay)."""
        self._buckets.give_back(key, burst)

    @staticmethod
    async def _is_real(scope: Scope, token: str) -> bool:
        """Whether the store knows ``token`` (False when there is no store to ask, or it
        fails): asked in a worker thread, the event loop goes on meanwhile."""
        components = getattr(getattr(scope.get("app"), "state", None), "components", None)
        lookup = getattr(getattr(components, "store", None), "token_identity", None)
        if lookup is None or not token:
            return False
        try:
            return await run_in_threadpool(lookup, token) is not None
        except StoreError:  # counted as unknown; the app answers the request itself
            return False

    @staticmethod
    def _client(scope: Scope) -> tuple[str | None, str, str]:
        """The hash of the request's token (None without one), the token, and the client's
        address."""
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value.strip():
                # Keyed by a hash (the bucket table never holds a token) of the token itself:
                # "Bearer X", "bearer  X" and "BEARER X" are one token, as authentication
                # reads them, so they share one bucket.
                scheme, _, credentials = value.strip().partition(b" ")
                identity = credentials.strip() if scheme.lower() == b"bearer" else value.strip()
                return (hashlib.sha256(identity).hexdigest(), identity.decode("latin-1"),
                        address)
        return None, "", address

    def _take(self, key: str, rate: float, burst: int) -> float:
        """Take one request from ``key``'s bucket; 0 if allowed, else seconds to wait. A rate
        of 0 touches no bucket."""
        if rate <= 0:
            return 0.0
        return self._buckets.take(key, rate, burst, self._clock())

    def _open(self, key: str, rate: float, burst: int) -> float:
        """Take one request from a token's bucket, made full if it has none, even when its
        rate is 0 (no limit): the bucket records that the token is real, so that its next
        requests are not charged to its address first."""
        return self._buckets.take(key, rate, burst, self._clock())

    @staticmethod
    async def _reject(send: Send, wait: float) -> None:
        seconds = max(1, math.ceil(wait))
        body = json.dumps({"error": "rate_limited",
                           "detail": f"too many requests: retry in {seconds} s"}).encode()
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"),
                                (b"retry-after", str(seconds).encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
