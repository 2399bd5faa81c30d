"""Benchmark of reading published status lists in the verifier. Prints figures; asserts nothing.

    python scripts/bench_verify_status_list.py

On anvil, the world's issuer revokes 10,000 entries of its list 0, spread at random (seeded),
in one transaction; that
list (131,072 entries, GZIP, multibase, eddsa-jcs-2022) is rendered from the chain and signed
here, as the service publishes it. Then:

1. the standard algorithm from the list alone (``verifier.status_list.check_status``:
   checks, ``encodedList`` decoded, the bit read), per entry checked;
2. the list compared with the chain (``verifier.list_check.compare_lists``: the proof, the
   signing key's registration and trust, the evidence block, one ``statusWords`` call of the
   whole list at that block, the comparison), with a cold reader each time and with a warm
   one (its head's cache holds the chain's list)."""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from localchain import AnvilChain
from testkit.world import build_world, issuer_signing_key, register_issuer_signing_key
from verifier.bitstring import encode_list, status_list_url, words_to_bitstring
from verifier.chain import JsonRpcChainReader
from verifier.contract_types import (
    STATUS_LIST_SIZE,
    STATUS_LIST_WORDS,
    Entity,
    StatusPurpose,
    encode_status_indices,
    read,
)
from verifier.data_integrity import add_proof
from verifier.did import verification_method_id
from verifier.list_check import compare_lists
from verifier.multikey import Multikey
from verifier.status_list import StatusOutcome, check_status

DID = "did:web:uni-a.example"
REVOKED = 10_000
# Spread over the list, so that the encoded list is as large as a real one of that many.
ENTRIES = sorted(random.Random(13).sample(range(STATUS_LIST_SIZE), REVOKED))  # noqa: S311


def _per_call(work: Callable[[], object], rounds: int) -> float:
    """Median seconds per call over three passes of ``rounds`` calls."""
    passes = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            work()
        passes.append((time.perf_counter() - started) / rounds)
    return statistics.median(passes)


def main(argv: list[str] | None = None) -> int:
    # No options: the sizes are the figures'. --help says what the script does.
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    with AnvilChain.start() as chain:
        world = build_world(chain)
        register_issuer_signing_key(world)
        world.tx(world.issuer).transact(world.anchor.functions.revoke(
            world.issuer_id, 0, encode_status_indices(ENTRIES), 1))
        number = chain.w3.eth.block_number
        block = chain.w3.eth.get_block(number)
        revoked, _ = world.anchor.functions.statusWords(world.issuer_id, 0, 0,
                                                        STATUS_LIST_WORDS).call()
        url = status_list_url(DID, "uni-a", 0, StatusPurpose.REVOCATION)
        key = issuer_signing_key(DID)
        listed = add_proof({
            "@context": ["https://www.w3.org/ns/credentials/v2"], "id": url,
            "type": ["VerifiableCredential", "BitstringStatusListCredential"], "issuer": DID,
            # Signed at its block's time, as a service rendering that block at once signs it
            # (a list whose block is after its validFrom does not agree with the chain).
            "validFrom": datetime.fromtimestamp(int(block["timestamp"]), UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "credentialSubject": {"id": f"{url}#list", "type": "BitstringStatusList",
                                  "statusPurpose": "revocation",
                                  "encodedList": encode_list(words_to_bitstring(revoked))},
            "evidence": [{"type": ["ChainState"], "chainId": chain.chain_id,
                          "contract": world.anchor.address, "blockNumber": number,
                          "blockHash": "0x" + bytes(block["hash"]).hex()}],
        }, suite="eddsa-jcs-2022", private_key=key, verification_method=verification_method_id(
            DID, Multikey.from_public_key(key.public_key())), created="2026-01-01T00:00:00Z")
        entity = read(Entity, world.registry.functions.entity(world.issuer_id))
        entry = {"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
                 "statusListIndex": str(ENTRIES[0]), "statusListCredential": url}
        if check_status(entry, listed, at=int(time.time())).outcome is not StatusOutcome.SET:
            raise SystemExit("the list does not read as rendered: the benchmark is broken")
        alone = _per_call(lambda: check_status(entry, listed, at=int(time.time())), 200)
        print(f"list of 131,072 entries, {REVOKED:,} revoked; encodedList "
              f"{len(listed['credentialSubject']['encodedList']):,} characters")
        print(f"1. from the list alone (check_status: decode and read one entry): "
              f"{alone * 1e3:.2f} ms per entry checked")

        def compare(reader: JsonRpcChainReader) -> None:
            outcome = compare_lists([listed], reader=reader.at_head(),
                                    registry=world.registry.address,
                                    anchor=world.anchor.address, chain_id=chain.chain_id,
                                    entity=entity, status_list=0)
            if not outcome.passed:
                raise SystemExit(f"the list does not agree: {outcome.detail}")

        cold = _per_call(lambda: compare(JsonRpcChainReader(str(chain.rpc_url))), 20)
        warm_reader = JsonRpcChainReader(str(chain.rpc_url), head_max_age=3600)
        compare(warm_reader)
        warm = _per_call(lambda: compare(warm_reader), 200)
        print(f"2. compared with the chain (proof, key, block, one statusWords call of "
              f"{STATUS_LIST_WORDS} words of each purpose): {cold * 1e3:.1f} ms with a cold "
              f"reader, {warm * 1e3:.2f} ms with a warm one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
