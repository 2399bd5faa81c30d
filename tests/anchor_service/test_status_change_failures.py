"""A status change of several transactions that fails part-way names the transactions already
mined, with their positions (their changes stand), instead of losing them; and status changes
are sent under the issuer's sending lease, the pipeline's, so that an anchor replacement
cannot take a pending change's nonce. Real anvil behind a JSON-RPC proxy that refuses the
second transaction; the route over real HTTP (uvicorn, SQLite, the in-process chain)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from hexbytes import HexBytes
from web3 import Web3

from anchor_service.errors import StatusChangeIncompleteError
from anchor_service.samples import make_credential
from anchor_service.status import StatusAction, StatusChanges
from anchor_service.store import StatusPosition
from testkit.world import World
from tests.anchor_service.harness import Service, service_on_fresh_chain
from tests.anchor_service.rpc_proxy import RpcProxy
from verifier.contract_types import StatusBits, read


class SecondSendRefused(RpcProxy):
    """Forwards everything but the second ``eth_sendRawTransaction``, which the "node"
    refuses."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.sends = 0

    def answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        request = json.loads(body)
        if isinstance(request, dict) and request.get("method") == "eth_sendRawTransaction":
            self.sends += 1
            if self.sends == 2:
                answer = {"jsonrpc": "2.0", "id": request.get("id"),
                          "error": {"code": -32000, "message": "node refuses it"}}
                self.reply(handler, 200, json.dumps(answer).encode())
                return
        self.forward(handler, body)


def test_a_failure_after_a_mined_transaction_names_it(anvil_world: World) -> None:
    world = anvil_world
    first, second = StatusPosition(0, 11), StatusPosition(1, 12)  # two lists: two transactions
    with SecondSendRefused(str(world.chain.rpc_url)) as proxy:
        w3 = Web3(Web3.HTTPProvider(proxy.url))
        _, anchor = world.deployment.contracts(w3)
        with pytest.raises(StatusChangeIncompleteError) as incomplete:
            StatusChanges(w3, anchor, world.issuer_id).change(
                StatusAction.REVOKE, world.issuer, [second, first], 0)

    (mined,) = incomplete.value.mined
    receipt = world.chain.w3.eth.get_transaction_receipt(HexBytes(mined))
    assert int(receipt["status"]) == 1
    detail = str(incomplete.value)
    assert detail.startswith("transaction 2 of 2 failed")
    assert f"0x{mined.hex()} (list 0, 1 indices 11..11)" in detail
    assert incomplete.value.http_status == 503  # the chain failed, not the contract

    def bits(position: StatusPosition) -> StatusBits:
        return read(StatusBits, world.anchor.functions.statusOf(
            world.issuer_id, position.list, position.index))

    assert bits(first).revoked
    assert not bits(second).revoked


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_on_fresh_chain(tmp_path_factory.mktemp("lease"),
                                max_body_bytes=2**20) as running:
        yield running


def test_a_status_change_waits_for_the_issuers_sending_lease(service: Service) -> None:
    with service.client(service.issuer_token) as client:
        answer = client.post("/v1/credentials", json={"credentials": [
            make_credential("leased", issuer="did:web:uni-a.example")]})
        assert answer.status_code == 202, answer.text
        public_id = answer.json()["accepted"][0]["id"]
        # Another sender (a pipeline round of another replica, say) holds the lease throughout.
        with service.store.waited_issuer_lease(service.issuer_id) as held:
            assert held  # once the service's own pipeline round (if one runs) lets it go
            busy = client.post(f"/v1/credentials/{public_id}/revoke", json={"reason": 0})
        done = client.post(f"/v1/credentials/{public_id}/revoke", json={"reason": 0})
    assert busy.status_code == 503, busy.text
    assert busy.json()["error"] == "busy"
    assert busy.headers["retry-after"] == "1"
    assert done.status_code == 200, done.text
