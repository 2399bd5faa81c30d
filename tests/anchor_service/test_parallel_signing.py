"""A large submission signed on two cores: the helper process signs the second half of it
(all of a middling one) and the result is what one process signs (the same documents,
canonical forms, digests and status positions); a refusal names the first credential refused,
in either share; a helper that dies or is stopped costs nothing but speed; the helper ends
with the process that started it. Real helper processes. The service's use of it, over HTTP:
tests/anchor_service/test_signing.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from anchor_service._parallel_signing import (
    HANDOFF_MIN,
    PARALLEL_MIN,
    Refusal,
    SigningHelper,
    sign_share,
)
from anchor_service.signing import IssuerSigner, SigningSession
from anchor_service.status import StatusEntries
from anchor_service.store import Issuer, NewCredential, StatusPosition
from tests.anchor_service.test_signing import DID, _credential
from verifier.data_integrity import verify_proof
from verifier.multikey import Multikey

ROOT = Path(__file__).resolve().parents[2]
CREATED = "2026-01-01T00:00:00Z"
ISSUER = Issuer(id=1, name="uni-a", entity_id=7, key_address="0x" + "11" * 20, did=DID)
#: The first position of the positions given (not 0: the halves keep their own positions).
FIRST = 123_456


@pytest.fixture
def helper() -> Iterator[SigningHelper]:
    started = SigningHelper(restart_after=0.0)
    started.start()
    assert started.ready(wait=60), "the signing helper did not start"
    try:
        yield started
    finally:
        started.close()


def _session(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
             suite: str = "eddsa-jcs-2022") -> SigningSession:
    return IssuerSigner(DID, key, suite).session(created=CREATED)


def _positions(count: int) -> list[StatusPosition]:
    return [StatusPosition.of(FIRST + n) for n in range(count)]


def _credentials(count: int, tag: str = "p") -> list[dict[str, Any]]:
    return [_credential(f"{tag}-{n}") for n in range(count)]


def _without_salts(items: list[NewCredential] | Refusal) -> list[tuple[Any, ...]]:
    assert isinstance(items, list), items
    return [(item.digest, item.content, item.submitted_digest, item.status) for item in items]


# From PARALLEL_MIN the helper signs the second half (of an odd count, the larger); from
# HANDOFF_MIN to below PARALLEL_MIN, all of it.
@pytest.mark.parametrize("count", [PARALLEL_MIN + 1, HANDOFF_MIN, PARALLEL_MIN - 1])
def test_the_helper_signs_its_share_and_the_result_is_one_processs(
        helper: SigningHelper, count: int) -> None:
    session = _session(ed25519.Ed25519PrivateKey.generate())
    status = StatusEntries(ISSUER)
    credentials, positions = _credentials(count), _positions(count)
    together = helper.sign(session, status, credentials, positions)
    assert helper.shares_signed == 1
    alone = sign_share(session, status, credentials, positions)
    # Ed25519 signatures are deterministic: the same credentials, positions and `created`
    # make the same bytes, whichever process signs them.
    assert _without_salts(together) == _without_salts(alone)
    assert isinstance(together, list)
    salts = [item.salt for item in together]
    assert len(set(salts)) == count
    assert {len(salt) for salt in salts} == {16}


def test_a_p256_key_reaches_the_helper_and_its_signatures_verify(
        helper: SigningHelper) -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    key = Multikey.from_public_key(private_key.public_key())
    count = PARALLEL_MIN
    signed = helper.sign(_session(private_key, "ecdsa-jcs-2019"), StatusEntries(ISSUER),
                         _credentials(count), _positions(count))
    assert helper.shares_signed == 1
    assert isinstance(signed, list)
    for index in (0, count // 2 - 1, count // 2, count - 1):
        item = signed[index]
        assert item.content is not None
        document = json.loads(item.content)
        assert verify_proof(document, key.multibase).cryptosuite == "ecdsa-jcs-2019"
        assert document["id"] == f"urn:signing:p-{index}"
        assert item.status == StatusPosition.of(FIRST + index)


@pytest.mark.parametrize(("count", "bad"), [
    (PARALLEL_MIN, [PARALLEL_MIN - 10]), (PARALLEL_MIN, [PARALLEL_MIN // 2 + 3]),
    (PARALLEL_MIN, [7, PARALLEL_MIN - 1]), (HANDOFF_MIN, [0, 5]),
    (HANDOFF_MIN, [HANDOFF_MIN - 1])])
def test_a_refusal_names_the_first_refused_credential_in_either_share(
        helper: SigningHelper, count: int, bad: list[int]) -> None:
    session = _session(ed25519.Ed25519PrivateKey.generate())
    credentials = _credentials(count)
    for index in bad:
        credentials[index] = _credential(f"bad-{index}", issuer="did:web:other.example")
    refused = helper.sign(session, StatusEntries(ISSUER), credentials, _positions(count))
    assert isinstance(refused, Refusal)
    assert (refused.status, refused.error) == (422, "issuer_mismatch")
    assert refused.detail.startswith(f"credentials[{bad[0]}]: ")
    assert refused == sign_share(session, StatusEntries(ISSUER), credentials,
                                 _positions(count))
    # The helper's answer was read: the next share gets its own, not this one's.
    fine = helper.sign(session, StatusEntries(ISSUER), _credentials(PARALLEL_MIN, "next"),
                       _positions(PARALLEL_MIN))
    assert isinstance(fine, list)
    assert json.loads(fine[-1].content or b"")["id"] == f"urn:signing:next-{PARALLEL_MIN - 1}"


def test_a_credential_that_is_not_json_the_service_signs_is_refused_by_the_helper(
        helper: SigningHelper) -> None:
    credentials = _credentials(PARALLEL_MIN)
    credentials[-1] = {**credentials[-1], "big": 2**60}  # outside I-JSON's integers
    refused = helper.sign(_session(ed25519.Ed25519PrivateKey.generate()),
                          StatusEntries(ISSUER), credentials, _positions(PARALLEL_MIN))
    assert isinstance(refused, Refusal)
    assert (refused.status, refused.error) == (422, "invalid_credential")
    assert refused.detail.startswith(f"credentials[{PARALLEL_MIN - 1}]")


def test_a_helper_that_died_costs_speed_only_and_is_started_again(
        helper: SigningHelper, caplog: pytest.LogCaptureFixture) -> None:
    session = _session(ed25519.Ed25519PrivateKey.generate())
    status = StatusEntries(ISSUER)
    credentials, positions = _credentials(PARALLEL_MIN), _positions(PARALLEL_MIN)
    pid = helper.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    signed = helper.sign(session, status, credentials, positions)
    assert _without_salts(signed) == _without_salts(sign_share(session, status, credentials,
                                                               positions))
    assert helper.shares_signed == 0
    assert "signing helper" in caplog.text
    # restart_after=0: the next large submission starts another, used once ready.
    assert helper.ready(wait=60)
    assert helper.pid not in (None, pid)
    helper.sign(session, status, credentials, positions)
    assert helper.shares_signed == 1


def test_a_helper_that_died_before_it_was_ready_is_not_an_error(
        caplog: pytest.LogCaptureFixture) -> None:
    helper = SigningHelper()
    helper.start()
    pid = helper.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # before it could say it is ready, or after: either way
    _wait_gone(pid)
    try:
        assert not helper.ready()
        assert helper.pid is None
        signed = helper.sign(_session(ed25519.Ed25519PrivateKey.generate()),
                             StatusEntries(ISSUER), _credentials(PARALLEL_MIN),
                             _positions(PARALLEL_MIN))
        assert isinstance(signed, list)
        assert helper.shares_signed == 0
        assert "signing helper" in caplog.text
    finally:
        helper.close()


def test_a_small_submission_and_a_closed_helper_sign_in_this_process() -> None:
    helper = SigningHelper()
    session = _session(ed25519.Ed25519PrivateKey.generate())
    small = helper.sign(session, StatusEntries(ISSUER), _credentials(HANDOFF_MIN - 1),
                        _positions(HANDOFF_MIN - 1))
    assert isinstance(small, list)
    assert helper.pid is None  # not started for it
    helper.start()
    assert helper.ready(wait=60)
    pid = helper.pid
    assert pid is not None
    helper.close()
    _wait_gone(pid)
    assert not helper.ready()
    large = helper.sign(session, StatusEntries(ISSUER), _credentials(PARALLEL_MIN),
                        _positions(PARALLEL_MIN))
    assert isinstance(large, list)
    assert (helper.shares_signed, helper.pid) == (0, None)
    helper.close()  # again: nothing to do


def test_the_helper_ends_with_the_process_that_started_it() -> None:
    script = textwrap.dedent("""
        import os, sys
        from anchor_service._parallel_signing import SigningHelper
        helper = SigningHelper()
        helper.start()
        assert helper.ready(wait=60)
        print(helper.pid, flush=True)
        sys.stdin.read()
    """)
    with subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as parent:
        try:
            assert parent.stdout is not None
            pid = int(parent.stdout.readline())
            os.kill(pid, 0)  # running
        finally:
            parent.kill()  # SIGKILL: nothing of the parent's code runs
    _wait_gone(pid)


def test_a_helper_whose_service_process_ends_while_it_starts_ends_quietly() -> None:
    # Ctrl-C (SIGINT) while it imports, then its service process gone before it is ready:
    # it ends, and writes nothing to the service's stderr, which it shares.
    script = textwrap.dedent("""
        import os, signal, time
        from anchor_service._parallel_signing import SigningHelper
        helper = SigningHelper()
        helper.start()
        time.sleep(0.2)
        os.kill(helper.pid, signal.SIGINT)
        print(helper.pid, flush=True)
        os._exit(0)  # no close(): the kernel closes the helper's socket
    """)
    ran = subprocess.run([sys.executable, "-c", script], cwd=ROOT, text=True,
                         capture_output=True, timeout=120, check=True)
    # capture_output reads stderr until every process holding it, the helper too, has ended.
    pid = int(ran.stdout)
    _wait_gone(pid)
    assert ran.stderr == ""


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A child of this process is gone once reaped; the others' are reaped by init.
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
        except ChildProcessError:
            pass
        time.sleep(0.02)
    pytest.fail(f"process {pid} still runs")
