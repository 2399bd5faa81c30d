"""A credential's status entries are bound to the whole list URL its issuer publishes
(``status_entries_match``): https, the host of the issuer's did:web DID, the path
``/issuers/<name>/status-lists/<list>/<purpose>`` with the DID's issuer name when the DID names
one, and one entry of each purpose at one URL prefix. A credential pointing standard verifiers
at another host's or another issuer's list fails, though list number and index are right. And
a published list is compared with the chain only when it is at the credential's
``statusListCredential`` URL (``status_list_matches_chain``)."""

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
from verifier.bitstring import parse_status_list_url, status_list_url
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import StatusPurpose
from verifier.errors import StatusListError
from verifier.receipt import Bundle
from verifier.verify import CheckStatus, verify

DURING = datetime(2027, 6, 1, tzinfo=UTC)
# An issuer DID naming its issuer (the service's form) and one naming only a host.
NAMED = "did:web:uni-a.example%3A8443:issuers:uni-a"
HOST_ONLY = "did:web:uni-a.example"


def _url(host: str, name: str, status_list: int, purpose: str) -> str:
    return f"https://{host}/issuers/{name}/status-lists/{status_list}/{purpose}"


def test_a_list_url_is_bound_to_the_issuers_host_and_name() -> None:
    assert parse_status_list_url(_url("uni-a.example:8443", "uni-a", 3, "suspension"),
                                 NAMED) == (3, StatusPurpose.SUSPENSION)
    assert parse_status_list_url(_url("UNI-A.example", "any-name", 0, "revocation"),
                                 HOST_ONLY) == (0, StatusPurpose.REVOCATION)
    assert parse_status_list_url(status_list_url(NAMED, "uni-a", 7, "revocation"), NAMED) \
        == (7, StatusPurpose.REVOCATION)
    for url, did, reason in (
            (_url("evil.example", "uni-a", 0, "revocation"), HOST_ONLY, "is on host"),
            (_url("uni-a.example", "uni-a", 0, "revocation"), NAMED, "is on host"),  # no port
            (_url("uni-a.example:8443", "uni-b", 0, "revocation"), NAMED,
             "is a list of issuer 'uni-b'"),
            (_url("uni-a.example", "uni-a", 0, "revocation"), "did:key:z6Mk",
             "did:web issuer")):
        with pytest.raises(StatusListError, match=reason):
            parse_status_list_url(url, did)


@pytest.mark.parametrize("url", [
    "http://uni-a.example/issuers/uni-a/status-lists/0/revocation",
    "https://evil.example/anything/status-lists/0/revocation",
    "https://uni-a.example/status-lists/0/revocation",
    "https://uni-a.example/x/issuers/uni-a/status-lists/0/revocation",
    "https://uni-a.example/issuers//status-lists/0/revocation",
    "https://uni-a.example/issuers/%2E%2E/status-lists/0/revocation",
    "https://uni-a.example/issuers/uni-a/status-lists/0/revocation?v=1",
    "https://uni-a.example/issuers/uni-a/status-lists/0/revocation#0",
    "https://user@uni-a.example/issuers/uni-a/status-lists/0/revocation",
    "https://uni-a.example:99999/issuers/uni-a/status-lists/0/revocation",
])
def test_urls_of_another_form_are_not_list_urls(url: str) -> None:
    with pytest.raises(StatusListError):
        parse_status_list_url(url)


@pytest.fixture
def store(world: World, tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "db.sqlite3")
    opened.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                      did=HOST_ONLY)
    yield opened
    opened.close()


def _entries(urls: dict[str, str], index: int) -> list[dict[str, Any]]:
    return [{"id": f"{url}#{index}", "type": "BitstringStatusListEntry", "statusPurpose": purpose,
             "statusListIndex": str(index), "statusListCredential": url}
            for purpose, url in urls.items()]


# Each case: the credential's issuer DID, its entries' URLs by purpose (list number filled in),
# and the expected outcome (None: passes; else a part of the failure's detail).
CASES: dict[str, tuple[str, dict[str, str], str | None]] = {
    "the issuer's own lists": (NAMED, {p: _url("uni-a.example:8443", "uni-a", -1, p)
                                       for p in ("revocation", "suspension")}, None),
    "another host": (NAMED, {p: _url("evil.example", "uni-a", -1, p)
                             for p in ("revocation", "suspension")}, "is on host"),
    "another issuer's name": (NAMED, {p: _url("uni-a.example:8443", "uni-b", -1, p)
                                      for p in ("revocation", "suspension")},
                              "is a list of issuer 'uni-b'"),
    "another form": (HOST_ONLY, {p: f"https://evil.example/anything/status-lists/-1/{p}"
                                 for p in ("revocation", "suspension")},
                     "is not a status list URL"),
    "no suspension entry": (NAMED, {"revocation": _url("uni-a.example:8443", "uni-a", -1,
                                                       "revocation")},
                            "no suspension entry"),
    "two prefixes": (HOST_ONLY, {"revocation": _url("uni-a.example", "uni-a", -1, "revocation"),
                                 "suspension": _url("uni-a.example", "uni-z", -1,
                                                    "suspension")},
                     "their lists are at"),
}


def test_status_entries_must_be_the_issuers_published_lists(world: World,
                                                            store: Store) -> None:
    """Every credential names the right list number and index; only the one pointing at its
    issuer's own lists passes. Judged offline (the check needs no chain)."""
    positions = store.allocate_status(1, len(CASES))
    credentials = []
    for number, ((did, urls, _), position) in enumerate(zip(CASES.values(), positions,
                                                            strict=True)):
        placed = {p: url.replace("/-1/", f"/{position.list}/") for p, url in urls.items()}
        credentials.append({**make_credential(number, id_prefix="urn:bound"), "issuer": did,
                            "credentialStatus": _entries(placed, position.index)})
    bundles = anchored_bundles(world, store, world.issuer, credentials, positions=positions)
    for (name, (_, _, expected)), bundle in zip(CASES.items(), bundles, strict=True):
        report = verify(bundle.credential, bundle.receipt, trust=trust_of(world), reader=None,
                        as_of=DURING)
        check = report.check("status_entries_match")
        if expected is None:
            assert check.status is CheckStatus.PASSED, (name, check.detail)
        else:
            assert check.status is CheckStatus.FAILED, (name, check.detail)
            assert expected in check.detail, (name, check.detail)


@pytest.mark.parametrize("with_entries", [True, False])
def test_a_list_is_compared_only_at_the_credentials_url(world: World, store: Store,
                                                        with_entries: bool) -> None:
    """A list of the issuer, signed by it and agreeing with the chain, but at another URL than
    the credential's ``statusListCredential`` (another issuer name on the issuer's host), or,
    for a credential without status entries, on another host: not the credential's list."""
    credential = make_credential(1, id_prefix="urn:bound-list", validFrom="2026-01-01T00:00:00Z",
                                 validUntil="2030-01-01T00:00:00Z")
    (bundle,) = anchored_bundles(world, store, world.issuer, [credential],
                                 status_entries=with_entries)
    honest = published_list(world, bundle.receipt.status_list, StatusPurpose.REVOCATION)
    host = "uni-a.example" if with_entries else "evil.example"
    elsewhere = _url(host, "uni-other", bundle.receipt.status_list, "revocation")
    moved = resign({**honest, "id": elsewhere,
                    "credentialSubject": {**honest["credentialSubject"],
                                          "id": f"{elsewhere}#list"}})
    assert _list_check(world, bundle, honest).status is CheckStatus.PASSED
    check = _list_check(world, bundle, moved)
    assert check.status is CheckStatus.FAILED
    assert "none of the 1 status list(s) given is" in check.detail, check.detail


def _list_check(world: World, bundle: Bundle, listed: dict[str, Any]) -> Any:
    report = verify(bundle.credential, bundle.receipt, trust=trust_of(world),
                    reader=JsonRpcChainReader(world.chain.w3), as_of=DURING,
                    status_lists=[listed])
    return report.check("status_list_matches_chain")
