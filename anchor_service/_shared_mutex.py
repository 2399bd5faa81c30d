"""A mutex shared by every process that maps one file: a robust, process-shared POSIX mutex
(glibc, through ctypes) in the file's first page.

What it gives that an ``flock`` cannot: a blocked waiter sleeps in the kernel and wakes when
the mutex is released, and still gives up after a timeout. A blocking ``flock`` cannot be
given a timeout, and polling one held a millisecond at a time costs the poller its
interpreter lock at every retry and wakes it late. Robust: when its holder dies (SIGKILL),
the next one to take it is told so and takes it, as the operating system frees a dead
holder's ``flock``.

Only where the C library has these functions (Linux with glibc 2.30 or later, for the
monotonic-clock timed lock): :func:`open_shared_mutex` gives None elsewhere, and callers keep
their ``flock`` alone."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import time
from typing import Any, Final

__all__ = ["SharedMutex", "open_shared_mutex"]

_MAGIC: Final = b"microcred-anchor shared mutex 1\n"
# The mutex starts here, after the magic text (pthread_mutex_t is 40 bytes on x86-64 and 48 on
# arm64: well within the page).
_MUTEX_OFFSET: Final = 64
_ATTR_SPACE: Final = 64
_PAGE: Final = 4096
_PTHREAD_PROCESS_SHARED: Final = 1
_PTHREAD_MUTEX_ROBUST: Final = 1
_PTHREAD_MUTEX_ERRORCHECK: Final = 2
_CLOCK_MONOTONIC: Final = time.CLOCK_MONOTONIC if hasattr(time, "CLOCK_MONOTONIC") else 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)  # a CDLL call gives up the interpreter lock while it runs
    pointer, number = ctypes.c_void_p, ctypes.c_int
    signatures = {"pthread_mutexattr_init": [pointer],
                  "pthread_mutexattr_setpshared": [pointer, number],
                  "pthread_mutexattr_setrobust": [pointer, number],
                  "pthread_mutexattr_settype": [pointer, number],
                  "pthread_mutex_init": [pointer, pointer],
                  "pthread_mutex_clocklock": [pointer, number, ctypes.POINTER(_Timespec)],
                  "pthread_mutex_unlock": [pointer],
                  "pthread_mutex_consistent": [pointer]}
    if not all(hasattr(libc, function) for function in signatures):
        return None
    for function, arguments in signatures.items():  # addresses are 64 bits, not C ints
        getattr(libc, function).argtypes = arguments
        getattr(libc, function).restype = number
    return libc


_LIBC: Final = _libc()


class SharedMutex:
    """The mutex in the first page of an open file (``fd``, read-write, owned by the caller:
    closing it is the caller's), set up by the first process to map it. Taken and released
    by the same thread."""

    def __init__(self, fd: int) -> None:
        self._map = mmap.mmap(fd, _PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._mutex = ctypes.c_char.from_buffer(self._map, _MUTEX_OFFSET)
        self._address = ctypes.addressof(self._mutex)

    def acquire(self, timeout: float) -> bool:
        """Take the mutex, waiting at most ``timeout`` seconds; whether it was taken. A holder
        that died holding it is no obstacle. :class:`OSError` when it cannot be used (then or
        from now on: a holder died and the one after it did not mark it consistent)."""
        deadline = time.clock_gettime(_CLOCK_MONOTONIC) + max(timeout, 0.0)
        seconds = int(deadline)
        until = _Timespec(seconds, int((deadline - seconds) * 1e9))
        code = int(_LIBC.pthread_mutex_clocklock(self._address, _CLOCK_MONOTONIC,
                                                  ctypes.byref(until)))
        if code == 0:
            return True
        if code == errno.ETIMEDOUT:
            return False
        if code == errno.EOWNERDEAD:
            # Its holder died. What it protected is consistent (SQLite rolled the dead
            # writer's transaction back), so the mutex is marked so too.
            code = int(_LIBC.pthread_mutex_consistent(self._address))
            if code == 0:
                return True
            # Released unmarked, it fails everyone (ENOTRECOVERABLE): each process then goes
            # on with its flock alone, rather than waiting for this one to end.
            _LIBC.pthread_mutex_unlock(self._address)
        raise OSError(code, os.strerror(code))

    def release(self) -> None:
        code = int(_LIBC.pthread_mutex_unlock(self._address))
        if code != 0:
            raise OSError(code, os.strerror(code))

    def close(self) -> None:
        del self._mutex  # the buffer's export, which keeps the map from closing
        self._map.close()


def open_shared_mutex(fd: int) -> SharedMutex | None:
    """The shared mutex of the file open as ``fd`` (read-write), set up first if no process
    has; None where the C library cannot give one. The caller holds the file's ``flock``, so
    that two processes cannot both set it up (the processes that use the mutex take the
    ``flock`` too, after it)."""
    if _LIBC is None:
        return None
    if os.fstat(fd).st_size < _PAGE:
        os.ftruncate(fd, _PAGE)
    if os.pread(fd, len(_MAGIC), 0) != _MAGIC:
        _set_up(fd)
    return SharedMutex(fd)


def _set_up(fd: int) -> None:
    page = mmap.mmap(fd, _PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        mutex = ctypes.c_char.from_buffer(page, _MUTEX_OFFSET)
        attributes = ctypes.create_string_buffer(_ATTR_SPACE)
        try:
            _check(_LIBC.pthread_mutexattr_init(attributes))
            _check(_LIBC.pthread_mutexattr_setpshared(attributes, _PTHREAD_PROCESS_SHARED))
            _check(_LIBC.pthread_mutexattr_setrobust(attributes, _PTHREAD_MUTEX_ROBUST))
            _check(_LIBC.pthread_mutexattr_settype(attributes, _PTHREAD_MUTEX_ERRORCHECK))
            _check(_LIBC.pthread_mutex_init(ctypes.addressof(mutex), attributes))
        finally:
            del mutex
        page[:len(_MAGIC)] = _MAGIC  # last: a process that sees it finds a mutex set up
    finally:
        page.close()


def _check(code: int) -> None:
    if code != 0:
        raise OSError(code, os.strerror(code))
