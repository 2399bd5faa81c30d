"""``anchor-service token create``: make an API token in the service's database, on SQLite or
PostgreSQL, to bootstrap access (the first admin token) or to hand an issuer its token. The
database is the one ``serve`` uses (``MICROCRED_DATABASE_URL``, or ``--config FILE``).

The token goes to stdout once, alone on its line, and nowhere else: the database keeps only
its SHA-256, nothing is logged, and the note that names it is on stderr. Exit codes: 2 for a
bad role or an issuer the database does not serve, 1 when the database cannot be opened.
Needs the ``service`` extra (and the ``postgres`` extra for PostgreSQL)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anchor_service.cli._common import needs_extra, note, one_line_database_errors
from anchor_service.errors import AnchorServiceError

__all__ = ["ROLES", "register", "run_create"]

ROLES = ("admin", "issuer")


def register(commands: Any) -> None:
    """Add ``token`` and its subcommands to an argparse subparsers object."""
    token = commands.add_parser("token", help="create API tokens in the service's database",
                                description="Create API tokens in the database the service "
                                "uses (MICROCRED_DATABASE_URL or --config).")
    sub = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = sub.add_parser(
        "create", help="create a token and print it once",
        description="Create an API token and print it once on stdout: an admin token, or an "
        "issuer token for an issuer the service serves (by its name).")
    create.add_argument("--role", required=True, choices=ROLES,
                        help="admin: every route; issuer: one issuer's credentials")
    create.add_argument("--issuer", metavar="NAME", default=None,
                        help="with --role issuer: the issuer's name in the service")
    create.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings")
    create.set_defaults(handler=run_create)


def run_create(args: argparse.Namespace) -> int:
    """Create the token; 2 on a bad role or issuer, 1 if the database cannot be opened."""
    if args.role == "issuer" and args.issuer is None:
        raise AnchorServiceError("an issuer token needs --issuer NAME")
    if args.role == "admin" and args.issuer is not None:
        raise AnchorServiceError("an admin token belongs to no issuer: leave out --issuer")
    with needs_extra("token create", "service"):
        from anchor_service.settings import ServiceSettings  # noqa: PLC0415
        from anchor_service.store import Store  # noqa: PLC0415
    one_line_database_errors()
    settings = ServiceSettings(_env_file=args.config)
    store = Store(settings.database_url, pool_size=2)  # a StoreError is exit 1 (cli.main)
    try:
        issuer_id = None
        if args.issuer is not None:
            served = {issuer.name: issuer.id for issuer in store.issuers()}
            if args.issuer not in served:
                known = ", ".join(sorted(served)) or "none yet"
                raise AnchorServiceError(f"no issuer named {args.issuer!r} in {store} "
                                         f"(issuers: {known})")
            issuer_id = served[args.issuer]
        token = store.add_token(role=args.role, issuer_id=issuer_id)
    finally:
        store.close()
    print(token, flush=True)
    note(f"{args.role} token created"
         + (f" for issuer {args.issuer}" if args.issuer else "")
         + "; it is shown only this once (the database keeps its hash)")
    return 0
