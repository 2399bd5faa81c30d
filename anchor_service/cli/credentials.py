"""``anchor-service credentials revoke|suspend|reinstate ID...``: change the status of
credentials on chain by their ids in the service's database, signed by their issuer's
anchoring key from the service's keystore folder (as ``POST /v1/credentials/revoke`` does,
without the HTTP service). The settings are the service's (``MICROCRED_*`` or ``--config
FILE``): the database, the chain node, the deployment record and the keystore folder and
password.

Every id is checked before anything is sent (all or nothing): unknown ids, ids of several
issuers, credentials anchored on a 1.x deployment and, to reinstate, revoked credentials exit
2 with a message. The transactions (one per status list and per 10,000 indices) are printed,
one hash a line. A revert exits 1 with the contract's error. Needs the ``service`` extra.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anchor_service.cli._common import needs_extra, note, one_line_database_errors
from anchor_service.errors import AnchorServiceError, RevertError

__all__ = ["register", "run"]

_ACTIONS = {
    "revoke": "revoke credentials (final, unless a root administrator lifts it)",
    "suspend": "suspend credentials (reversible)",
    "reinstate": "lift the suspension of credentials (refused for revoked ones)",
}


def _reason(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 255:
        raise argparse.ArgumentTypeError(f"{text!r:.40} is not a reason code (0 to 255)")
    return int(text)


def register(commands: Any) -> None:
    """Add ``credentials`` and its subcommands to an argparse subparsers object."""
    group = commands.add_parser(
        "credentials", help="change the status of credentials on chain, by id",
        description="Revoke, suspend or reinstate credentials of the service's database on "
        "chain, signed by their issuer's anchoring key (MICROCRED_* settings or --config).")
    sub = group.add_subparsers(dest="credentials_command", required=True, metavar="COMMAND")
    for name, summary in _ACTIONS.items():
        cmd = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:]
                             + ", by their ids; all of one issuer.")
        cmd.add_argument("ids", nargs="+", metavar="ID", help="credential ids")
        cmd.add_argument("--reason", type=_reason, default=0,
                         help="reason code recorded in the events (0 to 255)")
        cmd.add_argument("--config", type=Path,
                         help="a .env-style file of MICROCRED_* settings")
        cmd.set_defaults(handler=run, action=name)


def run(args: argparse.Namespace) -> int:
    """Change the credentials' status; 1 on a revert, 2 on bad input or setup."""
    with needs_extra(f"credentials {args.action}", "service"):
        from web3 import Web3  # noqa: PLC0415
        from web3.exceptions import Web3Exception  # noqa: PLC0415

        from anchor_service.cli._chain import read_deployment  # noqa: PLC0415
        from anchor_service.keystore import keystore_path, read_keystore  # noqa: PLC0415
        from anchor_service.settings import ServiceSettings, revealed  # noqa: PLC0415
        from anchor_service.status import StatusAction, change_credentials  # noqa: PLC0415
        from anchor_service.store import Store  # noqa: PLC0415
    one_line_database_errors()
    settings = ServiceSettings(_env_file=args.config)
    store = Store(settings.database_url, pool_size=2)
    try:
        found = store.credentials(args.ids)
        missing = [public_id for public_id in args.ids if public_id not in found]
        if missing:
            raise AnchorServiceError(f"no credential {', '.join(missing[:5])}"
                                     + (" ..." if len(missing) > 5 else "")
                                     + f" in {store}; nothing was changed")
        records = [found[public_id] for public_id in dict.fromkeys(args.ids)]
        issuers = {record.issuer_id for record in records}
        if len(issuers) != 1:
            raise AnchorServiceError(f"the credentials belong to {len(issuers)} issuers: "
                                     "change one issuer's at a time (each signs its own)")
        issuer = store.issuer(issuers.pop())
        path = keystore_path(settings.keystore_dir, issuer.key_address)
        if not path.exists():
            raise AnchorServiceError(f"no keystore for issuer {issuer.name} "
                                     f"({issuer.key_address}) in {settings.keystore_dir}")
        account = read_keystore(path, revealed(settings.keystore_password))
        w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 60}))
        try:
            # The record must be for the node's chain, as every command that sends checks.
            deployment = read_deployment(settings.deployment, w3, "the chain node")
            _, anchor = deployment.contracts(w3)
            hashes = change_credentials(w3, anchor, issuer, account,
                                        action=StatusAction(args.action), records=records,
                                        reason=args.reason)
        except RevertError as exc:
            note(str(exc))
            return 1
        except Web3Exception as exc:
            raise AnchorServiceError(f"the chain node failed: {exc}") from None
    finally:
        store.close()
    for tx_hash in hashes:
        print("0x" + tx_hash.hex())
    note(f"{args.action}: {len(records)} credential(s) of issuer {issuer.name} in "
         f"{len(hashes)} transaction(s)")
    return 0
