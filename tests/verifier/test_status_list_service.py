"""The verifier against the service's published status lists, over real HTTP (uvicorn, SQLite,
a real anvil node): a credential the service signs carries status entries that point at its
anchored position (``status_entries_match``), the lists the service serves agree with the chain
(``status_list_matches_chain``) before and after a revocation, a list of a past block still
agrees with the chain at that block, and a served list altered afterwards is caught."""

from __future__ import annotations

import copy
from typing import Any

from tests.anchor_service.test_status_lists import change, fetch, wait_for_change
from tests.anchor_service.vc_stack import VC_V2, VcStack, did_of
from tests.verifier.published import flip
from tests.verifier.wallet import trust_of
from verifier.bitstring import decode_list, encode_list
from verifier.chain import JsonRpcChainReader
from verifier.receipt import Bundle
from verifier.verify import CheckStatus, VerificationReport, verify


def _issued_bundle(stack: VcStack, name: str = "acme") -> Bundle:
    """A credential issued (signed, with its status entries) and anchored by the service: its
    bundle as the service hands it out."""
    answer = stack.issue(name, {"@context": [VC_V2], "type": ["VerifiableCredential"],
                                "issuer": did_of(name), "credentialSubject": {"id": "urn:l:1"}})
    assert answer.status_code == 201, answer.text
    public_id = answer.headers["location"].removeprefix("/v1/credentials/")
    stack.anchor(name, [public_id])
    with stack.client(stack.tokens[name]) as client:
        served = client.get(f"/v1/credentials/{public_id}/bundle")
    assert served.status_code == 200, served.text
    return Bundle.from_json(served.text)


def _check(stack: VcStack, bundle: Bundle, *lists: dict[str, Any]) -> VerificationReport:
    return verify(bundle.credential, bundle.receipt, trust=trust_of(stack.world),
                  reader=JsonRpcChainReader(stack.world.chain.w3), status_lists=list(lists))


def _served(stack: VcStack, purpose: str, status_list: int) -> tuple[dict[str, Any], str]:
    answer = fetch(stack, "acme", purpose, status_list=status_list)
    assert answer.status_code == 200, answer.text
    return answer.json(), answer.headers["etag"]


def test_service_lists_agree_with_the_chain_and_a_later_alteration_is_caught(
        stack: VcStack) -> None:
    bundle = _issued_bundle(stack)
    receipt = bundle.receipt
    entries = bundle.credential["credentialStatus"]
    assert {e["statusListIndex"] for e in entries} == {str(receipt.status_list_index)}
    revocation, etag = _served(stack, "revocation", receipt.status_list)
    suspension, _ = _served(stack, "suspension", receipt.status_list)

    report = _check(stack, bundle, revocation, suspension)
    assert report.valid, report.to_dict()
    assert report.check("status_entries_match").status is CheckStatus.PASSED
    assert report.check("status_list_matches_chain").status is CheckStatus.PASSED

    # The issuer revokes it: the chain says so at once, the served list once re-rendered;
    # the list served before still agrees with the chain at its own block.
    change(stack, "acme", "revoke", [receipt.status_list_index], receipt.status_list)
    after = wait_for_change(stack, "acme", "revocation", etag).json()
    revoked = _check(stack, bundle, after, suspension)
    assert [c.name for c in revoked.checks if c.status is CheckStatus.FAILED] \
        == ["not_revoked"], revoked.to_dict()
    assert revoked.check("status_list_matches_chain").status is CheckStatus.PASSED
    assert _check(stack, bundle, revocation).check("status_list_matches_chain").status \
        is CheckStatus.PASSED

    # A copy of the served list that shows it unrevoked again, its signature kept.
    lying = copy.deepcopy(after)
    bits = decode_list(lying["credentialSubject"]["encodedList"])
    lying["credentialSubject"]["encodedList"] = encode_list(flip(bits,
                                                                 receipt.status_list_index))
    caught = _check(stack, bundle, lying).check("status_list_matches_chain")
    assert caught.status is CheckStatus.FAILED
    assert "its proof does not verify" in caught.detail
