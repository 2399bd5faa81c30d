"""Verifying a learner's portfolio: many credentials at once, their ECTS summed by kind.

    entries = entries_from_presentation(presentation)      # or entries_from_bundles(files)
    report = verify_portfolio(entries, trust=trust, reader=JsonRpcChainReader(url),
                              recognised_by="did:web:admissions.example",
                              requirement=Requirement(Decimal(30), Scope.NON_FORMAL))
    report.to_dict()    # per verifier/schemas/portfolio-report-v1.schema.json

Every credential is verified as a single one is (:func:`verifier.verify.verify`, every check),
all of them through ONE pinned reader, so that the whole report is of one state of the chain
(the block it names under ``chain``). Then its credit points and kind are read from its own
format (:func:`verifier.credits.credits_of`) and, when a recognising institution is given,
the registry is asked whether that institution recognises the credential's issuer for the
credential's kind at its issuance time (its anchoring block's time).

A credential counts toward the totals when it is valid, recognised (when a recognising
institution is given), states its ECTS and its kind, and is not a duplicate: the same
credential (same digest) or the same achievement from the same issuer as an earlier counted
one. Each entry not counted says why. See docs/portfolio.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from verifier.chain import ChainReader
from verifier.contract_types import SCOPES, Scope
from verifier.credential import credential_digest
from verifier.credits import Credits, credits_of, ects_number
from verifier.errors import (
    ChainReadError,
    CredentialError,
    PortfolioError,
    ReceiptError,
    UnreadableDocumentError,
    VerifierError,
)
from verifier.receipt import Bundle, Receipt
from verifier.times import iso_seconds
from verifier.trust import TrustConfig
from verifier.verify import CheckStatus, VerificationReport, verify

if TYPE_CHECKING:
    from verifier.contract_types import Recognition, Trust

__all__ = [
    "MAX_PORTFOLIO_ENTRIES",
    "MAX_REQUIREMENT_ECTS",
    "PORTFOLIO_REPORT_FORMAT",
    "TIMED_OUT_REASON",
    "PortfolioEntry",
    "PortfolioReport",
    "Requirement",
    "entries_from_bundles",
    "entries_from_presentation",
    "requirement_problem",
    "verify_portfolio",
]

#: Why an entry not started before the portfolio's deadline is not counted.
TIMED_OUT_REASON: Final = "not checked: the portfolio took longer than the time allowed"
#: The largest number of ECTS a requirement may ask for.
MAX_REQUIREMENT_ECTS: Final = 100_000
#: The most credentials (and the most receipts) one portfolio may hold.
MAX_PORTFOLIO_ENTRIES: Final = 500
PORTFOLIO_REPORT_FORMAT: Final = "microcred-anchor-portfolio-report"
PORTFOLIO_REPORT_VERSION: Final = 1
#: Credentials verified at once: the chain reads of one credential wait on the node, so a few
#: in parallel keep it busy; more would only queue behind the reader's lock.
_WORKERS: Final = 4
_KIND_ORDER: Final = tuple(Scope)


def requirement_problem(ects: Decimal) -> str | None:
    """Why ``ects`` cannot be a requirement's number of ECTS, or None: it must be above 0, at
    most :data:`MAX_REQUIREMENT_ECTS`, with at most two decimal places (as credentials state
    ECTS), so that it is always printed in a few digits."""
    if not isinstance(ects, Decimal) or not ects.is_finite():
        return f"a requirement needs a number of ECTS, not {ects!s:.40}"
    if ects <= 0 or ects > MAX_REQUIREMENT_ECTS:
        return (f"a requirement needs a number of ECTS above 0 and at most "
                f"{MAX_REQUIREMENT_ECTS}, not {ects!s:.40}")
    exponent = ects.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and ects != ects.quantize(Decimal("0.01")):
        return (f"a requirement's number of ECTS has at most two decimal places, not "
                f"{ects!s:.40}")
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    """``ects`` counted ECTS needed, of kind ``kind`` (any kind when None)."""

    ects: Decimal
    kind: Scope | None = None

    def __post_init__(self) -> None:
        problem = requirement_problem(self.ects)
        if problem is not None:
            raise PortfolioError(problem)
        if self.kind is not None and self.kind not in _KIND_ORDER:
            raise PortfolioError("a requirement's kind is one kind, not several")


@dataclass(frozen=True, slots=True)
class PortfolioEntry:
    """One credential of a portfolio, as read: with its receipt, or with the problem that
    kept it from being read or matched (it is then not valid)."""

    source: str  # a file name, or "verifiableCredential[3]"
    credential: Mapping[str, Any] | None
    receipt: Receipt | None
    problem: str | None = None


# --------------------------------------------------------------------------- reading


def entries_from_bundles(named: Sequence[tuple[str, str | bytes]]) -> list[PortfolioEntry]:
    """One entry per named bundle text (a file's name and content). A text that is not a
    well-formed bundle becomes an entry with its problem; more than
    :data:`MAX_PORTFOLIO_ENTRIES` raises :class:`~verifier.errors.PortfolioError`."""
    _check_size(len(named), "bundles")
    entries = []
    for name, text in named:
        try:
            bundle = Bundle.from_json(text)
        except UnreadableDocumentError as exc:
            entries.append(PortfolioEntry(name, None, None, f"not JSON this verifier reads: {exc}"))
        except ReceiptError as exc:
            entries.append(PortfolioEntry(name, None, None, f"not a well-formed bundle: {exc}"))
        else:
            entries.append(PortfolioEntry(name, bundle.credential, bundle.receipt))
    return entries


def entries_from_presentation(presentation: Mapping[str, Any]) -> list[PortfolioEntry]:
    """The entries of a VC 2.0 ``VerifiablePresentation`` holding credentials
    (``verifiableCredential``) and their receipts (``anchorReceipts``), each credential
    matched to the receipt of its digest. A credential without a receipt, or one that is not
    a JSON object, is an entry with its problem; so is a receipt that is not well formed or
    matches no credential. The holder's proof on the presentation is not checked."""
    types = presentation.get("type")
    type_list = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    if "VerifiablePresentation" not in type_list:
        raise PortfolioError("not a VerifiablePresentation: its type does not name it")
    credentials = _as_list(presentation.get("verifiableCredential"), "verifiableCredential")
    receipts_data = _as_list(presentation.get("anchorReceipts"), "anchorReceipts")
    _check_size(len(credentials), "credentials")
    _check_size(len(receipts_data), "receipts")
    receipts: dict[bytes, int] = {}
    entries: list[PortfolioEntry] = []
    read_receipts: list[Receipt | None] = []
    for number, data in enumerate(receipts_data):
        try:
            receipt = Receipt.from_dict(data)
        except ReceiptError as exc:
            read_receipts.append(None)
            entries.append(PortfolioEntry(f"anchorReceipts[{number}]", None, None,
                                          f"not a well-formed receipt: {exc}"))
            continue
        read_receipts.append(receipt)
        receipts.setdefault(receipt.credential_digest, number)
    used: set[int] = set()
    credential_entries = []
    for number, credential in enumerate(credentials):
        source = f"verifiableCredential[{number}]"
        if not isinstance(credential, Mapping):
            credential_entries.append(PortfolioEntry(
                source, None, None, "not a credential object (an enveloped or referenced "
                "credential is not read)"))
            continue
        try:
            digest = credential_digest(credential)
        except CredentialError as exc:
            credential_entries.append(PortfolioEntry(source, credential, None, str(exc)))
            continue
        found = receipts.get(digest)
        if found is None:
            credential_entries.append(PortfolioEntry(
                source, credential, None, "no receipt in anchorReceipts has this "
                f"credential's digest 0x{digest.hex()}"))
            continue
        used.add(found)
        credential_entries.append(PortfolioEntry(source, credential, read_receipts[found]))
    strays = [PortfolioEntry(f"anchorReceipts[{number}]", None, receipt,
                             "this receipt's credential digest "
                             f"0x{receipt.credential_digest.hex()} matches no credential of "
                             "the presentation")
              for number, receipt in enumerate(read_receipts)
              if receipt is not None and number not in used
              and receipts.get(receipt.credential_digest) == number]
    # A second receipt for the same digest is not a stray: the credential is matched once.
    return credential_entries + entries + strays


def _as_list(value: object, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return [value]  # JSON-LD allows a single member in place of a set
    raise PortfolioError(f"{name} is not an array")


def _check_size(count: int, what: str) -> None:
    if count > MAX_PORTFOLIO_ENTRIES:
        raise PortfolioError(f"{count} {what}: a portfolio holds at most "
                             f"{MAX_PORTFOLIO_ENTRIES}")


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class RecognitionResult:
    """The registry's answer to "does the recognising institution recognise this issuer for
    this kind at this issuance time", and the recognition record behind it."""

    recognised: bool
    path: str  # "self", "direct", "through-body" or "none"
    recognition_id: int
    recogniser_id: int
    subject_id: int
    record: Recognition | None
    #: The block the registry was asked at (the as-of block), None for the report's head.
    at_block: int | None = None
    #: The account that recorded the recognition, and the registry's trust in it at
    #: ``record.recorded_at`` (read at the head, back-dated revocations included).
    recorded_by: str | None = None
    recorder_trust: Trust | None = None

    @property
    def counts(self) -> bool:
        """Recognised, by a recognition recorded with a key trusted when it was recorded."""
        return self.recognised and (self.record is None or (
            self.recorder_trust is not None and self.recorder_trust.trusted
            and self.recorder_trust.entity_id == self.record.recogniser_id))

    def to_dict(self) -> dict[str, Any]:
        trust = self.recorder_trust
        return {"recognised": self.recognised, "path": self.path,
                "recognitionId": self.recognition_id, "recogniserId": self.recogniser_id,
                "subjectId": self.subject_id,
                "record": None if self.record is None else self.record.to_dict(),
                "atBlock": self.at_block, "recordedBy": self.recorded_by,
                "recorderTrust": None if trust is None else {
                    "trusted": trust.trusted, "reason": trust.reason,
                    "entityId": trust.entity_id},
                "counts": self.counts}


@dataclass(frozen=True, slots=True)
class EntryResult:
    """One entry's answer: its verification, credits, recognition and whether it counts."""

    index: int
    source: str
    problem: str | None
    digest: bytes | None
    report: VerificationReport | None
    credits: Credits | None
    issuer_did: str | None
    issuer_name: str | None
    entity_id: int | None
    anchored_at: int | None
    recognition: RecognitionResult | None
    recognition_problem: str | None
    #: (kind, ECTS) when the entry counts toward the totals, else None (``reason`` says why).
    counted_as: tuple[Scope, Decimal] | None
    reason: str | None
    duplicate_of: int | None
    #: The entry was not started before the portfolio's deadline (its verdict is not_checked).
    timed_out: bool = False
    #: The registry holding the issuer (with ``entity_id``, the institution's key).
    registry: str | None = None
    #: The learner: the credential's ``credentialSubject.id``, None when it names none.
    subject: str | None = None
    #: Why the issuer's accredited scope could not be read (the entry is then not counted,
    #: and not established either way).
    scope_problem: str | None = None

    @property
    def unchecked(self) -> bool:
        """Whether a chain read this entry's answer needs did not happen (offline, the chain
        unreadable, the time allowed over, or, for a valid credential, its recognition or
        issuer scope unreadable): its not counting is not established."""
        return (self.verdict in ("offline_checks_passed", "not_checked")
                or (self.verdict == "valid" and (self.recognition_problem is not None
                                                 or self.scope_problem is not None)))

    @property
    def counted(self) -> bool:
        return self.counted_as is not None

    @property
    def verdict(self) -> str:
        if self.timed_out:
            return "not_checked"
        return "not_valid" if self.report is None else self.report.verdict

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "source": self.source, "verdict": self.verdict,
                "problem": self.problem,
                "credentialDigest": None if self.digest is None else "0x" + self.digest.hex(),
                "subject": self.subject,
                "anchoredAt": self.anchored_at,
                "issuer": None if self.entity_id is None else {
                    "did": self.issuer_did, "name": self.issuer_name,
                    "entityId": self.entity_id},
                "credits": None if self.credits is None else self.credits.to_dict(),
                "recognition": None if self.recognition is None else self.recognition.to_dict(),
                "recognitionProblem": self.recognition_problem,
                "counted": self.counted, "reason": self.reason,
                "duplicateOf": self.duplicate_of,
                "report": None if self.report is None else self.report.to_dict()}


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """The chain state every answer of a report was read at."""

    chain_id: int
    registry: str
    anchor: str
    block_number: int
    block_hash: bytes
    block_time: int

    def to_dict(self) -> dict[str, Any]:
        return {"chainId": self.chain_id, "registry": self.registry, "anchor": self.anchor,
                "blockNumber": self.block_number, "blockHash": "0x" + self.block_hash.hex(),
                "blockTime": self.block_time}


@dataclass(frozen=True, slots=True)
class RequirementResult:
    requirement: Requirement
    have: Decimal
    met: bool
    detail: str
    #: Credentials whose chain checks did not run (offline, or the chain unreadable): a
    #: requirement not met with these is not established either way.
    unchecked: int = 0

    def to_dict(self) -> dict[str, Any]:
        kind = self.requirement.kind
        return {"ects": ects_number(self.requirement.ects),
                "kind": None if kind is None else kind.label, "met": self.met,
                "have": ects_number(self.have), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class PortfolioReport:
    """The answer for a whole portfolio; :meth:`to_dict` is the documented JSON."""

    entries: tuple[EntryResult, ...]
    chain: ChainFacts | None
    as_of: int | None
    recognised_by: str | None
    recogniser_id: int | None
    requirement: RequirementResult | None
    by_kind: Mapping[Scope, Decimal] = field(default_factory=dict)

    @property
    def ects(self) -> Decimal:
        return sum(self.by_kind.values(), Decimal(0))

    @property
    def counted(self) -> tuple[EntryResult, ...]:
        return tuple(entry for entry in self.entries if entry.counted)

    @property
    def valid(self) -> bool:
        """Every entry valid (whether counted or not)."""
        return all(entry.verdict == "valid" for entry in self.entries)

    @property
    def exit_code(self) -> int:
        """With a requirement, its answer: 0 when met (credentials that are not valid simply
        do not count), 1 when not met; when not met and some credentials could not be checked
        against the chain, 2 (3 when the chain was not read at all: offline), since the
        answer is not established. Without one, as ``verify-credential`` answers for bundles:
        1 when an entry is not valid; else 2 when the chain could not be read for an entry
        (its verification or its recognition); else 3 when only offline checks ran; else 0."""
        verdicts = {entry.verdict for entry in self.entries}
        unreadable = "not_checked" in verdicts or any(
            entry.unchecked and entry.verdict == "valid" for entry in self.entries)
        if self.requirement is not None:
            met, established = self.requirement.met, not self.requirement.unchecked
            return 0 if met else 1 if established else 3 if self.chain is None else 2
        if "not_valid" in verdicts:
            return 1
        return 2 if unreadable else 3 if "offline_checks_passed" in verdicts else 0

    @property
    def subjects(self) -> list[str]:
        """The distinct learners (``credentialSubject.id``) of the entries, in the order
        first met."""
        return list(dict.fromkeys(entry.subject for entry in self.entries
                                  if entry.subject is not None))

    def institutions(self) -> list[dict[str, Any]]:
        """The counted ECTS of each issuing institution (an entity of one registry), in the
        order first met."""
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for entry in self.entries:
            if entry.counted_as is None:
                continue
            kind, ects = entry.counted_as
            row = found.setdefault((entry.registry or "", entry.entity_id or 0), {
                "registry": entry.registry, "issuerDid": entry.issuer_did,
                "issuerName": entry.issuer_name, "entityId": entry.entity_id,
                "byKind": {each: Decimal(0) for each in _KIND_ORDER}})
            row["byKind"][kind] += ects
        return [{**row, "byKind": {kind.label: ects_number(value)
                                   for kind, value in row["byKind"].items()},
                 "ects": ects_number(sum(row["byKind"].values(), Decimal(0)))}
                for row in found.values()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PORTFOLIO_REPORT_FORMAT,
            "version": PORTFOLIO_REPORT_VERSION,
            "valid": self.valid,
            "chain": None if self.chain is None else self.chain.to_dict(),
            "asOf": self.as_of,
            "recognisedBy": None if self.recognised_by is None else {
                "did": self.recognised_by, "entityId": self.recogniser_id},
            "requirement": None if self.requirement is None else self.requirement.to_dict(),
            "totals": {
                "ects": ects_number(self.ects),
                "byKind": {kind.label: ects_number(self.by_kind.get(kind, Decimal(0)))
                           for kind in _KIND_ORDER},
                "byInstitution": self.institutions(),
                "counted": len(self.counted),
                "subjects": self.subjects,
                "mixedSubjects": len(self.subjects) > 1,
                "notCounted": [{"index": e.index, "source": e.source, "reason": e.reason}
                               for e in self.entries if not e.counted],
                "duplicates": [{"index": e.index, "source": e.source,
                                "duplicateOf": e.duplicate_of, "reason": e.reason}
                               for e in self.entries if e.duplicate_of is not None],
            },
            "entries": [entry.to_dict() for entry in self.entries],
        }


def format_ects(value: Decimal) -> str:
    """``7.5``, ``30``: an ECTS value as a person writes it. Values here are sums and
    differences of numbers of at most two decimal places and bounded size, so the fixed-point
    form is short; one that is not (more than 40 digits) is written in scientific form rather
    than expanded."""
    if not value.is_finite() or value.adjusted() > 40 or value.adjusted() < -40:
        return str(value)
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- verifying


@dataclass(slots=True)
class _Recogniser:
    did: str
    by_registry: dict[str, int]
    cache: dict[tuple[str, int, Scope, int], RecognitionResult]
    #: The block the registry is asked at: the as-of block, or None for the pinned head.
    at_block: int | None = None


def verify_portfolio(entries: Sequence[PortfolioEntry], *, trust: TrustConfig,
                     reader: ChainReader | None, recognised_by: str | None = None,
                     requirement: Requirement | None = None,
                     as_of: datetime | None = None,
                     deadline: float | None = None) -> PortfolioReport:
    """Verify every entry and sum the counted ECTS by kind (see the module's docstring).

    ``deadline`` is a :func:`time.monotonic` time: an entry whose verification has not
    started by then is not verified; it is reported ``not_checked`` with the reason
    :data:`TIMED_OUT_REASON` (so the report's exit code is 2 unless an entry is not valid).
    Entries already started finish; an entry whose issuer scope or recognition is still to be
    read once the deadline has passed is not read further: it is not counted, and its scope or
    recognition problem is :data:`TIMED_OUT_REASON` (so a requirement it could change is not
    established).

    Raises :class:`~verifier.errors.PortfolioError` for more than
    :data:`MAX_PORTFOLIO_ENTRIES` entries or a ``recognised_by`` DID the registry does not
    hold, and :class:`~verifier.errors.ChainReadError` when the chain's head cannot be read
    at all (a chain that fails later makes the entries concerned ``not_checked``)."""
    _check_size(len(entries), "credentials")
    as_of_seconds = None
    if as_of is not None:
        if as_of.tzinfo is None:
            raise VerifierError(f"as_of {as_of.isoformat()} has no time zone")
        as_of_seconds = int(as_of.timestamp())
    pinned = None
    chain = None
    recogniser = None
    if reader is not None:
        newest = max((e.receipt.anchor.block_number for e in entries if e.receipt is not None),
                     default=0)
        # One head for the whole portfolio: every answer of the report is of one chain state.
        pinned = reader.at_head(newest)
        chain = _chain_facts(pinned, trust)
        if recognised_by is not None:
            recogniser = _resolve(pinned, trust, recognised_by)
            if as_of_seconds is not None:
                # Recognitions as the registry held them at the as-of time: a recognition
                # recorded later (even for the same pair, which the registry answers first)
                # does not change a re-check. Block 0 when the chain began later: no
                # credential can have been valid then.
                recogniser.at_block = pinned.block_at_time(as_of_seconds) or 0
    reports, timed_out = _verify_all(entries, trust=trust, reader=pinned, as_of=as_of,
                                     deadline=deadline)
    results: list[EntryResult] = []
    counted = _Counted()
    by_kind = {kind: Decimal(0) for kind in _KIND_ORDER}
    for index, (entry, report) in enumerate(zip(entries, reports, strict=True)):
        result = _judge(index, entry, report, trust=trust, reader=pinned, recogniser=recogniser,
                        as_of=as_of_seconds, counted=counted, timed_out=index in timed_out,
                        deadline=deadline)
        if result.counted_as is not None:
            kind, ects = result.counted_as
            by_kind[kind] += ects
        results.append(result)
    requirement_result = None
    if requirement is not None:
        unchecked = sum(result.unchecked for result in results)
        requirement_result = _requirement(requirement, by_kind, unchecked)
    return PortfolioReport(tuple(results), chain, as_of_seconds, recognised_by,
                           None if recogniser is None else
                           next(iter(recogniser.by_registry.values()), None),
                           requirement_result, by_kind)


def _chain_facts(pinned: ChainReader, trust: TrustConfig) -> ChainFacts | None:
    chain_id = pinned.chain_id()
    head = pinned.latest_block()
    block = pinned.block(head)
    deployment = next((d for d in trust.deployments if d.chain_id == chain_id), None)
    if block is None or deployment is None:
        return None
    return ChainFacts(chain_id, deployment.registry, deployment.anchor, block.number,
                      block.hash, block.timestamp)


def _resolve(pinned: ChainReader, trust: TrustConfig, did: str) -> _Recogniser:
    """The recognising institution's entity id in each trusted registry of this chain."""
    chain_id = pinned.chain_id()
    found = {}
    for deployment in trust.deployments:
        if deployment.chain_id != chain_id or deployment.registry in found:
            continue
        entity_id = pinned.entity_id_by_did(deployment.registry, did)
        if entity_id:
            found[deployment.registry] = entity_id
    if not found:
        raise PortfolioError(f"the recognising institution {did!r} is not in the registry "
                             "of any trusted deployment on this chain")
    return _Recogniser(did, found, {})


def _verify_all(entries: Sequence[PortfolioEntry], *, trust: TrustConfig,
                reader: ChainReader | None, as_of: datetime | None,
                deadline: float | None) -> tuple[list[VerificationReport | None], set[int]]:
    """Each entry's verification report (None when it has a problem or was not started),
    and the indexes of the entries not started before ``deadline``."""
    timed_out: set[int] = set()

    def one(index: int) -> VerificationReport | None:
        entry = entries[index]
        if entry.problem is not None or entry.credential is None or entry.receipt is None:
            return None
        # Checked as each entry starts, so that the work stops within one entry's time of
        # the deadline (per worker) and the entries left are named, not dropped.
        if deadline is not None and time.monotonic() >= deadline:
            timed_out.add(index)
            return None
        return verify(entry.credential, entry.receipt, trust=trust, reader=reader, as_of=as_of)

    if reader is None or len(entries) < 2:
        return [one(index) for index in range(len(entries))], timed_out
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(entries))) as pool:
        return list(pool.map(one, range(len(entries)))), timed_out


def _judge(index: int, entry: PortfolioEntry, report: VerificationReport | None, *,
           trust: TrustConfig, reader: ChainReader | None, recogniser: _Recogniser | None,
           as_of: int | None, counted: _Counted, timed_out: bool = False,
           deadline: float | None = None) -> EntryResult:
    credits = None if entry.credential is None else credits_of(entry.credential)
    digest = None if entry.receipt is None else entry.receipt.credential_digest
    issuer = _issuer_of(entry, report, trust)
    recognition = None
    recognition_problem = None
    reason = TIMED_OUT_REASON if timed_out else _invalid_reason(entry, report)
    if reason is None and credits is not None:
        reason = (f"kind unknown: {credits.kind_problem}" if credits.kind is None else
                  f"ECTS unknown: {credits.ects_problem}" if credits.ects is None else None)
    scope_problem = None
    if reason is None and reader is not None and issuer is not None \
            and deadline is not None and time.monotonic() >= deadline:
        # The scope and recognition reads below are chain reads too, part of the time
        # allowed: past it, the entry is named as not checked instead of read on.
        reason = TIMED_OUT_REASON
        if recogniser is not None:
            recognition_problem = TIMED_OUT_REASON
        else:
            scope_problem = TIMED_OUT_REASON
    if reason is None and reader is not None and issuer is not None and credits is not None \
            and credits.kind is not None:
        # The kind may come from the credential's own format (an ELM learning setting) and
        # not from learningScope, which is all verify's scope check reads: the issuer's
        # accreditation must cover it for the credential to count.
        scope_problem, reason = _scope_reason(reader, issuer, credits.kind)
    if reason is None and recogniser is not None and reader is not None and issuer is not None:
        # Only for an entry that could count: a recognition read that fails for one that
        # cannot (revoked, out of scope) must not leave the answer unestablished.
        recognition, recognition_problem, reason = _recognise(reader, recogniser, issuer,
                                                              credits)
    counted_as = None
    duplicate_of = None
    if reason is None and digest is not None and issuer is not None and credits is not None \
            and credits.kind is not None and credits.ects is not None:
        duplicate_of, reason = counted.duplicate(index, digest, issuer, credits.achievement)
        if reason is None:
            counted_as = (credits.kind, credits.ects)
    elif reason is None:  # pragma: no cover - a valid report always names its issuer
        reason = "the issuer could not be read"
    return EntryResult(index, entry.source, entry.problem, digest, report, credits,
                       None if issuer is None else issuer.did,
                       None if issuer is None else issuer.name,
                       None if issuer is None else issuer.entity_id,
                       None if issuer is None else issuer.anchored_at, recognition,
                       recognition_problem, counted_as, reason, duplicate_of, timed_out,
                       None if issuer is None else issuer.registry,
                       None if entry.credential is None else _subject_of(entry.credential),
                       scope_problem)


def _subject_of(credential: Mapping[str, Any]) -> str | None:
    """``credentialSubject.id`` (of its one subject), or None."""
    subject = credential.get("credentialSubject")
    if isinstance(subject, list) and len(subject) == 1:
        subject = subject[0]
    if isinstance(subject, Mapping):
        found = subject.get("id")
        if isinstance(found, str):
            return found
    return None


def _scope_reason(reader: ChainReader, issuer: _Issuer,
                  kind: Scope) -> tuple[str | None, str | None]:
    """(why the issuer's scope could not be read, why the credential does not count): both
    None when the issuer is accredited for ``kind``. The entity is the one verify read, so
    the pinned reader answers it from its cache."""
    try:
        scope = reader.entity(issuer.registry, issuer.entity_id).scope
    except ChainReadError as exc:
        problem = f"{exc.headline}: {exc}"
        return problem, f"not checked: the issuer's accredited scope could not be read: {problem}"
    if not scope & kind:
        return None, f"the issuer is not accredited for {kind.label} credentials"
    return None, None


@dataclass(frozen=True, slots=True)
class _Issuer:
    """The entity that anchored a valid credential, in its registry, and when."""

    registry: str
    entity_id: int
    did: str | None
    name: str | None
    anchored_at: int


def _issuer_of(entry: PortfolioEntry, report: VerificationReport | None,
               trust: TrustConfig) -> _Issuer | None:
    if report is None or report.anchored_at is None or entry.receipt is None:
        return None
    anchored = report.check("anchored_on_chain")
    anchor = entry.receipt.anchor
    deployment = trust.deployment_for(anchor.chain_id, "0x" + anchor.contract.hex())
    if anchored.status is not CheckStatus.PASSED or deployment is None:
        return None
    return _Issuer(deployment.registry, int(anchored.evidence["entityId"]), report.issuer_did,
                   report.issuer_name, report.anchored_at)


@dataclass(slots=True)
class _Counted:
    """The credentials counted so far, by digest and by (issuer, achievement)."""

    digests: dict[bytes, int] = field(default_factory=dict)
    achievements: dict[tuple[str, int, str], int] = field(default_factory=dict)

    def duplicate(self, index: int, digest: bytes, issuer: _Issuer,
                  achievement: str | None) -> tuple[int | None, str | None]:
        """(the entry this one repeats, why) or, when it is new, (None, None) and it is
        recorded as counted."""
        earlier = self.digests.get(digest)
        if earlier is not None:
            return earlier, f"duplicate of entry {earlier}: the same credential"
        key = None if achievement is None else (issuer.registry, issuer.entity_id, achievement)
        if key is not None and key in self.achievements:
            earlier = self.achievements[key]
            return earlier, (f"duplicate of entry {earlier}: the same achievement "
                             f"{achievement} from the same issuer")
        self.digests[digest] = index
        if key is not None:
            self.achievements[key] = index
        return None, None


def _recognise(reader: ChainReader, recogniser: _Recogniser, issuer: _Issuer,
               credits: Credits | None) -> tuple[RecognitionResult | None, str | None,
                                                 str | None]:
    """(the registry's answer, why it could not be read, why the credential is not
    recognised) for a valid credential."""
    if credits is None or credits.kind is None:
        return None, None, "kind unknown: recognition is per kind"
    if issuer.registry not in recogniser.by_registry:
        return None, None, (f"{recogniser.did} is not in the registry {issuer.registry} that "
                            "holds this credential's issuer")
    try:
        recognition = _recognition(reader, recogniser, issuer, credits.kind)
    except ChainReadError as exc:
        problem = f"{exc.headline}: {exc}"
        return None, problem, f"recognition not checked: {problem}"
    return recognition, None, _unrecognised_reason(recognition, recogniser.did, credits.kind,
                                                   issuer.anchored_at)


def _invalid_reason(entry: PortfolioEntry, report: VerificationReport | None) -> str | None:
    if entry.problem is not None:
        return entry.problem
    if report is None:
        return "not verified"
    if report.verdict == "valid":
        return None
    if report.verdict == "offline_checks_passed":
        return "offline: the chain was not checked"
    if report.verdict == "not_checked":
        return "not checked: the chain could not be read"
    failed = [c.name for c in report.checks if c.status is CheckStatus.FAILED]
    return "not valid: failed " + ", ".join(failed)


def _recognition(reader: ChainReader, recogniser: _Recogniser, issuer: _Issuer,
                 kind: Scope) -> RecognitionResult:
    registry, subject, when = issuer.registry, issuer.entity_id, issuer.anchored_at
    asker = recogniser.by_registry[registry]
    key = (registry, subject, kind, when)
    cached = recogniser.cache.get(key)
    if cached is not None:
        return cached
    at_block = recogniser.at_block
    answer = reader.recognised_at(registry, asker, subject, kind, when, at_block=at_block)
    record = recorded_by = recorder_trust = None
    if answer.recognised and answer.recognition_id != 0:
        record = reader.recognition(registry, answer.recognition_id, at_block)
        # The registry does not ask whether the key that recorded a recognition is still
        # trusted: a key revoked back-dated to its compromise keeps its recognitions on
        # chain. Its event names it, and the registry's trust in it then decides.
        recorded_by = reader.recognition_recorder(registry, record.id, record.recorded_at,
                                                  at_block)
        recorder_trust = reader.trusted_at(registry, recorded_by, record.recorded_at)
    result = RecognitionResult(answer.recognised, answer.path(asker, subject).value,
                               answer.recognition_id, answer.recogniser_id, answer.subject_id,
                               record, at_block, recorded_by, recorder_trust)
    recogniser.cache[key] = result
    return result


def _unrecognised_reason(recognition: RecognitionResult, did: str, kind: Scope,
                         when: int) -> str | None:
    if not recognition.recognised:
        return f"not recognised by {did} for {kind.label} credentials issued at {iso_seconds(when)}"
    trust = recognition.recorder_trust
    if not recognition.counts:
        code = "unknown" if trust is None else (
            trust.reason if not trust.trusted else
            f"a key of entity {trust.entity_id}, not of the recogniser")
        return (f"the recognition was recorded by {recognition.recorded_by}, not trusted "
                f"then ({code})")
    return None


def _requirement(requirement: Requirement, by_kind: Mapping[Scope, Decimal],
                 unchecked: int) -> RequirementResult:
    kind = requirement.kind
    have = by_kind.get(kind, Decimal(0)) if kind is not None else sum(by_kind.values(),
                                                                       Decimal(0))
    met = have >= requirement.ects
    of = f" of {kind.label}" if kind is not None else ""
    detail = (f"{format_ects(have)} ECTS{of} counted, {format_ects(requirement.ects)} "
              "required: " + ("met" if met else
                              f"not met, short by {format_ects(requirement.ects - have)} ECTS"))
    if not met and unchecked:
        detail += (f" (not established: {unchecked} credential(s) not checked against the "
                   "chain, so not counted)")
    return RequirementResult(requirement, have, met, detail, unchecked)


def kind_named(name: str) -> Scope:
    """The kind called ``name`` ("formal-degree", "formal-non-degree", "non-formal")."""
    try:
        return SCOPES[name]
    except KeyError:
        raise PortfolioError(f"unknown kind {name!r}: one of {', '.join(SCOPES)}") from None
