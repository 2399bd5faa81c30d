"""The issuer-scope rule against real anchors, on the in-process chain and on anvil: every
learningScope a credential declares, in every allowed shape and place, must be allowed for the
issuer that anchored it; any other shape fails the check instead of being ignored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchor_service.chain import accredit
from anchor_service.samples import make_credential
from anchor_service.store import Store
from testkit.world import World
from tests.verifier.wallet import anchored_bundles, register_signing_key, signing_key_of, trust_of
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import Kind, Scope
from verifier.receipt import Bundle
from verifier.trust import TrustConfig
from verifier.verify import CheckStatus, VerificationReport, verify

DID = "did:web:academy.example"


def credential(tag: str, **fields: Any) -> dict[str, Any]:
    """A credential of the academy (a subject without a scope unless ``fields`` give one)."""
    return make_credential(tag, id_prefix="urn:scope", issuer=DID, subject={"name": "Zoë"},
                           **fields)


# The shapes that verified as VALID for a non-formal-only issuer before the rule read them all.
BYPASSES = {
    "learningScope as an array": credential(
        "array", learningScope=["non-formal", "formal-degree"]),
    "credentialSubject as an array": credential(
        "subjects", credentialSubject=[{"learningScope": "non-formal"},
                                       {"learningScope": "formal-degree"}]),
    "top-level scope shadowing the subject's": credential(
        "shadow", learningScope="non-formal",
        credentialSubject={"name": "Zoë", "learningScope": "formal-degree"}),
}
ALLOWED = {
    "string at the top": credential("top", learningScope="non-formal"),
    "string in the subject": credential("subject", credentialSubject={
        "learningScope": "non-formal"}),
    "arrays everywhere": credential("arrays", learningScope=["non-formal"], credentialSubject=[
        {"learningScope": ["non-formal", "non-formal"]}, {"name": "no scope here"}]),
}
MALFORMED = {
    "a number": (credential("number", learningScope=4), "learningScope is a number"),
    "an object": (credential("object", credentialSubject={"learningScope": {"a": 1}}),
                  "credentialSubject.learningScope is an object"),
    "an empty array": (credential("empty", learningScope=[]), "learningScope is an empty array"),
    "an array holding a number": (
        credential("mixed", credentialSubject=[{"learningScope": ["non-formal", 1]}]),
        "credentialSubject[0].learningScope is an array holding a non-string"),
    "a scope deeper in the subject": (
        credential("deeper", credentialSubject={"achievement": {"learningScope": "formal-degree"}}),
        "credential.credentialSubject.achievement.learningScope declares a learningScope where"),
    "a subject inside an array inside the subject array": (
        credential("nested-subject", credentialSubject=[[{"learningScope": "formal-degree"}]]),
        "credential.credentialSubject[0][0].learningScope declares a learningScope where"),
    "an unknown scope among known ones": (
        credential("unknown", learningScope=["non-formal", "informal"]),
        "unknown learningScope 'informal'"),
}

# Subjects of other shapes that cannot hold a scope: nothing is hidden, so nothing fails.
UNSCOPED_SHAPES = {
    "a subject that is a string": credential("subject-string", credentialSubject="Zoë"),
    "a subject array holding a string": credential(
        "subject-item", credentialSubject=[{"learningScope": "non-formal"}, "x"]),
    "an empty subject array": credential("no-subjects", credentialSubject=[]),
}


@pytest.fixture
def anchored(world: World, tmp_path: Path) -> Iterator[tuple[dict[str, Bundle], TrustConfig]]:
    """Every credential above anchored by an issuer accredited for non-formal learning only."""
    key = world.stranger
    entity = accredit(world.tx(world.body), world.registry, parent=world.body_id,
                      kind=Kind.TRUSTED_ISSUER, did=DID, scope=Scope.NON_FORMAL)
    world.tx(world.body).transact(world.registry.functions.addKey(entity, key.address, 0, 0))
    credentials = {**BYPASSES, **ALLOWED, **UNSCOPED_SHAPES,
                   **{name: c for name, (c, _) in MALFORMED.items()}}
    store = Store(tmp_path / "db.sqlite3")
    store.add_issuer("academy", entity_id=entity, key_address=key.address, did=DID)
    register_signing_key(world, signing_key_of(DID), entity_id=entity)
    bundles = anchored_bundles(world, store, key, list(credentials.values()))
    yield dict(zip(credentials, bundles, strict=True)), trust_of(world)
    store.close()


def _check(world: World, bundle: Bundle, trust: TrustConfig, *,
           offline: bool = False) -> VerificationReport:
    reader = None if offline else JsonRpcChainReader(world.chain.w3)
    return verify(bundle.credential, bundle.receipt, trust=trust, reader=reader)


def _failed(report: VerificationReport) -> list[str]:
    return [c.name for c in report.checks if c.status is CheckStatus.FAILED]


def test_every_declared_scope_must_be_allowed(
    world: World, anchored: tuple[dict[str, Bundle], TrustConfig]
) -> None:
    bundles, trust = anchored
    for name in BYPASSES:
        report = _check(world, bundles[name], trust)
        assert not report.valid, name
        assert _failed(report) == ["scope_allows_kind"], name
        scope = report.check("scope_allows_kind")
        assert scope.detail == "the issuer is not accredited for formal-degree", name
        assert set(scope.evidence["declared"]) == {"non-formal", "formal-degree"}, name
    for name in ALLOWED:
        report = _check(world, bundles[name], trust)
        assert report.valid, (name, report.to_dict())
        assert report.check("scope_allows_kind").evidence["declared"] == ("non-formal",)


def test_any_other_shape_fails_the_check_online_and_offline(
    world: World, anchored: tuple[dict[str, Bundle], TrustConfig]
) -> None:
    bundles, trust = anchored
    for name, (_, detail) in MALFORMED.items():
        for offline in (False, True):
            report = _check(world, bundles[name], trust, offline=offline)
            assert not report.valid, name
            assert not report.offline_checks_passed, name
            assert _failed(report) == ["scope_allows_kind"], (name, offline)
            assert detail in report.check("scope_allows_kind").detail, name


def test_subjects_that_cannot_hold_a_scope_do_not_fail(
    world: World, anchored: tuple[dict[str, Bundle], TrustConfig]
) -> None:
    bundles, trust = anchored
    for name in UNSCOPED_SHAPES:
        report = _check(world, bundles[name], trust)
        assert report.valid, (name, report.to_dict())


def test_offline_a_known_scope_is_not_checked(
    world: World, anchored: tuple[dict[str, Bundle], TrustConfig]
) -> None:
    bundles, trust = anchored
    for name in (*BYPASSES, *ALLOWED):
        report = _check(world, bundles[name], trust, offline=True)
        assert report.check("scope_allows_kind").status is CheckStatus.NOT_CHECKED, name
        assert report.offline_checks_passed, name
        assert report.verdict == "offline_checks_passed"
        assert report.to_dict()["verdict"] == "offline_checks_passed"
