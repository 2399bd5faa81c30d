"""A running anchor service for HTTP tests: uvicorn on loopback, a real SQLite file, the
contracts on a local chain, an admin token and two issuers."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account.signers.local import LocalAccount
from starlette.types import ASGIApp
from web3 import Web3

from anchor_service.api import create_app
from anchor_service.chain import Deployment
from anchor_service.keystore import write_keystore
from anchor_service.service import build_components
from anchor_service.settings import ServiceSettings
from anchor_service.store import Issuer, Store
from anchor_service.trust import IssuerTrustView
from localchain import AnvilChain, InProcessChain
from testkit.net import free_port
from testkit.world import World, build_world, give_signing_key, serve_issuer


@dataclass
class Service:
    url: str
    world: World
    store: Store
    admin: str
    issuer_token: str
    other_token: str  # an issuer token of a second issuer
    issuer_id: int  # the service's id of the issuer behind issuer_token

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextmanager
def served(app: ASGIApp) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free loopback port, until the block ends;
    its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    with running(server):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def running(server: uvicorn.Server) -> Iterator[None]:
    """``server`` serving in a thread (once it has started), until the block ends."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            assert thread.is_alive(), "the server failed to start"
            time.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def running_service(world: World, data: Path, *, max_body_bytes: int,
                    **settings: Any) -> Iterator[Service]:
    """The service for ``world``'s deployment, its files in ``data``, stopped on exit;
    ``settings`` override ServiceSettings fields (``database_url``: PostgreSQL instead of a
    SQLite file in ``data``)."""
    # Tests change the chain and verify at once: the shared verification reader asks for the
    # head before each read (the service's default lets it lag up to a second).
    settings.setdefault("verify_head_max_age", 0.0)
    deployment = data / "deployment.json"
    deployment.write_text(world.deployment.to_json(), encoding="utf-8")
    write_keystore(data / "keys", world.issuer, "pw")
    service_settings = ServiceSettings(
        rpc_url="unused-in-process",
        deployment=deployment,
        database_url=settings.pop("database_url", f"sqlite:///{data / 'service.sqlite3'}"),
        keystore_dir=data / "keys",
        keystore_password="pw",
        batch_max_age=3600,
        poll_interval=0.05,
        max_body_bytes=max_body_bytes,
        max_items_per_request=1000,
        log_json=False,
        **settings,
    )
    components = build_components(service_settings, w3=world.chain.w3)
    store = components.store
    admin = store.add_token(role="admin")
    # A second issuer, served here but without a key: it can read, not anchor.
    other = serve_issuer(store, world, "uni-b", revoked=True)
    other_token = store.add_token(role="issuer", issuer_id=other.id)
    try:
        with served(create_app(components=components)) as url:
            with httpx.Client(base_url=url,
                              headers={"Authorization": f"Bearer {admin}"}) as client:
                issuer = client.post(
                    "/v1/admin/issuers",
                    json={"name": "uni-a", "entityId": world.issuer_id,
                          "keyAddress": world.issuer.address},
                )
                assert issuer.status_code == 201, issuer.text
                token = client.post(
                    "/v1/admin/tokens",
                    json={"role": "issuer", "issuerId": issuer.json()["id"]},
                )
                assert token.status_code == 201, token.text
            # Its signing key (registered on chain): the service signs its credentials.
            give_signing_key(store, world, store.issuer(issuer.json()["id"]), data / "keys")
            yield Service(
                url, world, store, admin, token.json()["token"], other_token,
                issuer.json()["id"]
            )
    finally:
        components.close()


@contextmanager
def service_on_fresh_chain(data: Path, *, max_body_bytes: int,
                           **settings: Any) -> Iterator[Service]:
    """:func:`running_service` on a world deployed on an in-process chain of its own (its
    status positions and blocks shared with no other test module), the chain closed on
    exit."""
    chain = InProcessChain.start()
    try:
        with running_service(build_world(chain), data, max_body_bytes=max_body_bytes,
                             **settings) as running:
            yield running
    finally:
        chain.close()


def anchor_now(client: httpx.Client, ids: list[str]) -> None:
    """Ask for a batch now and wait until every credential in ``ids`` is anchored."""
    assert client.post("/v1/batches").status_code == 202
    deadline = time.monotonic() + 60
    while True:
        states = {client.get(f"/v1/credentials/{i}").json()["state"] for i in ids}
        if states == {"anchored"}:
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.05)


def trust_view_of_node(database: Path, rpc_url: str, *,
                       timeout: float) -> tuple[Store, Issuer, IssuerTrustView]:
    """A store with one issuer, and a trust view of it that asks the registry through the
    node at ``rpc_url`` (for tests of a node that is down or does not answer)."""
    store = Store(database)
    issuer = store.add_issuer("uni-a", entity_id=2, key_address="0x" + "11" * 20,
                              did="did:web:uni-a.example")
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    deployment = Deployment(chain_id=1, registry="0x" + "22" * 20, anchor="0x" + "33" * 20,
                            block_number=0, deployer="0x" + "44" * 20, artifact_hash="0x")
    registry, _anchor = deployment.contracts(w3)
    return store, issuer, IssuerTrustView(store, registry)


def open_request(url: str, length: int | None, path: str = "/v1/verify") -> socket.socket:
    """A connection that sends the head of a JSON POST to ``path`` and none of its body
    (chunked if ``length`` is None)."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=30)
    framing = ("Transfer-Encoding: chunked" if length is None else
               f"Content-Length: {length}")
    connection.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                       f"application/json\r\n{framing}\r\n\r\n".encode())
    return connection


def read_answer(connection: socket.socket) -> bytes:
    """What the server answers on ``connection``: its head and a JSON body, or all it sends
    before closing."""
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        part = connection.recv(65536)
        if not part:
            break
        data += part
    return data


def refused_while_held(url: str, path: str, body: bytes,
                       send: Callable[[], httpx.Response]) -> tuple[httpx.Response, socket.socket]:
    """Hold a request to ``path`` (its head sent, ``body`` not) and ``send`` whole requests
    until one is refused with 503: that refusal and the holder, still waiting for ``body``
    (the caller closes it)."""
    holder = open_request(url, len(body), path)
    try:
        # Until the holder's request reaches the route, a whole request goes through: send
        # them until one is refused (a holder answered meanwhile is opened anew).
        deadline = time.monotonic() + 30
        while (refused := send()).status_code != 503:
            assert refused.status_code == 200, refused.text
            assert time.monotonic() < deadline, "never refused"
            if select.select([holder], [], [], 0)[0]:
                holder.close()
                holder = open_request(url, len(body), path)
    except BaseException:
        holder.close()
        raise
    return refused, holder


def service_cli(world: World, signer: LocalAccount | None, *args: str
                ) -> subprocess.CompletedProcess[str]:
    """``anchor-service ARGS --rpc-url`` (the world's anvil node) as a real process, with no
    MICROCRED_ setting of this environment and ``signer``'s key (if any) as
    MICROCRED_PRIVATE_KEY."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MICROCRED_")}
    if signer is not None:
        environment["MICROCRED_PRIVATE_KEY"] = "0x" + bytes(signer.key).hex()
    chain = world.chain
    assert isinstance(chain, AnvilChain)
    return subprocess.run(
        [sys.executable, "-m", "anchor_service", *args, "--rpc-url", str(chain.rpc_url)],
        capture_output=True, text=True, timeout=120, check=False, env=environment,
    )


def write_deployment(world: World, directory: Path) -> Path:
    """The world's deployment record, written to ``directory``/deployment.json."""
    path = directory / "deployment.json"
    path.write_text(world.deployment.to_json(), encoding="utf-8")
    return path
