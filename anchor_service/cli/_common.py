"""What the command modules of the ``anchor-service`` command line share: imports that name
the extra they need, messages for the operator, and the options of the chain commands. Needs
only the base install."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from anchor_service.errors import MissingExtraError

__all__ = ["chain_options", "needs_extra", "note", "one_line_database_errors"]


@contextmanager
def needs_extra(command: str, extra: str) -> Iterator[None]:
    """Imports inside the block that fail say which extra ``command`` needs: the command line
    itself (``demo``) runs on the base install, each other command imports its extra when it
    runs."""
    try:
        yield
    except ImportError as exc:
        raise MissingExtraError(f"{command} needs the {extra} extra "
                                f"(pip install 'microcred-anchor[{extra}]'): {exc}") from None


def note(message: str) -> None:
    """A message for the operator on stderr (stdout carries only a command's result)."""
    print(f"anchor-service: {message}", file=sys.stderr, flush=True)


def chain_options() -> argparse.ArgumentParser:
    """The options of every chain command (``deploy``, ``registry ...``): the node and the
    signer."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--rpc-url", default=None,
                        help="JSON-RPC endpoint (default: the rpc_url setting, MICROCRED_RPC_URL)")
    common.add_argument("--keystore", type=Path, help="encrypted keystore file of the signer")
    return common


def one_line_database_errors() -> None:
    """For the commands that open the database once and exit (``token``, ``db``): the
    connection pool's own retry warnings stay out of the terminal, where the command's one-line
    error says what failed (``serve`` keeps them, in its log)."""
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
