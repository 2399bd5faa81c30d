"""``anchor-service`` command line (also ``python -m anchor_service``). One module per group:

- ``demo`` (:mod:`.demo`): the trust core end to end on this machine, without a chain;
- ``serve`` and ``stack`` (:mod:`.serve`): the HTTP service; the whole local stack;
- ``submit`` (:mod:`.submit`): anchor a folder or JSONL file of credentials, write bundles;
- ``deploy`` (:mod:`.deploy`) and ``registry ...`` (:mod:`.registry`): the contracts and the
  issuer registry, against any JSON-RPC URL;
- ``credentials revoke|suspend|reinstate`` (:mod:`.credentials`): credential status on
  chain, by id, with the issuer's key; ``registry lift-revocations`` lifts revocations;
- ``token create`` (:mod:`.token`): API tokens in the service's database;
- ``signing-key create`` and ``signing-key show`` (:mod:`.signing_key`): issuers' signing keys;
- ``db upgrade`` and ``db current`` (:mod:`.db`): the database schema.

Settings come from :mod:`anchor_service.settings`, read when a command runs. Each command
imports the optional dependencies it needs (the ``service`` or ``chain`` extra) when it runs,
so that ``demo`` works on the base install.

Exit codes: 0 success, 1 a check failed, a transaction reverted or the database cannot be
opened, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pydantic import ValidationError

from anchor_service import __version__
from anchor_service.cli import (
    credentials,
    db,
    demo,
    deploy,
    registry,
    serve,
    signing_key,
    submit,
    token,
)
from anchor_service.cli._common import note
from anchor_service.errors import AnchorServiceError, MissingExtraError, StoreError
from verifier.errors import VerifierError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``handler``, the function that runs it."""
    parser = argparse.ArgumentParser(
        prog="anchor-service",
        description="Anchor micro-credentials on a chain: the service, its administration, and "
        "an offline demo of the trust core.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (demo, serve, submit, deploy, registry, credentials, token, signing_key, db):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``anchor-service`` console script."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        config = getattr(args, "config", None)  # every command that reads ServiceSettings
        if config is not None and not config.is_file():
            raise AnchorServiceError(f"no config file {config}")
        return handler(args)
    except MissingExtraError as exc:
        note(str(exc))
    except StoreError as exc:  # the database cannot be opened, or is at another revision
        note(f"error: {exc}")
        return 1
    except ValidationError as exc:
        first = exc.errors()[0]
        note(f"setting {'.'.join(map(str, first['loc']))}: {first['msg']}")
    except (AnchorServiceError, VerifierError, OSError) as exc:
        note(f"error: {exc}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
