"""A JSON-RPC proxy in front of a node, for tests: it counts the requests by method, answers
on any path (so that a URL may carry a made-up API key), and can answer HTTP 429 instead of
forwarding, answer chosen calls with a JSON-RPC error, hold requests without ever answering (a
node that has hung), or stop listening altogether (the node is down); and a node whose
blocks' log blooms are wrong."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import httpx

__all__ = ["CountingRpcProxy", "RpcProxy", "ZeroBloomProxy"]


class RpcProxy:
    """A JSON-RPC proxy on loopback in front of ``upstream``: subclasses decide in
    :meth:`answer` what each POST gets (by default, the node's own answer)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy.answer(self, body)

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._running = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        self._running = True
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        self._http.close()

    def stop(self) -> None:
        """Stop listening: connections are refused from now on."""
        if self._running:
            self._running = False
            self._server.shutdown()
            self._server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        self.forward(handler, body)

    def forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Send the request to the node and its answer back."""
        upstream = self._http.post(self.upstream, content=body,
                                   headers={"Content-Type": "application/json"})
        self.reply(handler, upstream.status_code, upstream.content)

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, status: int, content: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


class CountingRpcProxy(RpcProxy):
    """Forwards JSON-RPC POSTs to ``upstream``; ``methods`` counts them (batches item by
    item). With ``rate_limited`` set it answers 429 Too Many Requests instead, as a provider
    whose quota is used up does. ``errors`` maps a method, or an ``eth_call`` selector as
    ``"0x12345678"``, to a message the node answers it with as a JSON-RPC error. With
    ``hanging`` set, requests are counted and then never answered (until :meth:`release`, or
    30 seconds, after which the connection is closed without an answer)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.methods: Counter[str] = Counter()
        self.rate_limited = False
        self.errors: dict[str, str] = {}
        self.hanging = False
        self._released = threading.Event()
        self._lock = threading.Lock()

    def calls(self, method: str) -> int:
        with self._lock:
            return self.methods[method]

    def __exit__(self, *_: object) -> None:
        self.release()
        super().__exit__()

    def release(self) -> None:
        """Let held requests go (their connections close without an answer)."""
        self._released.set()

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        with self._lock:
            for item in request if isinstance(request, list) else [request]:
                if isinstance(item, dict):
                    self.methods[str(item.get("method"))] += 1
        if self.hanging:
            self._released.wait(30)
            handler.close_connection = True
            return
        if self.rate_limited:
            self.reply(handler, 429, b"Too Many Requests")
            return
        message = self._error_for(request)
        if message is not None:
            answer = {"jsonrpc": "2.0", "id": request.get("id"),
                      "error": {"code": -32000, "message": message}}
            self.reply(handler, 200, json.dumps(answer).encode())
            return
        self.forward(handler, body)

    def _error_for(self, request: object) -> str | None:
        if not isinstance(request, dict):
            return None
        method = str(request.get("method"))
        if method in self.errors:
            return self.errors[method]
        params = request.get("params")
        if method == "eth_call" and isinstance(params, list) and params:
            data = params[0].get("data") or params[0].get("input") or ""
            return self.errors.get(str(data)[:10])
        return None


class ZeroBloomProxy(RpcProxy):
    """A node whose blocks come with a well-formed but wrong log bloom: 256 zero bytes,
    whatever logs the block holds (as some EVM-compatible chains' relayers send)."""

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        request = json.loads(body)
        answer = self._http.post(self.upstream, content=body,
                                 headers={"Content-Type": "application/json"}).json()
        if isinstance(request, dict) and isinstance(answer, dict) \
                and str(request.get("method")).startswith("eth_getBlockBy") \
                and isinstance(answer.get("result"), dict):
            answer["result"]["logsBloom"] = "0x" + "00" * 256
        self.reply(handler, 200, json.dumps(answer).encode())
