"""Portfolio verification against a real anvil node, continued: the time allowed for a
portfolio, recognitions read as of a past time, the issuer's accredited scope, the key that
recorded a recognition, unreadable recognitions, the requirement's precision, the learners
named in the report, and institutions of several registries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from testkit.world import World, build_world
from tests.verifier.portfolio_support import (
    FD,
    NF,
    SCHEMA,
    Alliance,
    build_alliance,
    ects_credential,
    reverted,
)
from tests.verifier.portfolio_support import entries_of as _entries
from tests.verifier.portfolio_support import university as _u
from tests.verifier.portfolio_support import verify_bundles as _verify
from verifier import portfolio
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import Scope
from verifier.credits import ECTS_FRAMEWORK
from verifier.errors import PortfolioError
from verifier.portfolio import (
    TIMED_OUT_REASON,
    PortfolioEntry,
    PortfolioReport,
    Requirement,
    format_ects,
    verify_portfolio,
)
from verifier.trust import TrustConfig


@pytest.fixture(scope="module")
def built(anvil_world: World) -> Alliance:
    return build_alliance(anvil_world, prefix="fix-")


@pytest.fixture
def alliance(built: Alliance) -> Iterator[Alliance]:
    """The alliance, its chain reset after each test."""
    yield from reverted(built)


# ----------------------------------------------------------------- the time allowed


def test_entries_not_started_before_the_deadline_are_not_checked(alliance: Alliance) -> None:
    bundles = alliance.issue(_u(alliance, "u2"), [ects_credential(n, n, NF)
                                                  for n in range(1, 4)])
    entries = [*_entries(bundles), PortfolioEntry("broken.json", None, None, "not a bundle")]
    passed = verify_portfolio(entries, trust=alliance.trust(),
                              reader=JsonRpcChainReader(alliance.world.chain.w3),
                              deadline=time.monotonic() - 1)
    assert [entry.verdict for entry in passed.entries[:3]] == ["not_checked"] * 3
    assert [entry.reason for entry in passed.entries[:3]] == [TIMED_OUT_REASON] * 3
    assert not any(entry.counted for entry in passed.entries)
    # The entry that could not be read is still named as not valid.
    assert passed.entries[3].verdict == "not_valid"
    assert passed.exit_code == 1
    jsonschema.validate(passed.to_dict(), SCHEMA)
    readable = verify_portfolio(entries[:3], trust=alliance.trust(),
                                reader=JsonRpcChainReader(alliance.world.chain.w3),
                                deadline=time.monotonic() - 1)
    assert readable.exit_code == 2
    assert readable.to_dict()["totals"]["notCounted"][0]["reason"] == TIMED_OUT_REASON
    ample = verify_portfolio(entries[:3], trust=alliance.trust(),
                             reader=JsonRpcChainReader(alliance.world.chain.w3),
                             deadline=time.monotonic() + 3600)
    assert [entry.verdict for entry in ample.entries] == ["valid"] * 3
    assert ample.ects == 6
    assert ample.exit_code == 0


# ----------------------------------------------------------------- recognitions as of a time


def test_as_of_reads_the_recognitions_the_registry_held_then(alliance: Alliance) -> None:
    """After the first report, the same pair gets a newer recognition (which the registry
    answers first) and a direct recognition shadows one through the body: a re-check as of
    the first report's time still gives the first report's answers."""
    u1, u2, u3 = (_u(alliance, n) for n in ("u1", "u2", "u3"))
    first = alliance.recognise(u1, u2, Scope.NON_FORMAL)
    through_body = alliance.recognise(u1, alliance.body, Scope.NON_FORMAL)
    bundles = (alliance.issue(u2, [ects_credential(1, 5, NF)])
               + alliance.issue(u3, [ects_credential(2, 6, NF)]))
    earlier = _verify(alliance, bundles, recognised_by=u1.did)
    assert [(e.recognition.recognition_id, e.recognition.path) for e in earlier.entries
            if e.recognition is not None] == [(first, "direct"),
                                             (through_body, "through-body")]
    assert earlier.ects == 11
    alliance.world.chain.increase_time(30)
    newer = alliance.recognise(u1, u2)  # widened to every kind: a new recognition
    direct = alliance.recognise(u1, u3, Scope.NON_FORMAL)
    now = _verify(alliance, bundles, recognised_by=u1.did)
    assert [(e.recognition.recognition_id, e.recognition.path) for e in now.entries
            if e.recognition is not None] == [(newer, "direct"), (direct, "direct")]
    assert earlier.chain is not None
    again = _verify(alliance, bundles, recognised_by=u1.did,
                    as_of=datetime.fromtimestamp(earlier.chain.block_time, UTC))

    def answers(report: PortfolioReport) -> list[tuple[Any, ...]]:
        return [(e.verdict, e.counted, e.reason, None if e.recognition is None else (
            e.recognition.recognised, e.recognition.path, e.recognition.recognition_id,
            e.recognition.recogniser_id, e.recognition.subject_id))
            for e in report.entries]

    assert answers(again) == answers(earlier)
    assert again.ects == 11
    document = again.to_dict()
    jsonschema.validate(document, SCHEMA)
    assert [e["recognition"]["atBlock"] for e in document["entries"]] == [
        earlier.chain.block_number] * 2
    assert [e["recognition"]["atBlock"] for e in earlier.to_dict()["entries"]] == [None] * 2


# ----------------------------------------------------------------- the issuer's scope


def _elm_non_formal(number: int) -> dict[str, Any]:
    """An ELM credential of 4 ECTS whose learning setting is non-formal, without
    learningScope (so verify's scope check does not apply to it)."""
    credential = ects_credential(number, None, None)
    credential["type"] = ["VerifiableCredential", "EuropeanDigitalCredential"]
    credential["credentialSubject"]["hasClaim"] = {
        "id": f"urn:epass:learningAchievement:{number}", "type": "LearningAchievement",
        "specifiedBy": {
            "id": f"urn:epass:qualification:{number}", "type": "Qualification",
            "creditPoint": {"type": "CreditPoint", "point": "4",
                            "framework": {"id": ECTS_FRAMEWORK, "type": "Concept"}},
            "learningSetting": {
                "id": "http://data.europa.eu/snb/learning-setting/e207a81fc7",
                "type": "Concept", "prefLabel": {"en": "non-formal learning"}}}}
    return credential


def test_a_kind_the_issuer_is_not_accredited_for_does_not_count(alliance: Alliance) -> None:
    u1 = _u(alliance, "u1")
    degrees_only = alliance.add_university("fix-degrees", Scope.FORMAL_DEGREE)
    alliance.recognise(u1, alliance.body)  # every kind, every issuer under the body
    bundles = alliance.issue(degrees_only, [_elm_non_formal(1), ects_credential(2, 3, FD)])
    for options in ({}, {"recognised_by": u1.did}):
        report = _verify(alliance, bundles, **options)
        elm, degree = report.entries
        assert elm.verdict == "valid"  # no learningScope: verify's own scope check is n/a
        assert elm.credits is not None
        assert (elm.credits.source, elm.credits.kind, elm.credits.ects) == (
            "elm", Scope.NON_FORMAL, Decimal(4))
        assert not elm.counted
        assert elm.reason == "the issuer is not accredited for non-formal credentials"
        assert degree.counted
        assert report.ects == 3
        assert report.by_kind[Scope.NON_FORMAL] == 0
    required = _verify(alliance, bundles,
                       requirement=Requirement(Decimal(4), Scope.NON_FORMAL))
    assert required.requirement is not None
    assert not required.requirement.met
    assert required.exit_code == 1


# ----------------------------------------------------------------- who recorded a recognition


def test_a_recognition_recorded_by_a_key_revoked_back_dated_does_not_count(
        alliance: Alliance) -> None:
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    stolen = alliance.add_key(u1)
    recognition = alliance.recognise(u1, u2, key=stolen)
    recorded_at = int(alliance.world.registry.functions.recognition(recognition).call()[6])
    bundles = alliance.issue(u2, [ects_credential(1, 5, NF)])
    before = _verify(alliance, bundles, recognised_by=u1.did)
    (entry,) = before.entries
    assert entry.counted
    assert entry.recognition is not None
    assert entry.recognition.recorded_by == stolen.address.lower()
    alliance.world.chain.increase_time(60)
    # The accreditor revokes the key from the time of its compromise, before the recording.
    alliance.revoke_key(stolen, recorded_at - 10)
    report = _verify(alliance, bundles, recognised_by=u1.did)
    (entry,) = report.entries
    assert entry.verdict == "valid"
    assert not entry.counted
    assert entry.recognition is not None
    assert entry.recognition.recognised  # the registry still answers with it
    assert entry.reason == (f"the recognition was recorded by {stolen.address.lower()}, not "
                            "trusted then (key revoked)")
    evidence = report.to_dict()["entries"][0]["recognition"]
    assert evidence["recordedBy"] == stolen.address.lower()
    assert evidence["recorderTrust"] == {"trusted": False, "reason": "key revoked",
                                         "entityId": u1.entity_id}
    assert evidence["counts"] is False
    jsonschema.validate(report.to_dict(), SCHEMA)
    assert report.ects == 0


def test_a_recognition_recorded_by_a_key_revoked_later_still_counts(alliance: Alliance) -> None:
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    retired = alliance.add_key(u1)
    alliance.recognise(u1, u2, key=retired)
    bundles = alliance.issue(u2, [ects_credential(1, 5, NF)])
    alliance.world.chain.increase_time(60)
    alliance.revoke_key(retired)  # from the next second: the recording stands
    report = _verify(alliance, bundles, recognised_by=u1.did)
    (entry,) = report.entries
    assert entry.counted
    evidence = report.to_dict()["entries"][0]["recognition"]
    assert evidence["recordedBy"] == retired.address.lower()
    assert evidence["recorderTrust"] == {"trusted": True, "reason": "trusted",
                                         "entityId": u1.entity_id}
    assert evidence["counts"] is True
    assert report.ects == 5


# ----------------------------------------------------------------- unreadable recognitions


def test_an_unreadable_recognition_leaves_the_requirement_not_established(
        alliance: Alliance) -> None:
    """The node refuses the event-log read a recognition needs (eth_getLogs): the credential
    is valid but not counted, and a requirement short of it is not established (exit 2)."""
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    alliance.recognise(u1, u2)
    bundles = alliance.issue(u2, [ects_credential(1, 5, NF)])
    reader = JsonRpcChainReader(str(alliance.world.chain.rpc_url), retries=False)
    provider: Any = reader.w3.provider
    original = provider.make_request

    def refusing(method: str, params: Any) -> Any:
        if method == "eth_getLogs":
            return {"jsonrpc": "2.0", "id": 1,
                    "error": {"code": -32005, "message": "query limit exceeded"}}
        return original(method, params)

    provider.make_request = refusing
    provider._request_func_cache = (None, None)  # web3 keeps the composed function
    report = verify_portfolio(_entries(bundles), trust=alliance.trust(), reader=reader,
                              recognised_by=u1.did, requirement=Requirement(Decimal(5)))
    (entry,) = report.entries
    assert entry.verdict == "valid"
    assert not entry.counted
    assert entry.recognition_problem is not None
    assert "query limit exceeded" in entry.recognition_problem
    assert report.requirement is not None
    assert not report.requirement.met
    assert "not established" in report.requirement.detail
    assert report.exit_code == 2


# ----------------------------------------------------------------- the requirement's number


@pytest.mark.parametrize("text", ["1e-999999999", "0.001", "20.125", "100000.01", "1e6"])
def test_a_requirement_of_more_than_two_decimals_or_too_large_is_refused(text: str) -> None:
    with pytest.raises(PortfolioError):
        Requirement(Decimal(text))
    result = subprocess.run([sys.executable, "-m", "verifier.cli", "--portfolio", "p",
                             "--require-ects", text, "--trust", "t.json"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "--require-ects" in result.stderr
    assert ("two decimal places" in result.stderr or "at most 100000" in result.stderr)
    assert "Traceback" not in result.stderr


def test_requirements_within_bounds_are_taken_and_printed_without_exponents() -> None:
    assert Requirement(Decimal("100000")).ects == 100000
    assert Requirement(Decimal("7.50")).ects == Decimal("7.5")
    assert format_ects(Decimal("1E+5")) == "100000"
    assert format_ects(Decimal("2.5E1")) == "25"
    assert format_ects(Decimal("0.10")) == "0.1"
    # Not a value a requirement or a sum can be, but never expanded to a huge string.
    assert len(format_ects(Decimal("1e-999999999"))) < 20


# ----------------------------------------------------------------- learners and institutions


def test_the_report_names_the_learners_and_warns_when_they_differ(
        alliance: Alliance, tmp_path: Path) -> None:
    u2 = _u(alliance, "u2")
    bundles = alliance.issue(u2, [
        ects_credential(1, 5, NF, subject={"id": "did:example:ada"}),
        ects_credential(2, 4, NF, subject={"id": "did:example:ada"}),
        ects_credential(3, 3, NF, subject={"id": "did:example:bob"})])
    one = _verify(alliance, bundles[:2]).to_dict()
    assert [e["subject"] for e in one["entries"]] == ["did:example:ada"] * 2
    assert one["totals"]["subjects"] == ["did:example:ada"]
    assert one["totals"]["mixedSubjects"] is False
    mixed = _verify(alliance, bundles)
    document = mixed.to_dict()
    jsonschema.validate(document, SCHEMA)
    assert document["totals"]["subjects"] == ["did:example:ada", "did:example:bob"]
    assert document["totals"]["mixedSubjects"] is True
    assert mixed.ects == 12  # counted all the same: the holder is not checked
    folder = tmp_path / "portfolio"
    folder.mkdir()
    for number, bundle in enumerate(bundles):
        (folder / f"b{number}.json").write_text(bundle.to_json())
    result = _cli(alliance, tmp_path, "--portfolio", str(folder))
    assert result.returncode == 0, result.stderr
    assert ("warning: the credentials are of 2 different learners: did:example:ada, "
            "did:example:bob") in result.stdout
    single = _cli(alliance, tmp_path, "--portfolio", str(folder / "b0.json"))
    assert "different learners" not in single.stdout


def test_institutions_of_two_registries_are_two_rows(alliance: Alliance) -> None:
    """Entity ids are per registry: a second deployment on the same chain, built the same
    way, has a university with the same entity id, and it is another institution."""
    second = build_alliance(build_world(alliance.world.chain), prefix="two-")
    ours, theirs = alliance.unis["u2"], second.unis["u2"]
    assert ours.entity_id == theirs.entity_id
    bundles = (alliance.issue(ours, [ects_credential(1, 5, NF)])
               + second.issue(theirs, [ects_credential(2, 4, NF)]))
    trust = TrustConfig(deployments=(*alliance.trust().deployments,
                                     *second.trust().deployments), require_signature=True)
    report = verify_portfolio(_entries(bundles), trust=trust,
                              reader=JsonRpcChainReader(alliance.world.chain.w3))
    assert [entry.counted for entry in report.entries] == [True, True]
    rows = report.to_dict()["totals"]["byInstitution"]
    assert [(row["registry"], row["entityId"], row["issuerDid"], row["ects"])
            for row in rows] == [
        (alliance.world.registry.address.lower(), ours.entity_id, ours.did, 5),
        (second.world.registry.address.lower(), theirs.entity_id, theirs.did, 4)]


def test_the_cli_refuses_recognised_by_offline(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "verifier.cli", "--portfolio", "p",
                             "--offline", "--recognised-by", "did:web:u1.example",
                             "--trust", "t.json"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "--recognised-by needs the chain" in result.stderr


def _cli(alliance: Alliance, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    world = alliance.world
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"deployments": [{
        "chainId": world.chain.chain_id, "anchor": world.anchor.address,
        "registry": world.registry.address}]}))
    return subprocess.run([sys.executable, "-m", "verifier.cli", *args, "--trust", str(trust),
                           "--rpc-url", str(world.chain.rpc_url)],
                          capture_output=True, text=True, timeout=120, check=False)


# ----------------------------------------------------------------- ids local to a document


def _elm_course(number: int, title: str, ects: str) -> dict[str, Any]:
    """An ELM credential as Europass builders write it: the claim's and the specification's
    ids numbered inside the document, the same in every credential."""
    credential = _elm_non_formal(number)
    claim = credential["credentialSubject"]["hasClaim"]
    claim["id"] = "urn:epass:learningAchievement:1"
    claim["title"] = {"en": title}
    claim["specifiedBy"].update({"id": "urn:epass:learningAchievementSpec:1",
                                 "title": {"en": title}})
    claim["specifiedBy"]["creditPoint"]["point"] = ects
    return credential


def test_two_courses_with_the_same_document_local_ids_both_count(alliance: Alliance) -> None:
    u2 = _u(alliance, "u2")
    bundles = alliance.issue(u2, [_elm_course(1, "Statistics", "5"),
                                  _elm_course(2, "Databases", "6")])
    report = _verify(alliance, bundles, requirement=Requirement(Decimal(11), Scope.NON_FORMAL))
    assert [entry.counted for entry in report.entries] == [True, True]
    assert [entry.duplicate_of for entry in report.entries] == [None, None]
    assert [entry.credits.achievement for entry in report.entries
            if entry.credits is not None] == [None, None]
    assert report.ects == 11
    assert report.requirement is not None
    assert report.requirement.met
    assert report.exit_code == 0


# ----------------------------------------------------------------- entries that cannot count


def test_an_unreadable_recognition_of_a_revoked_credential_leaves_the_answer_established(
        alliance: Alliance) -> None:
    """The node refuses the event-log read of the recognition of a revoked credential's
    issuer: that credential cannot count anyway, so its recognition is not read and the
    requirement's answer (not met) stands, exit 1, not 3 ("offline")."""
    u1, u2, u3 = (_u(alliance, n) for n in ("u1", "u2", "u3"))
    alliance.recognise(u1, u2)
    of_u3 = alliance.recognise(u1, u3)
    (kept,) = alliance.issue(u2, [ects_credential(1, 5, NF)])
    (revoked,) = alliance.issue(u3, [ects_credential(2, 5, NF)])
    alliance.revoke(u3, revoked)
    reader = JsonRpcChainReader(str(alliance.world.chain.rpc_url), retries=False)
    provider: Any = reader.w3.provider
    original = provider.make_request
    topic = "0x" + of_u3.to_bytes(32, "big").hex()

    def refusing(method: str, params: Any) -> Any:
        if method == "eth_getLogs" and topic in json.dumps(params).lower():
            return {"jsonrpc": "2.0", "id": 1,
                    "error": {"code": -32005, "message": "query limit exceeded"}}
        return original(method, params)

    provider.make_request = refusing
    provider._request_func_cache = (None, None)  # web3 keeps the composed function
    report = verify_portfolio(_entries([kept, revoked]), trust=alliance.trust(), reader=reader,
                              recognised_by=u1.did, requirement=Requirement(Decimal(10)))
    counted, not_valid = report.entries
    assert counted.counted
    assert not_valid.verdict == "not_valid"
    assert not_valid.recognition_problem is None
    assert not not_valid.unchecked
    assert report.requirement is not None
    assert not report.requirement.met
    assert "not established" not in report.requirement.detail
    assert report.exit_code == 1
    jsonschema.validate(report.to_dict(), SCHEMA)


# ----------------------------------------------------------------- the deadline and recognitions


def test_recognitions_are_not_read_past_the_deadline(
        alliance: Alliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every verification finishes, and then the time allowed is over: the recognitions still
    to read are not read; the entries are valid, not counted, and the requirement is not
    established (exit 2)."""
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    alliance.recognise(u1, u2)
    bundles = alliance.issue(u2, [ects_credential(1, 5, NF), ects_credential(2, 6, NF)])
    verify_all = portfolio._verify_all

    def verified_in_time(*args: Any, **options: Any) -> Any:
        # The verification phase ends before the deadline; the deadline (already past
        # below) is met in the recognition phase that follows.
        return verify_all(*args, **{**options, "deadline": None})

    monkeypatch.setattr(portfolio, "_verify_all", verified_in_time)
    for recognised_by in (u1.did, None):
        report = _verify(alliance, bundles, recognised_by=recognised_by,
                         requirement=Requirement(Decimal(5)), deadline=time.monotonic() - 1)
        assert [entry.verdict for entry in report.entries] == ["valid", "valid"]
        assert not any(entry.counted for entry in report.entries)
        assert [entry.reason for entry in report.entries] == [TIMED_OUT_REASON] * 2
        problems = [(entry.recognition_problem, entry.scope_problem) for entry in report.entries]
        assert problems == ([(TIMED_OUT_REASON, None)] * 2 if recognised_by else
                            [(None, TIMED_OUT_REASON)] * 2)
        assert all(entry.recognition is None for entry in report.entries)
        assert report.requirement is not None
        assert "not established" in report.requirement.detail
        assert report.exit_code == 2
        jsonschema.validate(report.to_dict(), SCHEMA)
