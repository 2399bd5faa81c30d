"""``anchor-service db upgrade``: bring the service's database (``MICROCRED_DATABASE_URL``, or
``--config FILE``; SQLite or PostgreSQL) to the schema this release reads, with the versioned
migrations of :mod:`anchor_service.migrations`, and print the revision reached.
``anchor-service db current``: print the database's revision (``empty`` for a new one) and say
on stderr whether this release reads it as it is. Exit code 1 when the database cannot be
opened or a migration fails. Needs the ``service`` extra."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anchor_service.cli._common import needs_extra, note, one_line_database_errors

__all__ = ["register", "run_current", "run_upgrade"]


def register(commands: Any) -> None:
    """Add ``db`` and its subcommands to an argparse subparsers object."""
    db = commands.add_parser("db", help="manage the service's database schema",
                             description="Manage the schema of the database the service uses "
                             "(MICROCRED_DATABASE_URL or --config).")
    sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = sub.add_parser("upgrade", help="apply every migration the database lacks",
                             description="Apply every migration the database lacks and print "
                             "the revision reached.")
    upgrade.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings")
    upgrade.set_defaults(handler=run_upgrade)
    current = sub.add_parser("current", help="print the database's schema revision",
                             description="Print the database's schema revision, and whether "
                             "this release reads it without an upgrade.")
    current.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings")
    current.set_defaults(handler=run_current)


def _database_url(args: argparse.Namespace, command: str) -> str:
    """The database the service uses, from the settings (``--config`` first)."""
    with needs_extra(command, "service"):
        from anchor_service.settings import ServiceSettings  # noqa: PLC0415
    one_line_database_errors()
    return ServiceSettings(_env_file=args.config).database_url


def run_upgrade(args: argparse.Namespace) -> int:
    """Upgrade the database; 1 if it cannot be opened or upgraded."""
    location = _database_url(args, "db upgrade")
    with needs_extra("db upgrade", "service"):
        from anchor_service.migrations import upgrade  # noqa: PLC0415

    print(upgrade(location), flush=True)
    return 0


def run_current(args: argparse.Namespace) -> int:
    """Print the revision; 1 if the database cannot be opened."""
    location = _database_url(args, "db current")
    with needs_extra("db current", "service"):
        from anchor_service.migrations import current, head  # noqa: PLC0415

    revision = current(location)
    print(revision or "empty", flush=True)
    expected = head()
    if revision == expected:
        note("this release reads the database as it is")
    elif revision is None:
        note(f"the service creates the schema (revision {expected}) when it first starts")
    else:
        note(f"this release reads revision {expected}: run `anchor-service db upgrade`")
    return 0
