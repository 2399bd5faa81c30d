"""Each worker process on a CPU of its own (Linux CPU affinity). Private: used by
:mod:`anchor_service.workers` and the signing helper's start.

A worker hands every request from thread to thread: the event loop, the group commit's
writer, the request threads, each waking the next. When the kernel lets those threads roam,
the thread woken often lands on the other CPU, which has to be woken first; on a virtual
machine that wake-up costs tens of microseconds (a pipe's round trip between two processes
took 7 us on one CPU and 60 us across two, on the 2-core machine the benchmarks run on). With
each worker kept on a CPU of its own the hand-overs stay on that CPU: with 2 workers on 2
CPUs, single submissions and the mixed load tests served 11-60 % more requests a second
(CHANGELOG). The signing helper of a worker, which exists to sign on another core, is given
back every CPU the service may use.

A worker is pinned only when there are at least two and no more of them than the CPUs the
service may run on: fewer CPUs than workers would leave some CPU with two workers while a
third idles, and one process has nothing to gain.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["pin_to", "release", "worker_cpus"]

log = logging.getLogger("anchor_service.workers")

# The CPUs the service may run on, kept by a pinned worker for the processes it starts.
_service_cpus: frozenset[int] | None = None


def _allowed() -> list[int] | None:
    """The CPUs this process may run on, or None where affinity cannot be set."""
    if not sys.platform.startswith("linux") or not hasattr(os, "sched_setaffinity"):
        return None
    return sorted(os.sched_getaffinity(0))


def worker_cpus(count: int) -> list[int] | None:
    """The CPU of each of ``count`` worker slots, or None when workers are not pinned (one
    worker, more workers than CPUs, or not Linux)."""
    cpus = _allowed()
    if cpus is None or count < 2 or count > len(cpus):
        return None
    return cpus[:count]


def pin_to(cpu: int) -> None:
    """Keep this process (and the threads it starts) on ``cpu``; the CPUs it could run on
    are kept for :func:`release`. A CPU that cannot be chosen is logged, and the process
    runs unpinned."""
    global _service_cpus  # noqa: PLW0603  # a fact of the process, set once after the fork
    allowed = frozenset(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        log.warning("worker %d cannot be kept on CPU %d (%s): it runs on any", os.getpid(),
                    cpu, exc)
        return
    _service_cpus = allowed


def release(pid: int) -> None:
    """Let process ``pid``, started by this one, run on every CPU the service may use (not
    only this worker's). Nothing to do in a process that is not pinned."""
    if _service_cpus is None:
        return
    try:
        os.sched_setaffinity(pid, _service_cpus)
    except OSError as exc:  # it ended already, or the CPU set changed: it keeps its CPU
        log.warning("process %d keeps its worker's CPU (%s)", pid, exc)
