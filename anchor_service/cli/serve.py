"""``anchor-service serve``: the HTTP service in the foreground, configured by
:class:`~anchor_service.settings.ServiceSettings` (``MICROCRED_*``, or ``--config FILE``).
``anchor-service stack``: anvil, the contracts, a demo issuer and the service on this machine
(:func:`anchor_service.stack.run_stack`). Both need the ``service`` extra, and ``stack`` also
the development package ``localchain`` (hardhat-free-local/); Ctrl-C ends them with exit
code 0."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anchor_service.cli._common import needs_extra

__all__ = ["register", "run_serve", "run_stack"]


def register(commands: Any) -> None:
    """Add ``serve`` and ``stack`` to an argparse subparsers object."""
    serve = commands.add_parser("serve", help="run the HTTP service (MICROCRED_* settings)")
    serve.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings")
    serve.add_argument("--workers", type=_workers, metavar="N",
                       help="processes serving the port (0: one per CPU; default: "
                       "MICROCRED_WORKERS, else 1)")
    serve.set_defaults(handler=run_serve)
    stack = commands.add_parser("stack", help="anvil + contracts + demo issuer + the service")
    stack.add_argument("--data-dir", type=Path, default=Path("data"))
    stack.add_argument("--port", type=int, default=8080)
    stack.add_argument("--chain-port", type=int, default=8545)
    stack.add_argument("--workers", type=_workers, default=0, metavar="N",
                       help="processes serving the port (default 0: one per CPU)")
    stack.set_defaults(handler=run_stack)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted, with logs redacted of every secret in the settings."""
    with needs_extra("serve", "service"):
        from anchor_service.chain import load_deployment  # noqa: PLC0415
        from anchor_service.logs import Redactor, configure_logging  # noqa: PLC0415
        from anchor_service.migrations import ensure_current  # noqa: PLC0415
        from anchor_service.settings import ServiceSettings  # noqa: PLC0415
        from anchor_service.workers import serve  # noqa: PLC0415
    chosen = {} if args.workers is None else {"workers": args.workers}
    settings = ServiceSettings(_env_file=args.config, **chosen)
    # A deployment record that is missing or malformed, or a database at another schema
    # revision, is refused here, as a message and an exit code (inside the server's start-up
    # it would be a traceback in its log); the record first, so that a misconfigured start
    # creates no database.
    _check_contracts(settings.rpc_url, load_deployment(settings.deployment))
    ensure_current(settings.database_url)
    repeats = configure_logging(json_lines=settings.log_json,
                                redact=Redactor(settings.secrets()),
                                repeat_limit=settings.log_repeat_limit,
                                repeat_interval=settings.log_repeat_interval)
    try:
        return serve(settings, at_worker_exit=repeats.flush)
    except KeyboardInterrupt:
        return 0
    finally:
        repeats.flush()


def _workers(text: str) -> int:
    """``--workers``: a count of processes, 0 for one per CPU."""
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 0 <= count <= 256:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers from 0 to 256")
    return count


def _check_contracts(rpc_url: str, deployment: Any) -> None:
    """Refuse (:class:`~anchor_service.errors.ContractVersionError`: a message and exit code
    2) a deployment whose contracts are not 2.x, when the node answers as the deployment's
    chain now; a node that is down or on another chain is left to the service, which reports
    it on ``/readyz`` and checks the contracts once the node answers."""
    from web3 import Web3  # noqa: PLC0415
    from web3.exceptions import Web3Exception  # noqa: PLC0415

    from anchor_service.chain import check_contract_versions  # noqa: PLC0415

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    try:
        if int(w3.eth.chain_id) != deployment.chain_id:
            return
    except (Web3Exception, OSError, ValueError):
        return
    try:
        check_contract_versions(w3, deployment)
    except (Web3Exception, OSError):
        return


def run_stack(args: argparse.Namespace) -> int:
    """Bring the local stack up in ``--data-dir`` and serve until interrupted."""
    with needs_extra("stack", "service"):
        from anchor_service import stack  # noqa: PLC0415
        from anchor_service.settings import CommandSettings, revealed  # noqa: PLC0415
    password = revealed(CommandSettings().keystore_password, stack.DEMO_KEYSTORE_PASSWORD)
    try:
        return stack.run_stack(
            args.data_dir, port=args.port, chain_port=args.chain_port,
            keystore_password=password, workers=args.workers)
    except KeyboardInterrupt:
        return 0
