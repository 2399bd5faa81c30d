"""The chain side of ``deploy`` and ``registry ...``: the JSON-RPC connection, the signer and
the deployment record, and the exit codes of chain failures (1 a revert, named by the
contract's error; 2 no node, bad input or setup). Needs web3 (the ``chain`` extra): the command
modules import this module when a chain command runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError
from web3 import Web3
from web3.exceptions import Web3Exception

from anchor_service.chain import Deployment, Transactor, load_deployment
from anchor_service.cli._common import note
from anchor_service.errors import ChainError, RevertError
from anchor_service.keystore import signer_account
from anchor_service.settings import CommandSettings

__all__ = ["Action", "connect", "read_deployment", "run_action", "signer"]

Action = Callable[[argparse.Namespace, CommandSettings], int]


def run_action(action: Action, args: argparse.Namespace) -> int:
    """Run ``action`` with the commands' settings; 1 on a revert, 2 on other chain errors.
    ``--rpc-url`` wins over ``MICROCRED_RPC_URL``."""
    settings = CommandSettings()
    if args.rpc_url is None:
        args.rpc_url = settings.rpc_url
    try:
        return action(args, settings)
    except RevertError as exc:
        note(str(exc))
        return 1
    except ValidationError:
        raise  # a ValueError too, but a setting's: the command line reports it by name
    except (Web3Exception, ValueError) as exc:
        note(f"error: {exc}")
        return 2


def connect(args: argparse.Namespace) -> Web3:
    """A connection to ``--rpc-url``, checked to answer."""
    w3 = Web3(Web3.HTTPProvider(args.rpc_url, request_kwargs={"timeout": 30}))
    if not w3.is_connected():
        raise ChainError(f"no JSON-RPC node answers at {args.rpc_url}")
    return w3


def signer(args: argparse.Namespace, settings: CommandSettings) -> Transactor:
    """Transactions signed by ``--keystore`` (or ``MICROCRED_PRIVATE_KEY``) on the node."""
    return Transactor(connect(args), signer_account(args.keystore, settings))


def read_deployment(path: Path, w3: Web3, rpc_url: str) -> Deployment:
    """The deployment record at ``path``, which must be for the chain of ``w3``."""
    deployment = load_deployment(path)
    if deployment.chain_id != w3.eth.chain_id:
        raise ChainError(
            f"{path} is for chain {deployment.chain_id}, but {rpc_url} is chain "
            f"{w3.eth.chain_id}"
        )
    return deployment
