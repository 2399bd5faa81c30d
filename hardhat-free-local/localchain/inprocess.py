"""An in-process chain: eth-tester on py-evm, with the same accounts and chain id as anvil.

Three adjustments make it answer like anvil (see the classes below for the reasons):

* the chain id is 31337 (configurable) instead of eth-tester's fixed 131277322940537;
* a failed ``eth_call`` / ``eth_estimateGas`` comes back as a JSON-RPC error carrying the raw
  revert data, so web3 raises the same ``ContractLogicError`` family as with anvil;
* transactions the EVM refuses (bad nonce, no funds, ...) come back as JSON-RPC errors, i.e.
  ``Web3RPCError``, instead of py-evm's ``ValidationError`` escaping through web3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth.exceptions import Revert, VMError
from eth.vm.spoof import SpoofTransaction
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from eth_tester.backends.pyevm.main import (  # type: ignore[import-untyped]
    _execute_and_revert_transaction,
)
from eth_tester.exceptions import (  # type: ignore[import-untyped]
    TransactionFailed,
)
from eth_tester.exceptions import (
    ValidationError as TesterValidationError,
)
from eth_utils.exceptions import ValidationError as EVMValidationError
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.eth_tester.defaults import API_ENDPOINTS
from web3.types import RPCEndpoint, RPCError, RPCResponse

from localchain.accounts import (
    DEFAULT_ACCOUNT_COUNT,
    DEFAULT_BALANCE_WEI,
    DEFAULT_CHAIN_ID,
    DEFAULT_MNEMONIC,
    DERIVATION_PATH_PREFIX,
    derive_accounts,
)
from localchain.base import LocalChain
from localchain.errors import LocalChainError, SnapshotError, decode_revert_reason

__all__ = ["BLOCK_GAS_LIMIT", "InProcessChain"]

#: anvil's default block gas limit; eth-tester's own default is 30,029,122.
BLOCK_GAS_LIMIT = 30_000_000


class InProcessChain(LocalChain):
    """eth-tester's ``PyEVMBackend`` (py-evm, Prague rules) behind web3's
    ``EthereumTesterProvider``. No process, no port: ``rpc_url`` is ``None``.

    The development accounts are funded at genesis and also unlocked, so both
    ``eth_sendRawTransaction`` (sign locally) and ``eth_sendTransaction`` work, as on anvil.
    ``tester`` is the underlying ``eth_tester.EthereumTester``.
    """

    def __init__(
        self, tester: Any, w3: Web3, chain_id: int, accounts: list[LocalAccount]
    ) -> None:
        super().__init__(w3, chain_id, None, accounts)
        self.tester = tester
        # snapshot id -> eth-tester's id, oldest first; reverting drops the id and later ones.
        self._snapshots: dict[str, int] = {}
        self._closed = False

    @classmethod
    def start(
        cls,
        chain_id: int = DEFAULT_CHAIN_ID,
        accounts: int = DEFAULT_ACCOUNT_COUNT,
        mnemonic: str = DEFAULT_MNEMONIC,
    ) -> InProcessChain:
        """A fresh chain at block 0 with ``accounts`` accounts of ``mnemonic``, 10,000 ETH each."""
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
            raise ValueError(f"chain_id must be a positive integer, not {chain_id!r}")
        dev_accounts = derive_accounts(mnemonic, accounts)
        genesis_state = {
            bytes.fromhex(account.address[2:]): {
                "balance": DEFAULT_BALANCE_WEI, "nonce": 0, "code": b"", "storage": {},
            }
            for account in dev_accounts
        }
        backend = _Backend(
            genesis_parameters=_Backend.generate_genesis_params(
                overrides={"gas_limit": BLOCK_GAS_LIMIT}
            ),
            genesis_state=genesis_state,
            # Gives eth-tester the same keys, so the accounts are also unlocked for
            # eth_sendTransaction; eth-tester appends "/i" to this path.
            mnemonic=mnemonic,
            hd_path=DERIVATION_PATH_PREFIX,
        )
        _set_chain_id(backend, chain_id)
        tester = EthereumTester(backend)
        w3 = Web3(_Provider(tester, api_endpoints=_api_endpoints(chain_id)))
        if list(w3.eth.accounts) != [account.address for account in dev_accounts]:
            raise LocalChainError("eth-tester derived other accounts than localchain")
        return cls(tester, w3, chain_id, dev_accounts)

    def increase_time(self, seconds: int) -> None:
        self._check_count("seconds", seconds)
        self._ensure_open()
        latest = self.latest_timestamp()
        pending = int(self.tester.get_block_by_number("pending")["timestamp"])
        # time_travel(t) mines one block at t - 1 in eth-tester 0.14 (its comment says t), and
        # refuses t earlier than the pending block's timestamp (does nothing when equal): aim
        # one second past both so that a block is always mined at >= latest + seconds.
        self.tester.time_travel(max(latest + seconds, pending) + 1)

    def mine(self, blocks: int = 1) -> None:
        self._check_count("blocks", blocks)
        self._ensure_open()
        if blocks:
            self.tester.mine_blocks(blocks)

    def snapshot(self) -> str:
        self._ensure_open()
        tester_id = int(self.tester.take_snapshot())
        # Same shape as anvil's ids; eth-tester's counter also only grows.
        snapshot_id = hex(tester_id)
        self._snapshots[snapshot_id] = tester_id
        return snapshot_id

    def revert(self, snapshot_id: str) -> None:
        self._ensure_open()
        if snapshot_id not in self._snapshots:
            raise SnapshotError(f"unknown or already used snapshot {snapshot_id!r}")
        self.tester.revert_to_snapshot(self._snapshots[snapshot_id])
        # eth-tester would let a snapshot be reused; anvil does not. Behave like anvil.
        ids = list(self._snapshots)
        for used in ids[ids.index(snapshot_id):]:
            del self._snapshots[used]

    def close(self) -> None:
        """Nothing runs outside this object: closing forgets the snapshots and makes the
        chain's own methods raise, as on a stopped anvil (``w3`` itself keeps working)."""
        self._snapshots.clear()
        self._closed = True

    def _ensure_open(self) -> None:
        if self._closed:
            raise LocalChainError("this in-process chain is closed")


class _ExecutionFailedError(Exception):
    """A failed call or estimate, on its way from the backend to the provider, which turns it
    into the JSON-RPC error anvil would send (code 3 with data for a revert)."""

    def __init__(self, error: VMError) -> None:
        super().__init__(str(error))
        self.data: bytes | None = None
        if isinstance(error, Revert):
            output = error.args[0] if error.args else b""
            self.data = bytes(output) if isinstance(output, bytes | bytearray) else b""
            reason = decode_revert_reason(self.data)
            self.code = 3
            self.message = "execution reverted" + (f": {reason}" if reason else "")
        else:
            # An exceptional halt (invalid opcode, out of gas, ...): no data, as on anvil.
            self.code = -32603
            self.message = f"EVM error {type(error).__name__}"

    def rpc_error(self) -> RPCError:
        error = RPCError(code=self.code, message=self.message)
        if self.data is not None:
            error["data"] = "0x" + self.data.hex()
        return error


class _Backend(PyEVMBackend):  # type: ignore[misc]  # eth-tester ships no type information
    """``PyEVMBackend`` whose failed calls keep the raw revert data.

    The original ``call`` reduces a revert to a message string (losing custom-error data) and
    ``estimate_gas`` buries it in a wrapped exception; both now raise ``_ExecutionFailedError``.
    """

    def call(self, transaction: dict[str, Any], block_number: Any = "latest") -> bytes:
        # PyEVMBackend.call of eth-tester 0.14, minus the message formatting.
        defaulted = dict(transaction)
        if "gas" not in defaulted:
            defaulted["gas"] = self._max_available_gas()
        unsigned = self._get_normalized_and_unsigned_evm_transaction(defaulted, block_number)
        spoofed = SpoofTransaction(unsigned, from_=transaction["from"])
        computation = _execute_and_revert_transaction(self.chain, spoofed, block_number)
        if computation.is_error:
            raise _ExecutionFailedError(computation.error)
        return bytes(computation.output)

    def estimate_gas(self, transaction: dict[str, Any], block_number: Any = "latest") -> int:
        try:
            return int(super().estimate_gas(transaction, block_number))
        except TransactionFailed as exc:
            if isinstance(exc.__cause__, VMError):
                raise _ExecutionFailedError(exc.__cause__) from exc
            raise


class _Provider(EthereumTesterProvider):
    """``EthereumTesterProvider`` that answers failures with JSON-RPC errors, like a node."""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return super().make_request(method, params)
        except _ExecutionFailedError as exc:
            return self._error_response(exc.rpc_error())
        except (EVMValidationError, TesterValidationError) as exc:
            # py-evm's refusal of a transaction (nonce, balance, intrinsic gas, ...).
            return self._error_response(RPCError(code=-32000, message=str(exc)))

    def _error_response(self, error: RPCError) -> RPCResponse:
        return RPCResponse(jsonrpc="2.0", id=repr(self._current_request_id), error=error)


def _set_chain_id(backend: Any, chain_id: int) -> None:
    # eth-tester hard-codes the id as a class attribute of a chain class it defines inside
    # setup_tester_chain(). A subclass with another id keeps everything else, and survives
    # revert_to_snapshot(), which rebuilds the chain from the class (from_genesis_header). The
    # id only feeds the VM's chain context (CHAINID, EIP-155 signing), not the genesis block.
    tester_chain_class = type(backend.chain)
    backend.chain.__class__ = type(
        f"LocalChain{chain_id}", (tester_chain_class,), {"chain_id": chain_id}
    )


def _api_endpoints(chain_id: int) -> dict[str, dict[str, Callable[..., Any]]]:
    # web3's endpoint table answers eth_chainId and net_version with constants; override them.
    endpoints = {namespace: dict(methods) for namespace, methods in API_ENDPOINTS.items()}
    endpoints["eth"]["chainId"] = _constant(chain_id)
    endpoints["net"]["version"] = _constant(str(chain_id))
    return endpoints


def _constant(value: Any) -> Callable[..., Any]:
    def endpoint(_tester: Any, _params: Any) -> Any:
        return value

    return endpoint
