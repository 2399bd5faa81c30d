"""``anchor-service deploy``: deploy IssuerRegistry and CredentialAnchor to any JSON-RPC URL
and write the deployment record. The signer (``--keystore FILE``, password from
``MICROCRED_KEYSTORE_PASSWORD`` or a prompt, else ``MICROCRED_PRIVATE_KEY``) becomes the top
administrator and first root administrator. Needs the ``chain`` extra."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor_service.cli._common import chain_options, needs_extra

if TYPE_CHECKING:
    from anchor_service.settings import CommandSettings

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    """Add ``deploy`` to an argparse subparsers object."""
    dep = commands.add_parser(
        "deploy", parents=[chain_options()], help="deploy IssuerRegistry and CredentialAnchor",
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
    dep.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Deploy; 1 on a revert, 2 without a node or a key."""
    with needs_extra("deploy", "chain"):
        from anchor_service.cli import _chain  # noqa: PLC0415
    return _chain.run_action(_deploy, args)


def _deploy(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.chain import deploy  # noqa: PLC0415 - loaded with the chain extra
    from anchor_service.cli._chain import signer  # noqa: PLC0415

    deployment = deploy(signer(args, settings), admin_transfer_delay=args.admin_delay)
    out = args.out or Path("deployments") / f"chain-{deployment.chain_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(deployment.to_json(), encoding="utf-8")
    print(f"IssuerRegistry   {deployment.registry}")
    print(f"CredentialAnchor {deployment.anchor}")
    print(f"record written to {out}")
    return 0
