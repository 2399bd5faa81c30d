"""Gas used by every state-changing operation of the contracts, against the targets.
Prints a table; asserts nothing (the contract tests assert the targets).

    python scripts/gas_report.py              # on the in-process chain
    python scripts/gas_report.py --anvil      # on a real anvil node
"""

from __future__ import annotations

import argparse
import os
import sys

from anchor_service.chain import sign_anchor
from localchain import AnvilChain, InProcessChain, LocalChain
from testkit.world import build_world
from verifier.contract_types import Kind, Scope, Status

ANCHOR_TARGET = 60_000
EXTRA_REVOKE_TARGET = 5_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--anvil", action="store_true", help="measure on anvil")
    args = parser.parse_args(argv)
    chain: LocalChain = AnvilChain.start() if args.anvil else InProcessChain.start()
    try:
        return _report(chain, "anvil" if args.anvil else "in-process (eth-tester + py-evm)")
    finally:
        chain.close()


def _report(chain: LocalChain, label: str) -> int:
    w = build_world(chain)
    rows: list[tuple[str, int, str]] = []

    def gas(name: str, who: object, call: object, target: str = "") -> int:
        receipt = w.tx(who).transact(call)  # type: ignore[arg-type]
        used = int(receipt["gasUsed"])
        rows.append((name, used, target))
        return used

    reg, anc = w.registry.functions, w.anchor.functions
    gas(
        "registry.accredit (issuer under body)",
        w.body,
        reg.accredit(w.body_id, Kind.TRUSTED_ISSUER, "did:web:gas.example", Scope.FORMAL_DEGREE,
                     "https://x", b"\1" * 32),
    )
    new_id = int(reg.entityCount().call())
    spare = chain.accounts[9]
    gas("registry.addKey", w.body, reg.addKey(new_id, spare.address, 0, 0))
    gas("registry.shortenKeyExpiry", w.body, reg.shortenKeyExpiry(spare.address, w.now() + 10**6))
    gas("registry.revokeKey (back-dated)", w.body, reg.revokeKey(spare.address, w.now() - 60))
    gas("registry.setStatus (suspend)", w.body, reg.setStatus(new_id, Status.SUSPENDED))
    gas(
        "registry.updateMetadata", w.issuer, reg.updateMetadata(w.issuer_id, "ipfs://m", b"\2" * 32)
    )

    used = gas(
        "anchor.anchor", w.issuer, anc.anchor(os.urandom(32), 1_000_000), f"<= {ANCHOR_TARGET:,}"
    )
    root = os.urandom(32)
    nonce = anc.nonces(w.issuer.address).call()
    deadline = w.now() + 3600
    signature = sign_anchor(
        w.anchor, w.issuer, root, tree_size=1000, nonce=nonce, deadline=deadline
    )
    gas(
        "anchor.anchorWithSignature (relayed)",
        w.stranger,
        anc.anchorWithSignature(root, 1000, w.issuer.address, nonce, deadline, signature),
    )

    revoke: dict[int, int] = {}
    for count in (1, 10, 100):
        batch = os.urandom(32)
        w.tx(w.issuer).transact(anc.anchor(batch, 100_000))
        revoke[count] = gas(
            f"anchor.revoke ({count} adjacent)",
            w.issuer,
            anc.revoke(w.issuer_id, batch, list(range(count)), 1),
        )
    spread = os.urandom(32)
    w.tx(w.issuer).transact(anc.anchor(spread, 100_000))
    gas(
        "anchor.revoke (100 spread over 100 words)",
        w.issuer,
        anc.revoke(w.issuer_id, spread, [i * 256 for i in range(100)], 1),
    )
    gas(
        "anchor.suspend (10 adjacent)",
        w.issuer,
        anc.suspend(w.issuer_id, spread, list(range(10)), 2),
    )
    gas(
        "anchor.reinstate (10 adjacent)",
        w.issuer,
        anc.reinstate(w.issuer_id, spread, list(range(10)), 0),
    )

    per_extra = (revoke[100] - revoke[1]) / 99
    print(f"gas report on {label}, contracts {w.registry.functions.version().call()}")
    print(f"{'operation':<44} {'gas':>9}  target")
    for name, value, target in rows:
        print(f"{name:<44} {value:>9,}  {target}")
    print(
        f"{'anchor.revoke, each extra adjacent credential':<44} {per_extra:>9,.0f}  "
        f"<= {EXTRA_REVOKE_TARGET:,}"
    )
    ok = used <= ANCHOR_TARGET and per_extra <= EXTRA_REVOKE_TARGET
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
