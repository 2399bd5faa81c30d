"""Every setting of the project's programs, through pydantic-settings: environment variables
``MICROCRED_*`` and, optionally, a ``.env``-style file (``anchor-service serve --config FILE``).
:class:`ServiceSettings` configures the service (``serve``, ``submit --direct``, ``token``,
``db``); :class:`CommandSettings` holds what only the other commands read (the API token of
``submit``, the signing key of ``deploy`` and ``registry``, the keystore password of the
commands that decrypt or write a keystore). Nothing is read at import time: a settings object
reads when it is created. Secrets are ``SecretStr``: their repr and logs show ``**********``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_RPC_URL", "CommandSettings", "ServiceSettings", "revealed"]

# A local node (anvil, `python -m localchain anvil`) on its usual port.
DEFAULT_RPC_URL = "http://127.0.0.1:8545"


class ServiceSettings(BaseSettings):
    """Every knob of the service, with defaults that run the local stack."""

    model_config = SettingsConfigDict(env_prefix="MICROCRED_", extra="forbid", frozen=True)

    rpc_url: str = Field(DEFAULT_RPC_URL, description="JSON-RPC endpoint of the chain")
    deployment: Path = Field(Path("deployments/chain-31337.json"),
                             description="deployment record written by `anchor-service deploy`")
    database_url: str = Field(
        "sqlite:///data/service.sqlite3",
        description="sqlite:///PATH, or postgresql://USER:PASSWORD@HOST:PORT/DB for several "
        "replicas on one database")
    database_pool_size: int = Field(10, ge=2, le=1000, description="PostgreSQL connections "
                                    "per process, at most")
    keystore_dir: Path = Field(Path("data/keys"),
                               description="encrypted keystores of issuer keys, <address>.json")
    keystore_password: SecretStr | None = Field(None, description="password of the keystores")
    relayer_keystore: Path | None = Field(
        None, description="keystore of a relayer key: anchor by EIP-712 signature through it")

    batch_max_size: int = Field(10_000, ge=1, le=2**24)
    batch_max_age: float = Field(10.0, ge=0, description="seconds before a partial batch is cut")
    confirmations: int = Field(1, ge=1, le=1000)
    poll_interval: float = Field(0.5, gt=0, description="seconds between pipeline rounds")

    workers: int = Field(1, ge=0, le=256, description="processes serving the port, each a "
                         "full replica with its own caches and pipeline, supervised by the "
                         "process that started them (restarted if one dies); 0: one per CPU "
                         "this process may run on; 1: the one process, no supervisor")
    pin_workers: bool = Field(True, description="with 2 or more workers and no more of them "
                              "than the CPUs this process may run on, keep each worker on a "
                              "CPU of its own (its threads wake each other without waking "
                              "another CPU)")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(64 * 2**20, ge=1024, description="larger requests get 413")
    max_items_per_request: int = Field(50_000, ge=1)
    rate_limit: float = Field(1000.0, ge=0, description="requests a second per API token "
                              "(0: no limit)")
    rate_limit_burst: int = Field(2000, ge=1)
    public_rate_limit: float = Field(50.0, ge=0, description="requests a second per client "
                                     "address without a token: verification (0: no limit)")
    public_rate_limit_burst: int = Field(100, ge=1)
    verify_max_body_bytes: int = Field(2**20, ge=1024, description="POST /v1/verify bodies "
                                       "larger than this get 413 (a bundle is a few KB)")
    verify_concurrency: int = Field(16, ge=1, le=10_000, description="verifications in "
                                    "flight at most; beyond, POST /v1/verify answers 503 with "
                                    "Retry-After, without reading the body")
    verify_body_timeout: float = Field(10.0, gt=0, description="seconds a POST /v1/verify "
                                       "body may take to arrive (408 beyond): a bundle is a "
                                       "few KB")
    verify_per_client: int = Field(4, ge=1, le=10_000, description="verifications in flight "
                                   "at most from one client address (its share of "
                                   "verify_concurrency)")
    portfolio_concurrency: int = Field(2, ge=1, le=64, description="POST "
                                       "/v1/portfolios/verify requests in flight at most "
                                       "(each also takes a verification slot, and runs its "
                                       "credentials on 4 threads of its own); beyond, 503 "
                                       "with Retry-After, without reading the body")
    portfolio_per_client: int = Field(1, ge=1, le=64, description="portfolio verifications "
                                      "in flight at most from one client address (its share "
                                      "of portfolio_concurrency)")
    # At most verifier.portfolio.MAX_PORTFOLIO_ENTRIES, the library's own bound (not imported:
    # the settings load without the verification stack).
    portfolio_max_entries: int = Field(200, ge=1, le=500, description="credentials in one "
                                       "POST /v1/portfolios/verify at most (422 beyond)")
    portfolio_deadline_seconds: float = Field(30.0, gt=0, le=3600, description="seconds a "
                                              "portfolio's verification may take: credentials "
                                              "not started by then are reported not_checked")
    verify_head_max_age: float = Field(0.0, ge=0, le=60, description="seconds before a "
                                       "request that the head request whose chain head it is "
                                       "answered from (verifications, status lists) may have "
                                       "begun: 0, every request sees the head as it was "
                                       "after it arrived (one head request, coalesced, "
                                       "serves every request that came before it began)")
    trust_log_blooms: bool = Field(True, description="keep the answers about the chain "
                                   "head's state (status, trust, anchors) from head to head "
                                   "while the new blocks' log blooms show no change of the "
                                   "contracts they read; false for a node whose blooms cannot "
                                   "be relied on: every new head is read again")
    status_list_validity: int = Field(300, ge=2, le=7 * 86400, description="seconds between "
                                      "a published status list's validFrom and validUntil; "
                                      "a list is rendered again from the chain when less "
                                      "than half of it is left, or when the chain changes it")
    log_json: bool = Field(True, description="structured (JSON) logs")
    header_timeout: float = Field(10.0, gt=0, description="seconds a connection has to send "
                                  "its request head (line and headers) before it is closed")
    body_timeout: float = Field(30.0, gt=0, description="seconds a request has to send its "
                                "whole body (408 and close beyond), and a client may read "
                                "nothing of its answer (reset beyond)")
    max_connections: int = Field(1000, ge=1, description="open HTTP connections at most (kept "
                                 "well below the open-files limit); beyond it the connection "
                                 "whose request is unfinished longest is closed, or the new "
                                 "one if every request is whole")
    trusted_proxies: str = Field("", description="comma-separated addresses (or networks) of "
                                 "reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
                                 "are believed; empty: none, the TCP peer is the client")
    log_repeat_limit: int = Field(10, ge=1, description="identical log lines (same logger and "
                                  "message template) of the HTTP server and of warnings let "
                                  "through per interval; the rest are counted and summed up "
                                  "in one line (audit and anchoring lines are never limited)")
    log_repeat_interval: float = Field(60.0, gt=0, description="seconds of that interval")
    did_web_host: str = Field("", description="host (with %3A<port> if any) of the issuer whose "
                              "DID is did:web:<host>: its DID document is served at "
                              "/.well-known/did.json; empty: none (issuers' documents are "
                              "served at /issuers/<name>/did.json either way)")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        sqlite = value.startswith("sqlite:///") and len(value) > len("sqlite:///")
        if not (sqlite or value.startswith(("postgresql://", "postgres://"))):
            raise ValueError("must be sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB")
        return value

    def secrets(self) -> list[str]:
        """What must never appear in a log line or an error message: the keystore password,
        passwords in the database and RPC URLs, and the RPC URL's path and query (where
        providers put API keys)."""
        found = [self.keystore_password.get_secret_value()] if self.keystore_password else []
        for url in (self.rpc_url, self.database_url):
            parts = urlsplit(url)
            if parts.password:
                found.append(parts.password)
        rpc = urlsplit(self.rpc_url)
        if rpc.path.strip("/") or rpc.query:
            found.append(rpc.path + (f"?{rpc.query}" if rpc.query else ""))
        return [secret for secret in found if len(secret) >= 4]  # shorter would hide noise


class CommandSettings(BaseSettings):
    """The settings of the commands that are not the service: ``submit`` (over HTTP),
    ``deploy``, ``registry ...`` and ``stack``. Other ``MICROCRED_*`` variables (the
    service's) are ignored here, so one environment serves every command."""

    model_config = SettingsConfigDict(env_prefix="MICROCRED_", extra="ignore", frozen=True)

    rpc_url: str = Field(DEFAULT_RPC_URL, description="JSON-RPC endpoint of the chain, unless "
                         "--rpc-url names one")
    token: SecretStr | None = Field(None, description="API token of `submit`, unless --token "
                                    "gives one")
    private_key: SecretStr | None = Field(None, description="hex private key of the signer of "
                                          "`deploy` and `registry`, without --keystore")
    keystore_password: SecretStr | None = Field(None, description="password of --keystore "
                                                "(else a prompt), and of the stack's keystore")


def revealed(secret: SecretStr | None, default: str = "") -> str:
    """The value of an optional secret setting, or ``default`` when it is not set."""
    return secret.get_secret_value() if secret is not None else default
