"""The head requests of a reader made from a URL go over one kept-alive connection of its own,
on real anvil behind a real HTTP/1.1 proxy: the head it reads is web3's latest block; the
URL's path, query and basic auth are sent as web3 sends them; a connection the node drops, a
node that restarts and an explicit close are survived; an error answer, a JSON-RPC error,
non-JSON and a huge answer are failed reads whose text holds no part of the URL, and a huge
answer is refused without being read to its end."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import httpx
import pytest

from testkit.world import World
from verifier.chain import JsonRpcChainReader
from verifier.errors import ChainReadError

HUGE = 64 * 1024 * 1024  # bytes of a huge answer: far over the reader's bound (4 MiB)

Reply = tuple[int, dict[str, str], Iterator[bytes]]  # status, headers, body chunks


@dataclass(frozen=True)
class Seen:
    """A request the proxy got: on which of its connections (numbered from 1), to which
    path (with its query), with which headers and JSON-RPC method."""

    connection: int
    path: str
    headers: dict[str, str]
    method: str


class KeptAliveProxy:
    """A JSON-RPC proxy on loopback in front of ``upstream`` that speaks HTTP/1.1 and keeps
    connections alive, answering on any path. It records every request. ``answer``, if set,
    answers a request instead of the node (unless it returns None). With
    ``drop_after_answer`` it closes each connection right after answering, without saying so
    (a kept-alive connection the node dropped). :meth:`stop` closes the listener and every
    open connection (the node is gone)."""

    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = upstream
        self.seen: list[Seen] = []
        self.drop_after_answer = False
        self.answer: Callable[[dict[str, object]], Reply | None] | None = None
        self.sent = 0  # body bytes of the last answer the proxy managed to send
        self.answered = threading.Event()  # set once an answer's body is sent or cut off
        self._http = httpx.Client(timeout=30)
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.append(self.connection)
                    self.number = len(proxy._connections)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = json.loads(body)
                with proxy._lock:
                    proxy.seen.append(Seen(self.number, self.path, dict(self.headers),
                                           str(request.get("method"))))
                proxy.reply(self, body, request)
                if proxy.drop_after_answer:
                    self.close_connection = True

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def methods(self) -> list[str]:
        with self._lock:
            return [seen.method for seen in self.seen]

    def reply(self, handler: BaseHTTPRequestHandler, body: bytes,
              request: dict[str, object]) -> None:
        answered = None if self.answer is None else self.answer(request)
        if answered is None:
            upstream = self._http.post(self.upstream, content=body,
                                       headers={"Content-Type": "application/json"})
            status, headers, chunks = upstream.status_code, {}, iter([upstream.content])
            headers["Content-Length"] = str(len(upstream.content))
        else:
            status, headers, chunks = answered
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        self.sent = 0
        try:
            for chunk in chunks:
                handler.wfile.write(chunk)
                self.sent += len(chunk)
        except OSError:  # the reader went away before the end
            handler.close_connection = True
        finally:
            self.answered.set()
        if "Content-Length" not in headers:
            handler.close_connection = True  # the body ends where the connection does

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        self._http.close()

    def stop(self) -> None:
        """Stop listening and close every connection: the node is gone."""
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed
                    connection.shutdown(socket.SHUT_RDWR)


def _huge(request: dict[str, object], *, sized: bool) -> Reply:
    """A 64 MiB answer, its size declared or not (then it ends with the connection)."""
    chunk = b" " * 65536

    def chunks() -> Iterator[bytes]:
        for _ in range(HUGE // len(chunk)):
            yield chunk

    return 200, {"Content-Length": str(HUGE)} if sized else {}, chunks()


@pytest.fixture
def proxy(anvil_world: World) -> Iterator[KeptAliveProxy]:
    with KeptAliveProxy(str(anvil_world.chain.rpc_url)) as running:
        yield running


SECRETS = ["alice-the-user", "pa55-w0rd-secret", "secret-key-path",
           "pathkey-0123456789abcdef", "apikey", "querykey-fedcba9876543210"]


def _secret_url(proxy: KeptAliveProxy) -> str:
    return (f"http://alice-the-user:pa55-w0rd-secret@127.0.0.1:{proxy.port}"
            "/secret-key-path/pathkey-0123456789abcdef?apikey=querykey-fedcba9876543210")


def _assert_no_secret(error: BaseException, proxy: KeptAliveProxy) -> str:
    """The error's whole printed traceback, checked to hold no part of the URL."""
    text = "".join(traceback.format_exception(error))
    for secret in [*SECRETS, f"127.0.0.1:{proxy.port}", str(proxy.port)]:
        assert secret not in text, (secret, text)
    return text


def test_the_head_read_is_web3s_latest_block_over_one_kept_connection(
        anvil_world: World, proxy: KeptAliveProxy) -> None:
    """The head a reader reads (number, hash, parent hash, time, logs bloom) is web3's latest
    block, and its block by hash is web3's; 20 head requests in a row share one connection;
    the path, query, basic auth and content type of the URL reach the node."""
    reader = JsonRpcChainReader(_secret_url(proxy), head_max_age=0, retries=False)
    w3 = anvil_world.chain.w3
    latest = w3.eth.get_block("latest")
    head = reader.at_head().head
    assert (head.number, head.hash, head.timestamp) == (
        latest["number"], bytes(latest["hash"]), latest["timestamp"])
    assert reader._head_data("latest") == (
        latest["number"], bytes(latest["hash"]), bytes(latest["parentHash"]),
        latest["timestamp"], int.from_bytes(bytes(latest["logsBloom"]), "big"))
    parent = w3.eth.get_block(latest["parentHash"])
    assert reader._head_data(bytes(latest["parentHash"])) == (
        parent["number"], bytes(parent["hash"]), bytes(parent["parentHash"]),
        parent["timestamp"], int.from_bytes(bytes(parent["logsBloom"]), "big"))
    for _ in range(20):
        assert reader.latest_block() == latest["number"]
    heads = [seen for seen in proxy.seen if seen.method.startswith("eth_getBlockBy")]
    assert len(heads) == 23
    assert {seen.connection for seen in heads} == {heads[0].connection}
    basic = "Basic " + base64.b64encode(b"alice-the-user:pa55-w0rd-secret").decode()
    for seen in heads:
        assert seen.path == ("/secret-key-path/pathkey-0123456789abcdef"
                             "?apikey=querykey-fedcba9876543210")
        assert seen.headers["Authorization"] == basic
        assert seen.headers["Content-Type"] == "application/json"
    reader.close()


def test_a_connection_the_node_drops_or_a_node_that_restarts_is_survived(
        anvil_world: World, proxy: KeptAliveProxy) -> None:
    """A node that closes each kept-alive connection after its answer (without saying so)
    costs no failed read: each head request is sent again on a new connection. A node that
    goes away is a failed read naming no part of the URL; back on the same port, it is read
    again. After close(), the next head request opens a new connection."""
    reader = JsonRpcChainReader(_secret_url(proxy), head_max_age=0, retries=False)
    number = reader.latest_block()
    proxy.drop_after_answer = True
    for _ in range(10):
        assert reader.latest_block() == number
    # Each head request after the first found its connection gone, and made a new one.
    assert proxy.methods() == ["eth_getBlockByNumber"] * 11
    assert len({seen.connection for seen in proxy.seen[1:]}) == 10
    proxy.drop_after_answer = False

    proxy.stop()
    with pytest.raises(ChainReadError, match="cannot connect to the node") as down:
        reader.latest_block()
    _assert_no_secret(down.value, proxy)
    with KeptAliveProxy(proxy.upstream, port=proxy.port) as restarted:
        assert reader.latest_block() == number
        assert reader.latest_block() == number
        assert restarted.connections == 1
        reader.close()
        assert reader.latest_block() == number
        assert restarted.connections == 2
        reader.close()


def test_a_head_request_while_the_kept_connection_is_busy_goes_web3s_way(
        proxy: KeptAliveProxy) -> None:
    """A head request never waits behind another on the kept connection: it is made on web3's
    own connection meanwhile."""
    reader = JsonRpcChainReader(f"http://127.0.0.1:{proxy.port}", head_max_age=0,
                                retries=False)
    number = reader.latest_block()
    head_rpc = reader._head_rpc
    assert head_rpc is not None
    with head_rpc.lock:
        assert reader.latest_block() == number
    connections = {seen.connection for seen in proxy.seen}
    assert len(connections) == 2
    reader.close()


def test_an_error_answer_is_a_failed_read_naming_no_part_of_the_url(
        proxy: KeptAliveProxy) -> None:
    """HTTP 500 whose body quotes the URL, a JSON-RPC error quoting its path and query, and an
    answer that is not JSON: each a ChainReadError saying what happened, with no part of the
    URL (user, password, host, port, path, query) in its text or traceback."""
    url = _secret_url(proxy)
    quoted = json.dumps({"error": f"no such key in {url}"}).encode()
    answers: dict[str, Callable[[dict[str, object]], Reply]] = {
        "the node answered HTTP 500": lambda _: (
            500, {"Content-Length": str(len(quoted))}, iter([quoted])),
        "the node answered: ": lambda request: _sized(json.dumps({
            "jsonrpc": "2.0", "id": request.get("id"),
            "error": {"code": -32000, "message": f"unknown key {url.split('/', 3)[3]}"}})
            .encode()),
        "the node's answer is not JSON": lambda _: _sized(b"<html>" + url.encode()),
    }
    reader = JsonRpcChainReader(url, head_max_age=0, retries=False)
    for expected, answer in answers.items():
        proxy.answer = answer
        with pytest.raises(ChainReadError) as failed:
            reader.latest_block()
        text = _assert_no_secret(failed.value, proxy)
        assert expected in str(failed.value), text
    proxy.answer = None
    assert reader.latest_block() > 0  # the connection is usable again
    reader.close()


def _sized(body: bytes) -> Reply:
    return 200, {"Content-Length": str(len(body))}, iter([body])


@pytest.mark.parametrize("sized", [True, False], ids=["declared-size", "unsized"])
def test_a_huge_answer_is_refused_without_reading_it_all(
        proxy: KeptAliveProxy, sized: bool) -> None:
    """A 64 MiB answer to a head request, its size declared or not, is a failed read; the
    reader stops reading at its bound (4 MiB), so the proxy cannot send most of it."""
    reader = JsonRpcChainReader(_secret_url(proxy), head_max_age=0, retries=False)
    number = reader.latest_block()
    proxy.answered.clear()
    proxy.answer = lambda request: _huge(request, sized=sized)
    with pytest.raises(ChainReadError, match="answer is over 4 MiB") as refused:
        reader.latest_block()
    _assert_no_secret(refused.value, proxy)
    assert proxy.answered.wait(30)
    assert proxy.sent < HUGE // 2, proxy.sent
    proxy.answer = None
    assert reader.latest_block() == number
    reader.close()


def test_failed_head_requests_are_retried_where_the_reader_retries(
        proxy: KeptAliveProxy) -> None:
    """A reader made with retries (the library's default) asks again after an HTTP 503, as
    web3 does; one made without reports the first failure."""
    failures = [2]
    busy = b"busy"

    def flaky(request: dict[str, object]) -> Reply | None:
        if failures[0] > 0:
            failures[0] -= 1
            return 503, {"Content-Length": str(len(busy))}, iter([busy])
        return None  # the node's own answer

    url = f"http://127.0.0.1:{proxy.port}"
    number = JsonRpcChainReader(url, head_max_age=0).latest_block()
    proxy.answer = flaky
    patient = JsonRpcChainReader(url, head_max_age=0)
    asked = len(proxy.methods())
    assert patient.latest_block() == number
    assert proxy.methods()[asked:] == ["eth_getBlockByNumber"] * 3
    failures[0] = 1
    with pytest.raises(ChainReadError, match="the node answered HTTP 503"):
        JsonRpcChainReader(url, head_max_age=0, retries=False).latest_block()


def test_a_proxy_from_the_environment_carries_the_head_requests(
        proxy: KeptAliveProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the environment names an HTTP proxy for the node's URL (as requests honours),
    the head requests go through it too, not straight to the node."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    reader = JsonRpcChainReader("http://node.invalid/key-path", head_max_age=0,
                                retries=False)
    assert reader.latest_block() > 0
    assert [seen.path for seen in proxy.seen] == ["http://node.invalid/key-path"]
    reader.close()
