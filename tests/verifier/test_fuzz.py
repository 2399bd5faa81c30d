"""Hostile bundles against the whole verifier, on a real anchor in the in-process chain: any
mutation of a genuine bundle, anywhere in it, yields a report (never an exception), and the
report is valid exactly when the mutated bundle still means the same credential and receipt."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.samples import make_credential
from anchor_service.store import NewCredential, Store
from localchain import InProcessChain
from testkit.world import build_world
from tests.verifier.wallet import register_signing_key, sign
from verifier.chain import JsonRpcChainReader
from verifier.credential import canonicalize, credential_digest, new_salt
from verifier.errors import ReceiptError, UnreadableDocumentError
from verifier.receipt import Bundle
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import verify_bundle_text

# Signed by its issuer (whose key is registered below), as the service signs credentials.
CREDENTIAL = sign(make_credential(1, id_prefix="urn:fuzz",
                                  subject={"name": "Zoë", "ects": 2.5, "tags": [1, True, None]}))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)


class Genuine:
    def __init__(self, tmp: Path) -> None:
        self.chain = InProcessChain.start()
        world = build_world(self.chain)
        register_signing_key(world)
        store = Store(tmp / "db.sqlite3")
        store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                         did="did:web:uni-a.example")
        others = [{"id": f"urn:fuzz:other{n}"} for n in range(4)]
        accepted = store.accept(1, [NewCredential(credential_digest(c), new_salt(),
                                                  canonicalize(c)) for c in [CREDENTIAL, *others]])
        pipeline = Pipeline(store, self.chain.w3, world.deployment, {1: world.issuer},
                            BatchPolicy(max_size=100, max_age=0))
        pipeline.run_once()
        pipeline.run_once()
        receipts = Receipts(store, chain_id=self.chain.chain_id, contract=world.anchor.address)
        self.bundle = receipts.bundle(accepted[0].public_id)
        self.document: dict[str, Any] = json.loads(self.bundle.to_json())
        self.trust = TrustConfig(deployments=(TrustedDeployment(
            chain_id=self.chain.chain_id, anchor=world.anchor.address,
            registry=world.registry.address),))
        self.reader = JsonRpcChainReader(self.chain.w3)
        store.close()


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Genuine]:
    made = Genuine(tmp_path_factory.mktemp("fuzz"))
    try:
        yield made
    finally:
        made.chain.close()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _same_meaning(text: str, genuine: Genuine) -> bool:
    """Whether ``text`` parses to the genuine credential (canonically) and receipt."""
    try:
        parsed = Bundle.from_json(text)
    except ReceiptError:
        return False
    return (canonicalize(parsed.credential) == canonicalize(genuine.bundle.credential)
            and parsed.receipt == genuine.bundle.receipt)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_yields_a_report_valid_only_if_it_changes_nothing(
    genuine: Genuine, data: st.DataObject
) -> None:
    document = copy.deepcopy(genuine.document)
    path = data.draw(st.sampled_from(list(_paths(document))[1:]), label="path")
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    operation = data.draw(st.sampled_from(["replace", "delete", "add"]), label="operation")
    if operation == "replace" or isinstance(parent, list):
        parent[path[-1]] = data.draw(json_values, label="value")
    elif operation == "delete":
        del parent[path[-1]]
    else:
        parent[data.draw(st.text(max_size=8), label="key")] = data.draw(json_values)
    text = json.dumps(document)  # may write NaN or Infinity: not strict JSON
    try:
        report = verify_bundle_text(text, trust=genuine.trust, reader=genuine.reader)
    except UnreadableDocumentError:
        assert not _same_meaning(text, genuine)
        return
    assert report.valid == _same_meaning(text, genuine), report.to_dict()


@settings(max_examples=150)
@given(st.binary(max_size=300) | st.text(max_size=300) | json_values.map(json.dumps))
def test_arbitrary_input_is_refused_or_yields_a_failed_report(junk: bytes | str) -> None:
    try:
        report = verify_bundle_text(junk, trust=TrustConfig(deployments=()), reader=None)
    except UnreadableDocumentError as exc:
        refused: UnreadableDocumentError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.field == "bundle"  # not strict JSON: refused, naming the document
        return
    assert not report.valid
    assert report.check("receipt_well_formed").status.value == "failed"


def test_the_genuine_bundle_is_valid(genuine: Genuine) -> None:
    report = verify_bundle_text(genuine.bundle.to_json(), trust=genuine.trust,
                                reader=genuine.reader)
    assert report.valid, report.to_dict()
