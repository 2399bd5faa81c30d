"""A published status list compared with the chain (check ``status_list_matches_chain``), on
the in-process chain and on anvil: an honest list agrees, at the latest block and at a past one;
a status server that lies is caught, whether it flips a bit and signs again with the issuer's
key, flips a bit without signing again, or names another block than the one it was read at.
The lists are built from chain state by tests/verifier/published.py, as the service renders
them, and signed with the issuer's key."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from anchor_service.samples import make_credential
from anchor_service.store import Store
from testkit.world import World
from tests.verifier.published import flip, published_list, resign
from tests.verifier.wallet import anchored_bundles, make_wallet, sign, trust_of, verify_command
from verifier.bitstring import decode_list, encode_list
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import StatusPurpose, encode_status_indices
from verifier.receipt import Bundle
from verifier.verify import CheckStatus, VerificationReport, verify

DURING = datetime(2027, 6, 1, tzinfo=UTC)
CREDENTIAL = make_credential(3, id_prefix="urn:lists", validFrom="2026-01-01T00:00:00Z",
                             validUntil="2030-01-01T00:00:00Z")
# An entry of the same list that is not the credential's, revoked and suspended so that the
# lists are not empty (indices need not be allocated: the issuer's business).
OTHER = 4_000


@dataclass
class Lists:
    world: World
    bundle: Bundle
    store: Store

    def check(self, *lists: dict[str, Any], bundle: Bundle | None = None,
              offline: bool = False) -> VerificationReport:
        b = bundle or self.bundle
        return verify(b.credential, b.receipt, trust=trust_of(self.world),
                      reader=None if offline else JsonRpcChainReader(self.world.chain.w3),
                      as_of=DURING, status_lists=list(lists))

    def change(self, action: str, index: int) -> int:
        """``revoke``/``suspend``/``reinstate`` of entry ``index`` of the credential's list, by
        its issuer; the block it was made in."""
        w = self.world
        receipt = w.tx(w.issuer).transact(getattr(w.anchor.functions, action)(
            w.issuer_id, self.bundle.receipt.status_list, encode_status_indices([index]), 1))
        return int(receipt["blockNumber"])

    def list(self, purpose: StatusPurpose = StatusPurpose.REVOCATION,
             **options: Any) -> dict[str, Any]:
        return published_list(self.world, self.bundle.receipt.status_list, purpose, **options)


@pytest.fixture
def lists(world: World, tmp_path: Path) -> Iterator[Lists]:
    store = Store(tmp_path / "db.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:web:uni-a.example")
    (bundle,) = anchored_bundles(world, store, world.issuer, [CREDENTIAL], status_entries=True)
    found = Lists(world, bundle, store)
    found.change("revoke", OTHER)
    found.change("suspend", OTHER + 1)
    yield found
    store.close()


def _matches(report: VerificationReport) -> Any:
    return report.check("status_list_matches_chain")


def test_honest_lists_agree_with_the_chain(lists: Lists) -> None:
    revocation, suspension = lists.list(), lists.list(StatusPurpose.SUSPENSION)
    assert decode_list(revocation["credentialSubject"]["encodedList"])[OTHER // 8] \
        == 0x80 >> OTHER % 8
    report = lists.check(revocation, suspension)
    assert report.valid, report.to_dict()
    check = _matches(report)
    assert check.status is CheckStatus.PASSED
    compared = check.evidence["lists"]
    assert [c["purpose"] for c in compared] == ["revocation", "suspension"]
    assert {c["blockNumber"] for c in compared} == {lists.world.chain.w3.eth.block_number}


def test_a_list_of_a_past_block_agrees_with_the_chain_then(lists: Lists) -> None:
    """The list as it stood before a revocation still agrees with the chain at its block,
    though the chain has changed since; the credential's own revocation is in the later list."""
    before = lists.list()
    revoked_in = lists.change("revoke", lists.bundle.receipt.status_list_index)
    assert before["evidence"][0]["blockNumber"] < revoked_in
    report = lists.check(before)
    assert _matches(report).status is CheckStatus.PASSED, report.to_dict()
    assert report.check("not_revoked").status is CheckStatus.FAILED  # the chain, now
    after = lists.list()
    assert _matches(lists.check(after)).status is CheckStatus.PASSED
    assert after["credentialSubject"]["encodedList"] != before["credentialSubject"]["encodedList"]


def _chain_bits(lists: Lists) -> bytes:
    return decode_list(lists.list()["credentialSubject"]["encodedList"])


def test_a_bit_flipped_and_signed_again_is_caught(lists: Lists) -> None:
    """The issuer's own key signs a list that shows the credential not revoked while the chain
    says revoked (and another entry changed): the signature holds, the chain does not agree."""
    index = lists.bundle.receipt.status_list_index
    lists.change("revoke", index)
    lying = lists.list(bits=flip(_chain_bits(lists), index))
    report = lists.check(lying)
    check = _matches(report)
    assert check.status is CheckStatus.FAILED
    assert f"entries {index} differ" in check.detail, check.detail
    # Another lie, an innocent entry shown as revoked, named as well.
    innocent = OTHER + 100
    lying = lists.list(bits=flip(flip(_chain_bits(lists), index), innocent))
    assert f"entries {index}, {innocent} differ" in _matches(lists.check(lying)).detail


def test_a_bit_flipped_without_signing_again_is_caught(lists: Lists) -> None:
    honest = lists.list()
    tampered = json.loads(json.dumps(honest))
    tampered["credentialSubject"]["encodedList"] = encode_list(flip(_chain_bits(lists), OTHER))
    check = _matches(lists.check(tampered))
    assert check.status is CheckStatus.FAILED
    assert "its proof does not verify" in check.detail, check.detail
    assert _matches(lists.check(honest)).status is CheckStatus.PASSED


@pytest.mark.parametrize("forged", ["earlier block", "forged hash", "future block"])
def test_evidence_naming_another_block_is_caught(lists: Lists, forged: str) -> None:
    """A list read at one block whose evidence names another: an earlier block of the chain
    (whose state differs), a block number with a hash that is not the chain's, or a block
    the chain has not made."""
    w = lists.world
    earlier = w.chain.w3.eth.block_number - 2  # before the revocation and suspension
    earlier_hash = "0x" + bytes(w.chain.w3.eth.get_block(earlier)["hash"]).hex()
    forgeries: dict[str, dict[str, Any]] = {
        "earlier block": {"blockNumber": earlier, "blockHash": earlier_hash},
        "forged hash": {"blockHash": "0x" + "ab" * 32},
        "future block": {"blockNumber": w.chain.w3.eth.block_number + 100},
    }
    evidence = forgeries[forged]
    check = _matches(lists.check(lists.list(evidence=evidence)))
    assert check.status is CheckStatus.FAILED
    expected = {"earlier block": f"entries {OTHER} differ", "forged hash": "the chain's is",
                "future block": "is not in the chain"}[forged]
    assert expected in check.detail, check.detail


def test_evidence_of_another_deployment_is_caught(lists: Lists) -> None:
    for evidence, expected in (({"chainId": 1}, "names chain 1"),
                               ({"contract": "0x" + "12" * 20}, "names contract"),
                               ({"type": "Other"}, "0 ChainState evidence entries")):
        check = _matches(lists.check(lists.list(evidence=evidence)))
        assert check.status is CheckStatus.FAILED
        assert expected in check.detail, check.detail


def test_a_list_signed_by_a_key_not_registered_is_caught(lists: Lists) -> None:
    honest = lists.list()
    unsigned = {k: v for k, v in honest.items() if k != "proof"}
    stranger = sign(unsigned, private_key=ed25519.Ed25519PrivateKey.generate(),
                    did="did:web:uni-a.example")
    check = _matches(lists.check(stranger))
    assert check.status is CheckStatus.FAILED
    assert "not registered to the anchoring issuer" in check.detail


def test_a_list_that_is_not_the_credentials_fails(lists: Lists) -> None:
    other_list = published_list(lists.world, lists.bundle.receipt.status_list + 1,
                                StatusPurpose.REVOCATION)
    check = _matches(lists.check(other_list))
    assert check.status is CheckStatus.FAILED
    assert "none of the 1 status list(s) given" in check.detail
    # Given with the credential's own list, the other is left aside.
    assert _matches(lists.check(other_list, lists.list())).status is CheckStatus.PASSED


def test_a_list_whose_purpose_is_not_its_urls_fails(lists: Lists) -> None:
    mislabelled = lists.list()
    mislabelled["credentialSubject"]["statusPurpose"] = "suspension"
    check = _matches(lists.check(resign(mislabelled)))
    assert check.status is CheckStatus.FAILED
    assert "its id names the revocation list" in check.detail


def test_offline_the_list_is_not_checked(lists: Lists) -> None:
    report = lists.check(lists.list(), offline=True)
    assert _matches(report).status is CheckStatus.NOT_CHECKED
    assert report.offline_checks_passed


def test_verify_credential_status_list_option(anvil_world: World, tmp_path: Path) -> None:
    """``verify-credential --status-list FILE`` against a real node: an honest list passes,
    a lying one fails (exit 1), a list file that cannot be read is an error (exit 2)."""
    world = anvil_world
    wallet = tmp_path / "wallet"
    wallet.mkdir()
    make_wallet(world, wallet, {"one": {**CREDENTIAL, "id": "urn:lists:cli"}})
    bundle = Bundle.from_json((wallet / "one.json").read_text())
    honest, lying = tmp_path / "honest.json", tmp_path / "lying.json"
    revocation = published_list(world, bundle.receipt.status_list, StatusPurpose.REVOCATION)
    honest.write_text(json.dumps(revocation))
    bits = decode_list(revocation["credentialSubject"]["encodedList"])
    lying.write_text(json.dumps(published_list(
        world, bundle.receipt.status_list, StatusPurpose.REVOCATION,
        bits=flip(bits, bundle.receipt.status_list_index))))
    command = verify_command(world, wallet, str(wallet / "one.json"), "--as-of",
                             DURING.isoformat(), "--json")
    passed = subprocess.run([*command, "--status-list", str(honest)], capture_output=True,
                            text=True, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    checks = {c["name"]: c for c in json.loads(passed.stdout)["checks"]}
    assert checks["status_list_matches_chain"]["status"] == "passed"
    failed = subprocess.run([*command, "--status-list", str(lying)], capture_output=True,
                            text=True, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    checks = {c["name"]: c for c in json.loads(failed.stdout)["checks"]}
    assert checks["status_list_matches_chain"]["status"] == "failed"
    missing = subprocess.run([*command, "--status-list", str(tmp_path / "none.json")],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2
    assert "--status-list" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "bad.json").write_text("[1]")
    bad = subprocess.run([*command, "--status-list", str(tmp_path / "bad.json")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2, bad.stderr
    assert "Traceback" not in bad.stderr


def _without_proof(listed: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in listed.items() if k != "proof"}


def _longer(listed: dict[str, Any]) -> dict[str, Any]:
    subject = listed["credentialSubject"]
    bits = decode_list(subject["encodedList"]) + bytes(16)
    return resign({**listed, "credentialSubject": {**subject,
                                                    "encodedList": encode_list(bits)}})


def _typed(listed: dict[str, Any]) -> dict[str, Any]:
    return resign({**listed, "type": ["VerifiableCredential", "StatusList2021Credential"]})


def _other_signer(listed: dict[str, Any]) -> dict[str, Any]:
    return sign(_without_proof(listed), private_key=ed25519.Ed25519PrivateKey.generate(),
                did="did:web:elsewhere.example")


@pytest.mark.parametrize(("alter", "expected"), [
    (_without_proof, "it is not signed"),
    (_longer, "it has 131200 entries, a chain list 131072"),
    (_typed, "not a status list credential"),
    (_other_signer, "signed with a key of 'did:web:elsewhere.example'"),
])
def test_a_list_that_is_not_one_of_ours_fails_with_the_reason(lists: Lists, alter: Any,
                                                               expected: str) -> None:
    check = _matches(lists.check(alter(lists.list())))
    assert check.status is CheckStatus.FAILED
    assert expected in check.detail, check.detail


JUNK: tuple[Any, ...] = (None, -1, "", "0x", [], {}, 1.5, "x" * 300)


def _replaced(document: dict[str, Any], path: tuple[str, ...], junk: Any) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(document))
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
        if isinstance(target, list):  # evidence: its one entry
            target = target[0]
    target[path[-1]] = junk
    return changed


def test_any_field_of_a_list_replaced_by_junk_fails_and_never_raises(lists: Lists) -> None:
    """Every field of a list, replaced by a value of another shape and signed again with the
    issuer's key (so that the checks past the signature run too): the comparison fails, naming
    why, and nothing raises."""
    honest = lists.list()
    fields: list[tuple[str, ...]] = [(name,) for name in honest
                                     if name not in ("proof", "validUntil")]
    fields += [("credentialSubject", name) for name in honest["credentialSubject"]
               if name != "id"]
    fields += [("evidence", name) for name in honest["evidence"][0]]
    reader = JsonRpcChainReader(lists.world.chain.w3, head_max_age=3600)
    bundle = lists.bundle
    for path in fields:
        for junk in JUNK:
            altered = resign(_replaced(honest, path, junk))
            report = verify(bundle.credential, bundle.receipt, trust=trust_of(lists.world),
                            reader=reader, as_of=DURING, status_lists=[altered])
            check = _matches(report)
            assert check.status is CheckStatus.FAILED, (path, junk, check)
