"""The shared mutex that queues SQLite's writers of every process before the writer lock's
flock: exclusive across processes, a waiter gives up after its timeout, and a holder that
dies (SIGKILL) does not keep it. Real processes (fork), real files."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from anchor_service._database import SqliteBackend, sql
from anchor_service._shared_mutex import SharedMutex, open_shared_mutex
from anchor_service.store import NewCredential, Store, StoreError

_fork = multiprocessing.get_context("fork")


def _mutex_of(path: Path) -> SharedMutex:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    mutex = open_shared_mutex(fd)
    assert mutex is not None, "this machine's C library has robust process-shared mutexes"
    return mutex


def _hold(path: Path, ready: Connection, release: Connection) -> None:
    """In a child: take the mutex, say so, and keep it until told (or killed)."""
    mutex = _mutex_of(path)
    assert mutex.acquire(5)
    ready.send("held")
    release.recv()
    mutex.release()
    ready.send("released")


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    return tmp_path / "service.sqlite3.writer.lock"


def _holder(path: Path) -> tuple[multiprocessing.process.BaseProcess, Connection, Connection]:
    ready_here, ready_there = _fork.Pipe()
    release_here, release_there = _fork.Pipe()
    child = _fork.Process(target=_hold, args=(path, ready_there, release_there), daemon=True)
    child.start()
    assert ready_here.poll(10)
    assert ready_here.recv() == "held"
    return child, ready_here, release_here


def test_it_excludes_other_processes_until_released(lock_file: Path) -> None:
    child, ready, release = _holder(lock_file)
    mutex = _mutex_of(lock_file)
    try:
        started = time.monotonic()
        assert not mutex.acquire(0.3)
        assert 0.25 <= time.monotonic() - started < 5
        release.send("go")
        # The waiter wakes when it is released: well within the timeout.
        started = time.monotonic()
        assert mutex.acquire(10)
        assert time.monotonic() - started < 5
        assert ready.recv() == "released"
        mutex.release()
    finally:
        child.join(10)
        mutex.close()
    assert child.exitcode == 0


def test_a_holder_killed_does_not_keep_it(lock_file: Path) -> None:
    child, _, _ = _holder(lock_file)
    mutex = _mutex_of(lock_file)
    try:
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        started = time.monotonic()
        assert mutex.acquire(10)
        assert time.monotonic() - started < 5
        mutex.release()
        # And it works as before for the next ones.
        assert mutex.acquire(1)
        mutex.release()
    finally:
        mutex.close()


def _write_and_stop(path: Path, ready: Connection) -> None:
    """In a child: begin a write on the store at ``path``, say so, and wait to be killed."""
    backend = SqliteBackend(path, busy_timeout=30)
    with backend.write() as db:
        db.execute(sql("UPDATE issuers SET name = 'renamed by a dying writer'"))
        ready.send("writing")
        time.sleep(60)


def _writing_child(path: Path) -> multiprocessing.process.BaseProcess:
    ready_here, ready_there = _fork.Pipe()
    child = _fork.Process(target=_write_and_stop, args=(path, ready_there), daemon=True)
    child.start()
    assert ready_here.poll(20)
    assert ready_here.recv() == "writing"
    return child


def test_a_writer_of_another_process_killed_mid_write_frees_the_writer_slot(
        tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite3"
    store = Store(path, busy_timeout=30)
    try:
        issuer = store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20,
                                  did="did:web:a")
        child = _writing_child(path)
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        started = time.monotonic()
        (accepted,) = store.accept(issuer.id, [NewCredential(b"\x01" * 32, b"\x02" * 16)])
        assert accepted.created
        assert time.monotonic() - started < 10  # not the 30 s busy timeout
        # The dying writer's change was rolled back.
        record = store.issuer(issuer.id)
        assert record is not None
        assert record.name == "uni-a"
    finally:
        store.close()


def test_a_writer_of_another_process_holding_too_long_fails_the_write(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite3"
    store = Store(path, busy_timeout=0.5)
    child = None
    try:
        issuer = store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20,
                                  did="did:web:a")
        child = _writing_child(path)
        with pytest.raises(StoreError, match=r"writer lock .* held for more than 0\.5 s"):
            store.accept(issuer.id, [NewCredential(b"\x01" * 32, b"\x02" * 16)])
    finally:
        if child is not None and child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
            child.join(10)
        store.close()


def _close_during_a_write(path: Path) -> None:
    """In a child: close the backend while another thread of it is inside a write (holding
    the shared mutex), then let that write end."""
    backend = SqliteBackend(path, busy_timeout=30)
    inside, finish = threading.Event(), threading.Event()

    def write() -> None:
        with contextlib.suppress(StoreError, sqlite3.Error), backend.write() as db:
            db.execute(sql("UPDATE issuers SET name = 'written while closing'"))
            inside.set()
            finish.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    assert inside.wait(10)
    closing = threading.Thread(target=backend.close)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive(), "close waits for the write in progress"
    finish.set()
    writer.join(10)
    closing.join(10)
    assert not closing.is_alive()


def test_closing_waits_for_the_write_in_progress(tmp_path: Path) -> None:
    """The backend's close tears the writer lock down (its mutex's mapping, its descriptor)
    once no thread of the process is writing: unmapped under a writer that holds it, the
    mutex would crash the process when released. Run in a child, whose exit code tells."""
    path = tmp_path / "service.sqlite3"
    Store(path).close()  # the schema
    child = _fork.Process(target=_close_during_a_write, args=(path,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
