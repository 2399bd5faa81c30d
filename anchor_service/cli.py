"""``anchor-service`` command line.

``anchor-service demo`` runs the pure trust core end to end on this machine, with no chain:
it canonicalises and hashes the example credentials (and any number of generated ones), salts
them, builds the RFC 9162 batch tree, makes and checks every inclusion proof, and shows that a
tampered credential no longer verifies. It anchors nothing: ``anchor-service stack`` (or
``serve``) anchors batches on a chain, and the demo says so instead of inventing an anchor.

``anchor-service deploy`` and ``anchor-service registry ...`` deploy the contracts and
administer the issuer registry (see :mod:`anchor_service.admin_cli`).

Exit codes: 0 success, 1 a check failed or a transaction reverted, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor_service import __version__, admin_cli
from anchor_service.batch import BatchItem, PreparedBatch
from anchor_service.errors import AnchorServiceError
from verifier.credential import credential_digest, parse_credential
from verifier.errors import ProofError, VerifierError
from verifier.merkle import verify_inclusion

if TYPE_CHECKING:
    from anchor_service.settings import ServiceSettings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``anchor-service`` console script."""
    parser = argparse.ArgumentParser(prog="anchor-service", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the trust core end to end, without a chain")
    demo.add_argument("--count", type=int, default=10_000,
                      help="generated credentials to add to the examples (default 10000)")
    demo.add_argument("--out", type=Path, default=None,
                      help="write the batch (root and every inclusion proof) as JSON here")
    demo.add_argument("credentials", nargs="*", type=Path,
                      help="extra credential JSON files to include")
    serve = commands.add_parser("serve", help="run the HTTP service (MICROCRED_* settings)")
    serve.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings")
    stack = commands.add_parser("stack", help="anvil + contracts + demo issuer + the service")
    stack.add_argument("--data-dir", type=Path, default=Path("data"))
    stack.add_argument("--port", type=int, default=8080)
    stack.add_argument("--chain-port", type=int, default=8545)
    sub = commands.add_parser("submit", help="anchor a folder or JSONL file; write bundles")
    sub.add_argument("path", type=Path, help="a folder of .json credentials, or a .jsonl file")
    sub.add_argument("--url", default="http://127.0.0.1:8080", help="the running service")
    sub.add_argument("--token", default=None, help="issuer API token (or MICROCRED_TOKEN)")
    sub.add_argument("--direct", metavar="ISSUER", default=None,
                     help="no service: run the pipeline here for this issuer (MICROCRED_*)")
    sub.add_argument("--config", type=Path, help="with --direct: a .env-style settings file")
    sub.add_argument("--timeout", type=float, default=300.0,
                     help="seconds to wait for anchoring (default 300)")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")
    admin_cli.add_admin_commands(commands)
    args = parser.parse_args(argv)
    if args.command in {"serve", "stack", "submit"}:
        return _run_service(args)
    if args.command != "demo":
        return admin_cli.run(args)
    try:
        return _demo(args.count, args.credentials, args.out)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (AnchorServiceError, VerifierError, OSError) as exc:
        print(f"anchor-service: error: {exc}", file=sys.stderr)
        return 2


def _run_service(args: argparse.Namespace) -> int:
    try:
        from pydantic import ValidationError  # noqa: PLC0415

        from anchor_service import stack  # noqa: PLC0415 - needs the [service] extra
        from anchor_service.settings import ServiceSettings  # noqa: PLC0415
    except ImportError as exc:
        print(f"anchor-service: {args.command} needs the service extra "
              f"(pip install 'microcred-anchor[service]'): {exc}", file=sys.stderr)
        return 2
    commands = {
        "stack": lambda: stack.run_stack(args.data_dir, port=args.port,
                                         chain_port=args.chain_port),
        "submit": lambda: _submit(args),
        "serve": lambda: _serve(args.config, stack.serve, ServiceSettings),
    }
    try:
        return commands[args.command]()
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"anchor-service: setting {'.'.join(map(str, first['loc']))}: {first['msg']}",
              file=sys.stderr)
    except (AnchorServiceError, VerifierError, OSError) as exc:
        print(f"anchor-service: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 0
    return 2


def _serve(config: Path | None, serve: Callable[[ServiceSettings], None],
           settings_type: type[ServiceSettings]) -> int:
    if config is not None and not config.is_file():
        raise AnchorServiceError(f"no config file {config}")
    serve(settings_type(_env_file=config))
    return 0


def _submit(args: argparse.Namespace) -> int:
    from anchor_service import submit  # noqa: PLC0415 - needs the [service] extra
    from anchor_service.logs import Redactor, configure_logging  # noqa: PLC0415
    from anchor_service.service import build_components  # noqa: PLC0415
    from anchor_service.settings import ServiceSettings  # noqa: PLC0415

    backend: submit.Backend
    components = None
    if args.direct is not None:
        settings = ServiceSettings(_env_file=args.config)
        # The pipeline runs here and logs its retries: through the same redaction as serve.
        configure_logging(json_lines=False, level=logging.WARNING,
                          redact=Redactor(settings.secrets()))
        components = build_components(settings)
        backend = submit.DirectBackend(components, args.direct)
    else:
        token = args.token or os.environ.get("MICROCRED_TOKEN")
        if not token:
            raise AnchorServiceError("pass --token or set MICROCRED_TOKEN")
        backend = submit.HttpBackend(args.url, token)
    try:
        outcome = submit.submit(args.path, backend, timeout=args.timeout,
                                show_progress=not args.quiet,
                                notify=lambda note: print(f"anchor-service: {note}",
                                                          file=sys.stderr))
    finally:
        if components is not None:
            components.close()
    written = outcome.written
    print(f"{len(written)} bundle file(s) written" + (f", e.g. {written[0]}" if written else ""))
    if outcome.rejected:
        # The good inputs were anchored all the same; the exit code says not all were.
        print(f"anchor-service: error: {len(outcome.rejected)} input(s) left out, named above",
              file=sys.stderr)
        return 2
    return 0


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
    items = [BatchItem.salted(credential_digest(cred)) for _, cred in credentials]
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
    forged = BatchItem(credential_digest(tampered), items[0].salt)
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
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": f"urn:demo:credential:{i}",
        "type": ["VerifiableCredential", "MicroCredential"],
        "issuer": {"id": "did:web:demo-university.example"},
        "validFrom": "2026-11-28T00:00:00Z",
        "credentialSubject": {"id": f"urn:demo:learner:{i}", "ects": 1 + i % 5},
    }


def _write_batch(out: Path, batch: PreparedBatch) -> None:
    document = {
        "root": "0x" + batch.root.hex(),
        "treeSize": batch.size,
        "leaves": [
            {
                "leafIndex": i,
                "credentialDigest": "0x" + item.credential_digest.hex(),
                "salt": "0x" + item.salt.hex(),
                "auditPath": ["0x" + h.hex() for h in path],
            }
            for i, (item, path) in enumerate(
                zip(batch.items, batch.inclusion_proofs(), strict=True)
            )
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
