"""The verifier against real anchors made by the service pipeline, on the in-process chain and
on anvil: a valid bundle passes every check, and each way of breaking it fails its own check."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from anchor_service.samples import make_credential
from anchor_service.store import StatusPosition, Store
from testkit.world import World
from tests.verifier.wallet import anchored_bundles, sign, trust_of, with_status_entries
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import encode_status_indices
from verifier.credential import credential_digest
from verifier.receipt import Bundle
from verifier.trust import TrustConfig
from verifier.verify import CheckStatus, VerificationReport, verify, verify_bundle_text


@dataclass
class Issued:
    world: World
    bundle: Bundle
    mismatched: Bundle  # anchored by uni-a, but claims to be issued by uni-b
    trust: TrustConfig
    reader: JsonRpcChainReader
    before_anchoring: str  # chain snapshot
    store: Store

    def check(self, bundle: Bundle | None = None, *, trust: TrustConfig | None = None,
              offline: bool = False, as_of: datetime | None = None) -> VerificationReport:
        b = bundle or self.bundle
        return verify(b.credential, b.receipt, trust=trust or self.trust,
                      reader=None if offline else JsonRpcChainReader(self.world.chain.w3),
                      as_of=as_of)


CREDENTIAL = make_credential(1, id_prefix="urn:verify", validFrom="2026-01-01T00:00:00Z",
                             validUntil="2030-01-01T00:00:00Z",
                             subject={"name": "Zoë", "learningScope": "non-formal"})
DURING = datetime(2027, 6, 1, tzinfo=UTC)


@pytest.fixture
def issued(world: World, tmp_path: Path) -> Iterator[Issued]:
    store = Store(tmp_path / "db.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:web:uni-a.example")
    # Eight leaves in all: every leaf has a sibling, so "wrong index" (index ^ 1) is a leaf
    # with a path of the same length, wherever the credential lands in the batch.
    others = [{**CREDENTIAL, "id": f"urn:verify:other{n}"} for n in range(6)]
    mismatched = {**CREDENTIAL, "id": "urn:verify:m", "issuer": {"id": "did:web:uni-b.example"}}
    before_anchoring = world.chain.snapshot()
    positions = store.allocate_status(1, 2 + len(others))
    # Each credential's status entries name its claimed issuer's lists (uni-b's for the
    # mismatched one), so that only the issuer it claims is wrong.
    placed = [with_status_entries(CREDENTIAL, positions[0]),
              with_status_entries(mismatched, positions[1], did="did:web:uni-b.example",
                                  issuer_name="uni-b"),
              *(with_status_entries(c, p) for c, p in zip(others, positions[2:], strict=True))]
    bundles = anchored_bundles(world, store, world.issuer, placed, positions=positions)
    yield Issued(world, bundles[0], bundles[1], trust_of(world),
                 JsonRpcChainReader(world.chain.w3), before_anchoring, store)
    store.close()


def _failed(report: VerificationReport) -> list[str]:
    return [c.name for c in report.checks if c.status is CheckStatus.FAILED]


def _mutated(bundle: Bundle, change: Any) -> Bundle:
    document = json.loads(bundle.to_json())
    change(document)
    return Bundle.from_json(json.dumps(document))


def test_a_valid_bundle_passes_every_check(issued: Issued) -> None:
    report = issued.check(as_of=DURING)
    assert report.valid, report.to_dict()
    assert report.issuer_did == "did:web:uni-a.example"
    # Every check passed; a published list is compared only when one is given.
    assert {c.name for c in report.checks if c.status is not CheckStatus.PASSED} \
        == {"status_list_matches_chain"}
    assert report.check("status_list_matches_chain").status is CheckStatus.NOT_APPLICABLE
    receipt = issued.bundle.receipt
    assert receipt.status_list == 0
    assert report.check("status_entries_match").evidence["receipt"] \
        == f"0/{receipt.status_list_index}"
    assert report.check("not_revoked").evidence["statusListIndex"] == receipt.status_list_index
    assert report.check("not_revoked").evidence["entityId"] == issued.world.issuer_id
    digest = report.check("digest_matches").evidence
    # The anchored digest is of the signed credential, proof included.
    assert digest["computed"] == digest["receipt"] == "0x" + credential_digest(
        sign(with_status_entries(CREDENTIAL, StatusPosition(receipt.status_list,
                                                            receipt.status_list_index)))).hex()
    assert report.check("signature_valid").evidence["verificationMethod"] \
        == issued.bundle.credential["proof"]["verificationMethod"]
    anchored = report.check("anchored_on_chain").evidence
    assert anchored["block"] == issued.bundle.receipt.anchor.block_number
    assert anchored["entityId"] == issued.world.issuer_id
    with pytest.raises(TypeError):  # the report is immutable, evidence included
        digest["computed"] = "0x00"  # type: ignore[index]
    text_report = verify_bundle_text(issued.bundle.to_json(), trust=issued.trust,
                                     reader=issued.reader, as_of=DURING)
    assert text_report.valid


@pytest.mark.parametrize(
    ("name", "change", "failing"),
    [
        ("tampered credential", lambda d: d["credential"].update(id="urn:forged"),
         "digest_matches"),
        ("tampered proof", lambda d: d["receipt"]["auditPath"].__setitem__(
            0, "0x" + "00" * 32), "merkle_inclusion"),
        ("wrong index", lambda d: d["receipt"].update(leafIndex=d["receipt"]["leafIndex"] ^ 1),
         "merkle_inclusion"),
        ("wrong root", lambda d: d["receipt"].update(root="0x" + "ab" * 32), "merkle_inclusion"),
        ("unknown contract", lambda d: d["receipt"]["anchor"].update(contract="0x" + "12" * 20),
         "trusted_deployment"),
        ("wrong block", lambda d: d["receipt"]["anchor"].update(blockHash="0x" + "34" * 32),
         "anchored_on_chain"),
    ],
)
def test_each_break_fails_its_own_check(
    issued: Issued, name: str, change: Any, failing: str
) -> None:
    bundle = _mutated(issued.bundle, change)
    report = issued.check(bundle, as_of=DURING)
    assert not report.valid, name
    assert _failed(report) == [failing], (name, report.to_dict())


def test_issuer_did_mismatch(issued: Issued) -> None:
    """University A anchors a credential that claims to come from university B."""
    report = issued.check(issued.mismatched, as_of=DURING)
    assert _failed(report) == ["issuer_did_matches"]
    assert "did:web:uni-b.example" in report.check("issuer_did_matches").detail


def test_wrong_chain_id(issued: Issued) -> None:
    other = issued.trust.deployments[0].model_copy(update={"chain_id": 999})
    trust = TrustConfig(deployments=(*issued.trust.deployments, other))
    bundle = _mutated(issued.bundle, lambda d: d["receipt"]["anchor"].update(chainId=999))
    report = issued.check(bundle, trust=trust, as_of=DURING)
    assert _failed(report) == ["anchored_on_chain"]
    assert "serves chain" in report.check("anchored_on_chain").detail


def _change(issued: Issued, action: str, bundle: Bundle | None = None, reason: int = 0,
            *, index_offset: int = 0) -> Any:
    """``revoke``, ``suspend`` or ``reinstate`` of a bundle's status entry, by its issuer."""
    w, receipt = issued.world, (bundle or issued.bundle).receipt
    indices = encode_status_indices([receipt.status_list_index + index_offset])
    return w.tx(w.issuer).transact(getattr(w.anchor.functions, action)(
        w.issuer_id, receipt.status_list, indices, reason))


def test_revoked_and_suspended_then_reinstated(issued: Issued) -> None:
    _change(issued, "suspend", reason=1)
    assert _failed(issued.check(as_of=DURING)) == ["not_suspended"]
    _change(issued, "reinstate")
    assert issued.check(as_of=DURING).valid
    _change(issued, "revoke", reason=2)
    assert _failed(issued.check(as_of=DURING)) == ["not_revoked"]


def test_the_status_read_is_the_credentials_own_entry(issued: Issued) -> None:
    """Changing the neighbouring entries (same word, same read window) leaves it valid; the
    neighbour allocated next (the mismatched credential) is the one revoked."""
    index = issued.bundle.receipt.status_list_index
    assert issued.mismatched.receipt.status_list_index == index + 1
    _change(issued, "revoke", index_offset=1)
    _change(issued, "suspend", index_offset=2)
    assert issued.check(as_of=DURING).valid
    assert _failed(issued.check(issued.mismatched, as_of=DURING)) == [
        "issuer_did_matches", "not_revoked"]


def _reanchored(issued: Issued,
                entries_for: Callable[[StatusPosition], list[dict[str, Any]]]) -> Bundle:
    """A new credential anchored at a freshly allocated position, whose ``credentialStatus``
    is ``entries_for(position)``."""
    (position,) = issued.store.allocate_status(1, 1)
    credential = {**CREDENTIAL, "id": f"urn:verify:re{position.index}",
                  "credentialStatus": entries_for(position)}
    (bundle,) = anchored_bundles(issued.world, issued.store, issued.world.issuer, [credential],
                                 positions=[position])
    assert (bundle.receipt.status_list, bundle.receipt.status_list_index) \
        == (position.list, position.index)
    return bundle


def _entries(position: StatusPosition) -> list[dict[str, Any]]:
    return list(with_status_entries({}, position)["credentialStatus"])


def _swapped_urls(position: StatusPosition) -> list[dict[str, Any]]:
    revocation, suspension = _entries(position)
    return [{**revocation, "statusListCredential": suspension["statusListCredential"]},
            {**suspension, "statusListCredential": revocation["statusListCredential"]}]


@pytest.mark.parametrize(("name", "entries_for"), [
    ("another index", lambda p: _entries(StatusPosition(p.list, p.index + 100))),
    ("another list", lambda p: _entries(StatusPosition(p.list + 1, p.index))),
    ("the other purpose's list", _swapped_urls),
    ("one entry of two elsewhere", lambda p: [_entries(p)[0],
                                              _entries(StatusPosition(p.list, p.index + 1))[1]]),
])
def test_status_entries_pointing_elsewhere_fail(issued: Issued, name: str,
                                                entries_for: Any) -> None:
    """A credential whose BitstringStatusListEntry points standard verifiers at another
    position than the one its receipt binds (the one the chain is read at) fails."""
    report = issued.check(_reanchored(issued, entries_for), as_of=DURING)
    assert _failed(report) == ["status_entries_match"], (name, report.to_dict())
    assert "points at list" in report.check("status_entries_match").detail
    honest = issued.check(_reanchored(issued, _entries), as_of=DURING)
    assert honest.valid, honest.to_dict()
    assert honest.check("status_entries_match").status is CheckStatus.PASSED


def test_a_malformed_status_entry_fails(issued: Issued) -> None:
    def numbered(position: StatusPosition) -> list[dict[str, Any]]:
        entries = _entries(position)
        entries[0]["statusListIndex"] = position.index  # a JSON number
        return entries

    report = issued.check(_reanchored(issued, numbered), as_of=DURING)
    assert _failed(report) == ["status_entries_match"]
    assert "a JSON number" in report.check("status_entries_match").detail


def test_no_status_entries_is_not_applicable(issued: Issued, world: World) -> None:
    (bundle,) = anchored_bundles(world, issued.store, world.issuer,
                                 [{**CREDENTIAL, "id": "urn:verify:plain"}])
    report = issued.check(bundle, as_of=DURING)
    assert report.valid
    assert report.check("status_entries_match").status is CheckStatus.NOT_APPLICABLE


def test_key_revoked_with_a_back_dated_time(issued: Issued) -> None:
    w = issued.world
    anchored_at = issued.check(as_of=DURING).anchored_at
    assert anchored_at is not None
    w.tx(w.body).transact(w.registry.functions.revokeKey(w.issuer.address, anchored_at - 1))
    report = issued.check(as_of=DURING)
    assert _failed(report) == ["issuer_trusted_at_anchoring"]
    assert "key revoked" in report.check("issuer_trusted_at_anchoring").detail


def test_validity_period(issued: Issued) -> None:
    assert _failed(issued.check(as_of=datetime(2031, 1, 1, tzinfo=UTC))) == ["validity_period"]
    # Offline, because the chain did not hold the anchor yet in 2025 (see the as-of test).
    early = issued.check(as_of=datetime(2025, 1, 1, tzinfo=UTC), offline=True)
    assert _failed(early) == ["validity_period"]
    assert "not valid yet" in early.check("validity_period").detail


def test_as_of_a_past_time_reads_the_chain_as_it_stood_then(issued: Issued) -> None:
    w, receipt = issued.world, issued.bundle.receipt
    anchored_at = issued.check().anchored_at
    assert anchored_at is not None
    w.chain.increase_time(3600)
    revocation = _change(issued, "revoke", reason=2)
    revoked_in = revocation["blockNumber"]
    revoked_at = w.chain.w3.eth.get_block(revoked_in)["timestamp"]
    assert revoked_at >= anchored_at + 3600

    def at(timestamp: int) -> VerificationReport:
        return issued.check(as_of=datetime.fromtimestamp(timestamp, UTC))

    before = at(revoked_at - 1)  # revoked later, so not revoked then
    assert before.valid, before.to_dict()
    read_at = before.check("not_revoked").evidence["atBlock"]
    assert receipt.anchor.block_number <= read_at < revoked_in
    assert _failed(at(revoked_at)) == ["not_revoked"]
    assert at(revoked_at).check("not_revoked").evidence["atBlock"] == revoked_in
    assert _failed(issued.check()) == ["not_revoked"]  # now
    too_early = at(anchored_at - 1)
    assert _failed(too_early) == ["anchored_on_chain"]
    assert "after the as-of time" in too_early.check("anchored_on_chain").detail


def test_too_few_confirmations(issued: Issued) -> None:
    strict = issued.trust.model_copy(update={"min_confirmations": 10_000})
    report = issued.check(trust=strict, as_of=DURING)
    assert _failed(report) == ["confirmations"]


def test_anchor_reorganised_out(issued: Issued) -> None:
    # Rewrite history: back to before the anchor, and other blocks in its place.
    issued.world.chain.revert(issued.before_anchoring)
    issued.world.chain.mine(5)
    report = issued.check(as_of=DURING)
    assert _failed(report) == ["anchored_on_chain"]
    assert "not anchored" in report.check("anchored_on_chain").detail


def test_offline_checks_what_it_can_and_says_what_it_cannot(issued: Issued) -> None:
    report = issued.check(offline=True, as_of=DURING)
    assert not report.valid
    statuses = {c.name: c.status for c in report.checks}
    for name in ("digest_matches", "merkle_inclusion", "trusted_deployment", "validity_period"):
        assert statuses[name] is CheckStatus.PASSED, name
    for name in ("anchored_on_chain", "confirmations", "issuer_trusted_at_anchoring",
                 "issuer_did_matches", "signing_key_registered",
                 "signing_key_trusted_at_anchoring", "not_revoked", "not_suspended",
                 "scope_allows_kind"):
        assert statuses[name] is CheckStatus.NOT_CHECKED, name
    assert statuses["signature_valid"] is CheckStatus.PASSED
    assert _failed(report) == []


def test_malformed_bundle_reports_instead_of_raising(issued: Issued) -> None:
    document = json.loads(issued.bundle.to_json())
    del document["receipt"]["salt"]
    report = verify_bundle_text(json.dumps(document), trust=issued.trust, reader=None)
    assert _failed(report) == ["receipt_well_formed"]
    assert "salt" in report.check("receipt_well_formed").detail
    assert copy.deepcopy(report.to_dict())["valid"] is False


def test_accreditation_body_revoked_since_before_the_anchor(issued: Issued) -> None:
    w = issued.world
    anchored_at = issued.check(as_of=DURING).anchored_at
    assert anchored_at is not None
    w.chain.increase_time(10)
    w.tx(w.admin).transact(w.registry.functions.revokeSince(w.body_id, anchored_at))
    report = issued.check(as_of=DURING)
    # The signing key's trust walks the same accreditation bodies as the anchoring key's.
    assert _failed(report) == ["issuer_trusted_at_anchoring", "signing_key_trusted_at_anchoring"]
    for name in ("issuer_trusted_at_anchoring", "signing_key_trusted_at_anchoring"):
        assert "accreditor not active" in report.check(name).detail
        assert f"entity {w.body_id}" in report.check(name).detail
