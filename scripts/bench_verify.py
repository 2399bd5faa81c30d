"""Benchmark of the verifier: receipts verified per second, offline and against anvil.
Prints figures; asserts nothing.

    python scripts/bench_verify.py            # 10,000 receipts in 10 batches

The issuing side (anvil, contracts, store, pipeline) signs the credentials (eddsa-jcs-2022,
its signing key registered on chain) and anchors them; the verifying side runs in a process
of its own that holds only the verifier and the bundles, as a verifier would. Each offline
figure is the median of three passes; each is given in wall-clock time and in the CPU time
of the process (the machine may be shared: CPU time is what the verifier costs).

1. offline, one core: every check that needs no chain (digest, inclusion, trusted deployment,
   the issuer's signature, validity) on parsed bundles, before and after gc.freeze() (which
   verify-credential calls once its imports are loaded); and from each bundle's text,
   strictly parsed;
2. offline, two cores: the same from each bundle's text, in two processes (target >=
   10,000/s with the signature check);
3. against anvil: every check (the signing key's registration and trust included), for
   10,000 receipts spread over 10 batches, with one reader whose per-batch and per-issuer
   caches start cold (target >= 2,000/s)."""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.samples import make_credential
from anchor_service.store import NewCredential, Store
from localchain import AnvilChain
from testkit.world import build_world, issuer_signing_key, register_issuer_signing_key
from verifier.chain import JsonRpcChainReader
from verifier.credential import canonicalize, credential_digest, new_salt
from verifier.data_integrity import add_proof
from verifier.did import verification_method_id
from verifier.multikey import Multikey
from verifier.receipt import Bundle
from verifier.trust import TrustConfig
from verifier.verify import verify, verify_bundle_text

ISSUER = "did:web:uni-a.example"
SIGNING_KEY = issuer_signing_key(ISSUER)  # registered on chain by register_issuer_signing_key
VERIFICATION_METHOD = verification_method_id(
    ISSUER, Multikey.from_public_key(SIGNING_KEY.public_key()))


def _credential(n: int) -> dict[str, object]:
    """Credential ``n``, signed by the world's issuer with its registered key."""
    return add_proof(make_credential(n, id_prefix="urn:bench", subject={"id": f"urn:l:{n}"},
                                     validFrom="2026-01-01T00:00:00Z"),
                     suite="eddsa-jcs-2022", private_key=SIGNING_KEY,
                     verification_method=VERIFICATION_METHOD, created="2026-01-01T00:00:00Z")


def _verify_half(args: tuple[list[str], Path, bool]) -> tuple[int, float]:
    """Verify bundles offline in a worker process, parsed beforehand or (``from_text``) from
    their text: how many passed the offline checks, and the CPU seconds it took."""
    texts, trust_file, from_text = args
    trust = TrustConfig.load(trust_file)
    bundles = [] if from_text else [Bundle.from_json(text) for text in texts]
    gc.freeze()
    started = time.process_time()
    if from_text:
        passed = sum(verify_bundle_text(t, trust=trust, reader=None).offline_checks_passed
                     for t in texts)
    else:
        passed = sum(verify(b.credential, b.receipt, trust=trust,
                            reader=None).offline_checks_passed for b in bundles)
    return passed, time.process_time() - started


def verifier_process(bundles_file: Path, trust_file: Path, rpc_url: str) -> None:
    """Measure verification in this process, which holds only the verifier and the bundles.
    Each figure is the median of three passes."""
    texts = bundles_file.read_text(encoding="utf-8").splitlines()
    trust = TrustConfig.load(trust_file)
    reader = JsonRpcChainReader(rpc_url)
    n = len(texts)

    cpu: dict[str, float] = {}

    def rate(work: Callable[[], object], name: str = "") -> float:
        passes, cpu_passes = [], []
        for _ in range(3):
            started, started_cpu = time.perf_counter(), time.process_time()
            result = work()
            passes.append(n / (time.perf_counter() - started))
            cpu_passes.append(n / max(time.process_time() - started_cpu, 1e-9))
            del result
        cpu[name] = statistics.median(cpu_passes)
        return statistics.median(passes)

    parsing = rate(lambda: [Bundle.from_json(text) for text in texts])
    bundles = [Bundle.from_json(text) for text in texts]
    offline = [verify(b.credential, b.receipt, trust=trust, reader=None) for b in bundles]
    if not all(r.offline_checks_passed and r.check("signature_valid").status.value == "passed"
               for r in offline):
        raise SystemExit("offline verification failed: the benchmark is broken")
    del offline
    figures: dict[str, float] = {}
    for when in ("before", "after"):
        if when == "after":  # what verify-credential does once its imports are loaded
            gc.collect()
            gc.freeze()
        figures[when] = rate(lambda: [verify(b.credential, b.receipt, trust=trust, reader=None)
                                      for b in bundles], when)
        figures[when + " text"] = rate(lambda: [verify_bundle_text(t, trust=trust, reader=None)
                                                for t in texts], when + " text")
    print(f"1. offline, one core, signature checked (eddsa-jcs-2022): {figures['after']:,.0f} "
          f"receipts/s verified ({cpu['after']:,.0f}/s of CPU time; "
          f"{figures['before']:,.0f}/s before gc.freeze())\n"
          f"   from each bundle's text, strictly parsed: {figures['after text']:,.0f}/s "
          f"({cpu['after text']:,.0f}/s of CPU time; {figures['before text']:,.0f}/s before "
          f"gc.freeze()); parsing alone {parsing:,.0f}/s")
    two: dict[bool, tuple[float, float]] = {}
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for from_text in (False, True):
            halves = [(texts[:n // 2], trust_file, from_text),
                      (texts[n // 2:], trust_file, from_text)]
            pool.map(_verify_half, halves)  # warm: imports and forks done before the clock
            started = time.perf_counter()
            results = pool.map(_verify_half, halves)
            wall = time.perf_counter() - started
            if sum(passed for passed, _ in results) != n:
                raise SystemExit("offline verification in two processes failed")
            two[from_text] = (n / wall, sum(len(half[0]) / seconds for half, (_, seconds)
                                            in zip(halves, results, strict=True)))
    print(f"2. offline, two cores (two processes), signature checked: {two[False][0]:,.0f} "
          f"receipts/s wall-clock ({two[False][1]:,.0f}/s of CPU time, the sum of both "
          f"processes' rates); target >= 10,000/s\n"
          f"   from each bundle's text: {two[True][0]:,.0f}/s wall-clock "
          f"({two[True][1]:,.0f}/s of CPU time)")
    started = time.perf_counter()
    online = [verify(b.credential, b.receipt, trust=trust, reader=reader) for b in bundles]
    online_rate = n / (time.perf_counter() - started)
    valid = sum(r.valid for r in online)
    print(f"3. against anvil: {online_rate:,.0f} receipts/s verified with every check, one "
          f"reader, cold caches ({valid:,} of {n:,} valid); target >= 2,000/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10_000, help="receipts (default 10,000)")
    parser.add_argument("--batches", type=int, default=10, help="batches (default 10)")
    parser.add_argument("--verifier-process", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trust", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rpc-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.verifier_process:
        verifier_process(args.verifier_process, args.trust, args.rpc_url)
        return 0
    with tempfile.TemporaryDirectory() as tmp, AnvilChain.start() as chain:
        world = build_world(chain)
        register_issuer_signing_key(world)
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
        print(f"{args.n:,} receipts in {len(store.batches(limit=1000))} batches, anvil at "
              f"{chain.rpc_url}")
        bundles_file = Path(tmp) / "bundles.jsonl"
        bundles_file.write_text("".join(b.to_json() + "\n" for b in bundles), encoding="utf-8")
        trust_file = Path(tmp) / "trust.json"
        trust_file.write_text(json.dumps({"deployments": [{
            "chainId": chain.chain_id, "anchor": world.anchor.address,
            "registry": world.registry.address}]}), encoding="utf-8")
        # The verifier runs in a process of its own, as a verifier would: without the issuing
        # side's objects (service, store, test world) in its heap.
        subprocess.run([sys.executable, __file__, "--verifier-process", str(bundles_file),
                        "--trust", str(trust_file), "--rpc-url", str(chain.rpc_url)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
