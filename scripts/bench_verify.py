"""Benchmark of the verifier: receipts verified per second, offline and against anvil.
Prints figures; asserts nothing.

    python scripts/bench_verify.py            # 10,000 receipts in 10 batches

1. offline, one core: every check that needs no chain (digest, inclusion, trusted deployment,
   validity), on bundles already parsed, and including strict parsing of the bundle text
   (target >= 20,000/s);
2. against anvil: every check, for 10,000 receipts spread over 10 batches, with one reader
   whose per-batch and per-issuer caches are shared (target >= 2,000/s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the contract test world: deploy, accredit, keys

from anchor_service.pipeline import BatchPolicy, Pipeline  # noqa: E402
from anchor_service.receipts import Receipts  # noqa: E402
from anchor_service.store import NewCredential, Store  # noqa: E402
from localchain import AnvilChain  # noqa: E402
from tests.contracts.conftest import build_world  # noqa: E402
from verifier.chain import JsonRpcChainReader  # noqa: E402
from verifier.credential import canonicalize, credential_digest, new_salt  # noqa: E402
from verifier.trust import TrustConfig, TrustedDeployment  # noqa: E402
from verifier.verify import verify, verify_bundle_text  # noqa: E402


def _credential(n: int) -> dict[str, object]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"], "id": f"urn:bench:{n}",
        "type": ["VerifiableCredential"], "issuer": {"id": "did:web:uni-a.example"},
        "validFrom": "2026-01-01T00:00:00Z", "credentialSubject": {"id": f"urn:l:{n}"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="receipts (default 10,000)")
    parser.add_argument("--batches", type=int, default=10, help="batches (default 10)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, AnvilChain.start() as chain:
        world = build_world(chain)
        store = Store(Path(tmp) / "db.sqlite3")
        store.add_issuer("uni-a", entity_id=world.issuer_id, key_address=world.issuer.address,
                         did="did:web:uni-a.example")
        credentials = [_credential(n) for n in range(args.n)]
        accepted = store.accept(1, [NewCredential(credential_digest(c), new_salt(),
                                                  canonicalize(c)) for c in credentials])
        pipeline = Pipeline(store, chain.w3, world.deployment, {1: world.issuer},
                            BatchPolicy(max_size=args.n // args.batches, max_age=0))
        while pipeline.run_once() or store.pending(1)[0] or any(
                b.state.value != "anchored" for b in store.batches(limit=1000)):
            pass
        receipts = Receipts(store, chain_id=chain.chain_id, contract=world.anchor.address)
        bundles = [receipts.bundle(a.public_id) for a in accepted]
        texts = [b.to_json() for b in bundles]
        trust = TrustConfig(deployments=(TrustedDeployment(
            chain_id=chain.chain_id, anchor=world.anchor.address,
            registry=world.registry.address),))
        print(f"{args.n:,} receipts in {len(store.batches(limit=1000))} batches, anvil at "
              f"{chain.rpc_url}")

        started = time.perf_counter()
        offline = [verify(b.credential, b.receipt, trust=trust, reader=None) for b in bundles]
        rate = args.n / (time.perf_counter() - started)
        if not all(r.check("merkle_inclusion").status.value == "passed" for r in offline):
            raise SystemExit("offline verification failed: the benchmark is broken")
        started = time.perf_counter()
        for text in texts:
            verify_bundle_text(text, trust=trust, reader=None)
        with_parsing = args.n / (time.perf_counter() - started)
        print(f"1. offline: {rate:,.0f} receipts/s verified ({with_parsing:,.0f}/s including "
              "strict parsing of each bundle's text); target >= 20,000/s")

        reader = JsonRpcChainReader(chain.w3)
        started = time.perf_counter()
        online = [verify(b.credential, b.receipt, trust=trust, reader=reader) for b in bundles]
        rate = args.n / (time.perf_counter() - started)
        valid = sum(r.valid for r in online)
        print(f"2. against anvil: {rate:,.0f} receipts/s verified with every check "
              f"({valid:,} of {args.n:,} valid); target >= 2,000/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
