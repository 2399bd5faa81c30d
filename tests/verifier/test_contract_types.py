"""verifier.contract_types: the contracts' enums and structs as typed models, decoded by the
ABI's component names, on the in-process chain and on anvil; and the models kept in step with
the shipped ABI (a reordered struct decodes right, a renamed, added, removed or retyped
component is refused)."""

from __future__ import annotations

import copy
import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from eth_utils.crypto import keccak

from testkit.world import World
from tests.contracts.helpers import credential_leaves, packed, random_root
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import (
    ALL_SCOPES,
    MODELS,
    SCOPES,
    AnchorInfo,
    CredentialCheck,
    CredentialStatus,
    Entity,
    KeyCheck,
    KeyInfo,
    Kind,
    Recognition,
    RecognitionAnswer,
    RecognitionPath,
    Scope,
    SigningKeyInfo,
    Status,
    StatusBits,
    StatusChange,
    StatusWords,
    Trust,
    TrustCode,
    abi_components,
    check_model,
    decode,
    decode_all,
    field_name,
    read,
    scope_names,
    signing_key_id,
)
from verifier.contracts_abi import load_artifact
from verifier.errors import ChainReadError, ContractTypeError, MultikeyError
from verifier.merkle import MerkleTree
from verifier.multikey import Multikey

SOURCES = Path(__file__).resolve().parents[2] / "contracts"
NEVER = 2**40 - 1  # a key's validUntil when it never expires (the largest uint40)


def _named(world: World, contract: str) -> Any:
    """The world's contract through web3 with decode_tuples: web3's own by-name decoding,
    the oracle the models are compared with."""
    deployed = world.registry if contract == "registry" else world.anchor
    return world.chain.w3.eth.contract(address=deployed.address, abi=deployed.abi,
                                       decode_tuples=True)


def _same_as_web3(model: Any, named: Any) -> None:
    """Every component web3 names holds the same value in the model's field of that name."""
    values = named._asdict()
    assert {field_name(name) for name in values} == {f.name for f in fields(model)}
    for name, value in values.items():
        ours = getattr(model, field_name(name))
        if hasattr(value, "_asdict"):
            _same_as_web3(ours, value)
        else:
            assert ours == (tuple(value) if isinstance(value, list) else value), name


# ---------------------------------------------------------------------------- real results


def test_registry_structs_decode_by_name(world: World) -> None:
    registry, named = world.registry.functions, _named(world, "registry").functions
    body = read(Entity, registry.entity(world.body_id))
    issuer = read(Entity, registry.entity(world.issuer_id))
    assert issuer.id == world.issuer_id
    assert issuer.parent_id == world.body_id
    assert issuer.kind is Kind.TRUSTED_ISSUER
    assert body.kind is Kind.ACCREDITATION_BODY
    assert issuer.status is Status.ACTIVE
    assert issuer.scope == ALL_SCOPES
    assert isinstance(issuer.scope, Scope)
    assert issuer.depth == body.depth + 1
    assert issuer.accredited_by == world.body.address
    assert body.accredited_by == world.admin.address
    assert issuer.did == "did:web:uni-a.example"
    assert issuer.metadata_uri == "https://example.org/did:web:uni-a.example"
    assert issuer.metadata_hash == b"\x11" * 32
    assert issuer.revoked_from == 0
    assert 0 < issuer.accredited_at <= issuer.status_since <= world.now() + 1
    _same_as_web3(issuer, named.entity(world.issuer_id).call())
    assert read(Entity, registry.entity(world.revoked_id)).status is Status.REVOKED

    key = read(KeyInfo, registry.keyInfo(world.issuer.address))
    assert (key.key, key.entity_id, key.valid_until, key.revoked_at) == (
        world.issuer.address, world.issuer_id, NEVER, 0)
    assert registry.keyAt(key.index).call() == world.issuer.address
    _same_as_web3(key, named.keyInfo(world.issuer.address).call())

    trust = read(Trust, registry.trustedAt(world.issuer.address, world.now()))
    assert trust == Trust(trusted=True, code=TrustCode.TRUSTED, entity_id=world.issuer_id,
                          failing_entity_id=0, key_index=key.index, kind=Kind.TRUSTED_ISSUER,
                          scope=ALL_SCOPES)
    assert trust.reason == "trusted"
    refused = read(Trust, registry.trustedAt(world.revoked.address, world.now() + 1))
    assert (refused.trusted, refused.code, refused.failing_entity_id) == (
        False, TrustCode.ENTITY_NOT_ACTIVE, world.revoked_id)
    assert refused.reason == "entity not active"
    _same_as_web3(refused, named.trustedAt(world.revoked.address, world.now() + 1).call())

    check = read(KeyCheck, registry.checkKeyNow(world.issuer.address))
    assert check == KeyCheck(code=TrustCode.TRUSTED, entity_id=world.issuer_id,
                             key_index=key.index, kind=Kind.TRUSTED_ISSUER)
    assert read(KeyCheck, registry.checkKeyNow(world.stranger.address)) == KeyCheck(
        code=TrustCode.UNKNOWN_KEY, entity_id=0, key_index=0, kind=Kind.NONE)

    history = decode_all(StatusChange, registry.statusHistory(world.revoked_id).call())
    assert [change.status for change in history] == [Status.ACTIVE, Status.REVOKED]
    assert history[0].since == read(Entity, registry.entity(world.revoked_id)).accredited_at
    for ours, theirs in zip(history, named.statusHistory(world.revoked_id).call(), strict=True):
        _same_as_web3(ours, theirs)


def test_anchor_structs_decode_by_name(world: World) -> None:
    anchor, named = world.anchor.functions, _named(world, "anchor").functions
    positions = [(7, 3), (7, 5), (7, 290)]
    leaves = credential_leaves(positions)
    tree = MerkleTree(leaves)
    receipt = world.tx(world.issuer).transact(anchor.anchor(tree.root, tree.size))
    world.tx(world.issuer).transact(anchor.revoke(world.issuer_id, 7, packed(3, 290), 1))
    world.tx(world.issuer).transact(anchor.suspend(world.issuer_id, 7, packed(5), 1))
    mined = world.chain.w3.eth.get_block(receipt["blockNumber"])

    info = read(AnchorInfo, anchor.anchorOf(world.issuer.address, tree.root))
    assert info == AnchorInfo(anchored=True, entity_id=world.issuer_id, key=world.issuer.address,
                              anchored_at=mined["timestamp"],
                              block_number=receipt["blockNumber"], tree_size=3)
    _same_as_web3(info, named.anchorOf(world.issuer.address, tree.root).call())
    assert read(AnchorInfo, anchor.anchorOf(world.issuer.address, random_root())).anchored is False

    bits = read(StatusBits, anchor.statusOf(world.issuer_id, 7, 5))
    assert bits == StatusBits(revoked=False, suspended=True)
    _same_as_web3(bits, named.statusOf(world.issuer_id, 7, 5).call())

    check = read(CredentialCheck, anchor.checkCredential(
        world.issuer.address, leaves[1], 1, tree.inclusion_proof(1), tree.root))
    assert check.included is True
    status = check.status
    assert (status.anchored, status.tree_size, status.index_in_tree) == (True, 3, True)
    assert (status.issuer_trusted_at_anchoring, status.trust_code) == (True, TrustCode.TRUSTED)
    assert (status.status_list, status.status_list_index) == (7, 5)
    assert (status.revoked, status.suspended) == (False, True)
    assert status.entity_id == world.issuer_id
    _same_as_web3(check, named.checkCredential(
        world.issuer.address, leaves[1], 1, tree.inclusion_proof(1), tree.root).call())
    wrong = read(CredentialCheck, anchor.checkCredential(
        world.issuer.address, leaves[2], 1, tree.inclusion_proof(1), tree.root))
    assert wrong.included is False

    words = read(StatusWords, anchor.statusWords(world.issuer_id, 7, 0, 2))
    assert words == StatusWords(revoked=(1 << (255 - 3), 1 << (255 - (290 - 256))),
                                suspended=(1 << (255 - 5), 0))
    _same_as_web3(words, named.statusWords(world.issuer_id, 7, 0, 2).call())


def test_the_chain_reader_answers_with_the_models(world: World) -> None:
    """verifier.chain hands out the same models, read by hash or by number."""
    root = random_root()
    world.tx(world.issuer).transact(world.anchor.functions.anchor(root, 9))
    reader = JsonRpcChainReader(world.chain.w3)
    info = reader.anchor_of(world.anchor.address, world.issuer.address, root)
    by_web3 = read(AnchorInfo, world.anchor.functions.anchorOf(world.issuer.address, root))
    # Addresses stay as decoded: checksummed by web3's call, lower case by the reader's
    # own read by block hash (checksumming costs a keccak, which decoding does not spend).
    assert replace(info, key=info.key.lower()) == replace(by_web3, key=by_web3.key.lower())
    trust = reader.trusted_at(world.registry.address, world.issuer.address, info.anchored_at)
    assert (trust.code, trust.kind, trust.entity_id) == (
        TrustCode.TRUSTED, Kind.TRUSTED_ISSUER, world.issuer_id)
    entity = reader.entity(world.registry.address, world.issuer_id)
    entity_by_web3 = read(Entity, world.registry.functions.entity(world.issuer_id))
    assert replace(entity, accredited_by=entity.accredited_by.lower()) == replace(
        entity_by_web3, accredited_by=entity_by_web3.accredited_by.lower())


def test_signing_key_info_decodes_by_name(world: World) -> None:
    """signingKeyInfo as the model, the same as web3's by-name decoding; an unknown key is
    all zero but its id (``known`` false), not a revert."""
    key = Multikey.from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert key.multicodec == b"\x80\x24" + key.raw
    receipt = world.tx(world.body).transact(world.registry.functions.addSigningKey(
        world.issuer_id, key.multicodec, 0, 0))
    (event,) = world.registry.events.SigningKeyAdded().process_receipt(receipt)
    key_id = signing_key_id(key)
    assert bytes(event["args"]["keyId"]) == key_id == keccak(key.multicodec)
    info = read(SigningKeyInfo, world.registry.functions.signingKeyInfo(key_id))
    _same_as_web3(info, _named(world, "registry").functions.signingKeyInfo(key_id).call())
    assert info.known is True
    assert (info.key_id, info.entity_id, info.public_key) == (key_id, world.issuer_id,
                                                               key.multicodec)
    assert (info.valid_until, info.revoked_at) == (NEVER, 0)
    assert info.multikey() == key

    unknown = read(SigningKeyInfo, world.registry.functions.signingKeyInfo(b"\x07" * 32))
    assert unknown == SigningKeyInfo(key_id=b"\x07" * 32, entity_id=0, index=0, valid_from=0,
                                     valid_until=0, revoked_at=0, public_key=b"")
    assert unknown.known is False
    with pytest.raises(MultikeyError, match="is not registered"):
        unknown.multikey()


def test_enums_and_scope_bits_are_the_contracts(world: World) -> None:
    """Members and values as IIssuerRegistry.sol declares them (Solidity's order is the
    value), scope bits as the deployed registry's SCOPE_* constants."""
    source = (SOURCES / "interfaces" / "IIssuerRegistry.sol").read_text(encoding="utf-8")
    for enum in (Kind, Status, TrustCode):
        body = re.search(rf"enum {enum.__name__} \{{([^}}]*)\}}", source)
        assert body is not None, enum.__name__
        declared = [name.strip() for name in body.group(1).split(",") if name.strip()]
        assert [field_name(name).upper() for name in declared] == [m.name for m in enum]
        assert [m.value for m in enum] == list(range(len(declared)))
    registry = world.registry.functions
    for scope in Scope:
        assert getattr(registry, f"SCOPE_{scope.name}")().call() == scope
    assert registry.SCOPE_ALL().call() == ALL_SCOPES
    # The words the CLI, the API and credentials use.
    assert SCOPES == {"formal-degree": 1, "formal-non-degree": 2, "non-formal": 4}
    assert scope_names(Scope.FORMAL_DEGREE | Scope.NON_FORMAL) == ["formal-degree", "non-formal"]
    assert [kind.label for kind in Kind] == ["none", "body", "issuer"]
    assert [status.label for status in Status] == ["none", "active", "suspended", "revoked"]
    assert TrustCode.ACCREDITOR_NOT_ACTIVE.reason == "accreditor not active"


# ---------------------------------------------------------------------------- ABI drift


def _abi(artifact: str) -> list[dict[str, Any]]:
    return copy.deepcopy(load_artifact(artifact).abi)


def _components(abi: list[dict[str, Any]], function: str) -> list[dict[str, Any]]:
    (entry,) = [e for e in abi if e.get("type") == "function" and e.get("name") == function]
    outputs: list[dict[str, Any]] = entry["outputs"]
    return outputs[0]["components"] if len(outputs) == 1 else outputs


def _swap(components: list[dict[str, Any]], first: str, second: str) -> tuple[int, int]:
    names = [c["name"] for c in components]
    i, j = names.index(first), names.index(second)
    components[i], components[j] = components[j], components[i]
    return i, j


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_is_its_abi_struct(model: type) -> None:
    """The models and the shipped ABI name the same fields with fitting types, in the
    implementation's artifact and in the interface's: when a struct changes in the ABI and
    the model does not, this fails."""
    check_model(model)
    registry = model in (Entity, StatusChange, KeyInfo, SigningKeyInfo, Trust, KeyCheck,
                         Recognition, RecognitionAnswer)
    check_model(model, _abi("IIssuerRegistry" if registry else "ICredentialAnchor"))
    # Decoding goes by name, so a reordered struct still decodes right (see below); the
    # models keep the ABI's order all the same, so that reading one is reading the other.
    components = abi_components(model)
    assert [field_name(c["name"]) for c in components] == [f.name for f in fields(model)]


def test_a_reordered_struct_decodes_by_the_abis_order(world: World) -> None:
    """Swap two components of the same type in a copy of the real ABI, and the tuple the
    contract would then return: the model still holds each value under its name (a reader by
    position would have swapped them silently)."""
    wire = tuple(world.registry.functions.entity(world.issuer_id).call())
    expected = decode(Entity, wire)
    abi = _abi("IssuerRegistry")
    i, j = _swap(_components(abi, "entity"), "did", "metadataURI")
    reordered = list(wire)
    reordered[i], reordered[j] = reordered[j], reordered[i]
    assert reordered[i] != wire[i]  # the test would catch a positional reader
    assert decode(Entity, tuple(reordered), abi=abi) == expected
    # ... and the real order no longer fits that ABI: it is not decoded as if it did.
    assert decode(Entity, wire, abi=abi).did == expected.metadata_uri

    root = random_root()
    world.tx(world.issuer).transact(world.anchor.functions.anchor(root, 77))
    wire = tuple(world.anchor.functions.anchorOf(world.issuer.address, root).call())
    info = decode(AnchorInfo, wire)
    abi = _abi("CredentialAnchor")
    i, j = _swap(_components(abi, "anchorOf"), "anchoredAt", "treeSize")
    reordered = list(wire)
    reordered[i], reordered[j] = reordered[j], reordered[i]
    assert decode(AnchorInfo, tuple(reordered), abi=abi) == info
    assert info.tree_size == 77

    # The credential status inside checkCredential's answer: its list and index (two uint32s)
    # swapped in the ABI and on the wire.
    (leaf,) = credential_leaves([(9, 4)])
    world.tx(world.issuer).transact(world.anchor.functions.anchor(MerkleTree([leaf]).root, 1))
    wire = tuple(world.anchor.functions.checkCredential(
        world.issuer.address, leaf, 0, [], MerkleTree([leaf]).root).call()[0])
    status = decode(CredentialStatus, wire)
    assert (status.status_list, status.status_list_index) == (9, 4)
    abi = _abi("CredentialAnchor")
    (entry,) = [e for e in abi if e.get("name") == "checkCredential"]
    (output,) = [o for o in entry["outputs"] if o["name"] == "status"]
    i, j = _swap(output["components"], "statusList", "statusListIndex")
    reordered = list(wire)
    reordered[i], reordered[j] = reordered[j], reordered[i]
    assert decode(CredentialStatus, tuple(reordered), abi=abi) == status
    assert decode(CredentialStatus, wire, abi=abi).status_list == 4


@pytest.mark.parametrize(("change", "message"), [
    (lambda cs: cs[9].update(name="didString"), "fields not in the ABI: did; ABI components "
                                                 "not in the model: did_string"),
    (lambda cs: cs.append({"name": "nickname", "type": "string", "internalType": "string"}),
     "ABI components not in the model: nickname"),
    (lambda cs: cs.pop(12), "fields not in the ABI: revoked_from"),
    (lambda cs: cs[2].update(internalType="enum IIssuerRegistry.Status"),
     "Entity.kind is Kind, but the ABI declares enum IIssuerRegistry.Status"),
    (lambda cs: cs[4].update(type="string", internalType="string"),
     "Entity.scope is Scope, but the ABI declares string"),
    (lambda cs: cs[0].update(type="bytes32", internalType="bytes32"),
     "Entity.id is int, but the ABI declares bytes32"),
], ids=["renamed", "added", "removed", "enum retyped", "flag retyped", "int retyped"])
def test_a_struct_changed_in_the_abi_is_refused_until_the_model_follows(
        change: Any, message: str) -> None:
    abi = _abi("IssuerRegistry")
    components = _components(abi, "entity")
    assert [c["name"] for c in components][:13:3] == ["id", "status", "accreditedAt", "did",
                                                     "revokedFrom"]  # the indices used above
    change(components)
    with pytest.raises(ContractTypeError, match=re.escape(message)):
        check_model(Entity, abi)
    with pytest.raises(ContractTypeError):
        decode(Entity, tuple(range(len(components))), abi=abi)


def test_a_value_that_fits_no_model_is_refused() -> None:
    # A wire tuple in the ABI's order, with a trust code these contracts do not have.
    values = {"trusted": False, "code": 9, "entityId": 1, "failingEntityId": 0, "keyIndex": 0,
              "kind": Kind.TRUSTED_ISSUER, "scope": ALL_SCOPES}
    trust = tuple(values[c["name"]] for c in abi_components(Trust))
    with pytest.raises(ContractTypeError, match="9 is not a valid TrustCode"):
        decode(Trust, trust)
    with pytest.raises(ContractTypeError, match="expected 6 values"):
        decode(AnchorInfo, (True, 1, "0x" + "00" * 20, 0, 0))
    with pytest.raises(ContractTypeError, match="not a contract type"):
        check_model(dict)


def test_a_node_answering_a_code_the_contracts_lack_is_a_failed_read(anvil_world: World) -> None:
    """A node (or a proxy in front of it) that answers trustedAt with trust code 9 makes the
    read fail; the reader does not pass the number on as if it were a verdict."""
    world = anvil_world
    reader = JsonRpcChainReader(str(world.chain.rpc_url), retries=False)
    provider: Any = reader.w3.provider
    original = provider.make_request
    selector = "0x" + keccak(text="trustedAt(address,uint40)")[:4].hex()
    # Trust.code's word in the answer (every field of the struct is one static word).
    code_word = [c["name"] for c in abi_components(Trust)].index("code")

    def forged(method: str, params: Any) -> Any:
        answer = original(method, params)
        if method == "eth_call" and str(params[0].get("data", "")).startswith(selector):
            words = bytearray.fromhex(str(answer["result"])[2:])
            words[32 * code_word:32 * (code_word + 1)] = (9).to_bytes(32, "big")
            answer = {**answer, "result": "0x" + words.hex()}
        return answer

    provider.make_request = forged
    provider._request_func_cache = (None, None)  # web3 keeps the composed function
    try:
        with pytest.raises(ChainReadError, match="9 is not a valid TrustCode"):
            reader.trusted_at(world.registry.address, world.issuer.address, world.now())
    finally:
        provider.make_request = original
        provider._request_func_cache = (None, None)


# ------------------------------------------------------------------------- recognitions


def _recognition(**changes: Any) -> Recognition:
    base = Recognition(id=7, recogniser_id=2, subject_id=4, scope=Scope.NON_FORMAL,
                       valid_from=100, valid_until=200, recorded_at=150, withdrawn_at=0)
    return replace(base, **changes)


def test_recognitions_decode_by_name(world: World) -> None:
    """recognition(id) and recognisedAt answers as their models, on both chains."""
    registry = world.registry.functions
    world.tx(world.issuer).transact(registry.recognise(
        world.issuer_id, world.body_id, int(Scope.FORMAL_DEGREE | Scope.NON_FORMAL), 5, 0))
    rid = int(registry.recognitionCount().call())
    found = read(Recognition, registry.recognition(rid))
    assert (found.id, found.recogniser_id, found.subject_id, found.scope, found.valid_from,
            found.valid_until, found.withdrawn_at) == (
        rid, world.issuer_id, world.body_id, Scope.FORMAL_DEGREE | Scope.NON_FORMAL, 5,
        2**40 - 1, 0)
    assert found.recorded_at == world.now()
    answer = read(RecognitionAnswer, registry.recognisedAt(world.issuer_id, world.revoked_id,
                                                           int(Scope.NON_FORMAL), 5))
    assert answer == RecognitionAnswer(recognised=True, recognition_id=rid,
                                       recogniser_id=world.issuer_id, subject_id=world.body_id)
    assert answer.path(world.issuer_id, world.revoked_id) is RecognitionPath.THROUGH_BODY


def test_recognition_covers_as_the_contract_does() -> None:
    """The registry's rule: a kind in the scope, validFrom <= when < validUntil, and before
    withdrawnAt when withdrawn."""
    open_ended = _recognition(scope=Scope.FORMAL_DEGREE | Scope.NON_FORMAL)
    assert open_ended.covers(Scope.NON_FORMAL, 100)
    assert open_ended.covers(Scope.FORMAL_DEGREE, 199)
    assert not open_ended.covers(Scope.FORMAL_NON_DEGREE, 150)  # a kind not in the scope
    assert not open_ended.covers(Scope.NON_FORMAL, 99)  # before validFrom
    assert not open_ended.covers(Scope.NON_FORMAL, 200)  # validUntil is exclusive
    withdrawn = _recognition(withdrawn_at=160)
    assert withdrawn.withdrawn
    assert withdrawn.covers(Scope.NON_FORMAL, 159)
    assert not withdrawn.covers(Scope.NON_FORMAL, 160)
    assert not _recognition().withdrawn


@pytest.mark.parametrize("kind", [0, 3, 7, 8, True, "non-formal", Scope(0), ALL_SCOPES])
def test_recognition_covers_one_kind_at_a_time(kind: Any) -> None:
    with pytest.raises(ValueError, match="exactly one scope bit"):
        _recognition().covers(kind, 150)


def test_recognition_to_dict_is_camel_case_with_nulls_for_open_and_not_withdrawn() -> None:
    assert _recognition(scope=Scope.FORMAL_DEGREE | Scope.FORMAL_NON_DEGREE,
                        valid_until=2**40 - 1).to_dict() == {
        "id": 7, "recogniserId": 2, "subjectId": 4,
        "scope": ["formal-degree", "formal-non-degree"], "validFrom": 100, "validUntil": None,
        "recordedAt": 150, "withdrawnAt": None}
    assert _recognition(withdrawn_at=160).to_dict()["withdrawnAt"] == 160
    assert _recognition().to_dict()["validUntil"] == 200


def test_recognition_answer_paths() -> None:
    """self (id 0), direct (the pair asked about), through a body (either side is a body
    above), none (not recognised)."""
    assert RecognitionAnswer(True, 0, 3, 3).path(3, 3) is RecognitionPath.SELF
    assert RecognitionAnswer(True, 9, 3, 5).path(3, 5) is RecognitionPath.DIRECT
    assert RecognitionAnswer(True, 9, 1, 5).path(3, 5) is RecognitionPath.THROUGH_BODY
    assert RecognitionAnswer(True, 9, 3, 1).path(3, 5) is RecognitionPath.THROUGH_BODY
    assert RecognitionAnswer(True, 9, 1, 2).path(3, 5) is RecognitionPath.THROUGH_BODY
    assert RecognitionAnswer(False, 0, 0, 0).path(3, 5) is RecognitionPath.NONE
    assert RecognitionAnswer(False, 0, 0, 0).path(3, 3) is RecognitionPath.NONE
    assert [path.value for path in RecognitionPath] == ["self", "direct", "through-body",
                                                        "none"]
