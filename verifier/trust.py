"""What a verifier trusts: a pinned list of deployments (chain id, anchor contract, registry
contract), how many confirmations an anchor needs, and whether credentials must be signed by
their issuer. A receipt that points anywhere else fails, whatever the chain says."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from verifier.contract_types import ADDRESS_TEXT
from verifier.credential import parse_json_object
from verifier.errors import CredentialError, TrustConfigError

__all__ = ["TrustConfig", "TrustedDeployment"]

_ADDRESS = f"^{ADDRESS_TEXT}$"


class TrustedDeployment(BaseModel):
    """One deployment of the contracts that the verifier accepts anchors from."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = ""
    chain_id: Annotated[int, Field(alias="chainId", ge=1)]
    anchor: Annotated[str, Field(pattern=_ADDRESS)]
    registry: Annotated[str, Field(pattern=_ADDRESS)]

    @field_validator("anchor", "registry")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class TrustConfig(BaseModel):
    """The deployments to trust, the confirmations an anchor needs, and whether an issuer
    signature is required."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    deployments: tuple[TrustedDeployment, ...]
    min_confirmations: Annotated[int, Field(alias="minConfirmations", ge=1)] = 1
    #: Whether a credential must carry an issuer proof (a Data Integrity ``DataIntegrityProof``).
    #: When false, an unsigned credential is judged on its anchor alone and its report says so
    #: (``unsignedAllowed``); a signed credential's proof is checked either way.
    require_signature: Annotated[bool, Field(alias="requireSignature", strict=True)] = True

    def deployment_for(self, chain_id: int, anchor: str) -> TrustedDeployment | None:
        """The trusted deployment of ``anchor`` on ``chain_id``, or None."""
        anchor = anchor.lower()
        for deployment in self.deployments:
            if deployment.chain_id == chain_id and deployment.anchor == anchor:
                return deployment
        return None

    @classmethod
    def load(cls, path: Path) -> TrustConfig:
        """Read a trust file (JSON)."""
        try:
            # Parsed as strictly as a credential: a huge integer or deep nesting is a clean
            # error here too, not a bare ValueError.
            return cls.model_validate(parse_json_object(path.read_bytes(), "JSON"))
        except (OSError, CredentialError) as exc:
            raise TrustConfigError(f"cannot read trust file {path}: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise TrustConfigError(f"trust file {path}: {where}: {first['msg']}") from None
