"""POST /v1/portfolios/verify: a learner's whole portfolio verified against the chain, for
anyone.

The body holds either a VC 2.0 ``VerifiablePresentation`` (credentials with their receipts in
``anchorReceipts``) or a list of bundles, plus what the verifier asks: ``recognisedBy`` (the
DID of the institution whose recognition counts), ``requireEcts`` and ``requireKind`` (a
requirement, met or not) and ``asOf``. The answer is :func:`verifier.portfolio.verify_portfolio`'s
report: each credential's verdict, kind, ECTS and recognition, the sums by kind and
institution, duplicates, the requirement, and the chain state (block number and hash) every
answer was read at, so that a re-check reproduces it.

Public like ``POST /v1/verify``, with its limits and its slots: bodies of at most
``verify_max_body_bytes`` sent within ``verify_body_timeout``, one verification slot per
portfolio (shared with the other public verification routes), checked in a worker thread with
the process's shared chain reader and the trust configuration of ``POST /v1/verify`` (this
deployment; issuers' signatures required). A portfolio is up to hundreds of verifications, so
it has limits of its own besides: at most ``portfolio_concurrency`` portfolios in flight in
the process and ``portfolio_per_client`` from one client address (503 with Retry-After,
before the body is read; each portfolio runs its credentials on the library's 4 threads, so
at most 4 times ``portfolio_concurrency`` threads work on portfolios), at most
``portfolio_max_entries`` credentials (422 beyond; never more than
:data:`~verifier.portfolio.MAX_PORTFOLIO_ENTRIES`), and ``portfolio_deadline_seconds`` from
the body's arrival: credentials not started by then are not verified, and come back
``not_checked`` with the reason :data:`~verifier.portfolio.TIMED_OUT_REASON` in a 200 answer;
verified credentials whose issuer scope or recognition is still to be read then are not read
further and do not count, their ``scopeProblem`` or ``recognitionProblem`` that same reason
(the requirement, if asked, is then not established). A client that went away holds the
threads no longer than that, plus the verifications and the one chain read each already
under way."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.json_schema import SkipJsonSchema

from anchor_service.api import vcapi
from anchor_service.api import verify as public_verify
from anchor_service.api.deps import ComponentsDep
from anchor_service.api.errors import ApiError, BusyError, validation_detail
from anchor_service.api.schemas import error_responses, without_default
from anchor_service.service import Components
from verifier.contract_types import SCOPES
from verifier.credential import parse_json_object
from verifier.did import MAX_DID_LENGTH, check_did
from verifier.errors import (
    ChainReadError,
    CredentialError,
    DataIntegrityKeyError,
    PortfolioError,
)
from verifier.portfolio import (
    MAX_PORTFOLIO_ENTRIES,
    MAX_REQUIREMENT_ECTS,
    PortfolioEntry,
    Requirement,
    entries_from_bundles,
    entries_from_presentation,
    requirement_problem,
    verify_portfolio,
)
from verifier.verify import parse_datetime

__all__ = ["PATH", "PortfolioReportOut", "PortfolioVerifyIn", "router"]

router = APIRouter(prefix="/v1", tags=["verify"])
#: The public portfolio route, whose body limit is the verification limit (BodySizeLimit
#: path_limits).
PATH: Final = "/v1/portfolios/verify"
#: The largest requirement asked, as the library takes it.
MAX_REQUIRED_ECTS: Final = MAX_REQUIREMENT_ECTS
# A credential sits three levels inside the body: request, presentation or bundle list,
# credential list or bundle.
_WRAPPER_DEPTH: Final = 3
_DID_PATTERN: Final = (r"^did:[a-z0-9]+:(?:(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})*:)*"
                       r"(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})+$")
KindName = Literal["formal-degree", "formal-non-degree", "non-formal"]


def _one_or_many(what: str) -> dict[str, Any]:
    # JSON-LD allows a single member in place of a set.
    return {"anyOf": [{"type": "object"}, {"type": "array", "maxItems": MAX_PORTFOLIO_ENTRIES}],
            "description": f"{what}: one, or an array of at most {MAX_PORTFOLIO_ENTRIES}"}


# What the route reads of a presentation; anything else in it is the holder's business.
_PRESENTATION: Final[dict[str, Any]] = {
    "required": ["type"],
    "properties": {
        "type": {"anyOf": [{"const": "VerifiablePresentation"},
                           {"type": "array", "contains": {"const": "VerifiablePresentation"}}]},
        "verifiableCredential": _one_or_many("the credentials (JSON objects)"),
        "anchorReceipts": _one_or_many("their anchor receipts (version 2)"),
    },
}


#: The latest asOf: 9999-12-31T23:59:59Z, the last second a datetime holds.
_LATEST_AS_OF: Final = 253_402_300_799


class PortfolioVerifyIn(BaseModel):
    """A portfolio: a presentation or bundles (exactly one of them), and what to ask of it."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "oneOf": [{"required": ["presentation"]}, {"required": ["bundles"]}],
        "dependentRequired": {"requireKind": ["requireEcts"]}})

    # Absent, not null: the schema offers no null, so null is refused like any wrong type.
    presentation: Annotated[dict[str, Any], Field(
        json_schema_extra=_PRESENTATION)] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="a VC 2.0 VerifiablePresentation: verifiableCredential (the credentials) "
        "and anchorReceipts (their anchor receipts, version 2, matched to the credentials by "
        "credentialDigest). The holder's proof on the presentation is not checked.")
    bundles: Annotated[list[dict[str, Any]], Field(
        min_length=1, max_length=MAX_PORTFOLIO_ENTRIES)] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="bundles (format microcred-anchor-bundle, version 2: a credential and its "
        "receipt), one per credential; named bundles[0], bundles[1]... in the report")
    recognisedBy: Annotated[str, Field(  # noqa: N815 - the API's name
        max_length=MAX_DID_LENGTH, pattern=_DID_PATTERN)] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="the DID of a registry entity (a university): a credential counts only "
        "when this entity recognises its issuer for its kind at its issuance time")
    requireEcts: Annotated[float, Field(  # noqa: N815
        gt=0, le=MAX_REQUIRED_ECTS)] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=without_default,
        description="a requirement: at least this many ECTS counted (of requireKind, when "
        "given); the report says whether it is met, and why")
    requireKind: KindName | SkipJsonSchema[None] = Field(  # noqa: N815
        None, json_schema_extra=without_default,
        description="the kind the requirement counts (only with requireEcts); default: all")
    asOf: Annotated[int, Field(ge=0, le=_LATEST_AS_OF)] | Annotated[str, Field(  # noqa: N815
        max_length=40, json_schema_extra={"format": "date-time"})] | SkipJsonSchema[None] = (
        Field(None, json_schema_extra=without_default,
        description="judge the portfolio as of this time (RFC 3339 with a time zone, or Unix "
        "seconds such as a report's chain.blockTime): each credential's validity and status "
        "then, the registry then. Default: now."))

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # Absent, not null: the schema offers no null for any member.
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None:
                    raise ValueError(f"{str(name)[:100]}: must not be null (leave it out)")
        return data

    @model_validator(mode="after")
    def _one_portfolio(self) -> PortfolioVerifyIn:
        if (self.presentation is None) == (self.bundles is None):
            raise ValueError("send exactly one of presentation (a VerifiablePresentation) "
                             "and bundles (a list of bundles)")
        if self.requireKind is not None and self.requireEcts is None:
            raise ValueError("requireKind: only with requireEcts (the requirement it "
                             "narrows)")
        return self


class _Out(BaseModel):
    # The report is the verifier library's; these models document its shape (the full JSON
    # Schema is verifier/schemas/portfolio-report-v1.schema.json) without restating every
    # member of the nested verification reports.
    model_config = ConfigDict(extra="allow")


Ects = float | int


class ChainFactsOut(_Out):
    chainId: int = Field(description="the chain every answer was read on")  # noqa: N815
    registry: str
    anchor: str
    blockNumber: int = Field(description="the block every answer was read at")  # noqa: N815
    blockHash: str  # noqa: N815
    blockTime: int = Field(description="its time (Unix seconds): a re-check with asOf "  # noqa: N815
                           "this time (as it is, or as RFC 3339) reproduces the answers")


class RecognisedByOut(_Out):
    did: str
    entityId: int | None  # noqa: N815


class RequirementOut(_Out):
    ects: Ects
    kind: KindName | None
    met: bool
    have: Ects = Field(description="ECTS counted (of kind, when given)")
    detail: str = Field(description="e.g. \"24 ECTS of non-formal counted, 20 required: met\"")


class InstitutionOut(_Out):
    issuerDid: str | None  # noqa: N815
    issuerName: str | None  # noqa: N815
    entityId: int | None  # noqa: N815
    byKind: dict[str, Ects]  # noqa: N815
    ects: Ects


class TotalsOut(_Out):
    ects: Ects = Field(description="ECTS counted: valid, recognised (when recognisedBy is "
                       "given), ECTS and kind known, not a duplicate")
    byKind: dict[str, Ects] = Field(description="ECTS counted of each kind (all three)")  # noqa: N815
    byInstitution: list[InstitutionOut]  # noqa: N815
    counted: int
    notCounted: list[dict[str, Any]] = Field(description="index, source, reason")  # noqa: N815
    duplicates: list[dict[str, Any]] = Field(description="index, source, duplicateOf, reason")


class PortfolioEntryOut(_Out):
    index: int
    source: str = Field(description="bundles[i], verifiableCredential[i] or anchorReceipts[i]")
    verdict: str = Field(description="valid, not_valid, not_checked or offline_checks_passed")
    problem: str | None = Field(description="why the entry could not be read or matched")
    credentialDigest: str | None  # noqa: N815
    anchoredAt: int | None = Field(description="issuance time: the anchoring block's time")  # noqa: N815
    issuer: dict[str, Any] | None = Field(description="did, name, entityId")
    credits: dict[str, Any] | None = Field(description="source, ects, ectsProblem, kind, "
                                           "kindProblem, achievement")
    recognition: dict[str, Any] | None = Field(description="recognised, path, recognitionId, "
                                               "recogniserId, subjectId, record")
    recognitionProblem: str | None  # noqa: N815
    counted: bool
    reason: str | None = Field(description="why not counted (null when counted)")
    duplicateOf: int | None  # noqa: N815
    report: dict[str, Any] | None = Field(description="the credential's verification report, "
                                          "as POST /v1/verify answers it")


class PortfolioReportOut(_Out):
    """The portfolio report (JSON Schema: verifier/schemas/portfolio-report-v1.schema.json)."""

    format: Literal["microcred-anchor-portfolio-report"]
    version: Literal[1]
    valid: bool = Field(description="every entry valid (whether counted or not)")
    chain: ChainFactsOut | None
    asOf: int | None  # noqa: N815
    recognisedBy: RecognisedByOut | None  # noqa: N815
    requirement: RequirementOut | None
    totals: TotalsOut
    entries: list[PortfolioEntryOut]


def _body_schema() -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": "a portfolio to verify",
                            "content": {"application/json": {
                                "schema": PortfolioVerifyIn.model_json_schema()}}}}


@router.post(PATH.removeprefix(router.prefix), response_model=PortfolioReportOut,
             responses=error_responses(400, 408, 409, 413, 415, 422, 503),
             openapi_extra=_body_schema(),
             summary="Verify a portfolio: every credential, its ECTS, kind and recognition")
async def verify_portfolio_route(request: Request, components: ComponentsDep) -> Response:
    """200 with the report for any portfolio that can be read, whatever its credentials'
    verdicts (each entry's ``verdict``, and the requirement's ``met``, say them). 400 for a
    body that is not strict JSON, 422 for one that is not this shape (both or neither of
    presentation and bundles, a wrong type or a null, a DID that is not one, a requirement
    that is not a positive number, a presentation that is not a VerifiablePresentation,
    more credentials than this service verifies in one request: PORTFOLIO_MAX_ENTRIES,
    default 200), 409 for a recognisedBy the registry does not hold, 413 beyond the body
    limit, 503 while every verification slot or portfolio slot (PORTFOLIO_CONCURRENCY, one
    per client address by default) is taken or the chain cannot be read. Credentials not
    started within the time budget (PORTFOLIO_DEADLINE_SECONDS, default 30 s) come back
    ``not_checked`` in the 200 answer, not counted."""
    try:
        async with vcapi._public_verification(request, components,
                                              also=_slots(request, components)) as body:
            report = await components.in_thread(_verify, components, body)
    except BusyError as busy:
        return busy.response()
    return vcapi._json(request, report)


def _slots(request: Request, components: Components) -> public_verify._Slots:
    """The portfolios in flight, in all and per client (the app's own counter)."""
    slots = getattr(request.app.state, "portfolio_slots", None)
    if not isinstance(slots, public_verify._Slots):
        settings = components.settings
        slots = public_verify._Slots(settings.portfolio_concurrency,
                                     settings.portfolio_per_client, "portfolio verifications")
        request.app.state.portfolio_slots = slots
    return slots


def _verify(components: Components, body: bytes) -> dict[str, Any]:
    # The budget runs from the body's arrival: reading and matching the entries count too.
    deadline = time.monotonic() + components.settings.portfolio_deadline_seconds
    payload = _parse(body)
    most = components.settings.portfolio_max_entries
    if payload.bundles is not None and len(payload.bundles) > most:
        raise _too_many(len(payload.bundles), most)
    entries = _entries(payload)
    if len(entries) > most:
        raise _too_many(len(entries), most)
    requirement = None
    if payload.requireEcts is not None:
        ects = Decimal(str(payload.requireEcts))
        problem = requirement_problem(ects)
        if problem is not None:
            raise ApiError(422, "invalid_request", f"requireEcts: {problem}")
        requirement = Requirement(
            ects=ects, kind=None if payload.requireKind is None else SCOPES[payload.requireKind])
    shared = components.chain_reader()
    # Every credential judged at a head seen after the body arrived: one head request for
    # the whole portfolio, not one per credential.
    reader = shared.since(shared.head_requests_begun())
    try:
        report = verify_portfolio(
            entries, trust=public_verify.service_trust(components),
            reader=reader, recognised_by=payload.recognisedBy,
            requirement=requirement, as_of=_as_of(payload.asOf), deadline=deadline)
    except ChainReadError as exc:
        raise ApiError(503, "chain_unavailable", f"the chain cannot be read: {exc}") from None
    except PortfolioError as exc:
        # The entries were read and counted above: what is left is a recognising
        # institution the registry does not hold, a request that does not fit the registry.
        raise ApiError(409, "unknown_institution", str(exc)) from None
    result: dict[str, Any] = report.to_dict()
    return result


def _too_many(count: int, most: int) -> ApiError:
    return ApiError(422, "too_many_credentials", f"{count} credentials in the portfolio; this "
                    f"service verifies at most {most} in one request (split the portfolio)")


def _parse(body: bytes) -> PortfolioVerifyIn:
    if not body.strip():
        raise ApiError(422, "invalid_request", "send a portfolio as the request body: "
                       '{"presentation": {...}} or {"bundles": [...]}')
    try:
        data = parse_json_object(body, "request body", wrapper_depth=_WRAPPER_DEPTH)
    except CredentialError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    try:
        payload = PortfolioVerifyIn.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", validation_detail(exc.errors())) from None
    if payload.recognisedBy is not None:
        try:
            check_did(payload.recognisedBy, what="recognisedBy")
        except DataIntegrityKeyError as exc:  # the schema's pattern says the same
            raise ApiError(422, "invalid_request", str(exc)) from None
    return payload


def _entries(payload: PortfolioVerifyIn) -> list[PortfolioEntry]:
    if payload.bundles is not None:
        # Each bundle as its own JSON text, read as a bundle file is (its credential's digest
        # is of the canonical form, which the round trip through JSON keeps).
        named = [(f"bundles[{index}]", json.dumps(bundle, ensure_ascii=False))
                 for index, bundle in enumerate(payload.bundles)]
        try:
            return entries_from_bundles(named)
        except PortfolioError as exc:
            raise ApiError(422, "invalid_portfolio", str(exc)) from None
    presentation = payload.presentation or {}
    try:
        return entries_from_presentation(presentation)
    except PortfolioError as exc:
        raise ApiError(422, "invalid_portfolio", f"presentation: {exc}") from None


def _as_of(value: int | str | None) -> datetime | None:
    """``asOf``: Unix seconds (a JSON integer, as a report's ``chain.blockTime``) or an RFC 3339
    date-time with a time zone, within 1970 to 9999 in UTC (a time that parses may be out of
    that range once in UTC, and would fail later)."""
    if value is None:
        return None
    try:
        if isinstance(value, int):
            as_of = datetime.fromtimestamp(value, UTC)
        else:
            if "T" not in value.upper():
                raise ValueError(f"{value!r} is not an RFC 3339 date-time")
            as_of = parse_datetime(value.upper())  # RFC 3339 allows "t" and "z" as well
        if not 0 <= as_of.timestamp() <= _LATEST_AS_OF:
            raise ValueError(f"{str(value)[:40]!r} is out of range: give a time from "
                             "1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z")
        return as_of
    except (ValueError, OverflowError, OSError) as exc:
        raise ApiError(422, "invalid_request", f"asOf: {exc}") from None
