"""``anchor-service demo``: the pure trust core end to end on this machine, with no chain.

It canonicalises and hashes the example credentials (and any number of generated ones), salts
them, builds the RFC 9162 batch tree, makes and checks every inclusion proof, and shows that a
tampered credential no longer verifies. It anchors nothing: ``anchor-service stack`` (or
``serve``) anchors batches on a chain, and the demo says so instead of inventing an anchor.
Needs only the base install.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from anchor_service.batch import BatchItem, PreparedBatch
from anchor_service.errors import AnchorServiceError
from anchor_service.samples import make_credential
from verifier.credential import credential_digest, parse_credential
from verifier.errors import ProofError, VerifierError
from verifier.merkle import verify_inclusion

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    """Add ``demo`` to an argparse subparsers object."""
    demo = commands.add_parser("demo", help="run the trust core end to end, without a chain")
    demo.add_argument("--count", type=int, default=10_000,
                      help="generated credentials to add to the examples (default 10000)")
    demo.add_argument("--out", type=Path, default=None,
                      help="write the batch (root and every inclusion proof) as JSON here")
    demo.add_argument("credentials", nargs="*", type=Path,
                      help="extra credential JSON files to include")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; 1 if a check fails, 2 on bad input."""
    try:
        return _demo(args.count, args.credentials, args.out)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _demo(count: int, extra_files: list[Path], out: Path | None) -> int:
    if not 0 <= count <= 10_000_000:
        raise AnchorServiceError("--count must be between 0 and 10000000")
    credentials = _example_credentials()
    for path in extra_files:
        try:
            credentials.append((path.name, parse_credential(path.read_bytes())))
        except VerifierError as exc:
            raise AnchorServiceError(f"{path}: {exc}") from None
    credentials += [(f"generated-{i}", _generated_credential(i)) for i in range(count)]

    started = time.perf_counter()
    # Each credential at its own status position (list 0, index = its place), as the service
    # allocates them.
    items = [BatchItem.salted(credential_digest(cred), 0, index)
             for index, (_, cred) in enumerate(credentials)]
    hashed = time.perf_counter()
    batch = PreparedBatch(items)
    built = time.perf_counter()
    for index, audit_path in enumerate(batch.inclusion_proofs()):
        verify_inclusion(items[index].leaf_input, index, batch.size, audit_path, batch.root)
    checked = time.perf_counter()

    print(f"batch of {batch.size} credentials")
    print(f"  canonicalise + hash: {hashed - started:8.3f} s")
    print(f"  build RFC 9162 tree: {built - hashed:8.3f} s")
    print(f"  prove + verify all:  {checked - built:8.3f} s")
    print(f"  root: 0x{batch.root.hex()}")
    for index, (name, _) in enumerate(credentials[: min(4, len(credentials))]):
        print(f"  leaf {index} {name}: digest 0x{items[index].credential_digest.hex()[:16]}..., "
              f"audit path {len(batch.inclusion_proof(index))} hashes, verified")

    name, credential = credentials[0]
    tampered = {**credential, "tampered": True}
    forged = BatchItem(credential_digest(tampered), items[0].salt, 0, 0)
    try:
        verify_inclusion(forged.leaf_input, 0, batch.size, batch.inclusion_proof(0), batch.root)
    except ProofError as exc:
        print(f"  tampered {name}: rejected ({type(exc).__name__})")
    else:
        print(f"  tampered {name}: ACCEPTED - this is a bug", file=sys.stderr)
        return 1
    print("not anchored: the demo has no chain; `anchor-service stack` runs the service that "
          "anchors batches, and `anchor-service deploy` deploys the contracts")

    if out is not None:
        _write_batch(out, batch)
        print(f"batch written to {out}")
    return 0


def _example_credentials() -> list[tuple[str, dict[str, Any]]]:
    folder = resources.files("anchor_service") / "examples"
    return [
        (entry.name, parse_credential(entry.read_bytes()))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]


def _generated_credential(i: int) -> dict[str, Any]:
    return make_credential(i, id_prefix="urn:demo:credential",
                           issuer="did:web:demo-university.example",
                           types=("VerifiableCredential", "MicroCredential"),
                           subject={"id": f"urn:demo:learner:{i}", "ects": 1 + i % 5},
                           validFrom="2026-11-28T00:00:00Z")


def _write_batch(out: Path, batch: PreparedBatch) -> None:
    document = {
        "root": "0x" + batch.root.hex(),
        "treeSize": batch.size,
        "leaves": [
            {
                "leafIndex": i,
                "credentialDigest": "0x" + item.credential_digest.hex(),
                "salt": "0x" + item.salt.hex(),
                "statusList": item.status_list,
                "statusListIndex": item.status_index,
                "auditPath": ["0x" + h.hex() for h in path],
            }
            for i, (item, path) in enumerate(
                zip(batch.items, batch.inclusion_proofs(), strict=True)
            )
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
