"""Benchmark of bulk status changes through the service, on anvil. Prints figures; asserts
nothing.

    python scripts/bench_bulk_status.py              # 10,000 credentials of one issuer
    python scripts/bench_bulk_status.py --count 300  # a smoke test

The service runs in this process (uvicorn on loopback, SQLite) against a real anvil node. The
issuer submits ``--count`` digests (each gets the issuer's next status position), then revokes
them all with one ``POST /v1/credentials/revoke``: the figures are the transactions it sent,
their total and per-index gas, and the request's wall time (transactions mined included).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from anchor_service.api import create_app
from anchor_service.keystore import write_keystore
from anchor_service.service import build_components
from anchor_service.settings import ServiceSettings
from localchain import AnvilChain
from testkit.net import free_port
from testkit.world import build_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="credentials to revoke")
    args = parser.parse_args()
    chain = AnvilChain.start()
    try:
        world = build_world(chain)
        with tempfile.TemporaryDirectory() as folder:
            data = Path(folder)
            (data / "deployment.json").write_text(world.deployment.to_json(), encoding="utf-8")
            password = "bench-only"  # noqa: S105 - a throwaway keystore in a temp folder
            write_keystore(data / "keys", world.issuer, password, scrypt_cost=2**4)
            settings = ServiceSettings(
                rpc_url=str(chain.rpc_url), deployment=data / "deployment.json",
                database_url=f"sqlite:///{data / 'service.sqlite3'}", keystore_dir=data / "keys",
                keystore_password=password, batch_max_age=3600, log_json=False)
            components = build_components(settings, w3=chain.w3)
            store = components.store
            issuer = store.add_issuer("uni-a", entity_id=world.issuer_id,
                                      key_address=world.issuer.address,
                                      did="did:web:uni-a.example")
            components.load_signer(issuer)
            token = store.add_token(role="issuer", issuer_id=issuer.id)
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(create_app(components=components),
                                                   host="127.0.0.1", port=port,
                                                   log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.05)
            try:
                _run(f"http://127.0.0.1:{port}", token, args.count, chain)
            finally:
                server.should_exit = True
                thread.join(10)
                components.close()
    finally:
        chain.close()


def _run(url: str, token: str, count: int, chain: AnvilChain) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        digests = ["0x" + n.to_bytes(32, "big").hex() for n in range(1, count + 1)]
        accepted = client.post("/v1/credentials", json={"digests": digests})
        accepted.raise_for_status()
        ids = [item["id"] for item in accepted.json()["accepted"]]
        started = time.perf_counter()
        answer = client.post("/v1/credentials/revoke", json={"ids": ids, "reason": 1})
        elapsed = time.perf_counter() - started
        answer.raise_for_status()
        hashes = answer.json()["transactionHashes"]
    gas = [int(chain.w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in hashes]
    print(f"revoked {count} credentials of one issuer through POST /v1/credentials/revoke")
    print(f"  transactions:        {len(hashes)}")
    print(f"  total gas:           {sum(gas):,}")
    print(f"  gas per transaction: {', '.join(f'{g:,}' for g in gas)}")
    print(f"  gas per index:       {sum(gas) / count:,.0f}")
    print(f"  request wall time:   {elapsed:.2f} s (transactions mined included)")


if __name__ == "__main__":
    main()
