"""Several processes serving one port (``anchor-service serve --workers N``, the stack).

The process that starts the service runs the start checks and migrations, binds the
listening sockets and creates the rate limits' shared table (:class:`SharedBuckets`), then
forks N workers and supervises them; it serves nothing itself. Each worker builds its app
and components after the fork (no thread, database connection or chain connection crosses
it) and is a full replica: its own database connections, pipeline (the database leases keep
two workers from sending for one issuer, as they do for replicas), status-list watcher,
verification cache and connection limits. Each worker listens on a socket of its own in one
``SO_REUSEPORT`` group (Linux; elsewhere they share one socket), and the kernel spreads new
connections over them. With no more workers than CPUs, each worker runs on a CPU of its own
(:mod:`anchor_service._affinity`; ``settings.pin_workers``).

- A worker that dies is started again: at once if it had lived :data:`STABLE_SECONDS`,
  else after :data:`FIRST_RESTART_DELAY`, doubled for each further worker that dies young,
  up to :data:`MAX_RESTART_DELAY`. While it waits, its socket is closed (if another worker
  lives), so that the kernel hands new connections to the live workers rather than queueing
  them where nobody accepts; its replacement binds a fresh one in the group.
- A worker that fails before any worker has started (a configuration the app refuses)
  ends the service with that worker's exit code, as the one process would.
- SIGTERM or SIGINT stops every worker gracefully (:data:`STOP_GRACE` seconds, then
  SIGKILL) and the supervisor exits 0.
- On Linux the workers die with the supervisor (``PR_SET_PDEATHSIG``): a supervisor killed
  with SIGKILL leaves no worker serving the port.

With one worker the service is the one process, with no supervisor
(:func:`~anchor_service.server.run_server`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp

from anchor_service import _affinity
from anchor_service._balance import WorkerBalance
from anchor_service.api import create_app
from anchor_service.api.limits import SharedBuckets
from anchor_service.server import BACKLOG, run_server
from anchor_service.settings import ServiceSettings

__all__ = ["listening_sockets", "run_workers", "serve", "worker_count"]

log = logging.getLogger("anchor_service.workers")

STOP_GRACE = 30.0  # seconds workers have to finish after SIGTERM, then SIGKILL
STABLE_SECONDS = 30.0  # a worker that lived this long died of something new: restart at once
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# The supervisor waits for these (blocked, taken with sigtimedwait): the workers inherit
# nothing of it (the mask is restored in each after the fork).
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGUSR1}
_STOP = (signal.SIGTERM, signal.SIGINT)


#: The interpreter's thread switch interval in a serving process, in seconds (see serve).
SWITCH_INTERVAL: Final = 0.0005


def worker_count(requested: int) -> int:
    """``requested``, or with 0 one per CPU this process may run on (its affinity, which
    a container's CPU set narrows; else every CPU of the machine)."""
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def serve(settings: ServiceSettings, *, at_worker_exit: Callable[[], None] | None = None) -> int:
    """Serve the app of ``settings`` until interrupted, with ``settings.workers`` processes
    (see the module docstring); the exit code. ``at_worker_exit`` runs in each worker
    process as it ends (not with one process: there the caller's own clean-up runs)."""
    # Threads of a worker hand the interpreter's lock to each other at every request
    # (the event loop, the request threads, the group commit's writer): a thread that
    # waits for it gets it when the one running gives it up, at the latest after the
    # switch interval. At the default 5 ms, the writer of a group commit waited that long
    # after each statement while holding the database's writer slot, which every worker
    # needs; a shorter interval costs a little in switches and keeps the slot short.
    sys.setswitchinterval(SWITCH_INTERVAL)
    count = worker_count(settings.workers)
    if count == 1:
        run_server(create_app(settings), settings)
        return 0
    buckets = SharedBuckets()  # before the fork: every worker maps the same table
    try:
        return run_workers(lambda: create_app(settings, rate_buckets=buckets), settings, count,
                           at_worker_exit=at_worker_exit)
    finally:
        buckets.close()


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` TCP sockets listening on ``host``:``port`` (with 0, a free port), one per
    worker: on Linux each its own socket in one ``SO_REUSEPORT`` group, so that the kernel
    spreads new connections evenly over the workers (on one shared socket, the worker that
    wakes first accepts a whole burst: 16 connections opened at once all went to one worker);
    elsewhere one socket shared by all. A port another process listens on is refused
    (``OSError``), as a lone bind would be: a reuse-port group would otherwise let a second
    service join the first's port."""
    if not _reuse_port():
        return [_listening(host, port, reuse_port=False)] * count
    if port:
        _listening(host, port, reuse_port=False).close()  # is the port free?
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(_listening(host, port, reuse_port=True))
            port = sockets[0].getsockname()[1]  # the port the first one got, for the others
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _reuse_port() -> bool:
    """Whether each worker gets a socket of its own in one ``SO_REUSEPORT`` group: on Linux,
    whose kernel spreads connections over the group (elsewhere one socket is shared)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _listening(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket listening on ``host``:``port``, bound as asyncio would bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    # sockets whose protocol says TCP, and accepted sockets inherit it. Without it a small
    # answer waits for the client's delayed ACK: 40 ms a request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def run_workers(make_app: Callable[[], ASGIApp], settings: ServiceSettings, count: int, *,
                at_worker_exit: Callable[[], None] | None = None) -> int:
    """Bind ``settings``' host and port, serve ``make_app()`` (called in each worker) with
    ``count`` worker processes, and supervise them until SIGTERM or SIGINT; the exit code.
    A worker restarted at once takes over its socket, with the connections queued on it; a
    worker whose restart waits has its socket closed meanwhile (see :class:`_Supervisor`)."""
    if threading.active_count() > 1:
        # A lock another thread holds at the fork stays locked for ever in the workers.
        log.warning("forking workers with %d threads running", threading.active_count())
    sockets = listening_sockets(settings.host, settings.port, count)
    balance = WorkerBalance(count)  # before the fork: every worker maps the same counts
    try:
        cpus = _affinity.worker_cpus(count) if settings.pin_workers else None
        log.info("serving http://%s:%d with %d worker processes%s", settings.host,
                 sockets[0].getsockname()[1], count,
                 "" if cpus is None else f", each on its own CPU ({', '.join(map(str, cpus))})")
        return _Supervisor(sockets, make_app, settings, at_worker_exit, balance,
                           cpus=cpus).run()
    finally:
        for sock in set(sockets):  # with the ones bound again by the supervisor
            sock.close()
        balance.close()


class _Supervisor:
    """Forks a worker per slot (one per socket) and starts it again when it dies.

    In a ``SO_REUSEPORT`` group the kernel hashes each new connection to one of the group's
    sockets whether or not anyone accepts on it: a dead worker's socket left open would hold
    the connections hashed to it unanswered until its replacement serves, up to
    :data:`MAX_RESTART_DELAY` later. So a slot that waits for its restart has its socket
    closed while some worker lives (its queued connections are reset; new ones go to the
    live workers' sockets), and is given a fresh socket in the group when started again. A
    slot restarted at once keeps its socket, and its replacement serves what was queued. With
    no worker alive the sockets are kept, so the service holds its port; with one shared
    socket (not Linux) the live workers accept from it anyway, and it is kept too."""

    def __init__(self, sockets: list[socket.socket], make_app: Callable[[], ASGIApp],
                 settings: ServiceSettings, at_worker_exit: Callable[[], None] | None,
                 balance: WorkerBalance, *, cpus: list[int] | None) -> None:
        self.balance = balance
        self.cpus = cpus  # each slot's CPU (see anchor_service._affinity), or None: any
        # The caller's list, updated in place as slots get fresh sockets: it closes them all.
        self.sockets, self.make_app, self.settings = sockets, make_app, settings
        self.count = len(sockets)
        self.reuse_port = len(set(sockets)) == self.count and _reuse_port()
        self.port: int = sockets[0].getsockname()[1]
        self.at_worker_exit = at_worker_exit
        self.pid = os.getpid()
        self.workers: dict[int, tuple[int, float]] = {}  # pid: (slot, started at)
        self.due: dict[int, float] = {}  # slot: when to start it again
        self.delay = 0.0  # before the next restart of a worker that died young
        self.started = False  # some worker has served: later deaths are restarted
        self.mask: set[int | signal.Signals] = set()  # the signals blocked before

    def run(self) -> int:
        self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for slot in range(self.count):
                self._spawn(slot)
            while True:
                info = signal.sigtimedwait(_SIGNALS, self._wait())
                if info is not None and info.si_signo in _STOP:
                    log.info("stopping %d workers", len(self.workers))
                    self._stop_all()
                    return 0
                if info is not None and info.si_signo == signal.SIGUSR1:
                    self.started = True
                failure = self._reap()
                if failure is not None:
                    self._stop_all()
                    return failure
                self._restart_due()
                self._close_waiting()
        finally:
            self._stop_all()
            # What came while blocked is dropped: SIGUSR1's default action would end us.
            while signal.sigtimedwait(_SIGNALS, 0) is not None:
                pass
            signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)

    def _wait(self) -> float:
        """Seconds until the next restart is due (at most 1: workers are reaped then too)."""
        if not self.due:
            return 1.0
        return min(1.0, max(0.0, min(self.due.values()) - time.monotonic()))

    def _spawn(self, slot: int) -> None:
        if self.sockets[slot].fileno() == -1:  # closed while the slot waited: a fresh one
            self.sockets[slot] = _listening(self.settings.host, self.port, reuse_port=True)
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's code
            code = 1
            try:
                code = self._work(slot)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None
                                                                    else 1)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                try:
                    if self.at_worker_exit is not None:
                        self.at_worker_exit()
                    logging.shutdown()
                finally:
                    os._exit(code)
        self.workers[pid] = (slot, time.monotonic())

    def _work(self, slot: int) -> int:
        """The worker's life: serve its socket until told to stop."""
        _die_with_parent(self.pid)
        for sig in _STOP:
            signal.signal(sig, _stop_worker)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
        mine = self.sockets[slot]
        for sock in set(self.sockets) - {mine}:
            sock.close()  # the other workers' (this process's copies)
        if self.cpus is not None:
            _affinity.pin_to(self.cpus[slot])  # before any thread: they all inherit it
        app = self.make_app()
        self.balance.join(slot)
        run_server(app, self.settings, sockets=[mine], balance=self.balance,
                   on_started=lambda: os.kill(self.pid, signal.SIGUSR1))
        return 0

    def _reap(self) -> int | None:
        """Collect dead workers and schedule their restarts; an exit code to end the service
        with when a worker failed before any has started."""
        # Each worker by its pid: other children (the stack's anvil) are their owner's to reap.
        for pid in list(self.workers):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if not done:
                continue
            slot, started_at = self.workers.pop(pid)
            self.balance.left(slot)
            code = os.waitstatus_to_exitcode(status)
            if not self.started and code > 0:  # a signal is not a refused configuration
                log.error("worker %d failed to start (exit code %d): stopping", pid, code)
                return code
            lived = time.monotonic() - started_at
            self.delay = (0.0 if lived >= STABLE_SECONDS
                          else min(MAX_RESTART_DELAY, max(FIRST_RESTART_DELAY, 2 * self.delay)))
            log.warning("worker %d ended (%s) after %.1f s: starting another in %.1f s", pid,
                        f"exit code {code}" if code >= 0 else f"signal {-code}", lived,
                        self.delay)
            self.due[slot] = time.monotonic() + self.delay
        return None

    def _restart_due(self) -> None:
        if signal.sigpending() & set(_STOP):
            return  # being stopped (Ctrl-C reaches the workers too, and they exit first)
        now = time.monotonic()
        for slot, when in list(self.due.items()):
            if when <= now:
                try:
                    self._spawn(slot)
                except OSError as exc:  # its fresh socket or the fork: try again later
                    self.delay = min(MAX_RESTART_DELAY, max(FIRST_RESTART_DELAY, 2 * self.delay))
                    log.error("cannot start a new worker (%s): trying again in %.1f s",
                              exc, self.delay)
                    self.due[slot] = now + self.delay
                else:
                    del self.due[slot]

    def _close_waiting(self) -> None:
        """Close the sockets of the slots waiting for a restart, while some worker lives
        (see the class docstring)."""
        if not (self.reuse_port and self.workers):
            return
        for slot in self.due:
            if self.sockets[slot].fileno() != -1:
                self.sockets[slot].close()
                log.info("closed the socket of worker slot %d until it is started again", slot)

    def _stop_all(self) -> None:
        """SIGTERM every worker, wait for them (SIGKILL after :data:`STOP_GRACE`)."""
        self.due.clear()
        for pid in self.workers:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self.workers:
            if time.monotonic() >= deadline:
                for pid in self.workers:
                    log.warning("worker %d did not stop in %g s: killing it", pid, STOP_GRACE)
                    _signal(pid, signal.SIGKILL)
                deadline = float("inf")
            for pid in list(self.workers):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    del self.workers[pid]
            if self.workers:
                time.sleep(0.05)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _stop_worker(signum: int, _frame: object) -> None:
    """A worker's SIGTERM or SIGINT before uvicorn serves (which handles them itself, and
    raises them again once it has stopped): end the worker."""
    raise SystemExit(0)


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` ends (Linux); exit at once if it
    already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("cannot tie the worker to its supervisor: errno %d", ctypes.get_errno())
    if os.getppid() != parent:
        os._exit(1)
