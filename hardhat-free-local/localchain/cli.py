"""``python -m localchain``: run anvil in the foreground, or list the development accounts.

Exit codes: 0 success (including a stop by Ctrl-C or SIGTERM), 1 anvil failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from localchain.accounts import (
    DEFAULT_ACCOUNT_COUNT,
    DEFAULT_CHAIN_ID,
    DEFAULT_MNEMONIC,
    DERIVATION_PATH_PREFIX,
    derive_accounts,
)
from localchain.anvil import AnvilChain
from localchain.errors import LocalChainError

__all__ = ["main"]

DEFAULT_PORT = 8545


class _Stop(Exception):  # noqa: N818  # a control-flow signal, not an error
    """SIGTERM arrived: leave the ``with`` block so that anvil is stopped cleanly."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localchain``."""
    parser = argparse.ArgumentParser(
        prog="python -m localchain", description=(__doc__ or "").split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    anvil = commands.add_parser("anvil", help="run anvil on 127.0.0.1 until Ctrl-C or SIGTERM")
    anvil.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"TCP port, 0 for any free one (default {DEFAULT_PORT})")
    anvil.add_argument("--state", type=Path, default=None, metavar="PATH",
                       help="JSON file to load the chain from and save it to on exit")
    anvil.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID,
                       help=f"chain id (default {DEFAULT_CHAIN_ID})")
    anvil.add_argument("--accounts", type=int, default=DEFAULT_ACCOUNT_COUNT,
                       help=f"funded development accounts (default {DEFAULT_ACCOUNT_COUNT})")
    accounts = commands.add_parser("accounts", help="print the development accounts' addresses")
    accounts.add_argument("--count", type=int, default=DEFAULT_ACCOUNT_COUNT,
                          help=f"how many (default {DEFAULT_ACCOUNT_COUNT})")
    args = parser.parse_args(argv)
    try:
        if args.command == "accounts":
            return _accounts(args.count)
        return _anvil(args.port, args.state, args.chain_id, args.accounts)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except ValueError as exc:
        print(f"localchain: error: {exc}", file=sys.stderr)
        return 2
    except (LocalChainError, OSError) as exc:
        print(f"localchain: error: {exc}", file=sys.stderr)
        return 1


def _accounts(count: int) -> int:
    accounts = derive_accounts(DEFAULT_MNEMONIC, count)
    print(f"# mnemonic: {DEFAULT_MNEMONIC!r}, path {DERIVATION_PATH_PREFIX}/i")
    for index, account in enumerate(accounts):
        print(f"{index:3d} {account.address}")
    return 0


def _anvil(port: int, state: Path | None, chain_id: int, accounts: int) -> int:
    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with AnvilChain.start(port, state, chain_id=chain_id, accounts=accounts) as chain:
            print(f"RPC URL:       {chain.rpc_url}")
            print(f"chain id:      {chain.chain_id}")
            print(f"first account: {chain.accounts[0].address} (10000 ETH; "
                  "`python -m localchain accounts` lists all)")
            print(f"state file:    {state.absolute() if state else 'none (in memory)'}")
            print(f"anvil pid {chain.pid}, log {chain.log_path}")
            print("Ctrl-C or SIGTERM stops it.", flush=True)
            code = chain.wait()
            # Only reached if anvil stopped by itself.
            tail = chain.log_tail()
            raise LocalChainError(f"anvil exited unexpectedly with code {code}\n{tail}")
    except (KeyboardInterrupt, _Stop):
        print("stopped", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
