"""CPU and time per head request of the chain reader, on a local anvil node: the reader made
from a URL (its head requests on its own kept-alive connection, plain http.client) beside a
reader given a Web3 (the same raw JSON-RPC request through web3's HTTPProvider and requests)
and web3's formatted ``get_block("latest")``. Each figure is the median of three passes of
2,000 requests, taken in one run so that their ratio holds on a busy machine.

    .venv/bin/python scripts/bench_head_request.py [--requests N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from web3 import Web3

from localchain import AnvilChain
from verifier.chain import JsonRpcChainReader


def _per_request(work: Callable[[], object], requests: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per call of ``work``: medians of three passes."""
    cpu, wall = [], []
    for _ in range(3):
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            work()
        cpu.append((time.process_time() - started_cpu) / requests)
        wall.append((time.perf_counter() - started) / requests)
    return statistics.median(cpu), statistics.median(wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with AnvilChain.start() as chain:
        url = str(chain.rpc_url)
        own = JsonRpcChainReader(url, retries=False)
        given = JsonRpcChainReader(Web3(Web3.HTTPProvider(url)), retries=False)
        w3 = Web3(Web3.HTTPProvider(url))
        expected = own._head_data("latest")
        if given._head_data("latest") != expected:
            raise SystemExit("the two readers disagree: the benchmark is broken")
        figures = {
            "reader from a URL (kept-alive http.client)":
                _per_request(lambda: own._head_data("latest"), args.requests),
            "reader given a Web3 (raw request via web3/requests)":
                _per_request(lambda: given._head_data("latest"), args.requests),
            "web3 get_block('latest') (formatted)":
                _per_request(lambda: w3.eth.get_block("latest"), args.requests),
        }
        own.close()
    base_cpu = figures["reader given a Web3 (raw request via web3/requests)"][0]
    print(f"{args.requests:,} head requests per pass, median of 3 passes (this process's "
          "CPU; anvil's is not counted)")
    for name, (cpu, wall) in figures.items():
        print(f"  {name:<54} {cpu * 1e6:7.0f} us CPU  {wall * 1e6:7.0f} us wall  "
              f"CPU x{cpu / base_cpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
