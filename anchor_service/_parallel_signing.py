"""Signing a submission's credentials, and a helper process that signs large ones.

A bulk submission signed by the thread that took it uses one core, while the machine has more,
and holds the interpreter of its service process (its event loop and its other requests wait
for it). :class:`SigningHelper` is a second process per service process. It signs the second
half of each submission of at least :data:`PARALLEL_MIN` credentials while the thread signs the
first, so that a request of 10,000 credentials is signed on two cores, and the whole of a
submission of :data:`HANDOFF_MIN` to :data:`PARALLEL_MIN` credentials while the thread waits
(without the interpreter). The answer and what is stored are the same either way: the shares
share the session's suite and ``created`` time, each credential keeps its own status position,
and a refusal names the first credential refused, as it does without the helper.

The service's processes start their helper when they start (:meth:`SigningHelper.start`);
otherwise it is started at the first large submission, which does not wait for it. It is used
once it has said it is ready. It holds one share at a time; a second large submission at the
same time is signed by its own thread alone. When the helper fails (it died, it did not answer
in time, an answer could not be read) the submission's thread signs the share itself, and the
helper is started again a minute later. The helper ends when its socket to the service
process closes, which the kernel does when that process ends, however it ends.

The issuer's private signing key is sent to the helper with each share, over that socket (a
socket pair between two processes of the same user, never a file or the network), and kept in
the helper's memory as in the service process's (SECURITY.md).
"""

from __future__ import annotations

import gc
import logging
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from anchor_service import _affinity
from anchor_service.errors import AnchorServiceError, SigningError
from anchor_service.signing import IssuerSigner, SigningSession
from anchor_service.status import StatusEntries
from anchor_service.store import Issuer, NewCredential, StatusPosition
from verifier.credential import new_salts
from verifier.errors import CredentialError
from verifier.multikey import PrivateKey

log = logging.getLogger("anchor_service.signing_helper")

#: Submissions of at least this many credentials to sign are split with the helper. Below it
#: the hand-over (about a millisecond) is a larger part of the time saved.
PARALLEL_MIN: Final = 1000
#: Submissions of at least this many credentials (and fewer than :data:`PARALLEL_MIN`) are
#: signed by the helper alone while the request's thread waits without holding the
#: interpreter: signing them here would hold up the process's event loop and its other
#: requests for tens to hundreds of milliseconds.
HANDOFF_MIN: Final = 64
#: How long a share may take in the helper before the submission's thread signs it itself
#: (a share of the largest request takes about a second).
_SHARE_TIMEOUT: Final = 60.0
#: After the helper failed, the seconds before another is started.
_RESTART_AFTER: Final = 60.0
#: Signing keys the helper keeps loaded (one per issuer and key in use).
_MAX_SIGNERS: Final = 16
_READY: Final = "ready"
#: Where this package was imported from: the helper imports the same code (never another copy
#: that its working folder, which -P leaves out of its path, might hold).
_ROOT: Final = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a credential of a submission cannot be accepted: the HTTP status, error code and
    message the API answers with."""

    status: int
    error: str
    detail: str


def refusal_of(index: int, exc: CredentialError | SigningError) -> Refusal:
    """The refusal of ``credentials[index]`` for ``exc``, raised by canonicalising, checking
    or signing it."""
    if isinstance(exc, CredentialError):
        where = str(exc).removeprefix("credential")
        return Refusal(422, "invalid_credential", f"credentials[{index}]{where}")
    return Refusal(exc.http_status, exc.error_code, f"credentials[{index}]: {exc}")


def sign_share(session: SigningSession, status: StatusEntries,
               credentials: Sequence[Mapping[str, Any]], positions: Sequence[StatusPosition],
               first: int = 0) -> list[NewCredential] | Refusal:
    """Each credential signed with its status entries at its position, or the refusal of the
    first that cannot be (``first`` is the index of ``credentials[0]`` in the submission)."""
    items = []
    salts = new_salts(len(credentials))
    for index, (credential, position, salt) in enumerate(zip(credentials, positions, salts,
                                                             strict=True), first):
        try:
            entries, member = status.entries(position)
        except AnchorServiceError as exc:
            return Refusal(409, "no_status_list_url", f"{exc}; credentials signed by the "
                           "service carry status list URLs on the issuer's did:web host")
        try:
            signed = session.sign(credential, entries, status_member=member)
        except (CredentialError, SigningError) as exc:
            return refusal_of(index, exc)
        items.append(NewCredential(signed.digest, salt, signed.canonical,
                                   signed.submitted_digest, position))
    return items


@dataclass(frozen=True, slots=True)
class _Job:
    """A share to sign, as sent to the helper."""

    did: str
    key: bytes  # the private key: Ed25519 raw, or P-256 PKCS #8 DER
    suite: str
    created: str
    issuer: Issuer
    credentials: list[Mapping[str, Any]]
    positions: list[tuple[int, int]]
    first: int


# What the helper answers for a job: the signed items as tuples (pickled faster than
# dataclasses), a refusal, or the text of an unexpected failure.
_Signed = list[tuple[bytes, bytes, bytes | None, bytes | None]]
_Answer = _Signed | Refusal | str


class SigningHelper:
    """The helper process of one service process (see the module's description). Thread-safe:
    the submissions' threads share it, one share at a time."""

    def __init__(self, *, restart_after: float = _RESTART_AFTER) -> None:
        self.restart_after = restart_after
        #: Shares the helper has signed.
        self.shares_signed = 0
        self._lock = threading.Lock()  # held from a share's sending to its answer
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready = False
        self._failed_at: float | None = None
        self._closed = False

    def sign(self, session: SigningSession, status: StatusEntries,
             credentials: Sequence[Mapping[str, Any]], positions: Sequence[StatusPosition],
             ) -> list[NewCredential] | Refusal:
        """The credentials signed as :func:`sign_share` signs them: the second half by the
        helper from :data:`PARALLEL_MIN` credentials, all of them from :data:`HANDOFF_MIN`,
        when it is ready and free; else in this thread."""
        count = len(credentials)
        split = count // 2 if count >= PARALLEL_MIN else 0
        share = (self._send(session, status, credentials[split:], positions[split:], split)
                 if count >= HANDOFF_MIN else None)
        if share is None:
            return sign_share(session, status, credentials, positions)
        try:
            mine = sign_share(session, status, credentials[:split], positions[:split])
        finally:
            try:
                # Read even when the first half is refused: one answer a share on the socket.
                theirs = self._answer(share)
            finally:
                self._lock.release()
        if isinstance(mine, Refusal):
            return mine  # the first refused credential: it is in the first half
        if theirs is None:  # the helper failed: its share is signed here
            theirs = sign_share(session, status, credentials[split:], positions[split:], split)
        return theirs if isinstance(theirs, Refusal) else mine + theirs

    def start(self) -> None:
        """Start the helper now, in the background, rather than at the first large
        submission (which does not wait for it, so is signed on one core)."""
        with self._lock:
            if self._process is None and not self._closed:
                self._start()

    @property
    def pid(self) -> int | None:
        """The helper's process id; None when none runs."""
        process = self._process
        return None if process is None else process.pid

    def ready(self, wait: float = 0.0) -> bool:
        """Whether the helper is ready for a share, waiting up to ``wait`` seconds for one
        that is starting."""
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                if self._usable() is not None:
                    return True
                if self._process is None:  # closed, or failed and not due to start again
                    return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def close(self) -> None:
        """Stop the helper (waits up to a second for it to end, then kills it)."""
        with self._lock:
            self._closed = True
            self._stop()

    def _send(self, session: SigningSession, status: StatusEntries,
              credentials: Sequence[Mapping[str, Any]], positions: Sequence[StatusPosition],
              first: int) -> _Share | None:
        """The share sent to the helper, which this thread then holds; None (nothing held)
        when the helper is busy, not ready or cannot be started."""
        if not self._lock.acquire(blocking=False):
            return None
        share = None
        try:
            conn = self._usable()
            if conn is not None:
                # Pickled whole before a byte is written: an unpicklable job leaves the
                # socket as it was.
                conn.send(_Job(session.signer.did, _key_bytes(session.signer.private_key),
                               session.suite, session.created, status.issuer,
                               list(credentials), [(p.list, p.index) for p in positions],
                               first))
                share = _Share(conn, positions)
        except (OSError, ValueError) as exc:  # the socket is closed
            self._fail(f"cannot send it a share: {exc}")
        except pickle.PicklingError as exc:
            log.warning("signing helper: a share could not be pickled (%s); signed here", exc)
        finally:
            if share is None:
                self._lock.release()
        return share

    def _answer(self, share: _Share) -> list[NewCredential] | Refusal | None:
        """The helper's answer to ``share``; None when it failed (it is then stopped)."""
        try:
            if not share.conn.poll(_SHARE_TIMEOUT):
                raise TimeoutError(f"no answer in {_SHARE_TIMEOUT:g} s")
            answer: _Answer = share.conn.recv()
        except (OSError, EOFError, TimeoutError, ValueError, pickle.UnpicklingError) as exc:
            self._fail(f"no answer to a share: {exc}")
            return None
        if isinstance(answer, str):
            self._fail(f"it failed to sign a share: {answer}")
            return None
        if isinstance(answer, Refusal):
            return answer
        if len(answer) != len(share.positions):
            self._fail(f"it answered {len(answer)} credentials for {len(share.positions)}")
            return None
        self.shares_signed += 1
        return [NewCredential(digest, salt, content, submitted, position)
                for (digest, salt, content, submitted), position
                in zip(answer, share.positions, strict=True)]

    def _usable(self) -> Connection | None:
        """The socket to a helper that is ready; starts one when there is none (and the last one did
        not fail within :attr:`restart_after` seconds)."""
        if self._closed:
            return None
        if self._process is None:
            failed = self._failed_at
            if failed is None or time.monotonic() - failed >= self.restart_after:
                self._start()
            return None
        if not self._ready:
            self._ready = self._heard_ready()
        return self._conn if self._ready else None

    def _heard_ready(self) -> bool:
        """Whether the starting helper has said it is ready (read without waiting); it is
        stopped when it ended instead."""
        conn, process = self._conn, self._process
        if conn is None or process is None:
            return False
        if not conn.poll(0):
            code = process.poll()
            if code is not None:
                self._fail(f"it ended while starting (exit code {code})")
            return False
        try:
            said = conn.recv()
        except (EOFError, OSError) as exc:  # it ended: the socket reads as closed
            self._fail(f"it ended while starting ({type(exc).__name__})")
            return False
        if said != _READY:
            self._fail("it did not start as expected")
            return False
        return True

    def _start(self) -> None:
        # A fresh interpreter (not a fork): no thread, lock or connection of this process
        # inside. Its end of a socket pair is its only descriptor of ours.
        mine, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(  # noqa: S603  # this interpreter, our own code
                # Ctrl-C reaches the whole process group: ignored from the first line (the
                # service process stops the helper itself), so that it never interrupts
                # the imports with a traceback either.
                [sys.executable, "-P", "-c", "import signal; signal.signal(signal.SIGINT, "
                 f"signal.SIG_IGN); import sys; sys.path.insert(0, {_ROOT!r}); "
                 f"import {__name__} as m; m.serve({theirs.fileno()})"],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        except OSError as exc:
            mine.close()
            self._failed_at = time.monotonic()
            log.warning("signing helper: cannot start it (%s); large submissions are signed "
                        "on one core", exc)
            return
        finally:
            theirs.close()
        self._process, self._conn, self._ready = process, Connection(mine.detach()), False
        # It signs on another core than its worker's: not kept on the worker's CPU.
        _affinity.release(process.pid)
        log.info("signing helper started (process %d)", process.pid)

    def _fail(self, why: str) -> None:
        log.warning("signing helper: %s; large submissions are signed on one core until "
                    "another starts", why)
        self._failed_at = time.monotonic()
        self._stop()

    def _stop(self) -> None:
        conn, process = self._conn, self._process
        self._conn, self._process, self._ready = None, None, False
        if conn is not None:
            conn.close()  # the helper reads the end of its socket and ends
        if process is not None:
            try:
                process.wait(1.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class _Share:
    """A share sent to the helper: the socket its answer comes on, and its positions."""

    def __init__(self, conn: Connection, positions: Sequence[StatusPosition]) -> None:
        self.conn = conn
        self.positions = positions


def _key_bytes(key: PrivateKey) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.private_bytes_raw()
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(data: bytes) -> PrivateKey:
    if len(data) == 32:
        return ed25519.Ed25519PrivateKey.from_private_bytes(data)
    key = serialization.load_der_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningError(f"unexpected key type {type(key).__name__}")
    return key


def serve(fd: int) -> None:  # pragma: no cover - runs in the helper process
    """The helper's life: answer each job that comes on the socket ``fd`` until it closes."""
    conn = Connection(fd)
    signers: dict[tuple[str, bytes, str], IssuerSigner] = {}
    try:
        conn.send(_READY)
    except OSError:  # the service process stopped while this one started
        return
    while True:
        gc.disable()  # unpickling thousands of dicts would run the collector many times
        try:
            job: _Job = conn.recv()
        except (EOFError, OSError):
            return
        finally:
            gc.enable()
        try:
            answer: _Answer = _sign_job(job, signers)
        except Exception as exc:  # reported to the service, which signs the share itself
            answer = f"{type(exc).__name__}: {exc}"
        try:
            conn.send(answer)
        except OSError:  # the service process has gone
            return


def _sign_job(job: _Job, signers: dict[tuple[str, bytes, str], IssuerSigner]) -> _Answer:
    cache_key = (job.did, job.key, job.suite)
    signer = signers.get(cache_key)
    if signer is None:
        if len(signers) >= _MAX_SIGNERS:
            signers.clear()
        signer = signers[cache_key] = IssuerSigner(job.did, _load_key(job.key), job.suite)
    session = signer.session(suite=job.suite, created=job.created)
    positions = [StatusPosition(*position) for position in job.positions]
    signed = sign_share(session, StatusEntries(job.issuer), job.credentials, positions,
                        job.first)
    if isinstance(signed, Refusal):
        return signed
    return [(item.digest, item.salt, item.content, item.submitted_digest) for item in signed]
