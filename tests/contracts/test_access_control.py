"""Every state-changing function, called by every kind of caller, gives the expected success or
custom error, on the in-process chain and on anvil."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from testkit.world import World
from tests.contracts.helpers import outcome, packed, random_root, refusal, sign_anchor
from verifier.contract_types import ALL_SCOPES, Kind, Status, StatusBits, read

ROLES = ["root admin", "body", "issuer", "revoked issuer", "stranger"]


def _revoked(world: World) -> bytes:
    """Indices 0 and 1 of the issuer's list 0, revoked by the issuer; packed."""
    indices = packed(0, 1)
    world.tx(world.issuer).transact(world.anchor.functions.revoke(world.issuer_id, 0, indices, 1))
    return indices


def _recognition(world: World) -> int:
    """A recognition of the body's credentials by the issuer, recorded with its key; its id."""
    world.tx(world.issuer).transact(world.registry.functions.recognise(
        world.issuer_id, world.body_id, ALL_SCOPES, 0, 0))
    return int(world.registry.functions.recognitionCount().call())


def _relayed(world: World, signer: LocalAccount) -> Any:
    root = random_root()
    nonce = world.anchor.functions.nonces(signer.address).call()
    deadline = world.now() + 3600
    signature = sign_anchor(world.anchor, signer, root, tree_size=7, nonce=nonce, deadline=deadline)
    return world.anchor.functions.anchorWithSignature(
        root, 7, signer.address, nonce, deadline, signature
    )


def _signing_key(world: World) -> bytes:
    """A fresh Ed25519 signing key of the issuer, added by the root administrator; its id."""
    public_key = b"\xed\x01" + os.urandom(32)
    world.tx(world.admin).transact(
        world.registry.functions.addSigningKey(world.issuer_id, public_key, 0, 0))
    return keccak(public_key)


Case = Callable[[World, LocalAccount], Any]

# name -> (build the call for this caller, expected outcome per role in ROLES order)
CASES: dict[str, tuple[Case, list[str]]] = {
    "accredit top-level body": (
        lambda w, who: w.registry.functions.accredit(
            0, Kind.ACCREDITATION_BODY, f"did:web:top-{who.address}", ALL_SCOPES, "", b"\0" * 32
        ),
        ["ok", "NotAuthorized", "NotAuthorized", "NotAuthorized", "NotAuthorized"],
    ),
    "accredit issuer under body": (
        lambda w, who: w.registry.functions.accredit(
            w.body_id, Kind.TRUSTED_ISSUER, f"did:web:new-{who.address}", ALL_SCOPES, "",
            b"\0" * 32
        ),
        ["ok", "ok", "NotAuthorized", "NotAuthorized", "NotAuthorized"],
    ),
    "suspend issuer": (
        lambda w, who: w.registry.functions.setStatus(w.issuer_id, Status.SUSPENDED),
        ["ok", "ok", "NotAuthorized", "NotAuthorized", "NotAuthorized"],
    ),
    "revoke issuer since a past time": (
        lambda w, who: w.registry.functions.revokeSince(w.issuer_id, w.now() - 100),
        ["ok", "ok", "NotAuthorized", "NotAuthorized", "NotAuthorized"],
    ),
    "suspend body": (
        lambda w, who: w.registry.functions.setStatus(w.body_id, Status.SUSPENDED),
        ["ok", "NotAuthorized", "NotAuthorized", "NotAuthorized", "NotAuthorized"],
    ),
    "update issuer metadata": (
        lambda w, who: w.registry.functions.updateMetadata(w.issuer_id, "ipfs://x", b"\1" * 32),
        ["ok", "ok", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "add issuer key": (
        lambda w, who: w.registry.functions.addKey(w.issuer_id, w.chain.accounts[8].address, 0, 0),
        ["ok", "ok", "NotAuthorized", "NotAuthorized", "NotAuthorized"],
    ),
    "shorten issuer key expiry": (
        lambda w, who: w.registry.functions.shortenKeyExpiry(w.issuer_key2.address, w.now() + 999),
        ["ok", "ok", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "revoke issuer key back-dated": (
        lambda w, who: w.registry.functions.revokeKey(w.issuer_key2.address, w.now() - 100),
        ["ok", "ok", "BackdatingNotAllowed", "NotAuthorized", "NotAuthorized"],
    ),
    "revoke issuer key now": (
        lambda w, who: w.registry.functions.revokeKey(w.issuer_key2.address, 0),
        ["ok", "ok", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "add issuer signing key": (
        lambda w, who: w.registry.functions.addSigningKey(
            w.issuer_id, b"\xed\x01" + os.urandom(32), 0, 0),
        ["ok", "ok", "NotAuthorized", "NotAuthorized", "NotAuthorized"],
    ),
    "shorten issuer signing key expiry": (
        lambda w, who: w.registry.functions.shortenSigningKeyExpiry(_signing_key(w), w.now() + 999),
        ["ok", "ok", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "revoke issuer signing key back-dated": (
        lambda w, who: w.registry.functions.revokeSigningKey(_signing_key(w), w.now() - 100),
        ["ok", "ok", "BackdatingNotAllowed", "NotAuthorized", "NotAuthorized"],
    ),
    "revoke issuer signing key now": (
        lambda w, who: w.registry.functions.revokeSigningKey(_signing_key(w), 0),
        ["ok", "ok", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "recognise as the issuer": (
        lambda w, who: w.registry.functions.recognise(w.issuer_id, w.revoked_id, ALL_SCOPES, 0, 0),
        ["NotAuthorized", "NotAuthorized", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "withdraw the issuer's recognition": (
        lambda w, who: w.registry.functions.withdrawRecognition(_recognition(w)),
        ["NotAuthorized", "NotAuthorized", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "grant root admin role": (
        lambda w, who: w.registry.functions.grantRole(
            w.registry.functions.ROOT_ADMIN_ROLE().call(), w.chain.accounts[8].address
        ),
        [
            "ok",
            "AccessControlUnauthorizedAccount",
            "AccessControlUnauthorizedAccount",
            "AccessControlUnauthorizedAccount",
            "AccessControlUnauthorizedAccount",
        ],
    ),
    "begin top admin transfer": (
        lambda w, who: w.registry.functions.beginDefaultAdminTransfer(w.chain.accounts[8].address),
        [
            "ok",
            "AccessControlUnauthorizedAccount",
            "AccessControlUnauthorizedAccount",
            "AccessControlUnauthorizedAccount",
            "AccessControlUnauthorizedAccount",
        ],
    ),
    "anchor with own key": (
        lambda w, who: w.anchor.functions.anchor(random_root(), 5),
        ["KeyNotTrusted", "NotAnIssuer", "ok", "KeyNotTrusted", "KeyNotTrusted"],
    ),
    "anchor signed by issuer, relayed": (
        lambda w, _who: _relayed(w, w.issuer),
        ["ok", "ok", "ok", "ok", "ok"],
    ),
    "anchor signed by caller, relayed": (
        _relayed,
        ["KeyNotTrusted", "NotAnIssuer", "ok", "KeyNotTrusted", "KeyNotTrusted"],
    ),
    "revoke credentials": (
        lambda w, who: w.anchor.functions.revoke(w.issuer_id, 0, packed(0, 1), 1),
        ["NotAuthorized", "NotAuthorized", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "suspend credentials": (
        lambda w, who: w.anchor.functions.suspend(w.issuer_id, 0, packed(3), 2),
        ["NotAuthorized", "NotAuthorized", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "reinstate credentials": (
        lambda w, who: w.anchor.functions.reinstate(w.issuer_id, 0, packed(3), 0),
        ["NotAuthorized", "NotAuthorized", "ok", "NotAuthorized", "NotAuthorized"],
    ),
    "lift revocations": (
        lambda w, who: w.anchor.functions.liftRevocations(w.issuer_id, 0, _revoked(w), 9),
        ["ok", "NotAuthorized", "NotAuthorized", "NotAuthorized", "NotAuthorized"],
    ),
    "use own nonce": (
        lambda w, who: w.anchor.functions.useNonce(),
        ["ok", "ok", "ok", "ok", "ok"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("role", ROLES)
def test_access_control_matrix(world: World, case: str, role: str) -> None:
    build, expected = CASES[case]
    caller = world.accounts_by_role()[role]
    assert outcome(world.tx(caller), build(world, caller)) == expected[ROLES.index(role)]


# Functions whose guard depends on an argument as well as on the caller: a row per branch
# (top-level body or issuer under a body; a body's or an issuer's status; a key revoked now or
# back-dated; a relayed anchor signed by a trusted issuer or by the caller).
BRANCHES = {"accredit": 2, "setStatus": 2, "revokeKey": 2, "revokeSigningKey": 2,
            "anchorWithSignature": 2}


def test_the_matrix_covers_every_state_changing_function(world: World) -> None:
    """A new external function must get a row: compare the ABIs with the functions the table's
    cases call, so that adding a function without a row, or dropping a row, fails here."""
    rows = Counter(build(world, world.admin).fn_name for build, _ in CASES.values())
    # OpenZeppelin's own admin functions are tested by OpenZeppelin; we check they are guarded
    # by the roles above through two representatives.
    delegated_to_openzeppelin = {
        "revokeRole",
        "renounceRole",
        "acceptDefaultAdminTransfer",
        "cancelDefaultAdminTransfer",
        "changeDefaultAdminDelay",
        "rollbackDefaultAdminDelay",
    }
    mutating = {
        str(item["name"])
        for contract in (world.registry, world.anchor)
        for item in cast(list[dict[str, Any]], contract.abi)
        if item.get("type") == "function"
        and item.get("stateMutability") in {"nonpayable", "payable"}
    }
    assert dict(rows) == {name: BRANCHES.get(name, 1)
                          for name in mutating - delegated_to_openzeppelin}


def _other_issuer(world: World) -> tuple[int, LocalAccount]:
    """A second trusted issuer under the body, with one key of its own: its id and key."""
    key = world.chain.accounts[7]
    body = world.tx(world.body)
    receipt = body.transact(world.registry.functions.accredit(
        world.body_id, Kind.TRUSTED_ISSUER, "did:web:uni-b.example", ALL_SCOPES, "", b"\0" * 32))
    (event,) = world.registry.events.EntityAccredited().process_receipt(receipt)
    other_id = int(event["args"]["id"])
    body.transact(world.registry.functions.addKey(other_id, key.address, 0, 0))
    return other_id, key


def _status_changes(world: World, entity_id: int) -> dict[str, Any]:
    anchor = world.anchor.functions
    return {name: getattr(anchor, name)(entity_id, 5, packed(0, 9), 1)
            for name in ("revoke", "suspend", "reinstate")}


def _refusal(world: World, caller: LocalAccount, call: Any) -> tuple[str, tuple[Any, ...]]:
    return refusal(world.tx(caller), call)


def test_only_the_issuers_own_keys_trusted_now_change_its_status(world: World) -> None:
    """revoke, suspend and reinstate: either key of the issuer, trusted now; nobody else, not a
    root administrator, not its accreditation body, not another issuer (with its keys trusted)."""
    _, other_key = _other_issuer(world)
    for caller in (world.issuer, world.issuer_key2):
        for name, call in _status_changes(world, world.issuer_id).items():
            assert outcome(world.tx(caller), call) == "ok", name
    for caller in (other_key, world.body, world.admin, world.stranger, world.revoked):
        for name, call in _status_changes(world, world.issuer_id).items():
            assert _refusal(world, caller, call) == (
                "NotAuthorized", (caller.address, world.issuer_id)), name
    # An issuer whose entity is revoked no longer changes even its own lists.
    for call in _status_changes(world, world.revoked_id).values():
        assert outcome(world.tx(world.revoked), call) == "NotAuthorized"


def test_a_key_not_trusted_now_changes_no_status(world: World) -> None:
    """The issuer's own key, but revoked, expired, not yet valid, or under a suspended issuer
    or a suspended body: refused while so, and accepted again once trusted."""
    registry, body = world.registry.functions, world.tx(world.body)

    def refused(caller: LocalAccount) -> bool:
        return all(outcome(world.tx(caller), call) == "NotAuthorized"
                   for call in _status_changes(world, world.issuer_id).values())

    later = world.chain.accounts[8]
    start = world.now() + 1_000
    body.transact(registry.addKey(world.issuer_id, later.address, start, start + 1_000))
    assert refused(later)  # not yet valid
    world.chain.increase_time(1_100)
    assert outcome(world.tx(later), _status_changes(world, world.issuer_id)["revoke"]) == "ok"
    world.chain.increase_time(1_000)
    assert refused(later)  # expired

    body.transact(registry.setStatus(world.issuer_id, Status.SUSPENDED))
    assert refused(world.issuer)
    body.transact(registry.setStatus(world.issuer_id, Status.ACTIVE))
    assert outcome(world.tx(world.issuer), _status_changes(world, world.issuer_id)["suspend"]) \
        == "ok"

    world.tx(world.admin).transact(registry.setStatus(world.body_id, Status.SUSPENDED))
    assert refused(world.issuer)  # its accreditation body is suspended
    world.tx(world.admin).transact(registry.setStatus(world.body_id, Status.ACTIVE))

    body.transact(registry.revokeKey(world.issuer_key2.address, 0))
    assert refused(world.issuer_key2)  # revoked now: refused at once, within this second too
    assert outcome(world.tx(world.issuer), _status_changes(world, world.issuer_id)["reinstate"]) \
        == "ok"


def _recognition_changes(world: World) -> dict[str, Any]:
    registry = world.registry.functions
    return {"recognise": registry.recognise(world.issuer_id, world.revoked_id, ALL_SCOPES, 0, 0),
            "withdrawRecognition": registry.withdrawRecognition(_recognition(world))}


def test_only_the_recognisers_own_trusted_keys_change_its_recognitions(world: World) -> None:
    """recognise and withdrawRecognition: either key of the recogniser, trusted now; not a root
    administrator, not its accreditor's keys, not another entity's keys, not a stranger, not
    its own key revoked or expired, not its keys while it is suspended."""
    registry, body = world.registry.functions, world.tx(world.body)
    _, other_key = _other_issuer(world)
    for caller in (world.issuer, world.issuer_key2):
        for name, call in _recognition_changes(world).items():
            assert outcome(world.tx(caller), call) == "ok", name
    for caller in (world.admin, world.body, other_key, world.revoked, world.stranger):
        for name, call in _recognition_changes(world).items():
            assert _refusal(world, caller, call) == (
                "NotAuthorized", (caller.address, world.issuer_id)), name

    expiring = world.chain.accounts[8]
    body.transact(registry.addKey(world.issuer_id, expiring.address, 0, world.now() + 100))
    assert outcome(world.tx(expiring), _recognition_changes(world)["recognise"]) == "ok"
    body.transact(registry.revokeKey(world.issuer_key2.address, 0))
    world.chain.increase_time(200)
    for caller in (expiring, world.issuer_key2):  # expired; revoked
        for name, call in _recognition_changes(world).items():
            assert _refusal(world, caller, call) == (
                "NotAuthorized", (caller.address, world.issuer_id)), name

    changes = _recognition_changes(world)  # built while the issuer can still record one
    body.transact(registry.setStatus(world.issuer_id, Status.SUSPENDED))
    for name, call in changes.items():
        assert _refusal(world, world.issuer, call) == (
            "NotAuthorized", (world.issuer.address, world.issuer_id)), name
    body.transact(registry.setStatus(world.issuer_id, Status.ACTIVE))
    for name, call in changes.items():
        assert outcome(world.tx(world.issuer), call) == "ok", name


def test_only_root_admins_lift_revocations(world: World) -> None:
    _, other_key = _other_issuer(world)
    indices = _revoked(world)
    lift = world.anchor.functions.liftRevocations(world.issuer_id, 0, indices, 1)
    for caller in (world.issuer, world.issuer_key2, world.body, other_key, world.stranger,
                   world.revoked):
        assert _refusal(world, caller, lift) == ("NotAuthorized", (caller.address,
                                                                   world.issuer_id))
    granted = world.chain.accounts[8]
    world.tx(world.admin).transact(world.registry.functions.grantRole(
        world.registry.functions.ROOT_ADMIN_ROLE().call(), granted.address))
    assert outcome(world.tx(granted), lift) == "ok"
    bits = read(StatusBits, world.anchor.functions.statusOf(world.issuer_id, 0, 0))
    assert bits == StatusBits(revoked=False, suspended=False)
