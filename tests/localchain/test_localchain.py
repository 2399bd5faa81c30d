"""localchain on both backends: a real anvil process and the real in-process eth-tester chain.

Every test in the first part runs, unchanged, against both; the anvil-only part covers what only
a process has (state on disk, ports, stopping). No mocks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from eth_abi import abi
from eth_typing import ChecksumAddress, HexAddress, HexStr
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError
from web3.types import Wei

from localchain import (
    DEFAULT_BALANCE_WEI,
    AnvilChain,
    AnvilNotFoundError,
    AnvilStartError,
    InProcessChain,
    LocalChain,
    LocalChainError,
    PortInUseError,
    SnapshotError,
    TransactionRejectedError,
    TransactionRevertedError,
    call,
    derive_accounts,
    send_transaction,
)
from localchain.cli import main as cli_main

# Hand-assembled runtime code, using Cancun opcodes on purpose (PUSH0, TSTORE/TLOAD, MCOPY):
#   no calldata:  return block.timestamp (via transient storage and MCOPY)
#   calldata:     revert with the calldata as revert data
CLOCK_RUNTIME = bytes.fromhex(
    "36" "6016" "57"        # CALLDATASIZE PUSH1 0x16 JUMPI       -> to the revert branch
    "42" "5f" "5d"          # TIMESTAMP PUSH0 TSTORE              tstore(0, timestamp)
    "5f" "5c"               # PUSH0 TLOAD                         tload(0)
    "6020" "52"             # PUSH1 0x20 MSTORE                   mstore(0x20, timestamp)
    "6020" "6020" "5f" "5e"  # PUSH1 0x20 PUSH1 0x20 PUSH0 MCOPY   mcopy(0, 0x20, 0x20)
    "6020" "5f" "f3"        # PUSH1 0x20 PUSH0 RETURN             return(0, 0x20)
    "5b"                    # 0x16: JUMPDEST
    "36" "5f" "5f" "37"     # CALLDATASIZE PUSH0 PUSH0 CALLDATACOPY
    "36" "5f" "fd"          # CALLDATASIZE PUSH0 REVERT           revert(0, calldatasize)
)
# Returns the CHAINID opcode's value: CHAINID PUSH0 MSTORE PUSH1 0x20 PUSH0 RETURN.
CHAIN_ID_RUNTIME = bytes.fromhex("465f5260205ff3")
# A single INVALID opcode: an exceptional halt without revert data.
INVALID_RUNTIME = bytes.fromhex("fe")

# anvil's documented first three development accounts for the default mnemonic.
KNOWN_ADDRESSES = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
]
STRANGER = ChecksumAddress(HexAddress(HexStr("0x1111111111111111111111111111111111111111")))
ONE_ETHER = 10**18
DAY = 86_400

BACKENDS: dict[str, Callable[[], LocalChain]] = {
    "anvil": AnvilChain.start,
    "in-process": InProcessChain.start,
}


def init_code(runtime: bytes) -> bytes:
    """Creation code returning ``runtime``: PUSH1 len DUP1 PUSH1 9 PUSH0 CODECOPY PUSH0 RETURN."""
    assert len(runtime) < 256
    return bytes.fromhex(f"60{len(runtime):02x}8060095f395ff3") + runtime


def deploy(chain: LocalChain, runtime: bytes) -> ChecksumAddress:
    receipt = send_transaction(chain, chain.accounts[0], {"data": init_code(runtime)})
    address = receipt["contractAddress"]
    assert address is not None
    return address


def error_string(reason: str) -> bytes:
    return bytes.fromhex("08c379a0") + abi.encode(["string"], [reason])


def read_uint(chain: LocalChain, address: ChecksumAddress) -> int:
    return int.from_bytes(call(chain, {"to": address}), "big")


@pytest.fixture(scope="module", params=list(BACKENDS))
def chain(request: pytest.FixtureRequest) -> Iterator[LocalChain]:
    with BACKENDS[request.param]() as started:
        yield started


@pytest.fixture(scope="module")
def clock(chain: LocalChain) -> ChecksumAddress:
    return deploy(chain, CLOCK_RUNTIME)


@pytest.fixture
def fresh(chain: LocalChain) -> Iterator[LocalChain]:
    """The module's chain, put back as it was after the test."""
    snapshot = chain.snapshot()
    yield chain
    chain.revert(snapshot)


# --- both backends ------------------------------------------------------------------------


def test_accounts_are_deterministic_unlocked_and_funded(fresh: LocalChain) -> None:
    addresses = [account.address for account in fresh.accounts]
    assert addresses[:3] == KNOWN_ADDRESSES
    assert addresses == [account.address for account in derive_accounts()]
    assert len(addresses) == 10
    assert list(fresh.w3.eth.accounts) == addresses
    for address in addresses:
        assert fresh.w3.eth.get_balance(address, 0) == DEFAULT_BALANCE_WEI
    assert fresh.chain_id == fresh.w3.eth.chain_id == 31337


def test_value_transfer(fresh: LocalChain) -> None:
    sender = fresh.accounts[1]
    before = fresh.w3.eth.get_balance(sender.address)
    receipt = send_transaction(fresh, sender, {"to": STRANGER, "value": ONE_ETHER})
    assert receipt["status"] == 1
    assert fresh.w3.eth.get_balance(STRANGER) == ONE_ETHER
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert fresh.w3.eth.get_balance(sender.address) == before - ONE_ETHER - fee


def test_unlocked_account_sends_without_local_key(fresh: LocalChain) -> None:
    tx_hash = fresh.w3.eth.send_transaction(
        {"from": fresh.accounts[2].address, "to": STRANGER, "value": Wei(7)}
    )
    assert fresh.w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
    assert fresh.w3.eth.get_balance(STRANGER) == 7


def test_deployed_contract_runs_cancun_code(fresh: LocalChain, clock: ChecksumAddress) -> None:
    assert bytes(fresh.w3.eth.get_code(clock)) == CLOCK_RUNTIME
    assert read_uint(fresh, clock) == fresh.latest_timestamp()


def test_chainid_opcode_sees_the_chain_id(fresh: LocalChain) -> None:
    assert read_uint(fresh, deploy(fresh, CHAIN_ID_RUNTIME)) == 31337


def test_increase_time_moves_block_timestamp(fresh: LocalChain, clock: ChecksumAddress) -> None:
    before = read_uint(fresh, clock)
    number = fresh.w3.eth.block_number
    fresh.increase_time(DAY)
    assert read_uint(fresh, clock) - before >= DAY
    assert fresh.latest_timestamp() - before >= DAY
    assert fresh.w3.eth.block_number == number + 1


def test_mine(fresh: LocalChain) -> None:
    number = fresh.w3.eth.block_number
    fresh.mine(3)
    fresh.mine(0)
    assert fresh.w3.eth.block_number == number + 3
    with pytest.raises(ValueError, match="blocks"):
        fresh.mine(-1)


def test_snapshot_revert_restores_balance(chain: LocalChain) -> None:
    snapshot = chain.snapshot()
    number = chain.w3.eth.block_number
    balance = chain.w3.eth.get_balance(STRANGER)
    send_transaction(chain, chain.accounts[3], {"to": STRANGER, "value": ONE_ETHER})
    assert chain.w3.eth.get_balance(STRANGER) == balance + ONE_ETHER
    chain.revert(snapshot)
    assert chain.w3.eth.get_balance(STRANGER) == balance
    assert chain.w3.eth.block_number == number
    # Used up, as on anvil and Hardhat.
    with pytest.raises(SnapshotError):
        chain.revert(snapshot)
    with pytest.raises(SnapshotError):
        chain.revert("0x7fffffff")


@pytest.mark.parametrize(
    ("payload", "reason", "web3_error"),
    [
        pytest.param(bytes.fromhex("deadbeef"), None, ContractCustomError, id="custom-error"),
        pytest.param(error_string("not allowed"), "not allowed", ContractLogicError,
                     id="error-string"),
        pytest.param(bytes.fromhex("4e487b71") + abi.encode(["uint256"], [0x11]), "panic 0x11",
                     ContractPanicError, id="panic"),
    ],
)
def test_revert_raises_typed_error_with_data(
    fresh: LocalChain,
    clock: ChecksumAddress,
    payload: bytes,
    reason: str | None,
    web3_error: type[Exception],
) -> None:
    account = fresh.accounts[4]
    with pytest.raises(TransactionRevertedError) as by_call:
        call(fresh, {"to": clock, "data": payload})
    assert (by_call.value.data, by_call.value.reason) == (payload, reason)

    # Caught by gas estimation: nothing is sent.
    nonce = fresh.w3.eth.get_transaction_count(account.address)
    with pytest.raises(TransactionRevertedError) as by_estimate:
        send_transaction(fresh, account, {"to": clock, "data": payload})
    assert (by_estimate.value.data, by_estimate.value.receipt) == (payload, None)
    assert fresh.w3.eth.get_transaction_count(account.address) == nonce

    # With an explicit gas limit it is mined, fails, and is replayed for its data.
    with pytest.raises(TransactionRevertedError) as mined:
        send_transaction(fresh, account, {"to": clock, "data": payload, "gas": 100_000})
    assert mined.value.receipt is not None
    assert mined.value.receipt["status"] == 0
    assert mined.value.data == payload

    # Plain web3 raises the same exception class on both backends.
    with pytest.raises(web3_error):
        fresh.w3.eth.call({"to": clock, "data": payload})


def test_exceptional_halt_is_a_revert_without_data(fresh: LocalChain) -> None:
    invalid = deploy(fresh, INVALID_RUNTIME)
    with pytest.raises(TransactionRevertedError, match="EVM error") as failure:
        call(fresh, {"to": invalid})
    assert failure.value.data is None
    with pytest.raises(TransactionRevertedError):
        send_transaction(fresh, fresh.accounts[0], {"to": invalid})


def test_refused_transaction_is_rejected(fresh: LocalChain) -> None:
    account = fresh.accounts[5]
    send_transaction(fresh, account, {"to": STRANGER, "value": 1})
    with pytest.raises(TransactionRejectedError, match="nonce"):
        send_transaction(fresh, account, {"to": STRANGER, "value": 1, "nonce": 0})
    with pytest.raises(TransactionRejectedError):
        send_transaction(fresh, account, {"to": STRANGER, "value": 2 * DEFAULT_BALANCE_WEI})


# --- anvil only ---------------------------------------------------------------------------


def test_state_file_keeps_history_across_restart(tmp_path: Path) -> None:
    state = tmp_path / "chain" / "state.json"
    with AnvilChain.start(state_path=state) as first:
        contract = deploy(first, CLOCK_RUNTIME)
        transfer = send_transaction(first, first.accounts[6], {"to": STRANGER, "value": 5})
        number = first.w3.eth.block_number
        head = first.w3.eth.get_block("latest")["hash"]
        sender_balance = first.w3.eth.get_balance(first.accounts[6].address)
    assert state.is_file()

    with AnvilChain.start(state_path=state) as second:
        assert second.w3.eth.block_number == number
        assert second.w3.eth.get_block(number)["hash"] == head
        assert bytes(second.w3.eth.get_code(contract)) == CLOCK_RUNTIME
        assert second.w3.eth.get_balance(STRANGER) == 5
        assert second.w3.eth.get_balance(second.accounts[6].address) == sender_balance
        old = second.w3.eth.get_transaction_receipt(transfer["transactionHash"])
        assert old["blockNumber"] == transfer["blockNumber"]
        # The chain goes on from there: nonces and contracts still work.
        send_transaction(second, second.accounts[6], {"to": STRANGER, "value": 1})
        assert read_uint(second, contract) == second.latest_timestamp()


def test_close_stops_the_process_and_cleans_up() -> None:
    chain = AnvilChain.start()
    assert chain.is_running()
    pid, log_path, port = chain.pid, chain.log_path, chain.port
    assert log_path.is_file()
    chain.close()
    chain.close()  # idempotent
    assert chain.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, and reaped (no zombie left either)
    assert not log_path.parent.exists()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with pytest.raises(LocalChainError, match="closed"):
        chain.mine()


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} .* already in use"):
            AnvilChain.start(port=port)


def test_anvil_dying_at_start_reports_its_output(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("this is not a state dump")
    with pytest.raises(AnvilStartError, match="anvil exited with code") as failure:
        AnvilChain.start(state_path=state)
    assert "state.json" in failure.value.log_tail


def test_missing_binary_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANVIL_BIN", str(tmp_path / "no-anvil-here"))
    with pytest.raises(AnvilNotFoundError, match="ANVIL_BIN"):
        AnvilChain.start()


# --- command line -------------------------------------------------------------------------


def test_cli_accounts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["accounts", "--count", "3"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines()[1:]] == KNOWN_ADDRESSES


def test_cli_user_error_has_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["accounts", "--count", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("localchain: error: account count")
    assert "Traceback" not in err


def test_cli_anvil_serves_until_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    command = [sys.executable, "-m", "localchain", "anvil", "--port", "0", "--state", str(state)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as cli:
        assert cli.stdout is not None
        banner = []
        for line in cli.stdout:
            banner.append(line)
            if line.startswith("Ctrl-C"):
                break
        fields = dict(line.split(":", 1) for line in banner if ":" in line)
        url = fields["RPC URL"].strip()
        assert fields["first account"].split()[0] == KNOWN_ADDRESSES[0]
        anvil_pid = int(next(line for line in banner if line.startswith("anvil pid")).split()[2]
                        .rstrip(","))
        answer = requests.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            timeout=5,
        ).json()
        assert answer["result"] == hex(31337)
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=20) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(anvil_pid, 0)
    assert state.is_file()


def test_cli_anvil_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "localchain", "anvil", "--port", str(port)],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert result.returncode == 1
    assert "already in use" in result.stderr
    assert "Traceback" not in result.stderr
