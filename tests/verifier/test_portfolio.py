"""Portfolio verification against a real anvil node: an alliance of three universities under
one body, credentials they sign and anchor, recognitions recorded and withdrawn by the
recognising university's own key, and the portfolio report (verifier.portfolio) that sums the
ECTS of the credentials that count. Each rule of counting has its own test."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from testkit.net import free_port
from testkit.world import World
from tests.verifier.portfolio_support import (
    FD,
    FND,
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
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import Scope
from verifier.credits import credits_of
from verifier.errors import PortfolioError
from verifier.portfolio import (
    MAX_PORTFOLIO_ENTRIES,
    PortfolioEntry,
    PortfolioReport,
    Requirement,
    entries_from_bundles,
    entries_from_presentation,
    verify_portfolio,
)
from verifier.receipt import Bundle
from verifier.trust import TrustConfig


@pytest.fixture(scope="module")
def built(anvil_world: World) -> Alliance:
    return build_alliance(anvil_world)


@pytest.fixture
def alliance(built: Alliance) -> Iterator[Alliance]:
    """The alliance, its chain reset after each test."""
    yield from reverted(built)


def _reasons(report: PortfolioReport) -> list[str | None]:
    return [entry.reason for entry in report.entries]


# ----------------------------------------------------------------- recognition


def test_a_direct_recognition_counts_and_an_unrecognised_issuer_does_not(
        alliance: Alliance) -> None:
    u1, u2, u3 = (_u(alliance, n) for n in ("u1", "u2", "u3"))
    recognition = alliance.recognise(u1, u2)
    bundles = (alliance.issue(u2, [ects_credential(1, 5, NF)])
               + alliance.issue(u3, [ects_credential(2, 6, NF)]))
    report = _verify(alliance, bundles, recognised_by=u1.did)
    first, second = report.entries
    assert first.counted
    assert first.recognition is not None
    assert (first.recognition.path, first.recognition.recognition_id) == ("direct", recognition)
    assert first.recognition.record is not None
    assert first.recognition.record.subject_id == u2.entity_id
    assert not second.counted
    assert second.verdict == "valid"
    assert second.reason is not None
    assert second.reason.startswith(
        f"not recognised by {u1.did} for non-formal credentials issued at ")
    assert report.ects == 5
    # Without a recognising institution, both count.
    assert _verify(alliance, bundles).ects == 11


def test_a_recognition_of_a_body_covers_the_issuers_under_it(alliance: Alliance) -> None:
    u1, u3 = _u(alliance, "u1"), _u(alliance, "u3")
    outsider = alliance.outsider
    recognition = alliance.recognise(u1, alliance.body, Scope.NON_FORMAL)
    bundles = (alliance.issue(u3, [ects_credential(1, 6, NF)])
               + alliance.issue(outsider, [ects_credential(2, 4, NF)]))
    report = _verify(alliance, bundles, recognised_by=u1.did)
    inside, outside = report.entries
    assert inside.counted
    assert inside.recognition is not None
    assert inside.recognition.path == "through-body"
    assert inside.recognition.subject_id == alliance.body.entity_id
    assert inside.recognition.recognition_id == recognition
    assert not outside.counted  # the outsider is not under the body
    assert outside.reason is not None
    assert "not recognised" in outside.reason
    assert report.to_dict()["totals"]["byInstitution"] == [{
        "registry": alliance.world.registry.address.lower(), "issuerDid": u3.did,
        "issuerName": u3.name, "entityId": u3.entity_id, "ects": 6,
        "byKind": {FD: 0, FND: 0, NF: 6}}]


def test_a_withdrawn_recognition_keeps_credentials_issued_before_it(
        alliance: Alliance) -> None:
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    recognition = alliance.recognise(u1, u2)
    before = alliance.issue(u2, [ects_credential(1, 5, NF)])
    withdrawn_at = alliance.withdraw(u1, recognition)
    alliance.world.chain.increase_time(5)
    after = alliance.issue(u2, [ects_credential(2, 3, NF)])
    report = _verify(alliance, before + after, recognised_by=u1.did)
    kept, dropped = report.entries
    assert kept.counted
    assert kept.recognition is not None
    assert kept.recognition.record is not None
    assert kept.recognition.record.withdrawn_at == withdrawn_at + 1
    assert not dropped.counted
    assert dropped.recognition is not None
    assert not dropped.recognition.recognised
    assert report.ects == 5


def test_a_recognition_outside_its_window_does_not_count(alliance: Alliance) -> None:
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    start = alliance.world.now() + 3600
    alliance.recognise(u1, u2, valid_from=start, valid_until=start + 3600)
    early = alliance.issue(u2, [ects_credential(1, 5, NF)])
    alliance.world.chain.increase_time(3700)
    within = alliance.issue(u2, [ects_credential(2, 3, NF)])
    alliance.world.chain.increase_time(3700)
    late = alliance.issue(u2, [ects_credential(3, 2, NF)])
    report = _verify(alliance, early + within + late, recognised_by=u1.did)
    assert [entry.counted for entry in report.entries] == [False, True, False]
    assert report.ects == 3


def test_a_recognition_for_another_kind_does_not_count(alliance: Alliance) -> None:
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    alliance.recognise(u1, u2, Scope.FORMAL_DEGREE)
    bundles = alliance.issue(u2, [ects_credential(1, 5, NF), ects_credential(2, 7.5, FD)])
    report = _verify(alliance, bundles, recognised_by=u1.did)
    assert [entry.counted for entry in report.entries] == [False, True]
    assert report.entries[0].reason is not None
    assert "for non-formal credentials" in report.entries[0].reason
    assert report.by_kind[Scope.FORMAL_DEGREE] == Decimal("7.5")
    assert report.ects == Decimal("7.5")


def test_a_credential_of_the_recognising_institution_itself_is_recognised(
        alliance: Alliance) -> None:
    u1 = _u(alliance, "u1")
    report = _verify(alliance, alliance.issue(u1, [ects_credential(1, 4, NF)]),
                     recognised_by=u1.did)
    (entry,) = report.entries
    assert entry.counted
    assert entry.recognition is not None
    assert entry.recognition.path == "self"


def test_without_a_kind_a_credential_is_not_recognised(alliance: Alliance) -> None:
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    alliance.recognise(u1, u2)
    report = _verify(alliance, alliance.issue(u2, [ects_credential(1, 4, None)]),
                     recognised_by=u1.did)
    (entry,) = report.entries
    assert not entry.counted
    assert entry.reason is not None
    assert entry.reason.startswith("kind unknown")


def test_an_unknown_recognising_institution_is_an_error(alliance: Alliance) -> None:
    bundles = alliance.issue(_u(alliance, "u2"), [ects_credential(1, 4, NF)])
    with pytest.raises(PortfolioError, match="not in the registry"):
        _verify(alliance, bundles, recognised_by="did:web:nobody.example")


# ----------------------------------------------------------------- counting


def test_the_same_credential_twice_counts_once_and_is_named(alliance: Alliance) -> None:
    (bundle,) = alliance.issue(_u(alliance, "u2"), [ects_credential(1, 5, NF)])
    report = _verify(alliance, [bundle, bundle])
    first, again = report.entries
    assert first.counted
    assert not again.counted
    assert again.duplicate_of == 0
    assert again.reason == "duplicate of entry 0: the same credential"
    assert report.ects == 5
    assert report.to_dict()["totals"]["duplicates"] == [{
        "index": 1, "source": "b1.json", "duplicateOf": 0,
        "reason": "duplicate of entry 0: the same credential"}]


def test_the_same_achievement_from_the_same_issuer_counts_once(alliance: Alliance) -> None:
    u2, u3 = _u(alliance, "u2"), _u(alliance, "u3")
    achievement = "https://u2.example/courses/data-101"
    bundles = (alliance.issue(u2, [ects_credential(1, 5, NF, achievement=achievement),
                                   ects_credential(2, 5, NF, achievement=achievement)])
               + alliance.issue(u3, [ects_credential(3, 5, NF, achievement=achievement)]))
    report = _verify(alliance, bundles)
    assert [entry.counted for entry in report.entries] == [True, False, True]
    assert report.entries[1].duplicate_of == 0
    assert report.entries[1].reason == (f"duplicate of entry 0: the same achievement "
                                        f"{achievement} from the same issuer")
    assert report.ects == 10  # the same achievement id from another issuer is another one


def test_a_duplicate_of_a_credential_that_does_not_count_still_counts(
        alliance: Alliance) -> None:
    u2 = _u(alliance, "u2")
    achievement = "https://u2.example/courses/data-101"
    revoked, kept = alliance.issue(u2, [ects_credential(1, 5, NF, achievement=achievement),
                                        ects_credential(2, 5, NF, achievement=achievement)])
    alliance.revoke(u2, revoked)
    report = _verify(alliance, [revoked, kept])
    assert [entry.counted for entry in report.entries] == [False, True]
    assert report.entries[1].duplicate_of is None


def test_credits_in_a_unit_other_than_ects_are_not_counted(alliance: Alliance) -> None:
    badge = ects_credential(1, None, NF, subject={"achievement": {
        "id": "https://u2.example/badges/1", "type": ["Achievement"], "name": "Data",
        "creditsAvailable": 3}})
    badge["type"] = ["VerifiableCredential", "OpenBadgeCredential"]
    credits = credits_of(badge)
    assert credits.ects is None
    assert credits.ects_problem is not None
    bundles = alliance.issue(_u(alliance, "u2"), [badge, ects_credential(2, 5, NF)])
    report = _verify(alliance, bundles)
    refused, counted = report.entries
    assert refused.verdict == "valid"
    assert not refused.counted
    assert refused.credits is not None
    assert refused.credits.ects_problem == credits.ects_problem
    assert refused.reason == f"ECTS unknown: {credits.ects_problem}"
    assert counted.counted
    assert report.ects == 5


def test_a_revoked_credential_is_not_valid_and_the_rest_are_summed(alliance: Alliance) -> None:
    u2 = _u(alliance, "u2")
    bundles = alliance.issue(u2, [ects_credential(n, n, NF) for n in range(1, 4)])
    alliance.revoke(u2, bundles[1])
    report = _verify(alliance, bundles)
    assert [entry.verdict for entry in report.entries] == ["valid", "not_valid", "valid"]
    revoked = report.entries[1]
    assert not revoked.counted
    assert revoked.reason == "not valid: failed not_revoked"
    assert report.ects == 4
    assert report.exit_code == 1
    assert not report.valid
    # With a requirement, the answer is the requirement's: the revoked credential does not
    # count, and the rest meet 4 ECTS but not 5.
    met = _verify(alliance, bundles, requirement=Requirement(Decimal(4)))
    assert met.requirement is not None
    assert met.requirement.met
    assert met.exit_code == 0
    assert _verify(alliance, bundles, requirement=Requirement(Decimal(5))).exit_code == 1


def test_a_requirement_is_met_or_short_with_and_without_a_kind(alliance: Alliance) -> None:
    bundles = alliance.issue(_u(alliance, "u2"), [ects_credential(1, 20, NF),
                                                  ects_credential(2, 4, FD)])
    met = _verify(alliance, bundles, requirement=Requirement(Decimal(20), Scope.NON_FORMAL))
    assert met.requirement is not None
    assert met.requirement.met
    assert met.requirement.detail == "20 ECTS of non-formal counted, 20 required: met"
    assert met.exit_code == 0
    short = _verify(alliance, bundles, requirement=Requirement(Decimal(6), Scope.FORMAL_DEGREE))
    assert short.requirement is not None
    assert not short.requirement.met
    assert short.requirement.detail == ("4 ECTS of formal-degree counted, 6 required: not met, "
                                        "short by 2 ECTS")
    assert short.exit_code == 1
    total = _verify(alliance, bundles, requirement=Requirement(Decimal("24.5")))
    assert total.requirement is not None
    assert not total.requirement.met
    assert total.requirement.detail == "24 ECTS counted, 24.5 required: not met, short by 0.5 ECTS"
    assert _verify(alliance, bundles, requirement=Requirement(Decimal(24))).exit_code == 0


def test_too_many_entries_are_refused() -> None:
    with pytest.raises(PortfolioError, match="at most 500"):
        entries_from_bundles([("b.json", "{}")] * (MAX_PORTFOLIO_ENTRIES + 1))
    with pytest.raises(PortfolioError, match="at most 500"):
        entries_from_presentation({"type": ["VerifiablePresentation"],
                                   "verifiableCredential": [{}] * (MAX_PORTFOLIO_ENTRIES + 1)})
    with pytest.raises(PortfolioError, match="at most 500"):
        verify_portfolio([PortfolioEntry("x", None, None, "nothing")]
                         * (MAX_PORTFOLIO_ENTRIES + 1), trust=_any_trust(), reader=None)


def _any_trust() -> TrustConfig:
    return TrustConfig.model_validate({"deployments": [{
        "chainId": 1, "anchor": "0x" + "11" * 20, "registry": "0x" + "22" * 20}]})


# ----------------------------------------------------------------- presentation


def _presentation(bundles: Sequence[Bundle], *, receipts: Sequence[Bundle] | None = None,
                  ) -> dict[str, Any]:
    with_receipts = list(bundles if receipts is None else receipts)
    with_receipts = with_receipts[1:][::-1] + with_receipts[:1]  # matched by digest, not place
    return {"@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiablePresentation"], "holder": "did:example:learner",
            "verifiableCredential": [b.credential for b in bundles],
            "anchorReceipts": [b.receipt.to_dict() for b in with_receipts]}


def test_a_presentation_matches_credentials_and_receipts_by_digest(alliance: Alliance) -> None:
    bundles = alliance.issue(_u(alliance, "u2"), [ects_credential(n, n, NF)
                                                  for n in range(1, 5)])
    entries = entries_from_presentation(_presentation(bundles))
    assert [entry.source for entry in entries] == [f"verifiableCredential[{n}]"
                                                   for n in range(4)]
    assert [entry.receipt for entry in entries] == [b.receipt for b in bundles]
    report = verify_portfolio(entries, trust=alliance.trust(),
                              reader=JsonRpcChainReader(alliance.world.chain.w3))
    assert report.ects == 10
    assert report.exit_code == 0


def test_a_presentation_names_a_credential_without_receipt_and_a_stray_receipt(
        alliance: Alliance) -> None:
    u2 = _u(alliance, "u2")
    bundles = alliance.issue(u2, [ects_credential(n, n, NF) for n in range(1, 4)])
    (stray,) = alliance.issue(u2, [ects_credential(9, 9, NF)])
    presentation = _presentation(bundles, receipts=[bundles[0], bundles[2], stray])
    entries = entries_from_presentation(presentation)
    report = verify_portfolio(entries, trust=alliance.trust(),
                              reader=JsonRpcChainReader(alliance.world.chain.w3))
    by_source = {entry.source: entry for entry in report.entries}
    missing = by_source["verifiableCredential[1]"]
    assert missing.verdict == "not_valid"
    assert not missing.counted
    assert missing.reason is not None
    assert missing.reason.startswith(
        "no receipt in anchorReceipts has this credential's digest 0x")
    (stray_entry,) = [e for e in report.entries if e.source.startswith("anchorReceipts[")]
    assert stray_entry.reason is not None
    assert "matches no credential" in stray_entry.reason
    assert report.ects == 4  # credentials 1 and 3
    assert report.exit_code == 1


def test_a_document_that_is_not_a_presentation_is_refused() -> None:
    with pytest.raises(PortfolioError, match="not a VerifiablePresentation"):
        entries_from_presentation({"type": ["VerifiableCredential"]})
    with pytest.raises(PortfolioError, match="anchorReceipts is not an array"):
        entries_from_presentation({"type": "VerifiablePresentation", "anchorReceipts": "x"})


# ----------------------------------------------------------------- as of


def test_as_of_reproduces_an_earlier_report_after_a_revocation_and_new_recognition(
        alliance: Alliance) -> None:
    u1, u2, u3 = (_u(alliance, n) for n in ("u1", "u2", "u3"))
    recognition = alliance.recognise(u1, u2)
    bundles = (alliance.issue(u2, [ects_credential(1, 5, NF), ects_credential(2, 3, FD)])
               + alliance.issue(u3, [ects_credential(3, 6, NF)]))
    earlier = _verify(alliance, bundles, recognised_by=u1.did)
    assert [entry.counted for entry in earlier.entries] == [True, True, False]
    alliance.world.chain.increase_time(30)
    alliance.revoke(u2, bundles[0])
    alliance.withdraw(u1, recognition)
    alliance.recognise(u1, u3)
    now = _verify(alliance, bundles, recognised_by=u1.did)
    assert [entry.counted for entry in now.entries] == [False, True, True]
    assert earlier.chain is not None
    then = datetime.fromtimestamp(earlier.chain.block_time, UTC)
    again = _verify(alliance, bundles, recognised_by=u1.did, as_of=then)

    def answers(report: PortfolioReport) -> list[tuple[str, bool, Any]]:
        return [(e.verdict, e.counted, e.recognition is not None and e.recognition.recognised)
                for e in report.entries]

    assert answers(again) == answers(earlier)
    assert again.ects == earlier.ects == 8
    # The recognition of u3 was recorded after that time: the registry as it stood then
    # holds none, so the reason is the earlier report's.
    assert again.entries[2].reason == earlier.entries[2].reason


# ----------------------------------------------------------------- JSON and the CLI


def _trust_file(alliance: Alliance, folder: Path) -> Path:
    path = folder / "trust.json"
    world = alliance.world
    path.write_text(json.dumps({"deployments": [{
        "chainId": world.chain.chain_id, "anchor": world.anchor.address,
        "registry": world.registry.address}]}))
    return path


def _cli(alliance: Alliance, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "verifier.cli", *args,
                           "--trust", str(_trust_file(alliance, tmp_path)),
                           "--rpc-url", str(alliance.world.chain.rpc_url)],
                          capture_output=True, text=True, timeout=120, check=False)


def _folder(tmp_path: Path, bundles: Sequence[Bundle]) -> Path:
    folder = tmp_path / "portfolio"
    folder.mkdir()
    for number, bundle in enumerate(bundles):
        (folder / f"b{number}.json").write_text(bundle.to_json())
    return folder


def test_the_report_validates_against_its_schema(alliance: Alliance) -> None:
    u1, u2, u3 = (_u(alliance, n) for n in ("u1", "u2", "u3"))
    alliance.recognise(u1, u2)
    alliance.recognise(u1, alliance.body, Scope.NON_FORMAL)
    bundles = (alliance.issue(u2, [ects_credential(1, 5, NF, achievement="urn:a"),
                                   ects_credential(2, "2.5", FD, achievement="urn:a"),
                                   ects_credential(3, None, NF)])
               + alliance.issue(u3, [ects_credential(4, 6, NF), ects_credential(5, 6, FD)]))
    alliance.revoke(u3, bundles[4])
    entries = entries_from_presentation(_presentation([*bundles, bundles[0]],
                                                      receipts=bundles[1:]))
    entries += [PortfolioEntry("broken.json", None, None, "not a well-formed bundle: x")]
    report = verify_portfolio(entries, trust=alliance.trust(),
                              reader=JsonRpcChainReader(alliance.world.chain.w3),
                              recognised_by=u1.did, requirement=Requirement(Decimal(5)))
    document = report.to_dict()
    jsonschema.validate(document, SCHEMA)
    assert {e["source"] for e in document["totals"]["notCounted"]} >= {
        "verifiableCredential[0]", "verifiableCredential[2]", "verifiableCredential[4]",
        "broken.json"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "totals": {**document["totals"], "byKind": {}}}, SCHEMA)


def test_the_cli_prints_json_that_validates_and_exits_by_the_requirement(
        alliance: Alliance, tmp_path: Path) -> None:
    u1, u2 = _u(alliance, "u1"), _u(alliance, "u2")
    alliance.recognise(u1, u2)
    folder = _folder(tmp_path, alliance.issue(u2, [ects_credential(1, 20, NF),
                                                   ects_credential(2, 4, FD)]))
    met = _cli(alliance, tmp_path, "--portfolio", str(folder), "--recognised-by", u1.did,
               "--require-ects", "20", "--kind", NF, "--json")
    assert met.returncode == 0, met.stderr
    document = json.loads(met.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["totals"]["byKind"] == {FD: 4, FND: 0, NF: 20}
    assert document["requirement"]["met"] is True
    short = _cli(alliance, tmp_path, "--portfolio", str(folder), "--require-ects", "30")
    assert short.returncode == 1, short.stderr
    assert "requirement: 24 ECTS counted, 30 required: not met, short by 6 ECTS" in short.stdout


def test_the_cli_shows_a_table_and_the_totals(alliance: Alliance, tmp_path: Path) -> None:
    u2, u3 = _u(alliance, "u2"), _u(alliance, "u3")
    bundles = (alliance.issue(u2, [ects_credential(1, "7.5", NF)])
               + alliance.issue(u3, [ects_credential(2, 3, FD)]))
    folder = _folder(tmp_path, [*bundles, bundles[0]])
    result = _cli(alliance, tmp_path, "--portfolio", str(folder))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("#"))
    assert header.split() == ["#", "credential", "issuer", "verdict", "kind", "ECTS",
                              "recognised", "counted"]
    assert any(line.split() == ["0", "b0.json", "u2", "VALID", NF, "7.5", "-", "yes"]
               for line in lines), result.stdout
    assert any(line.split() == ["2", "b2.json", "u2", "VALID", NF, "7.5", "-", "no"]
               for line in lines), result.stdout
    assert "counted: 10.5 ECTS from 2 of 3 credentials" in result.stdout
    assert "by kind: formal-degree 3, formal-non-degree 0, non-formal 7.5" in result.stdout
    assert "  2 b2.json: duplicate of entry 0: the same credential" in result.stdout


def test_the_cli_refuses_an_unknown_recognising_institution_with_exit_2(
        alliance: Alliance, tmp_path: Path) -> None:
    folder = _folder(tmp_path, alliance.issue(_u(alliance, "u2"), [ects_credential(1, 5, NF)]))
    result = _cli(alliance, tmp_path, "--portfolio", str(folder), "--recognised-by",
                  "did:web:nobody.example")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("verify-credential: error: the recognising institution "
                                    "'did:web:nobody.example' is not in the registry")
    assert "Traceback" not in result.stderr


def test_the_cli_refuses_too_many_credentials_with_exit_2(
        alliance: Alliance, tmp_path: Path) -> None:
    (bundle,) = alliance.issue(_u(alliance, "u2"), [ects_credential(1, 5, NF)])
    path = tmp_path / "presentation.json"
    path.write_text(json.dumps({"type": ["VerifiablePresentation"],
                                "verifiableCredential": [bundle.credential] * 501,
                                "anchorReceipts": [bundle.receipt.to_dict()]}))
    result = _cli(alliance, tmp_path, "--portfolio", str(path))
    assert result.returncode == 2
    assert "501 credentials: a portfolio holds at most 500" in result.stderr
    assert "Traceback" not in result.stderr
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(MAX_PORTFOLIO_ENTRIES + 1):
        (folder / f"b{number:03}.json").write_text(bundle.to_json())
    result = _cli(alliance, tmp_path, "--portfolio", str(folder))
    assert result.returncode == 2
    assert "more than 500 bundles: a portfolio holds at most 500" in result.stderr


def test_the_cli_reads_a_presentation_file(alliance: Alliance, tmp_path: Path) -> None:
    bundles = alliance.issue(_u(alliance, "u2"), [ects_credential(1, 5, NF),
                                                  ects_credential(2, 2, FND)])
    path = tmp_path / "presentation.json"
    path.write_text(json.dumps(_presentation(bundles)))
    result = _cli(alliance, tmp_path, "--portfolio", str(path), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["totals"]["byKind"] == {FD: 0, FND: 2, NF: 5}
    assert [e["source"] for e in document["entries"]] == ["verifiableCredential[0]",
                                                          "verifiableCredential[1]"]


@pytest.mark.parametrize(("args", "message"), [
    (["x.json", "--recognised-by", "did:web:x.example"],
     "--recognised-by goes with --portfolio"),
    (["x.json", "--portfolio", "p"], "not both"),
    (["--portfolio", "p", "--kind", NF], "--kind goes with --require-ects"),
    (["--portfolio", "p", "--require-ects", "0"], "a number of ECTS above 0"),
    (["--portfolio", "p", "--status-list", "l.json"], "are for single credentials"),
])
def test_the_cli_refuses_options_that_do_not_go_together(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "verifier.cli", *args, "--trust", "t.json"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_offline_only_the_offline_checks_run_and_nothing_counts(alliance: Alliance) -> None:
    bundles = alliance.issue(_u(alliance, "u2"), [ects_credential(1, 5, NF)])
    report = verify_portfolio(_entries(bundles), trust=alliance.trust(), reader=None,
                              requirement=Requirement(Decimal(1)))
    (entry,) = report.entries
    assert entry.verdict == "offline_checks_passed"
    assert entry.reason == "offline: the chain was not checked"
    assert report.chain is None
    # Nothing counts offline, but that the requirement is not met is not established: the
    # exit code says offline (3), not "not met" (1).
    assert report.requirement is not None
    assert not report.requirement.met
    assert report.requirement.detail.endswith(
        "short by 1 ECTS (not established: 1 credential(s) not checked against the chain, "
        "so not counted)")
    assert report.exit_code == 3
    jsonschema.validate(report.to_dict(), SCHEMA)
    assert verify_portfolio(_entries(bundles), trust=alliance.trust(),
                            reader=None).exit_code == 3


def test_the_cli_reports_an_unreachable_chain_with_exit_2(alliance: Alliance,
                                                          tmp_path: Path) -> None:
    folder = _folder(tmp_path, alliance.issue(_u(alliance, "u2"), [ects_credential(1, 5, NF)]))
    result = subprocess.run([sys.executable, "-m", "verifier.cli", "--portfolio", str(folder),
                             "--trust", str(_trust_file(alliance, tmp_path)),
                             "--rpc-url", f"http://127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("verify-credential: error: ")
    assert "Traceback" not in result.stderr
