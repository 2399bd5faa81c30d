"""``anchor-service deploy`` and ``anchor-service registry ...``: deploy the contracts and
administer the issuer registry against any JSON-RPC URL.

Keys come from ``--keystore FILE`` (password from MICROCRED_KEYSTORE_PASSWORD or a prompt) or
from MICROCRED_PRIVATE_KEY. A revert is reported with the contract's error name, exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from verifier.registry_terms import SCOPES

__all__ = ["add_admin_commands", "run"]



def add_admin_commands(commands: Any) -> None:
    """Register the ``deploy`` and ``registry`` subcommands on an argparse subparsers object."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="JSON-RPC endpoint")
    common.add_argument("--keystore", type=Path, help="encrypted keystore file of the signer")

    dep = commands.add_parser(
        "deploy", parents=[common], help="deploy IssuerRegistry and CredentialAnchor"
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

    reg = commands.add_parser("registry", help="administer the issuer registry")
    sub = reg.add_subparsers(dest="action", required=True)
    with_deployment = argparse.ArgumentParser(add_help=False, parents=[common])
    with_deployment.add_argument(
        "--deployment", type=Path, required=True, help="deployment record written by deploy"
    )

    for name, kind in (("accredit-body", 1), ("add-issuer", 2)):
        cmd = sub.add_parser(name, parents=[with_deployment])
        cmd.add_argument(
            "--parent",
            type=int,
            default=0 if kind == 1 else None,
            required=kind == 2,
            help="accrediting body id (0: root)",
        )
        cmd.add_argument("--did", required=True)
        cmd.add_argument("--scope", required=True, help=f"comma list of {', '.join(SCOPES)}")
        cmd.add_argument("--metadata-uri", default="")
        cmd.add_argument("--metadata-hash", default="0x" + "00" * 32)
        cmd.set_defaults(action_name="accredit", kind=kind)

    cmd = sub.add_parser("add-key", parents=[with_deployment])
    cmd.add_argument("--entity", type=int, required=True)
    cmd.add_argument("--key", required=True, help="address of the new signing key")
    cmd.add_argument("--valid-from", type=int, default=0, help="unix time (0: now)")
    cmd.add_argument("--valid-until", type=int, default=0, help="unix time (0: no expiry)")
    cmd.set_defaults(action_name="add_key")

    cmd = sub.add_parser("revoke-key", parents=[with_deployment])
    cmd.add_argument("--key", required=True)
    cmd.add_argument(
        "--effective-from", type=int, default=0, help="unix time of the compromise (0: now)"
    )
    cmd.set_defaults(action_name="revoke_key")

    for name, status in (("suspend", 2), ("reactivate", 1), ("revoke", 3)):
        cmd = sub.add_parser(name, parents=[with_deployment], help=f"{name} an entity")
        cmd.add_argument("--entity", type=int, required=True)
        cmd.set_defaults(action_name="set_status", status=status)

    cmd = sub.add_parser("list", parents=[with_deployment], help="list entities and keys")
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(action_name="list_entities")


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
