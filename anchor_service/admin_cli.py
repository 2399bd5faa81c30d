"""``anchor-service deploy`` and ``anchor-service registry ...``: deploy the contracts and
administer the issuer registry against any JSON-RPC URL.

Keys come from ``--keystore FILE`` (password from MICROCRED_KEYSTORE_PASSWORD or a prompt) or
from MICROCRED_PRIVATE_KEY. A revert is reported with the contract's error name, exit code 1.
Times (``--valid-from``, ``--valid-until``, ``--effective-from``, ``--since``) are unix seconds
or ISO 8601 date-times with a time zone (``2026-03-01T09:00:00Z``); a time without a zone, or
one that cannot be read, exits 2 with a message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from verifier.registry_terms import SCOPES

__all__ = ["add_admin_commands", "chain_time", "run"]

_UINT40_MAX = 2**40 - 1  # the registry stores times as uint40


def chain_time(text: str) -> int:
    """A time argument as unix seconds: digits as they are, or an ISO 8601 date-time with a
    time zone (``Z`` or an offset). argparse turns the error into exit 2 with the message."""
    value = text.strip()
    if value.isdigit():
        seconds = int(value)
    else:
        from verifier.verify import parse_datetime  # noqa: PLC0415 - only when a date is given

        try:
            seconds = int(parse_datetime(value).timestamp())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{exc}; give unix seconds or an ISO 8601 time with a zone, such as "
                "2026-03-01T09:00:00Z") from None
    if not 0 <= seconds <= _UINT40_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the registry's time range "
                                         "(1970 to the year 36812)")
    return seconds



def add_admin_commands(commands: Any) -> None:
    """Register the ``deploy`` and ``registry`` subcommands on an argparse subparsers object."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="JSON-RPC endpoint")
    common.add_argument("--keystore", type=Path, help="encrypted keystore file of the signer")

    dep = commands.add_parser(
        "deploy", parents=[common], help="deploy IssuerRegistry and CredentialAnchor",
        description="Deploy IssuerRegistry and CredentialAnchor; the signer becomes the top "
        "administrator and first root administrator. Writes a deployment record.",
    )
    dep.add_argument(
        "--out",
        type=Path,
        default=None,
        help="deployment record to write (default deployments/chain-<id>.json)",
    )
    dep.add_argument(
        "--admin-delay",
        type=int,
        default=3 * 24 * 3600,
        help="seconds before a new top administrator may accept (default 3 days)",
    )
    dep.set_defaults(action_name="deploy")

    reg = commands.add_parser(
        "registry", help="administer the issuer registry",
        description="Administer the issuer registry: accredit bodies and issuers, manage "
        "their keys and status. Times are unix seconds or ISO 8601 with a time zone.")
    sub = reg.add_subparsers(dest="action", required=True, metavar="COMMAND")
    with_deployment = argparse.ArgumentParser(add_help=False, parents=[common])
    with_deployment.add_argument(
        "--deployment", type=Path, required=True, help="deployment record written by deploy"
    )

    accredit_help = {
        "accredit-body": "accredit an accreditation body (top level, or under --parent)",
        "add-issuer": "accredit a trusted issuer under an accreditation body",
    }
    for name, kind in (("accredit-body", 1), ("add-issuer", 2)):
        cmd = _command(sub, name, accredit_help[name], with_deployment)
        cmd.add_argument(
            "--parent",
            type=int,
            default=0 if kind == 1 else None,
            required=kind == 2,
            help="accrediting body id (0: root)",
        )
        cmd.add_argument("--did", required=True, help="the entity's DID, unique in the registry")
        cmd.add_argument("--scope", required=True, help=f"comma list of {', '.join(SCOPES)}")
        cmd.add_argument("--metadata-uri", default="", help="where the entity's metadata is")
        cmd.add_argument("--metadata-hash", default="0x" + "00" * 32,
                         help="32-byte hash of that metadata, 0x-hex")
        cmd.set_defaults(action_name="accredit", kind=kind)

    cmd = _command(sub, "add-key", "add a signing key to a body or issuer (it belongs to that "
                   "entity forever)", with_deployment)
    cmd.add_argument("--entity", type=int, required=True, help="the entity's id")
    cmd.add_argument("--key", required=True, help="address of the new signing key")
    cmd.add_argument("--valid-from", type=chain_time, default=0, metavar="TIME",
                     help="when the key becomes valid (0 or past: now)")
    cmd.add_argument("--valid-until", type=chain_time, default=0, metavar="TIME",
                     help="when the key expires (0: never)")
    cmd.set_defaults(action_name="add_key")

    cmd = _command(sub, "revoke-key", "revoke a signing key, back-dated to a compromise if "
                   "need be", with_deployment)
    cmd.add_argument("--key", required=True, help="address of the signing key")
    cmd.add_argument("--effective-from", type=chain_time, default=0, metavar="TIME",
                     help="time of the compromise: anchors with the key from then on stop "
                     "being trusted (0: from the next second)")
    cmd.set_defaults(action_name="revoke_key")

    cmd = _command(sub, "revoke-since", "revoke a body or issuer for good, with effect from a "
                   "past time (back-dated; final)", with_deployment)
    cmd.add_argument("--entity", type=int, required=True, help="the entity's id")
    cmd.add_argument("--since", type=chain_time, required=True, metavar="TIME",
                     help="from when it counts as revoked, not in the future: everything it "
                     "and everything below it anchored from then on stops being trusted; "
                     "earlier anchors stay valid (0: since its accreditation)")
    cmd.set_defaults(action_name="revoke_since")

    status_help = {
        "suspend": "suspend a body or issuer (it and everything below it cannot act; "
                   "reversible)",
        "reactivate": "reactivate a suspended body or issuer",
        "revoke": "revoke a body or issuer from now on (final)",
    }
    for name, status in (("suspend", 2), ("reactivate", 1), ("revoke", 3)):
        cmd = _command(sub, name, status_help[name], with_deployment)
        cmd.add_argument("--entity", type=int, required=True, help="the entity's id")
        cmd.set_defaults(action_name="set_status", status=status)

    cmd = _command(sub, "list", "list entities and their keys", with_deployment)
    cmd.add_argument("--json", action="store_true", help="as JSON")
    cmd.set_defaults(action_name="list_entities")


def _command(sub: Any, name: str, summary: str, parent: argparse.ArgumentParser) -> Any:
    """A registry subcommand with its one-line help (in ``registry --help``) and the same
    text as the description of its own ``--help``."""
    return sub.add_parser(name, parents=[parent], help=summary,
                          description=summary[0].upper() + summary[1:] + ".")


def run(args: argparse.Namespace) -> int:
    """Run an admin subcommand; map failures to exit codes (1 revert, 2 usage or setup)."""
    try:
        from anchor_service import admin_actions  # noqa: PLC0415 - needs the [chain] extra
    except ImportError as exc:
        print(
            f"anchor-service: {args.command} needs the chain extra "
            f"(pip install 'microcred-anchor[chain]'): {exc}",
            file=sys.stderr,
        )
        return 2
    return admin_actions.run(args)
