"""An entity's recognitions listed from the registry's RecognitionRecorded logs, read a fixed
number of blocks at a time and no further than the listing's cap: real anvil behind a JSON-RPC
proxy that counts the log queries."""

from __future__ import annotations

import pytest
from web3 import Web3

from anchor_service.errors import RecognitionInputError
from anchor_service.recognitions import recognise, recognitions_of
from testkit.world import World
from tests.anchor_service.rpc_proxy import CountingRpcProxy
from verifier.contract_types import Scope


def test_logs_are_read_in_chunks_and_no_further_than_the_cap(anvil_world: World) -> None:
    world = anvil_world
    w3 = world.chain.w3
    start = int(w3.eth.block_number) + 1
    made = [recognise(world.tx(world.issuer), world.registry, recogniser=world.issuer_id,
                      subject=subject, scope=Scope.NON_FORMAL).id
            for subject in (world.body_id, world.revoked_id, world.body_id)]
    assert int(w3.eth.block_number) == start + 2  # one block each
    w3.provider.make_request("anvil_mine", [5])  # type: ignore[arg-type]  # blocks after
    latest = int(w3.eth.block_number)

    with CountingRpcProxy(str(world.chain.rpc_url)) as proxy:
        registry, _ = world.deployment.contracts(Web3(Web3.HTTPProvider(proxy.url)))
        whole = recognitions_of(registry, world.issuer_id, from_block=start)
        assert [item.id for item in whole] == made
        assert proxy.calls("eth_getLogs") == 1

        listed = recognitions_of(registry, world.issuer_id, from_block=start, chunk_blocks=2)
        assert listed == whole
        blocks = latest - start + 1
        assert proxy.calls("eth_getLogs") == 1 + (blocks + 1) // 2  # one query per 2 blocks

        before = proxy.calls("eth_getLogs")
        with pytest.raises(RecognitionInputError, match="more than 2 recognitions"):
            recognitions_of(registry, world.issuer_id, from_block=start, chunk_blocks=1,
                            most=2)
        # The third recognition is in the third block: the reading stops there, not at the
        # latest block.
        assert proxy.calls("eth_getLogs") - before == 3 < blocks
