"""A published status list that was stale when signed is caught (``status_list_matches_chain``):
a server holding the issuer's key renders the list at a block from before a revocation and
signs it with a current ``validFrom``; its bits agree with that old block, but not with the
chain at the block the service would have rendered at when it signed. An honest list,
rendered at the latest block with the required confirmations, passes, and so does a list of
a chain that made no block since. Lists are built from chain state by
tests/verifier/published.py and signed with the issuer's key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from anchor_service.samples import make_credential
from anchor_service.store import Store
from testkit.world import World
from tests.verifier.published import published_list, resign
from tests.verifier.wallet import anchored_bundles, trust_of
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import StatusPurpose, encode_status_indices
from verifier.list_check import SIGNING_CLOCK_SLACK
from verifier.receipt import Bundle
from verifier.trust import TrustConfig
from verifier.verify import Check, CheckStatus, verify

DURING = datetime(2027, 6, 1, tzinfo=UTC)
CREDENTIAL = make_credential(5, id_prefix="urn:fresh", validFrom="2026-01-01T00:00:00Z",
                             validUntil="2030-01-01T00:00:00Z")


@pytest.fixture
def bundle(world: World, tmp_path: Path) -> Iterator[Bundle]:
    store = Store(tmp_path / "db.sqlite3")
    store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                     did="did:web:uni-a.example")
    (anchored,) = anchored_bundles(world, store, world.issuer, [CREDENTIAL],
                                   status_entries=True)
    yield anchored
    store.close()


def _revoke(world: World, bundle: Bundle) -> int:
    """The credential revoked by its issuer: the block of the revocation."""
    receipt = world.tx(world.issuer).transact(world.anchor.functions.revoke(
        world.issuer_id, bundle.receipt.status_list,
        encode_status_indices([bundle.receipt.status_list_index]), 1))
    return int(receipt["blockNumber"])


def _head(world: World) -> tuple[int, int]:
    """(number, timestamp) of the chain's latest block."""
    block = world.chain.w3.eth.get_block("latest")
    return int(block["number"]), int(block["timestamp"])


def _matches(world: World, bundle: Bundle, listed: dict[str, Any], *,
             min_confirmations: int = 1) -> Check:
    trust = TrustConfig(deployments=trust_of(world).deployments,
                        min_confirmations=min_confirmations)
    report = verify(bundle.credential, bundle.receipt, trust=trust,
                    reader=JsonRpcChainReader(world.chain.w3), as_of=DURING,
                    status_lists=[listed])
    return report.check("status_list_matches_chain")


def _list(world: World, bundle: Bundle, **options: Any) -> dict[str, Any]:
    return published_list(world, bundle.receipt.status_list, StatusPurpose.REVOCATION,
                          **options)


def test_a_list_of_an_old_block_signed_as_current_is_caught(world: World,
                                                             bundle: Bundle) -> None:
    """Rendered before the revocation, signed after it: its bits agree with its own block,
    but it was stale when signed, and the detail names both blocks."""
    old, _ = _head(world)
    revoked_in = _revoke(world, bundle)
    _, now = _head(world)
    stale = _list(world, bundle, block=old, valid_from=now + 1 + SIGNING_CLOCK_SLACK)
    check = _matches(world, bundle, stale)
    assert check.status is CheckStatus.FAILED
    assert "stale when signed" in check.detail, check.detail
    assert f"at block {old}, but by block {revoked_in}" in check.detail, check.detail
    assert f"entries {bundle.receipt.status_list_index}" in check.detail, check.detail
    # The same old list signed when it was current still agrees with the chain at its block.
    assert _matches(world, bundle, _list(world, bundle, block=old)).status \
        is CheckStatus.PASSED


def test_an_honest_list_of_the_confirmed_head_passes(world: World, bundle: Bundle) -> None:
    """With two confirmations required, the service renders at the block before the head: a
    revocation in the head block is not yet in its list, and that list is not stale. Judged
    with one confirmation required, the same list was stale."""
    revoked_in = _revoke(world, bundle)
    _, now = _head(world)
    confirmed = _list(world, bundle, block=revoked_in - 1,
                      valid_from=now + 1 + SIGNING_CLOCK_SLACK)
    check = _matches(world, bundle, confirmed, min_confirmations=2)
    assert check.status is CheckStatus.PASSED, check.detail
    (compared,) = check.evidence["lists"]
    assert compared["blockNumber"] == compared["signedAtBlock"] == revoked_in - 1
    stale = _matches(world, bundle, confirmed, min_confirmations=1)
    assert stale.status is CheckStatus.FAILED
    assert f"at block {revoked_in - 1}, but by block {revoked_in}" in stale.detail, stale.detail


def test_a_list_of_a_quiet_chain_passes(world: World, bundle: Bundle) -> None:
    """No block since the list's block: signed long after it, the list is still current."""
    _revoke(world, bundle)
    head, now = _head(world)
    quiet = _list(world, bundle, valid_from=now + 3600)
    check = _matches(world, bundle, quiet)
    assert check.status is CheckStatus.PASSED, check.detail
    assert check.evidence["lists"][0]["signedAtBlock"] == head


def test_a_list_signed_before_its_block_fails(world: World, bundle: Bundle) -> None:
    head, now = _head(world)
    early = _list(world, bundle, valid_from=now - 60)
    check = _matches(world, bundle, early)
    assert check.status is CheckStatus.FAILED
    assert f"its block {head} was made at {now}, after its validFrom" in check.detail, \
        check.detail
    undated = {name: value for name, value in _list(world, bundle).items()
               if name != "validFrom"}
    check = _matches(world, bundle, resign(undated))
    assert check.status is CheckStatus.FAILED
    assert "its validFrom None is not a date-time" in check.detail, check.detail


def test_the_block_at_signing_is_found_among_later_blocks(world: World, bundle: Bundle) -> None:
    """Blocks ten seconds apart, the revocation among them: an old list signed within the
    clock slack after the revocation's block (that block may have reached the service after
    the rendering) passes; signed a second later, it was stale, and the block named is the
    revocation's, not the head."""
    old, _ = _head(world)
    world.chain.increase_time(10)
    revoked_in = _revoke(world, bundle)
    made = int(world.chain.w3.eth.get_block(revoked_in)["timestamp"])
    world.chain.increase_time(10)
    world.chain.increase_time(10)
    head, _ = _head(world)
    assert head > revoked_in + 1
    for signed in (made - 1, made, made + SIGNING_CLOCK_SLACK):
        check = _matches(world, bundle, _list(world, bundle, block=old, valid_from=signed))
        assert check.status is CheckStatus.PASSED, (signed, check.detail)
    check = _matches(world, bundle, _list(world, bundle, block=old,
                                          valid_from=made + 1 + SIGNING_CLOCK_SLACK))
    assert check.status is CheckStatus.FAILED
    assert f"at block {old}, but by block {revoked_in}" in check.detail, check.detail
