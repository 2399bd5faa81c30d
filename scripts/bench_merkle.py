"""Benchmark of verifier.merkle on this machine. Prints figures; asserts nothing.

    python scripts/bench_merkle.py                 # N = 1,000,000, pymerkle at 100,000
    python scripts/bench_merkle.py -n 100000 --pymerkle-n 20000 --repeat 3

Figures, each measured in this one run:
  (a) tree build time / time of a bare loop making the same number (2N - 1) of
      hashlib.sha256 calls: the floor on this machine (target <= 1.3)
  (b) time to produce all N inclusion proofs, and its ratio to the build time (target <= 3)
  (c) inclusion verifications per second
  (d) build time of pymerkle (an RFC 9162 implementation) / ours on the same input
      (target >= 5)
  (e) peak memory of a fresh process that holds N leaf inputs and builds the tree
      (target < 300 MB at N = 1,000,000)
Timings are the minimum of --repeat runs (interleaved, so drift hits both sides alike).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable

from verifier.merkle import MerkleTree, verify_inclusion

LEAF_INPUT_SIZE = 48  # a 16-byte salt and a 32-byte credential digest


def _leaf_inputs(n: int) -> list[bytes]:
    # Deterministic and cheap: salt-and-digest-sized inputs from a counter.
    seed = hashlib.sha256(b"bench").digest()
    return [seed[:16] + i.to_bytes(32, "big") for i in range(n)]


def _bare_sha256_loop(calls: int) -> None:
    data = bytes(65)
    sha256 = hashlib.sha256
    for _ in range(calls):
        sha256(data).digest()


def _min_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _vm_hwm_mb() -> float:
    """This process's peak resident set size, in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def _peak_rss_mb(n: int) -> tuple[float, float]:
    """Run a fresh interpreter that makes N inputs and builds the tree; return its peak RSS
    and the bytes the tree itself keeps, both in MB."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    code = (
        "from scripts.bench_merkle import _leaf_inputs, _vm_hwm_mb\n"
        "from verifier.merkle import MerkleTree\n"
        f"inputs = _leaf_inputs({n})\n"
        "tree = MerkleTree(inputs)\n"
        "kept = sum(len(level) for level in tree._levels)\n"
        "print(_vm_hwm_mb(), kept / 2**20)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True, timeout=600).stdout.split()
    return float(out[0]), float(out[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="leaves (default 1,000,000)")
    parser.add_argument("--pymerkle-n", type=int, default=100_000,
                        help="leaves for the pymerkle comparison (default 100,000)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per timing (default 7)")
    parser.add_argument("--verify-sample", type=int, default=100_000,
                        help="inclusion proofs to verify for (c) (default 100,000)")
    args = parser.parse_args(argv)
    n, repeat = args.n, args.repeat

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, N = {n:,}, "
          f"leaf input {LEAF_INPUT_SIZE} bytes, best of {repeat}")
    inputs = _leaf_inputs(n)

    build_times, bare_times = [], []
    for _ in range(repeat):  # interleaved so that machine drift affects both alike
        bare_times.append(_min_time(lambda: _bare_sha256_loop(2 * n - 1), 1))
        build_times.append(_min_time(lambda: MerkleTree(inputs), 1))
    build, bare = min(build_times), min(bare_times)
    print(f"(a) build {build:.3f} s / bare loop of {2 * n - 1:,} sha256 calls {bare:.3f} s "
          f"= {build / bare:.3f}  (target <= 1.3)")

    tree = MerkleTree(inputs)
    all_proofs = _min_time(lambda: sum(1 for _ in tree.inclusion_proofs()), repeat)
    print(f"(b) all {n:,} inclusion proofs {all_proofs:.3f} s = {all_proofs / build:.2f} x build "
          f"(target <= 3)")
    sample = min(n, 100_000)
    step = max(1, n // sample)
    indices = range(0, n, step)
    def each_index() -> None:
        for i in indices:
            tree.inclusion_proof(i)

    one_by_one = _min_time(each_index, repeat)
    print(f"    random access: {one_by_one / len(indices) * 1e6:.2f} us per inclusion_proof(i)")

    sample_n = min(n, args.verify_sample)
    checks = [(inputs[i], i, tree.inclusion_proof(i)) for i in range(0, n, max(1, n // sample_n))]
    root, size = tree.root, tree.size

    def verify_all() -> None:
        for leaf, index, path in checks:
            verify_inclusion(leaf, index, size, path, root)

    verify = _min_time(verify_all, repeat)
    print(f"(c) {len(checks) / verify:,.0f} inclusion verifications per second "
          f"({len(checks):,} proofs of depth ~{len(checks[0][2])})")

    try:
        from pymerkle import InmemoryTree  # noqa: PLC0415 - optional, test extra
    except ImportError:
        print("(d) pymerkle not installed: pip install pymerkle")
    else:
        pn = min(args.pymerkle_n, n)
        subset = inputs[:pn]

        def theirs() -> bytes:
            tree = InmemoryTree.init_from_entries(subset, algorithm="sha256")
            root: bytes = tree.get_root()
            return root

        if theirs() != MerkleTree(subset).root:
            print("(d) pymerkle disagrees on the root: not comparable", file=sys.stderr)
            return 1
        their_time = _min_time(theirs, max(1, repeat // 2))
        our_time = _min_time(lambda: MerkleTree(subset), repeat)
        print(f"(d) N = {pn:,}: pymerkle {their_time:.3f} s, ours {our_time:.3f} s "
              f"= {their_time / our_time:.1f} x faster (target >= 5); same root")

    rss, kept = _peak_rss_mb(n)
    print(f"(e) peak RSS of a fresh process holding {n:,} inputs and the tree: {rss:.0f} MB "
          f"(the tree keeps {kept:.0f} MB of hashes; target < 300 MB)")
    print(f"    (this benchmark process itself peaked at {_vm_hwm_mb():.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
