"""The contracts fit the EIP-170 limit on deployed code (24,576 bytes), which every Ethereum
chain enforces: a larger contract cannot be deployed at all. IssuerRegistry is the largest and
close to it (contracts/README.md gives the margin), so growing it fails here first."""

from __future__ import annotations

import pytest

from testkit.world import World
from verifier.contracts_abi import load_artifact

EIP_170_LIMIT = 24_576


@pytest.mark.parametrize("name", ["IssuerRegistry", "CredentialAnchor"])
def test_shipped_deployed_bytecode_fits_eip_170(name: str) -> None:
    size = len(load_artifact(name).deployed_bytecode)
    assert 0 < size <= EIP_170_LIMIT, f"{name} is {size} bytes, over {EIP_170_LIMIT}"


def test_the_code_on_chain_is_the_shipped_code_and_fits(deployed: World) -> None:
    """What the deployment put on chain is as long as the artifact's runtime code (so the limit
    above is the one that matters; the anchor's immutable registry address is filled in at
    deployment, so only the registry's bytes are equal), on the in-process chain and on
    anvil."""
    w3 = deployed.chain.w3
    for name, address in (("IssuerRegistry", deployed.registry.address),
                          ("CredentialAnchor", deployed.anchor.address)):
        code = bytes(w3.eth.get_code(address))
        shipped = load_artifact(name).deployed_bytecode
        assert len(code) == len(shipped) <= EIP_170_LIMIT, name
        if name == "IssuerRegistry":
            assert code == shipped
