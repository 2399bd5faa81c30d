"""A real local node: the anvil binary from the pinned npm package ``@foundry-rs/anvil``."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.providers.rpc import HTTPProvider
from web3.types import RPCEndpoint

from localchain.accounts import (
    DEFAULT_ACCOUNT_COUNT,
    DEFAULT_BALANCE_ETH,
    DEFAULT_CHAIN_ID,
    DEFAULT_MNEMONIC,
    DERIVATION_PATH_PREFIX,
    derive_accounts,
)
from localchain.base import LocalChain
from localchain.errors import (
    AnvilNotFoundError,
    AnvilStartError,
    LocalChainError,
    PortInUseError,
    SnapshotError,
)

__all__ = ["ANVIL_BIN_ENV", "HOST", "AnvilChain", "find_anvil"]

ANVIL_BIN_ENV = "ANVIL_BIN"
#: anvil listens on the loopback interface only: a development node must not be reachable
#: from the network (its accounts' keys are public).
HOST = "127.0.0.1"
# The package directory is hardhat-free-local/localchain, so node_modules is its sibling.
NODE_MODULES = Path(__file__).resolve().parent.parent / "node_modules"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Picking a free port and handing it to anvil is racy; retry a few times when we chose it.
AUTO_PORT_ATTEMPTS = 3


def find_anvil() -> Path:
    """Locate the anvil binary: ``$ANVIL_BIN``, then the npm package next to this package, then
    ``anvil`` on ``PATH``."""
    override = os.environ.get(ANVIL_BIN_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise AnvilNotFoundError(f"{ANVIL_BIN_ENV}={override} is not an executable file")
        return path
    bundled = NODE_MODULES / "@foundry-rs" / f"anvil-{_npm_platform()}" / "bin" / _exe("anvil")
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilNotFoundError(
        f"anvil not found: set {ANVIL_BIN_ENV}, or install the npm packages "
        f"(bash scripts/setup.sh), which provide {bundled}"
    )


class AnvilChain(LocalChain):
    """An anvil process on 127.0.0.1, owned by this object: :meth:`close` (or leaving the
    ``with`` block, or interpreter exit) terminates it.

    Create it with :meth:`start`. Output of anvil goes to :attr:`log_path`, a temporary file
    removed on close.
    """

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        session: requests.Session,
        w3: Web3,
        chain_id: int,
        rpc_url: str,
        port: int,
        accounts: list[LocalAccount],
        workdir: Path,
        state_path: Path | None,
    ) -> None:
        super().__init__(w3, chain_id, rpc_url, accounts)
        self.process = process
        self.port = port
        self.state_path = state_path
        self.log_path = workdir / "anvil.log"
        # A finalizer, not __del__: it also runs at interpreter exit, and holds no reference
        # to self, so a forgotten chain still stops its process.
        self._finalizer = weakref.finalize(
            self, _shutdown, process, session, workdir, state_path is not None
        )

    @classmethod
    def start(
        cls,
        port: int | None = None,
        state_path: Path | None = None,
        *,
        chain_id: int = DEFAULT_CHAIN_ID,
        accounts: int = DEFAULT_ACCOUNT_COUNT,
        mnemonic: str = DEFAULT_MNEMONIC,
        block_time: float | None = None,
        hardfork: str | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> AnvilChain:
        """Start anvil and return once it answers JSON-RPC.

        Args:
            port: TCP port on 127.0.0.1; ``None`` (or 0) picks a free one.
            state_path: a JSON file where anvil keeps its state (``--state``): loaded at start
                if it exists, written on :meth:`close`. Blocks, transactions, balances and
                contracts survive a restart. ``None`` keeps everything in memory.
            chain_id, accounts, mnemonic: the chain id and the funded development accounts
                (10,000 ETH each, derived along ``m/44'/60'/0'/0/i``).
            block_time: seconds between blocks for interval mining; ``None`` mines each
                transaction as it arrives.
            hardfork: anvil's ``--hardfork`` (e.g. ``"prague"``); ``None`` is anvil's default,
                the latest mainnet fork.
            startup_timeout: seconds to wait for JSON-RPC before giving up.
        """
        _check_positive_int("chain_id", chain_id)
        if port is not None and not (isinstance(port, int) and 0 <= port <= 65535):
            raise ValueError(f"port must be between 0 and 65535, not {port!r}")
        if block_time is not None and not block_time > 0:
            raise ValueError(f"block_time must be positive, not {block_time!r}")
        dev_accounts = derive_accounts(mnemonic, accounts)
        binary = find_anvil()
        if state_path is not None:
            state_path = _prepare_state_path(state_path)
        args = [
            "--host", HOST,
            "--chain-id", str(chain_id),
            "--accounts", str(accounts),
            "--mnemonic", mnemonic,
            "--derivation-path", f"{DERIVATION_PATH_PREFIX}/",
            "--balance", str(DEFAULT_BALANCE_ETH),
            "--color", "never",
        ]
        if state_path is not None:
            args += ["--state", str(state_path)]
        if block_time is not None:
            args += ["--block-time", f"{block_time:g}"]
        if hardfork is not None:
            args += ["--hardfork", hardfork]

        attempts = 1 if port else AUTO_PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            chosen = _require_free_port(port) if port else _free_port()
            try:
                return cls._launch(
                    binary=binary, args=args, port=chosen, chain_id=chain_id,
                    accounts=dev_accounts, state_path=state_path, startup_timeout=startup_timeout,
                )
            except PortInUseError:
                if attempt == attempts:
                    raise
                # Another process took the free port between our probe and anvil's bind.
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _launch(
        cls,
        *,
        binary: Path,
        args: list[str],
        port: int,
        chain_id: int,
        accounts: list[LocalAccount],
        state_path: Path | None,
        startup_timeout: float,
    ) -> AnvilChain:
        workdir = Path(tempfile.mkdtemp(prefix="localchain-anvil-"))
        log_path = workdir / "anvil.log"
        try:
            with log_path.open("wb") as log:
                process = subprocess.Popen(  # noqa: S603  # our binary and arguments, no shell
                    [str(binary), *args, "--port", str(port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    # Own process group: a Ctrl-C in the terminal reaches only Python, which
                    # then stops anvil through close(); anvil never dies behind its back.
                    start_new_session=True,
                    # And if Python itself is killed (SIGKILL), anvil gets SIGTERM (Linux).
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
                )
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise AnvilStartError(f"cannot run {binary}: {exc}") from None
        session = requests.Session()
        rpc_url = f"http://{HOST}:{port}"
        try:
            _wait_until_ready(process, session, rpc_url, log_path, startup_timeout)
            provider = HTTPProvider(
                rpc_url, session=session, request_kwargs={"timeout": 60},
                # A local node either answers or is gone: retrying only delays the error.
                exception_retry_configuration=None,
            )
            chain = cls(
                process=process, session=session, w3=Web3(provider), chain_id=chain_id,
                rpc_url=rpc_url, port=port, accounts=accounts, workdir=workdir,
                state_path=state_path,
            )
        except BaseException:
            _shutdown(process, session, workdir, keeps_state=False)
            raise
        try:
            chain._check_identity()
        except BaseException:
            chain.close()
            raise
        return chain

    def _check_identity(self) -> None:
        # Guards against answering the wrong node, or anvil ignoring an argument.
        reported = self.w3.eth.chain_id
        if reported != self.chain_id:
            raise AnvilStartError(f"anvil reports chain id {reported}, expected {self.chain_id}")
        expected = [account.address for account in self.accounts]
        if list(self.w3.eth.accounts) != expected:
            raise AnvilStartError("anvil's development accounts differ from the mnemonic's")

    @property
    def pid(self) -> int:
        """Process id of anvil."""
        return self.process.pid

    def is_running(self) -> bool:
        """Whether the anvil process is still alive."""
        return self.process.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Block until anvil exits on its own (or ``timeout``); returns its exit code."""
        return self.process.wait(timeout)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines anvil printed (empty once closed)."""
        return _tail(self.log_path, lines)

    def increase_time(self, seconds: int) -> None:
        self._check_count("seconds", seconds)
        # evm_increaseTime shifts anvil's clock for all later blocks; evm_mine makes the shift
        # visible at once, as eth-tester's time_travel does.
        self._rpc("evm_increaseTime", [seconds])
        self._rpc("evm_mine", [])

    def mine(self, blocks: int = 1) -> None:
        self._check_count("blocks", blocks)
        if blocks:
            self._rpc("anvil_mine", [hex(blocks)])

    def snapshot(self) -> str:
        return str(self._rpc("evm_snapshot", []))

    def revert(self, snapshot_id: str) -> None:
        try:
            reverted = self._rpc("evm_revert", [snapshot_id])
        except Web3RPCError as exc:
            raise SnapshotError(f"cannot revert to snapshot {snapshot_id!r}: {exc}") from None
        if reverted is not True:
            raise SnapshotError(f"unknown or already used snapshot {snapshot_id!r}")

    def close(self) -> None:
        """Stop anvil: SIGTERM (anvil then writes its ``--state`` file), SIGKILL after 10 s."""
        self._finalizer()

    def _rpc(self, method: str, params: list[Any]) -> Any:
        if not self._finalizer.alive:
            raise LocalChainError("this anvil chain is closed")
        return self.w3.manager.request_blocking(RPCEndpoint(method), params)


def _shutdown(
    process: subprocess.Popen[bytes], session: requests.Session, workdir: Path, keeps_state: bool
) -> None:
    session.close()
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                if keeps_state:
                    warnings.warn(
                        f"anvil did not stop within {STOP_TIMEOUT:g} s and was killed; "
                        "its --state file may be stale",
                        RuntimeWarning, stacklevel=2,
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    session: requests.Session,
    url: str,
    log_path: Path,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    probe: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    while True:
        code = process.poll()
        if code is not None:
            tail = _tail(log_path)
            error = PortInUseError if "Address already in use" in tail else AnvilStartError
            raise error(f"anvil exited with code {code} before answering on {url}", tail)
        try:
            answer = session.post(url, json=probe, timeout=1.0).json()
        except (requests.RequestException, ValueError):
            answer = None
        # Check the process again: an answer from a process that is not ours must not count.
        if isinstance(answer, dict) and "result" in answer and process.poll() is None:
            return
        if time.monotonic() > deadline:
            raise AnvilStartError(
                f"anvil did not answer JSON-RPC on {url} within {timeout:g} s", _tail(log_path)
            )
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _require_free_port(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as servers (anvil included) use it: lingering TIME_WAIT connections of a
        # node that just stopped do not count as "in use", a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {HOST} is already in use by another process; "
                    "choose another port, or let localchain pick a free one"
                ) from None
            raise AnvilStartError(f"cannot use port {port} on {HOST}: {exc}") from None
    return port


def _prepare_state_path(state_path: Path) -> Path:
    state_path = Path(state_path).absolute()
    if state_path.is_dir():
        raise LocalChainError(f"state_path {state_path} is a directory; give a JSON file path")
    state_path.parent.mkdir(parents=True, exist_ok=True)
    return state_path


def _tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 8192))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


def _npm_platform() -> str:
    # The npm package ships one binary package per platform: anvil-{linux,darwin,win32}-{amd64,
    # arm64}.
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    return f"{sys.platform}-{arch.get(machine, machine)}"


def _exe(name: str) -> str:
    return f"{name}.exe" if sys.platform == "win32" else name


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies, so that a
    killed Python leaves no anvil behind. Elsewhere this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


_PR_SET_PDEATHSIG = 1
