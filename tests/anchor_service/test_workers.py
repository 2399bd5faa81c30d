"""``anchor-service serve --workers N``: real processes on a real anvil, real HTTP. The
supervisor serves nothing itself and every worker serves the port (which process holds the
server side of each connection is read from /proc), a killed worker is replaced, SIGTERM
stops them all, a SIGKILLed supervisor leaves no worker behind, a client's rate limit holds
across workers, and two workers anchor everything exactly once on SQLite and PostgreSQL. The
shared bucket table itself is tested across real forks."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from anchor_service._affinity import worker_cpus
from anchor_service.api.limits import SharedBuckets
from anchor_service.store import Store
from anchor_service.workers import listening_sockets, worker_count
from testkit.net import wait_until_up
from testkit.processes import (
    ServiceProcess,
    Submitters,
    assert_anchored_exactly_once,
    prepare,
    wait_until_all_anchored,
)
from testkit.world import World


def _children(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(predicate: object, what: str, timeout: float = 60) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _workers_of(service: ServiceProcess, count: int = 2) -> list[int]:
    assert service.process is not None
    parent = service.process.pid
    _wait_for(lambda: len(_children(parent)) == count, f"{count} workers")
    return sorted(_children(parent))


def _get(port: int, path: str = "/healthz", timeout: float = 10) -> httpx.Response:
    """One request on a new connection."""
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                found.add(link[8:-1])
    return found


def _request(port: int, path: str, workers: list[int]) -> tuple[int, int | None]:
    """The status of one GET on a new connection, and which of ``workers`` holds the server
    side of that connection (None: none of them), read from /proc while it is kept alive."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status = int(conn.recv(65536).split(b" ", 2)[1])
        client_port = conn.getsockname()[1]
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.split(":")[1], 16) == port
                    and int(remote.split(":")[1], 16) == client_port):
                inode = fields[9]
        owners = [pid for pid in workers if inode in _socket_inodes(pid)]
    return status, owners[0] if owners else None


@pytest.fixture
def two_workers(anvil_world: World, tmp_path: Path) -> Iterator[ServiceProcess]:
    env, port, *_ = prepare(anvil_world, tmp_path)
    service = ServiceProcess({**env, "MICROCRED_WORKERS": "2"}, port, tmp_path / "serve.log")
    service.start()
    try:
        yield service
    finally:
        service.kill()


def test_each_worker_serves_the_port_and_a_killed_one_is_replaced(
        two_workers: ServiceProcess) -> None:
    """16 new connections: every one is answered by a worker (never by the supervisor), and
    both workers answer some (the kernel spreads connections over the workers' sockets)."""
    service, port = two_workers, two_workers.port
    assert service.process is not None
    workers = _workers_of(service)
    served = [_request(port, "/healthz", workers) for _ in range(16)]
    assert {status for status, _ in served} == {200}
    assert {owner for _, owner in served} == set(workers)
    first, second = workers
    os.kill(first, signal.SIGKILL)
    _wait_for(lambda: len(_children(service.process.pid) - {first}) == 2, "a new worker")
    replacement = (_children(service.process.pid) - {second}).pop()
    workers = [second, replacement]
    served = [_request(port, "/healthz", workers) for _ in range(16)]
    assert {status for status, _ in served} == {200}
    assert {owner for _, owner in served} == set(workers)
    assert service.process.poll() is None


def _listening_on(port: int) -> int:
    """How many sockets listen on ``port`` (IPv4, this network namespace)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # LISTEN
            count += 1
    return count


def test_a_worker_waiting_to_restart_leaves_no_socket_for_new_connections(
        two_workers: ServiceProcess) -> None:
    """One worker killed each time it comes back, 5 times: its restart waits 8 s (0.5 s,
    doubled for each young death). Meanwhile only the live worker's socket listens on the
    port, and every new connection is answered by the live worker; a socket left open for
    the waiting worker would hold about half of them unanswered until the restart."""
    service, port = two_workers, two_workers.port
    assert service.process is not None
    parent = service.process.pid
    workers = _workers_of(service)
    served = [_request(port, "/healthz", workers) for _ in range(16)]
    assert {owner for _, owner in served} == set(workers)  # both serve
    survivor, victim = workers
    assert _listening_on(port) == 2
    killed: set[int] = set()
    for _ in range(5):
        os.kill(victim, signal.SIGKILL)
        killed.add(victim)
        if len(killed) < 5:
            _wait_for(lambda: bool(_children(parent) - killed - {survivor}), "its restart")
            victim = (_children(parent) - killed - {survivor}).pop()
    _wait_for(lambda: _listening_on(port) == 1, "the waiting worker's socket to be closed", 5)
    answered = [_get(port, timeout=5).status_code for _ in range(20)]
    assert answered == [200] * 20
    assert _children(parent) == {survivor}  # the other still waits for its restart
    assert service.process.poll() is None


def test_sigterm_stops_every_worker_and_exits_0(two_workers: ServiceProcess) -> None:
    workers = _workers_of(two_workers)
    assert two_workers.process is not None
    two_workers.process.send_signal(signal.SIGTERM)
    assert two_workers.process.wait(60) == 0
    assert not any(_alive(pid) for pid in workers)


def test_ctrl_c_stops_every_worker_and_exits_0(anvil_world: World, tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it: the workers and
    the supervisor all get it; every worker stops, none is started again, exit code 0."""
    env, port, *_ = prepare(anvil_world, tmp_path)
    with open(tmp_path / "serve.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "anchor_service", "serve", "--workers", "2"],
            env={**env, "MICROCRED_LOG_JSON": "false"}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        _wait_for(lambda: len(_children(process.pid)) == 2, "2 workers")
        workers = _children(process.pid)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(60) == 0
        assert not any(_alive(pid) for pid in workers)
        assert "starting another" not in (tmp_path / "serve.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_a_sigkilled_supervisor_leaves_no_worker_serving(two_workers: ServiceProcess) -> None:
    workers = _workers_of(two_workers)
    two_workers.kill()  # SIGKILL
    _wait_for(lambda: not any(_alive(pid) for pid in workers), "the workers to die", 10)
    with pytest.raises(httpx.ConnectError):
        _get(two_workers.port, timeout=2)


def test_a_clients_rate_limit_holds_across_workers(anvil_world: World, tmp_path: Path) -> None:
    """A burst of 4 for the address: of 16 requests on new connections, spread over both
    workers, 4 are allowed (each worker alone would have allowed 4)."""
    env, port, *_ = prepare(anvil_world, tmp_path)
    service = ServiceProcess({**env, "MICROCRED_WORKERS": "2",
                              "MICROCRED_PUBLIC_RATE_LIMIT": "0.001",
                              "MICROCRED_PUBLIC_RATE_LIMIT_BURST": "4"}, port,
                             tmp_path / "serve.log")
    service.start()
    try:
        workers = _workers_of(service)
        served = [_request(port, "/metrics", workers) for _ in range(16)]
        assert {owner for _, owner in served} == set(workers)  # both workers answered
        assert sorted(status for status, _ in served) == [200] * 4 + [429] * 12
    finally:
        service.kill()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_workers_anchor_everything_exactly_once(
        anvil_world: World, tmp_path: Path, request: pytest.FixtureRequest,
        database: str) -> None:
    """Clients submit while one worker is SIGKILLed and replaced; everything answered 2xx is
    anchored once, no root twice (the issuer's sending lease keeps the workers apart)."""
    world = anvil_world
    location = (request.getfixturevalue("postgres").new_database()
                if database == "postgresql" else None)
    env, port, location, issuer_id, token = prepare(world, tmp_path, location)
    service = ServiceProcess({**env, "MICROCRED_WORKERS": "2"}, port, tmp_path / "serve.log")
    from_block = world.chain.w3.eth.block_number + 1
    service.start()
    try:
        with Submitters([port], token, tag=f"workers-{database}", threads=4) as submitters:
            time.sleep(1.5)
            os.kill(_workers_of(service)[0], signal.SIGKILL)
            time.sleep(1.5)
        assert submitters.accepted
        store = Store(location)
        try:
            wait_until_all_anchored(store, issuer_id)
            assert_anchored_exactly_once(world, store, submitters.accepted, from_block)
        finally:
            store.close()
        assert service.process is not None
        assert service.process.poll() is None
    finally:
        service.kill()


def test_a_configuration_no_worker_can_start_with_ends_the_service(
        anvil_world: World, tmp_path: Path) -> None:
    """A wrong keystore password: the first worker's failed start ends the supervisor with
    its exit code (3, uvicorn's failed start, as the one process ends), rather than workers
    being started again for ever."""
    env, *_ = prepare(anvil_world, tmp_path)
    env = {**env, "MICROCRED_WORKERS": "2", "MICROCRED_KEYSTORE_PASSWORD": "wrong",
           "MICROCRED_LOG_JSON": "false"}
    result = subprocess.run([sys.executable, "-m", "anchor_service", "serve"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "failed to start (exit code 3): stopping" in result.stderr


def test_workers_option_is_checked() -> None:
    result = subprocess.run([sys.executable, "-m", "anchor_service", "serve", "--workers",
                             "many"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "'many' is not a number of workers" in result.stderr
    assert worker_count(3) == 3
    assert worker_count(0) == len(os.sched_getaffinity(0))


def _thread_cpus(pid: int) -> list[set[int]]:
    """The CPUs each thread of process ``pid`` may run on."""
    return [os.sched_getaffinity(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")]


def _helper_of(worker: int) -> int:
    """The signing helper of ``worker``: its one child, started with it."""
    _wait_for(lambda: len(_children(worker)) == 1, f"the signing helper of worker {worker}")
    return _children(worker).pop()


def test_each_worker_runs_on_a_cpu_of_its_own_and_its_signing_helper_on_any(
        two_workers: ServiceProcess) -> None:
    """Two workers on two CPUs or more: every thread of a worker on one CPU, a different one
    for each worker, and a replacement on the CPU of the worker it replaces; the signing
    helpers, which exist to sign on another core, may run on every CPU the service may."""
    service = two_workers
    assert service.process is not None
    allowed = os.sched_getaffinity(service.process.pid)
    assert len(allowed) >= 2, f"the service may run on {allowed}: this test needs 2 CPUs"
    workers = _workers_of(service)
    cpus = {}
    for worker in workers:
        # Each worker's own threads, started once it is up (the event loop, the pipeline, the
        # status-list watcher; request threads come with requests).
        _wait_for(lambda worker=worker: len(_thread_cpus(worker)) >= 3,
                  f"the threads of worker {worker}")
        threads = _thread_cpus(worker)
        assert all(len(cpu) == 1 and cpu == threads[0] for cpu in threads), threads
        assert threads[0] <= allowed
        cpus[worker] = threads[0]
        assert os.sched_getaffinity(_helper_of(worker)) == allowed
    assert cpus[workers[0]] != cpus[workers[1]]
    os.kill(workers[0], signal.SIGKILL)
    _wait_for(lambda: len(_children(service.process.pid) - {workers[0]}) == 2, "a new worker")
    replacement = (_children(service.process.pid) - {workers[1]}).pop()
    _wait_for(lambda: bool(_children(replacement)), "the replacement's signing helper")
    assert _thread_cpus(replacement)[0] == cpus[workers[0]]


def test_workers_run_on_any_cpu_when_pinning_is_off(anvil_world: World,
                                                     tmp_path: Path) -> None:
    env, port, *_ = prepare(anvil_world, tmp_path)
    service = ServiceProcess({**env, "MICROCRED_WORKERS": "2", "MICROCRED_PIN_WORKERS": "false"},
                             port, tmp_path / "serve.log")
    service.start()
    try:
        assert service.process is not None
        allowed = os.sched_getaffinity(service.process.pid)
        for worker in _workers_of(service):
            assert _thread_cpus(worker)[0] == allowed
            assert os.sched_getaffinity(_helper_of(worker)) == allowed
    finally:
        service.kill()


def test_workers_are_pinned_only_when_each_can_have_a_cpu() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    assert worker_cpus(1) is None  # one process: nothing to hand over between workers
    assert worker_cpus(len(cpus) + 1) is None  # some CPU would hold two workers
    assert worker_cpus(len(cpus)) == (cpus if len(cpus) >= 2 else None)


def test_shared_buckets_are_one_table_for_forked_processes() -> None:
    buckets = SharedBuckets(sets=4)
    try:
        assert buckets.take("address:a", 0.001, 3, 1.0) == 0
        pid = os.fork()
        if pid == 0:  # the child takes the rest of the bucket
            code = 0 if buckets.take("address:a", 0.001, 3, 1.0) == 0 else 1
            code |= 0 if buckets.take("address:a", 0.001, 3, 1.0) == 0 else 2
            os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert buckets.take("address:a", 0.001, 3, 1.0) > 0  # spent, in this process too
        assert buckets.known("address:a")
        buckets.give_back("address:a", 3)
        assert buckets.take("address:a", 0.001, 3, 1.0) == 0
    finally:
        buckets.close()


def test_shared_buckets_stay_bounded_and_forget_the_least_recent() -> None:
    buckets = SharedBuckets(sets=2)
    try:
        keys = [f"address:{n}" for n in range(200)]
        for n, key in enumerate(keys):
            buckets.take(key, 1.0, 5, float(n + 1))
        kept = [key for key in keys if buckets.known(key)]
        assert len(kept) == buckets.capacity == 2 * SharedBuckets.WAYS
        # The most recent of each set are kept: the newest key always is, the oldest never.
        assert keys[-1] in kept
        assert keys[0] not in kept
    finally:
        buckets.close()


def test_a_worker_killed_inside_an_update_leaves_no_lock() -> None:
    buckets = SharedBuckets(sets=4)
    try:
        pid = os.fork()
        if pid == 0:
            # Dies holding the lock of the set the parent's key is in.
            with buckets._locked(buckets._place("address:b")[1]):
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(0)
        os.waitpid(pid, 0)
        taken: list[float] = []
        thread = threading.Thread(
            target=lambda: taken.append(buckets.take("address:b", 1.0, 2, 1.0)), daemon=True)
        thread.start()
        thread.join(10)
        assert taken == [0.0]
    finally:
        buckets.close()


def test_worker_sockets_share_a_port_that_is_free_and_turn_nagle_off() -> None:
    """Each worker's socket: one port for all; a port another socket listens on is refused
    rather than shared; accepted connections have TCP_NODELAY (asyncio sets it only on
    sockets whose protocol says TCP), so small answers do not wait for a delayed ACK."""
    sockets = listening_sockets("127.0.0.1", 0, 2)
    try:
        port = sockets[0].getsockname()[1]
        assert [sock.getsockname()[1] for sock in sockets] == [port, port]
        with pytest.raises(OSError, match="in use"):
            listening_sockets("127.0.0.1", port, 2)
        assert asyncio.run(_nodelay_of_accepted(sockets, port)) != 0
    finally:
        for sock in sockets:
            sock.close()


async def _nodelay_of_accepted(sockets: list[socket.socket], port: int) -> int:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    class Accepting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            if not accepted.done():
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    servers = [await loop.create_server(Accepting, sock=sock) for sock in sockets]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        result = await asyncio.wait_for(accepted, 10)
        writer.close()
        return result
    finally:
        for server in servers:
            server.close()
