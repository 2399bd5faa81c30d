"""Published status lists for the verifier's tests, built here from the chain's state (as the
service renders them, independently of the verifier's own chain reader) and signed with the
world's issuer's test key: a ``BitstringStatusListCredential`` whose evidence names the block
it was read at."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from testkit.world import World, issuer_signing_key
from tests.verifier.wallet import sign
from verifier.bitstring import encode_list, status_list_url, words_to_bitstring
from verifier.contract_types import STATUS_LIST_WORDS, StatusPurpose

__all__ = ["DID", "flip", "published_list", "resign"]

DID = "did:web:uni-a.example"


def published_list(world: World, status_list: int, purpose: StatusPurpose, *,
                   block: int | None = None, bits: bytes | None = None,
                   evidence: dict[str, Any] | None = None,
                   valid_from: int | None = None) -> dict[str, Any]:
    """The world's issuer's list ``status_list`` of ``purpose`` as the chain held it at
    ``block`` (default: the latest), signed at ``valid_from`` (Unix seconds; default: the
    block's own time, as a service rendering that block at once would sign it), valid for
    five minutes; ``bits`` replaces the chain's bitstring (a lying list, signed all the same)
    and ``evidence`` entries replace those of the block."""
    number = world.chain.w3.eth.block_number if block is None else block
    header = world.chain.w3.eth.get_block(number)
    revoked, suspended = world.anchor.functions.statusWords(
        world.issuer_id, status_list, 0, STATUS_LIST_WORDS).call(block_identifier=number)
    chain_bits = words_to_bitstring(revoked if purpose is StatusPurpose.REVOCATION
                                    else suspended)
    url = status_list_url(DID, "uni-a", status_list, purpose)
    state = {"type": ["ChainState"], "chainId": world.chain.chain_id,
             "contract": world.anchor.address, "blockNumber": number,
             "blockHash": "0x" + bytes(header["hash"]).hex(), **(evidence or {})}
    signed = int(header["timestamp"]) if valid_from is None else valid_from
    return sign({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": DID,
        "validFrom": _time(signed),
        "validUntil": _time(signed + 300),
        "credentialSubject": {"id": f"{url}#list", "type": "BitstringStatusList",
                              "statusPurpose": purpose.value,
                              "encodedList": encode_list(chain_bits if bits is None else bits)},
        "evidence": [state],
    }, private_key=issuer_signing_key(DID), did=DID)


def _time(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def flip(bitstring: bytes, index: int) -> bytes:
    """``bitstring`` with entry ``index`` (entry 0 = most significant bit of byte 0) flipped."""
    changed = bytearray(bitstring)
    changed[index // 8] ^= 0x80 >> (index % 8)
    return bytes(changed)


def resign(list_credential: dict[str, Any]) -> dict[str, Any]:
    """``list_credential`` signed again (after a change) with the issuer's key."""
    unsigned = {name: value for name, value in list_credential.items() if name != "proof"}
    return sign(unsigned, private_key=issuer_signing_key(DID), did=DID)
