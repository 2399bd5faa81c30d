"""POST /v1/verify keeps costly work off the event loop, over real HTTP (uvicorn) against
anvil: a credential signed with ``eddsa-rdfc-2022`` (RDF canonicalisation, tens of
milliseconds) is verified in a worker thread, never on the loop that serves every request of
the process; and a verification the chain reader's cache cannot answer checks the signature
once, in the thread, not first on the loop and then again. The verification function is
instrumented to record where it ran: deterministic, no timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

import verifier.verify
from anchor_service.samples import make_credential
from anchor_service.store import Store
from testkit.world import World
from tests.anchor_service.test_verify_limits import verify_service
from tests.verifier.wallet import anchored_bundles, register_signing_key, sign
from verifier.data_integrity import verify_proof
from verifier.receipt import Bundle

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def bundles(anvil_world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    """Bundles of the world's issuer anchored on anvil: one signed with eddsa-rdfc-2022, one
    with eddsa-jcs-2022."""
    store = Store(tmp_path_factory.mktemp("verify-off-loop") / "db.sqlite3")
    store.add_issuer("uni-a", entity_id=anvil_world.issuer_id,
                     key_address=anvil_world.issuer.address, did="did:web:uni-a.example")
    register_signing_key(anvil_world)
    rdfc, jcs = anchored_bundles(
        anvil_world, store, anvil_world.issuer,
        [sign(make_credential("off-loop-rdfc", subject={"name": "Zoë"}),
              suite="eddsa-rdfc-2022"),
         sign(make_credential("off-loop-jcs"))], signed=False)
    store.close()
    return {"rdfc": rdfc, "jcs": jcs}


class ProofCalls:
    """Each call of the verifier's proof verification: (its cryptosuite, whether it ran on
    a thread running an event loop)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def record(self, suite: str) -> None:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:  # a worker thread: no loop runs in it
            on_loop = False
        with self._lock:
            self.calls.append((suite, on_loop))

    def take(self) -> list[tuple[str, bool]]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls


@pytest.fixture
def proof_calls(monkeypatch: pytest.MonkeyPatch) -> ProofCalls:
    calls = ProofCalls()
    def recorded(document: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        calls.record(str(document["proof"]["cryptosuite"]))
        return verify_proof(document, *args, **kwargs)

    monkeypatch.setattr(verifier.verify, "verify_proof", recorded)
    return calls


@pytest.fixture
def http(anvil_world: World, tmp_path: Path) -> Iterator[httpx.Client]:
    with verify_service(anvil_world, tmp_path, str(anvil_world.chain.rpc_url)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _verified(http: httpx.Client, bundle: Bundle) -> dict[str, Any]:
    answer = http.post("/v1/verify", content=bundle.to_json(), headers=JSON)
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    assert report["valid"] is True, report
    return report


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def test_an_rdfc_signed_credential_is_never_verified_on_the_event_loop(
        http: httpx.Client, bundles: dict[str, Bundle], proof_calls: ProofCalls) -> None:
    rdfc = bundles["rdfc"]
    assert len(rdfc.to_json().encode()) <= 16 * 1024  # small enough for the inline path
    cold = _verified(http, rdfc)
    # Verified again at the same head: every chain read is in the cache now.
    warm = _verified(http, rdfc)
    assert _statuses(warm) == _statuses(cold)
    assert warm["signature"]["cryptosuite"] == "eddsa-rdfc-2022"
    # Once per verification, each in a worker thread.
    assert proof_calls.take() == [("eddsa-rdfc-2022", False)] * 2


def test_a_verification_the_cache_cannot_answer_checks_the_signature_once(
        http: httpx.Client, bundles: dict[str, Bundle], proof_calls: ProofCalls) -> None:
    jcs = bundles["jcs"]
    # A new service: its reader's cache is empty, so the node must be asked.
    cold = _verified(http, jcs)
    assert proof_calls.take() == [("eddsa-jcs-2022", False)]
    # At the same head, answered from the cache alone: on the event loop (no thread
    # hand-over), the same report.
    warm = _verified(http, jcs)
    assert proof_calls.take() == [("eddsa-jcs-2022", True)]
    assert _statuses(warm) == _statuses(cold)
    assert warm["signature"] == cold["signature"]
