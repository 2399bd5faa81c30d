"""Published status lists over real HTTP (uvicorn, SQLite, a real anvil node): every bit is
the chain's, read at the block the list names; a list is rendered again when the chain changes
it (the watcher) and not between changes; ETag and 304; the past by ``?block=`` and
``?asOf=``; the signature verifies with the issuer's key; refusals name the problem. The
renderer and the watcher on their own (half-validity refresh, reorganisation) run on the
in-process chain and on anvil."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from anchor_service.chain import Transactor
from anchor_service.errors import StatusListRequestError
from anchor_service.signing import IssuerSigner
from anchor_service.status_lists import PAST_RENDERINGS, StatusLists, StatusWatcher
from anchor_service.store import Store
from testkit.net import free_port
from testkit.world import World, issuer_signing_key, serve_issuer
from tests.anchor_service.vc_stack import HOST, VC_V2, VcStack, did_of
from verifier.bitstring import bit, decode_list, words_to_bitstring
from verifier.contract_types import (
    STATUS_LIST_SIZE,
    STATUS_LIST_WORDS,
    StatusPurpose,
    StatusWords,
    encode_status_indices,
    read,
)
from verifier.data_integrity import verify_proof


def path(name: str, status_list: int = 0, purpose: str = "revocation") -> str:
    return f"/issuers/{name}/status-lists/{status_list}/{purpose}"


def fetch(stack: VcStack, name: str, purpose: str = "revocation", *, status_list: int = 0,
          **params: str) -> httpx.Response:
    with stack.client() as client:
        return client.get(path(name, status_list, purpose), params=params)


def anchoring_key(stack: VcStack, name: str) -> Transactor:
    """A transactor with the issuer's anchoring key (a key of its entity, trusted now): the
    one that may change its credentials' status."""
    index = {"acme": 6, "acme-p256": 7}[name]
    return stack.world.tx(stack.world.chain.accounts[index])


def change(stack: VcStack, name: str, action: str, indices: list[int],
           status_list: int = 0) -> int:
    """``action`` (revoke, suspend, reinstate) of ``indices`` by the issuer on chain; the
    block it was mined in."""
    function = getattr(stack.world.anchor.functions, action)
    receipt = anchoring_key(stack, name).transact(function(
        stack.entities[name], status_list, encode_status_indices(indices), 1))
    return int(receipt["blockNumber"])


def chain_bits(stack: VcStack, name: str, block: int | str = "latest",
               status_list: int = 0) -> dict[str, bytes]:
    words = read(StatusWords, stack.world.anchor.functions.statusWords(
        stack.entities[name], status_list, 0, STATUS_LIST_WORDS), block_identifier=block)
    return {"revocation": words_to_bitstring(words.revoked),
            "suspension": words_to_bitstring(words.suspended)}


def served_bits(answer: httpx.Response) -> bytes:
    assert answer.status_code == 200, answer.text
    return decode_list(answer.json()["credentialSubject"]["encodedList"])


def wait_for_change(stack: VcStack, name: str, purpose: str, etag: str) -> httpx.Response:
    """The list once the service serves another than ``etag`` (the watcher saw the change)."""
    deadline = time.monotonic() + 30
    while True:
        answer = fetch(stack, name, purpose)
        assert answer.status_code == 200, answer.text
        if answer.headers["etag"] != etag:
            return answer
        assert time.monotonic() < deadline, "the served list never changed"
        time.sleep(0.05)


# ------------------------------------------------------------------------- what is served


@pytest.mark.parametrize("purpose", ["revocation", "suspension"])
def test_list_is_the_chains_bits_at_the_block_it_names(stack: VcStack, purpose: str) -> None:
    name = "acme"
    before = fetch(stack, name, purpose)
    action = "revoke" if purpose == "revocation" else "suspend"
    change(stack, name, action, [0, 7, 8, 255, 256, STATUS_LIST_SIZE - 1])

    answer = wait_for_change(stack, name, purpose, before.headers["etag"])

    body = answer.json()
    evidence = body["evidence"][0]
    block = stack.world.chain.w3.eth.get_block(evidence["blockNumber"])
    assert evidence == {"type": ["ChainState"], "chainId": stack.world.deployment.chain_id,
                        "contract": stack.world.anchor.address,
                        "blockNumber": block["number"], "blockHash": "0x" + block["hash"].hex()}
    bits = served_bits(answer)
    assert len(bits) * 8 == STATUS_LIST_SIZE
    assert bits == chain_bits(stack, name, block["number"])[purpose]
    assert [i for i in (0, 1, 7, 8, 9, 255, 256, 4096, STATUS_LIST_SIZE - 1) if bit(bits, i)] \
        == [0, 7, 8, 255, 256, STATUS_LIST_SIZE - 1]


def test_list_credential_has_the_shape_the_recommendation_requires(stack: VcStack) -> None:
    answer = fetch(stack, "acme", "suspension")
    body = answer.json()
    url = f"https://{HOST}/issuers/acme/status-lists/0/suspension"

    assert body["@context"] == [VC_V2]
    assert body["id"] == url
    assert body["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert body["issuer"] == did_of("acme")
    subject = body["credentialSubject"]
    assert subject["id"] == f"{url}#list"
    assert subject["type"] == "BitstringStatusList"
    assert subject["statusPurpose"] == "suspension"
    # Multibase base64url (prefix u, no padding) of a GZIP stream of 16 KiB.
    encoded = subject["encodedList"]
    assert encoded.startswith("u")
    assert "=" not in encoded
    raw = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    assert len(gzip.decompress(raw)) == STATUS_LIST_SIZE // 8
    valid_from = datetime.fromisoformat(body["validFrom"])
    valid_until = datetime.fromisoformat(body["validUntil"])
    assert (valid_until - valid_from).total_seconds() == 300  # the default validity
    assert abs(valid_from.timestamp() - time.time()) < 300
    assert body["proof"]["type"] == "DataIntegrityProof"
    assert body["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert body["proof"]["verificationMethod"] == \
        f"{did_of('acme')}#{stack.keys['acme'].multibase}"


@pytest.mark.parametrize(("name", "suite"), [("acme", "eddsa-jcs-2022"),
                                             ("acme-p256", "ecdsa-jcs-2019")])
def test_signature_verifies_with_the_issuers_registered_key(stack: VcStack, name: str,
                                                            suite: str) -> None:
    body = fetch(stack, name).json()

    verified = verify_proof(body, stack.keys[name])

    assert body["proof"]["cryptosuite"] == suite
    assert verified.key == stack.keys[name]
    # One changed bit and the signature no longer holds.
    tampered = {**body, "credentialSubject": {**body["credentialSubject"],
                                              "encodedList": "uH4sIAAAAAAAAA"}}
    with pytest.raises(Exception, match=r"(?i)signature|verif"):
        verify_proof(tampered, stack.keys[name])


def test_etag_is_the_body_digest_and_if_none_match_answers_304(stack: VcStack) -> None:
    first = fetch(stack, "acme")
    etag = first.headers["etag"]

    assert etag == f'"{hashlib.sha256(first.content).hexdigest()}"'
    cache = first.headers["cache-control"]
    assert cache.startswith("public, max-age=")
    assert 0 < int(cache.removeprefix("public, max-age=")) <= 150  # half the validity
    with stack.client() as client:
        again = client.get(path("acme"), headers={"If-None-Match": etag})
        weak = client.get(path("acme"), headers={"If-None-Match": f'"other", W/{etag}'})
        other = client.get(path("acme"), headers={"If-None-Match": '"other"'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert weak.status_code == 304
    assert other.status_code == 200
    assert other.content == first.content


def test_list_is_not_rendered_again_between_changes(stack: VcStack) -> None:
    lists = stack.components.status_lists()
    first = fetch(stack, "acme-p256")
    renders = lists.renders

    answers = [fetch(stack, "acme-p256", purpose)
               for purpose in ("revocation", "suspension") * 10]

    # Both purposes come from one rendering, and twenty requests render nothing.
    assert lists.renders == renders
    assert {a.headers["etag"] for a in answers[0::2]} == {first.headers["etag"]}
    change(stack, "acme-p256", "revoke", [42])
    changed = wait_for_change(stack, "acme-p256", "revocation", first.headers["etag"])
    assert bit(served_bits(changed), 42)
    assert lists.renders == renders + 1
    for _ in range(5):
        assert fetch(stack, "acme-p256").headers["etag"] == changed.headers["etag"]
    assert lists.renders == renders + 1


def test_revoke_suspend_reinstate_each_seen_through_the_list(stack: VcStack) -> None:
    index = 1000
    etags = {p: fetch(stack, "acme", p).headers["etag"] for p in ("revocation", "suspension")}

    change(stack, "acme", "suspend", [index])
    suspended = wait_for_change(stack, "acme", "suspension", etags["suspension"])
    assert bit(served_bits(suspended), index)
    assert not bit(served_bits(fetch(stack, "acme", "revocation")), index)

    change(stack, "acme", "reinstate", [index])
    reinstated = wait_for_change(stack, "acme", "suspension", suspended.headers["etag"])
    assert not bit(served_bits(reinstated), index)


# ------------------------------------------------------------------------------- the past


def test_block_and_as_of_serve_the_list_as_it_stood_then(stack: VcStack) -> None:
    name, index = "acme", 2024
    before_block = int(stack.world.chain.w3.eth.block_number)
    before_time = int(stack.world.chain.w3.eth.get_block(before_block)["timestamp"])
    stack.world.chain.w3.provider.make_request("evm_increaseTime", [60])  # type: ignore[arg-type]
    revoked_block = change(stack, name, "revoke", [index])

    then = fetch(stack, name, block=str(before_block))
    at_time = fetch(stack, name, asOf=datetime.fromtimestamp(before_time, UTC)
                    .strftime("%Y-%m-%dT%H:%M:%SZ"))
    unix = fetch(stack, name, asOf=str(before_time))
    now = fetch(stack, name, block=str(revoked_block))

    for past in (then, at_time, unix):
        assert past.json()["evidence"][0]["blockNumber"] == before_block
        assert not bit(served_bits(past), index)
        assert served_bits(past) == chain_bits(stack, name, before_block)["revocation"]
        verify_proof(past.json(), stack.keys[name])
    assert bit(served_bits(now), index)
    assert now.json()["evidence"][0]["blockNumber"] == revoked_block


@pytest.mark.parametrize(("params", "expected"), [
    ({"block": "abc"}, "is not a block number"),
    ({"block": "-1"}, "is not a block number"),
    ({"block": "99999999"}, "is not confirmed yet"),
    ({"asOf": "yesterday"}, "is not a time"),
    ({"asOf": "2026-01-31T12:00:00"}, "is not a time"),  # no time zone
    ({"block": "1", "asOf": "1"}, "not both"),
])
def test_bad_block_or_time_is_400(stack: VcStack, params: dict[str, str],
                                  expected: str) -> None:
    with stack.client() as client:
        answer = client.get(path("acme"), params=params)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert expected in answer.json()["detail"]


def test_time_before_the_chain_or_block_before_the_deployment_is_404(stack: VcStack) -> None:
    before_chain = fetch(stack, "acme", asOf="1")
    before_deployment = fetch(stack, "acme", block="0")

    assert before_chain.status_code == 404, before_chain.text
    assert "no block made at or before" in before_chain.json()["detail"]
    assert before_deployment.status_code == 404, before_deployment.text
    assert "deployed at block" in before_deployment.json()["detail"]


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("url", "expected"), [
    (path("nobody"), "no issuer 'nobody'"),
    (path("acme", 0, "expiry"), "is not a status purpose"),
    (path("acme", 1), "has no status list 1"),
    (path("acme", 2**32), "is not a status list number"),
    ("/issuers/acme/status-lists/01/revocation", "is not a status list number"),
])
def test_unknown_issuer_purpose_or_list_is_404(stack: VcStack, url: str, expected: str) -> None:
    with stack.client() as client:
        answer = client.get(url)

    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found"
    assert expected in answer.json()["detail"]


def test_a_list_is_served_once_the_issuer_has_allocated_a_position_in_it(
        stack: VcStack) -> None:
    issuer = stack.store.add_issuer("lists", entity_id=stack.entities["acme"],
                                    key_address="0x" + "00" * 19 + "02", did=did_of("acme"))
    stack.store.set_signing_key(issuer.id, stack.keys["acme"].multibase)

    assert fetch(stack, "lists", status_list=1).status_code == 404
    stack.store.allocate_status(issuer.id, STATUS_LIST_SIZE + 1)  # list 0 full, one in list 1
    answer = fetch(stack, "lists", status_list=1)

    assert answer.status_code == 200, answer.text
    assert answer.json()["id"].endswith("/issuers/lists/status-lists/1/revocation")
    assert fetch(stack, "lists", status_list=2).status_code == 404


def test_issuer_without_signing_key_is_503(stack: VcStack) -> None:
    """An issuer served here whose signing key the database does not name: its lists cannot
    be signed, and are not served unsigned."""
    stack.store.add_issuer("no-key", entity_id=stack.entities["acme"],
                           key_address="0x" + "00" * 19 + "01", did=did_of("no-key"))

    answer = fetch(stack, "no-key", "suspension")

    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "no_signing_key"
    assert "has no signing key" in answer.json()["detail"]


# ------------------------------------------------------- the renderer and the watcher alone


def renderer(world: World, tmp_path: Path, *, clock: Any = time.time,
             validity: int = 300) -> tuple[StatusLists, str]:
    """A renderer for the world's issuer ("uni-a", did:web:uni-a.example, its test signing
    key) on ``world``'s chain, with ``clock``; the issuer's name."""
    store = Store(tmp_path / "service.sqlite3")
    issuer = serve_issuer(store, world, keystore_dir=tmp_path / "keys")
    signer = IssuerSigner(issuer.did, issuer_signing_key())
    lists = StatusLists(world.chain.w3, world.deployment, store, lambda _: signer,
                        validity=validity, confirmations=1, clock=clock)
    return lists, issuer.name


def revoke_as_issuer(world: World, index: int) -> None:
    world.tx(world.issuer).transact(world.anchor.functions.revoke(
        world.issuer_id, 0, encode_status_indices([index]), 0))


def test_rendered_again_when_half_the_validity_is_gone(world: World, tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    lists, name = renderer(world, tmp_path, clock=lambda: now[0], validity=100)
    first = lists.current(name, 0, StatusPurpose.REVOCATION)

    now[0] += 49
    kept = lists.current(name, 0, StatusPurpose.REVOCATION)
    now[0] += 2  # past half of 100 s
    again = lists.current(name, 0, StatusPurpose.REVOCATION)

    assert kept is first
    assert again is not first
    assert again.valid_from == first.valid_from + 51
    assert lists.renders == 2


def test_watcher_marks_changed_lists_and_a_reorganisation_drops_them(
        world: World, tmp_path: Path) -> None:
    lists, name = renderer(world, tmp_path)
    watcher = StatusWatcher(lists, interval=3600)
    rendered = lists.current(name, 0, StatusPurpose.REVOCATION)
    revoke_as_issuer(world, 4)
    # Its first round reads the events since the oldest list rendered before it.
    watcher.poll()
    first = lists.current(name, 0, StatusPurpose.REVOCATION)
    assert first is not rendered
    assert bit(decode_list(_subject(first.body)["encodedList"]), 4)
    snapshot = world.chain.snapshot()

    revoke_as_issuer(world, 5)
    assert lists.current(name, 0, StatusPurpose.REVOCATION) is first  # not seen yet
    watcher.poll()
    changed = lists.current(name, 0, StatusPurpose.REVOCATION)
    assert changed is not first
    assert bit(decode_list(_subject(changed.body)["encodedList"]), 5)
    assert lists.renders == 3

    # The chain reorganises: the block the watcher read last is replaced by another.
    world.chain.revert(snapshot)
    revoke_as_issuer(world, 6)
    watcher.poll()
    after = lists.current(name, 0, StatusPurpose.REVOCATION)
    bits = decode_list(_subject(after.body)["encodedList"])
    assert bit(bits, 6)
    assert not bit(bits, 5)
    assert lists.renders == 4


def _subject(body: bytes) -> dict[str, Any]:
    subject: dict[str, Any] = json.loads(body)["credentialSubject"]
    return subject


def test_unreachable_chain_serves_the_last_rendering_until_its_valid_until(
        world: World, tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    lists, name = renderer(world, tmp_path, clock=lambda: now[0], validity=100)
    first = lists.current(name, 0, StatusPurpose.SUSPENSION)
    # The node goes away: nothing listens on this port.
    lists.w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}",
                                      request_kwargs={"timeout": 2}))

    now[0] += 60  # past half of its validity: it would be rendered again
    kept = lists.current(name, 0, StatusPurpose.SUSPENSION)
    now[0] += 40  # its validUntil
    with pytest.raises(StatusListRequestError) as refused:
        lists.current(name, 0, StatusPurpose.SUSPENSION)

    assert kept is first
    assert refused.value.http_status == 503
    assert refused.value.error_code == "chain_unavailable"


def test_past_blocks_are_rendered_a_few_at_a_time(world: World, tmp_path: Path) -> None:
    lists, name = renderer(world, tmp_path)
    block = int(world.chain.w3.eth.block_number)
    kept = lists.at_block(name, 0, StatusPurpose.REVOCATION, block)
    slots = [lists._past_slots.acquire(blocking=False) for _ in range(PAST_RENDERINGS)]
    try:
        with pytest.raises(StatusListRequestError) as busy:
            lists.at_block(name, 0, StatusPurpose.REVOCATION, block - 1)
        # A past list already rendered is served from memory meanwhile.
        assert lists.at_block(name, 0, StatusPurpose.REVOCATION, block) is kept
    finally:
        for _ in slots:
            lists._past_slots.release()

    assert all(slots)
    assert busy.value.http_status == 503
    assert busy.value.error_code == "busy"
    assert lists.at_block(name, 0, StatusPurpose.REVOCATION, block - 1).block.number \
        == block - 1
