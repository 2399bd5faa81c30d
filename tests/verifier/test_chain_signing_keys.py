"""verifier.chain's signing-key reads (signing_key, signing_key_trusted_at,
entity_signing_keys) against the deployed registry, on the in-process chain and on anvil:
the registry's answers as models, pinned to one head and cached with it, and refusals of
answers and arguments that cannot be right."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from eth_utils.crypto import keccak

from anchor_service.chain import add_signing_key, revoke_signing_key
from testkit.world import World
from verifier.chain import MAX_SIGNING_KEYS_PER_ENTITY, JsonRpcChainReader
from verifier.contract_types import SigningKeyInfo, TrustCode, read, signing_key_id
from verifier.errors import ChainReadError
from verifier.multikey import Multikey


def _keys(world: World) -> tuple[Multikey, Multikey, bytes, bytes]:
    first = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    second = Multikey.from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    ids = [add_signing_key(world.tx(world.body), world.registry, entity_id=world.issuer_id,
                           key=key) for key in (first, second)]
    return first, second, ids[0], ids[1]


def test_the_reader_answers_what_the_registry_holds(world: World) -> None:
    first, second, first_id, second_id = _keys(world)
    registry = world.registry.address
    reader = JsonRpcChainReader(world.chain.w3, head_max_age=0)
    info = reader.signing_key(registry, second_id)
    assert info == read(SigningKeyInfo, world.registry.functions.signingKeyInfo(second_id))
    assert (info.known, info.entity_id, info.public_key) == (True, world.issuer_id,
                                                             second.multicodec)
    assert info.multikey() == second
    unknown = reader.signing_key(registry, b"\x01" * 32)
    assert (unknown.known, unknown.key_id, unknown.public_key) == (False, b"\x01" * 32, b"")

    keys = reader.entity_signing_keys(registry, world.issuer_id)
    assert [key.key_id for key in keys] == [first_id, second_id]
    assert [key.multikey() for key in keys] == [first, second]
    assert reader.entity_signing_keys(registry, world.body_id) == ()
    bound = world.registry.functions.MAX_SIGNING_KEYS_PER_ENTITY().call()
    assert bound == MAX_SIGNING_KEYS_PER_ENTITY

    world.chain.increase_time(100)
    compromise = world.now() - 50
    revoke_signing_key(world.tx(world.body), world.registry, key_id=first_id,
                       effective_from=compromise)
    before = reader.signing_key_trusted_at(registry, first_id, compromise - 1)
    after = reader.signing_key_trusted_at(registry, first_id, compromise)
    assert (before.trusted, before.entity_id) == (True, world.issuer_id)
    assert (after.trusted, after.code) == (False, TrustCode.KEY_REVOKED)
    assert reader.signing_key_trusted_at(registry, b"\x01" * 32, 1).code is \
        TrustCode.UNKNOWN_KEY
    assert reader.entity_signing_keys(registry, world.issuer_id)[0].revoked_at == compromise
    assert signing_key_id(first) == first_id


def test_answers_are_of_one_head_and_cached_with_it(world: World) -> None:
    _, _, first_id, _ = _keys(world)
    registry = world.registry.address
    reader = JsonRpcChainReader(world.chain.w3, head_max_age=0)
    pinned = reader.at_head()
    now = world.now()
    assert pinned.signing_key_trusted_at(registry, first_id, now + 5).trusted is True
    assert pinned.signing_key(registry, first_id).revoked_at == 0
    assert len(pinned.entity_signing_keys(registry, world.issuer_id)) == 2
    effective = revoke_signing_key(world.tx(world.body), world.registry, key_id=first_id)
    assert effective <= now + 5
    # The pinned reader keeps telling its head's state; a fresh one sees the revocation.
    assert pinned.signing_key_trusted_at(registry, first_id, now + 5).trusted is True
    assert pinned.signing_key(registry, first_id).revoked_at == 0
    assert pinned.entity_signing_keys(registry, world.issuer_id)[0].revoked_at == 0
    assert reader.signing_key_trusted_at(registry, first_id, now + 5).code is \
        TrustCode.KEY_REVOKED
    assert reader.signing_key(registry, first_id).revoked_at == effective
    assert reader.entity_signing_keys(registry, world.issuer_id)[0].revoked_at == effective


@pytest.mark.parametrize("key_id", [b"", b"\x01" * 31, b"\x01" * 33, "0x" + "01" * 32])
def test_a_key_id_that_is_not_32_bytes_is_refused_before_any_request(
        world: World, key_id: Any) -> None:
    reader = JsonRpcChainReader(world.chain.w3)
    with pytest.raises(ChainReadError, match="a signing key id is 32 bytes"):
        reader.signing_key(world.registry.address, key_id)
    with pytest.raises(ChainReadError, match="a signing key id is 32 bytes"):
        reader.signing_key_trusted_at(world.registry.address, key_id, 1)


def test_an_unknown_entity_is_a_failed_read(world: World) -> None:
    reader = JsonRpcChainReader(world.chain.w3)
    with pytest.raises(ChainReadError, match="signing keys of entity 999"):
        reader.entity_signing_keys(world.registry.address, 999)


def test_a_node_answering_another_entitys_keys_is_a_failed_read(anvil_world: World) -> None:
    """A node (or a proxy) that answers the issuer's key list with another entity's makes the
    read fail: the DID document of one issuer never lists another's keys."""
    world = anvil_world
    body_key = Multikey.from_public_key(ed25519.Ed25519PrivateKey.generate().public_key())
    add_signing_key(world.tx(world.admin), world.registry, entity_id=world.body_id,
                    key=body_key)
    reader = JsonRpcChainReader(str(world.chain.rpc_url), retries=False)
    provider: Any = reader.w3.provider
    original = provider.make_request
    selector = "0x" + keccak(text="entitySigningKeyInfos(uint64)")[:4].hex()
    asked, answered = world.issuer_id.to_bytes(32, "big").hex(), \
        world.body_id.to_bytes(32, "big").hex()

    def forged(method: str, params: Any) -> Any:
        if method == "eth_call" and str(params[0].get("data", "")).startswith(selector):
            call = dict(params[0])
            call["data"] = str(call["data"]).replace(asked, answered)
            params = [call, *params[1:]]
        return original(method, params)

    provider.make_request = forged
    provider._request_func_cache = (None, None)  # web3 keeps the composed function
    try:
        with pytest.raises(ChainReadError, match="keys of another entity"):
            reader.entity_signing_keys(world.registry.address, world.issuer_id)
    finally:
        provider.make_request = original
        provider._request_func_cache = (None, None)
