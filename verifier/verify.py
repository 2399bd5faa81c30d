"""Verifying a credential against its receipt: every check reported with its evidence.

    report = verify_bundle_text(text, trust=trust, reader=JsonRpcChainReader(url))
    report.valid        # True only if every check passed (or does not apply)
    report.checks       # each with status, detail and evidence

Checks that need the chain are ``not_checked`` when no reader is given (offline), and the
report is then not valid, but says exactly what was and was not established: its ``verdict``
is ``offline_checks_passed`` when every check that ran passed.

The issuer's signature (a W3C Data Integrity ``DataIntegrityProof``) is checked offline with
the key its ``verificationMethod`` names (``<issuer DID>#<publicKeyMultibase>``), or with a key
the caller gives; against the chain, that key must be registered to the credential's issuer
and trusted when the credential was anchored. The digest check is over the credential as it
is, proof included: the service anchors the signed credential.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from hashlib import sha256
from types import MappingProxyType
from typing import Any, NamedTuple

from verifier.bitstring import parse_status_list_url
from verifier.chain import ChainReader
from verifier.contract_types import (
    SCOPES,
    AnchorInfo,
    Entity,
    StatusPurpose,
    Trust,
    signing_key_id,
)
from verifier.credential import canonicalize, issuer_id
from verifier.data_integrity import verify_proof
from verifier.did import split_verification_method
from verifier.errors import (
    ChainBehindError,
    ChainReadError,
    CredentialError,
    DataIntegrityError,
    ProofError,
    ReceiptError,
    ReorganisedError,
    ScopeShapeError,
    StatusListError,
    UnreadableDocumentError,
    VerifierError,
)
from verifier.list_check import compare_lists
from verifier.merkle import verify_inclusion
from verifier.multikey import Multikey
from verifier.receipt import Bundle, Receipt
from verifier.scope import SCOPE_KEY, declared_scopes
from verifier.status_list import read_entry, status_entries_of
from verifier.times import parse_datetime, timestamp
from verifier.trust import TrustConfig, TrustedDeployment

__all__ = [
    "Check",
    "CheckStatus",
    "VerificationReport",
    "check_signature",
    "parse_datetime",
    "verify",
    "verify_bundle_text",
]

CHECK_NAMES = (
    "receipt_well_formed", "digest_matches", "merkle_inclusion", "trusted_deployment",
    "anchored_on_chain", "confirmations", "issuer_trusted_at_anchoring", "issuer_did_matches",
    "signature_valid", "signing_key_registered", "signing_key_trusted_at_anchoring",
    "scope_allows_kind", "not_revoked", "not_suspended", "status_entries_match",
    "status_list_matches_chain", "validity_period",
)
_SIGNATURE_CHECKS = ("signature_valid", "signing_key_registered",
                     "signing_key_trusted_at_anchoring")
_CHAIN_CHECKS = frozenset({
    "anchored_on_chain", "confirmations", "issuer_trusted_at_anchoring", "issuer_did_matches",
    "signing_key_registered", "signing_key_trusted_at_anchoring", "scope_allows_kind",
    "not_revoked", "not_suspended", "status_list_matches_chain"})


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKED = "not_checked"  # could not be checked (offline, or an earlier check failed)
    NOT_APPLICABLE = "not_applicable"  # nothing to check (e.g. no validity period declared)


class Check(NamedTuple):
    """One check's outcome. (A named tuple: reports are built by the thousand per second.)"""

    name: str
    status: CheckStatus
    detail: str
    evidence: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The outcome of a verification; valid only if every check passed or does not apply."""

    checks: tuple[Check, ...]
    issuer_did: str | None = None
    #: The issuer's name as the credential states it; given only when the credential's issuer
    #: id is the DID of the entity that anchored it (so the name is that issuer's own word).
    issuer_name: str | None = None
    #: The registry's metadata URI for the anchoring entity, set by its accrediting body.
    issuer_metadata_uri: str | None = None
    anchored_at: int | None = None
    #: The time the credential was judged at (Unix seconds), when not now.
    as_of: int | None = None
    #: The issuer proof that verified: ``cryptosuite``, ``verificationMethod``, ``created``.
    signature: Mapping[str, Any] | None = None
    #: The credential carries no issuer proof and was judged without one, because the trust
    #: configuration allows unsigned credentials (``requireSignature`` false,
    #: ``--allow-unsigned``): its signature checks are ``not_applicable``.
    unsigned_allowed: bool = False

    @property
    def valid(self) -> bool:
        return all(c.status in (CheckStatus.PASSED, CheckStatus.NOT_APPLICABLE)
                   for c in self.checks)

    @property
    def offline_checks_passed(self) -> bool:
        """Not valid only because the chain was not read (no reader given): every check that
        ran passed or does not apply, and each one left out needs the chain."""
        return not self.valid and all(
            c.status in (CheckStatus.PASSED, CheckStatus.NOT_APPLICABLE)
            or c is _OFFLINE.get(c.name) for c in self.checks)

    @property
    def not_checked(self) -> bool:
        """Not valid only because the chain could not be read (the node unreachable, or
        without the past state an as-of check needs): no check failed."""
        return (not self.valid and not self.offline_checks_passed
                and all(c.status is not CheckStatus.FAILED for c in self.checks))

    @property
    def verdict(self) -> str:
        """``valid``, ``not_valid``, ``offline_checks_passed`` or ``not_checked`` (see
        above): what to tell a person, who must not read an unchecked chain as a failed
        credential."""
        return ("valid" if self.valid else
                "offline_checks_passed" if self.offline_checks_passed else
                "not_checked" if self.not_checked else "not_valid")

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "verdict": self.verdict, "issuerDid": self.issuer_did,
                "issuerName": self.issuer_name, "issuerMetadataUri": self.issuer_metadata_uri,
                "anchoredAt": self.anchored_at, "asOf": self.as_of,
                "signature": None if self.signature is None else dict(self.signature),
                "unsignedAllowed": self.unsigned_allowed,
                "checks": [{"name": c.name, "status": c.status.value, "detail": c.detail,
                            "evidence": dict(c.evidence)} for c in self.checks]}


def _shared(status: CheckStatus, detail: str, names: tuple[str, ...]) -> dict[str, Check]:
    return {name: Check(name, status, detail) for name in names}


# Outcomes without evidence are the same in every report, so each exists once: a report
# then costs a few allocations instead of a dozen (verifying many receipts is
# allocation-bound, and every container allocated feeds the garbage collector).
_EARLIER_FAILED = _shared(CheckStatus.NOT_CHECKED, "not checked: an earlier check failed",
                          CHECK_NAMES)
_OFFLINE = _shared(CheckStatus.NOT_CHECKED, "offline: needs the chain", CHECK_NAMES)
_WELL_FORMED = Check("receipt_well_formed", CheckStatus.PASSED, "receipt v2 parsed strictly")
_NO_SCOPE = Check("scope_allows_kind", CheckStatus.NOT_APPLICABLE,
                  "the credential declares no learningScope")
_NO_VALIDITY = Check("validity_period", CheckStatus.NOT_APPLICABLE,
                     "no validity period declared")
_NO_ENTRIES = Check("status_entries_match", CheckStatus.NOT_APPLICABLE,
                    "the credential carries no BitstringStatusListEntry")
_NO_STATUS_LIST = Check("status_list_matches_chain", CheckStatus.NOT_APPLICABLE,
                        "no published status list given")
_UNSIGNED_ALLOWED = _shared(CheckStatus.NOT_APPLICABLE,
                            "the credential is not signed, and unsigned credentials are allowed "
                            "(requireSignature false, --allow-unsigned)", _SIGNATURE_CHECKS)
_UNSIGNED_REFUSED = Check("signature_valid", CheckStatus.FAILED,
                          "the credential is not signed (it has no proof), and a signature is "
                          "required (to accept it on its anchor alone: requireSignature false, "
                          "--allow-unsigned)")


class _SigningKey(NamedTuple):
    """A verification method read from a proof: its id, the DID it names and its key."""

    vm: str
    did: str
    key: Multikey


# Verification methods already read, by id: a verifier meets the same few issuer keys again and
# again, and reading one (base58, the point's checks, keccak) costs more than the signature
# check of an Ed25519 proof. Bounded, and emptied when full, since proofs are untrusted input.
_KEYS: dict[str, _SigningKey] = {}
_KEYS_LIMIT = 1024


def _signing_key(vm: object) -> _SigningKey:
    if isinstance(vm, str):
        known = _KEYS.get(vm)
        if known is not None:
            return known
    did, key = split_verification_method(vm)
    read = _SigningKey(f"{did}#{key.multibase}", did, key)
    if len(_KEYS) >= _KEYS_LIMIT:
        _KEYS.clear()
    _KEYS[str(vm)] = read
    return read


class _Checks:
    def __init__(self, as_of: int | None = None) -> None:
        self.items: dict[str, Check] = {}
        self.as_of = as_of
        self.names_scope = True  # whether the credential may hold a learningScope key
        self.signing: _SigningKey | None = None  # the key of a proof that verified
        self.signature: Mapping[str, Any] | None = None
        self.unsigned_allowed = False

    def add(self, name: str, passed: bool, detail: str, **evidence: Any) -> bool:
        status = CheckStatus.PASSED if passed else CheckStatus.FAILED
        self.items[name] = Check(name, status, detail, MappingProxyType(evidence))
        return passed

    def set(self, name: str, status: CheckStatus, detail: str) -> None:
        self.items[name] = Check(name, status, detail)

    def put(self, check: Check) -> None:
        self.items[check.name] = check

    def report(self, **extra: Any) -> VerificationReport:
        items = self.items
        return VerificationReport(tuple([items.get(n) or _EARLIER_FAILED[n]
                                         for n in CHECK_NAMES]), as_of=self.as_of,
                                  signature=self.signature,
                                  unsigned_allowed=self.unsigned_allowed, **extra)


def verify_bundle_text(text: str | bytes, *, trust: TrustConfig, reader: ChainReader | None,
                       as_of: datetime | None = None,
                       issuer_key: Multikey | None = None,
                       status_lists: Sequence[Mapping[str, Any]] = ()) -> VerificationReport:
    """Verify a bundle (credential and receipt in one JSON document).

    Any JSON object gets a report: one that is not a well-formed bundle fails
    ``receipt_well_formed``. Text that is not JSON this verifier reads (a syntax error, a
    duplicate key, an integer beyond +-(2**53 - 1), nesting too deep) raises
    :class:`~verifier.errors.UnreadableDocumentError`: there is nothing to report on."""
    try:
        bundle = Bundle.from_json(text)
    except UnreadableDocumentError:
        raise
    except ReceiptError as exc:
        checks = _Checks(_seconds(as_of))
        checks.add("receipt_well_formed", False, str(exc), field=exc.field)
        return checks.report()
    return verify(bundle.credential, bundle.receipt, trust=trust, reader=reader, as_of=as_of,
                  issuer_key=issuer_key, status_lists=status_lists)


def verify(credential: Mapping[str, Any], receipt: Receipt, *, trust: TrustConfig,
           reader: ChainReader | None, as_of: datetime | None = None,
           issuer_key: Multikey | None = None,
           status_lists: Sequence[Mapping[str, Any]] = ()) -> VerificationReport:
    """Run every check of ``credential`` against ``receipt``.

    ``issuer_key``, when given, is the issuer's public key as the caller knows it (offline, from
    the issuer): the proof's verification method must name that very key. ``status_lists``
    are published ``BitstringStatusListCredential`` documents: those of the credential's
    issuer and list are compared with the chain (``status_list_matches_chain``,
    :mod:`verifier.list_check`), and at least one must be."""
    when = _seconds(as_of)
    checks = _Checks(when)
    checks.put(_WELL_FORMED)
    if not status_lists:
        checks.put(_NO_STATUS_LIST)
    _validity(checks, credential, int(time.time()) if when is None else when)
    deployment = _offline_checks(checks, credential, receipt, trust)
    if deployment is None:
        return checks.report()
    _signature(checks, credential, trust.require_signature, issuer_key,
               int(time.time()) if when is None else when)
    if reader is None:
        for name in _CHAIN_CHECKS:
            if name not in checks.items:  # an unsigned credential's not_applicable stays
                checks.put(_OFFLINE[name])
        _scope(checks, credential, None)
        return checks.report()
    try:
        # Every chain read of one verification is of one head's state (at_head), so that
        # no report combines two states of the chain. If that head is reorganised away
        # while it is read, the chain checks start over at the new head, once.
        try:
            return _chain_checks(checks, credential, receipt, deployment=deployment,
                                 reader=reader.at_head(receipt.anchor.block_number),
                                 trust=trust, as_of=when, status_lists=status_lists)
        except ReorganisedError:
            for name in _CHAIN_CHECKS:
                kept = checks.items.get(name)
                if kept is not _UNSIGNED_ALLOWED.get(name) and kept is not _NO_STATUS_LIST:
                    checks.items.pop(name, None)
            return _chain_checks(checks, credential, receipt, deployment=deployment,
                                 reader=reader.at_head(receipt.anchor.block_number),
                                 trust=trust, as_of=when, status_lists=status_lists)
    except ChainReadError as exc:
        for name in _CHAIN_CHECKS:
            if name not in checks.items:
                checks.set(name, CheckStatus.NOT_CHECKED, f"{exc.headline}: {exc}")
        return checks.report()


def _seconds(as_of: datetime | None) -> int | None:
    if as_of is None:
        return None
    if as_of.tzinfo is None:
        raise VerifierError(f"as_of {as_of.isoformat()} has no time zone")
    return int(as_of.timestamp())


def _offline_checks(checks: _Checks, credential: Mapping[str, Any], receipt: Receipt,
                    trust: TrustConfig) -> TrustedDeployment | None:
    """Digest, inclusion and trusted deployment; the deployment if all three pass."""
    try:
        canonical = canonicalize(credential)
    except CredentialError as exc:
        checks.add("digest_matches", False, str(exc))
        return None
    digest = sha256(canonical).digest()
    # Most credentials name no learningScope at all: one search of the canonical text (in C)
    # spares them the walk that looks for one in every place.
    checks.names_scope = SCOPE_KEY in canonical
    if not checks.add("digest_matches", digest == receipt.credential_digest,
                      "the credential hashes to the receipt's digest"
                      if digest == receipt.credential_digest else
                      "the credential does not hash to the receipt's digest: it was changed",
                      computed="0x" + digest.hex(),
                      receipt="0x" + receipt.credential_digest.hex()):
        return None
    try:
        verify_inclusion(receipt.leaf_input, receipt.leaf_index, receipt.tree_size,
                         list(receipt.audit_path), receipt.root)
    except ProofError as exc:
        checks.add("merkle_inclusion", False, f"the audit path does not hold: {exc}")
        return None
    checks.add("merkle_inclusion", True, "the audit path leads to the root",
               root="0x" + receipt.root.hex(), leafIndex=receipt.leaf_index,
               treeSize=receipt.tree_size)
    _status_entries(checks, credential, receipt)
    anchor = receipt.anchor
    deployment = trust.deployment_for(anchor.chain_id, "0x" + anchor.contract.hex())
    checks.add("trusted_deployment", deployment is not None,
               "the receipt names a trusted deployment" if deployment else
               "the receipt's chain and contract are not in the trust list",
               chainId=anchor.chain_id, contract="0x" + anchor.contract.hex())
    return deployment


def _status_entries(checks: _Checks, credential: Mapping[str, Any], receipt: Receipt) -> None:
    """``status_entries_match``: each ``BitstringStatusListEntry`` of the credential points at
    the status position its receipt binds into the anchored leaf (the list and index the chain
    is read at), in the lists its issuer publishes (on the host of the issuer's did:web DID,
    under the issuer's name), with one entry of each purpose at one list URL prefix, so that a
    standard verifier reading the published list reads the same entry as this one. An entry
    pointing elsewhere fails: the credential would show standard verifiers another position's
    status, or another server's. The issuer compared with is the credential's; the chain
    checks compare that one with the anchoring issuer."""
    entries = status_entries_of(credential)
    if not entries:
        checks.put(_NO_ENTRIES)
        return
    position = f"{receipt.status_list}/{receipt.status_list_index}"
    did = issuer_id(credential)
    purposes: set[str] = set()
    prefixes: set[str] = set()
    for number, entry in enumerate(entries):
        try:
            read = read_entry(entry)
            if did is None:
                raise StatusListError("the credential names no issuer to publish its lists")
            status_list, purpose = parse_status_list_url(read.list_url, did)
        except StatusListError as exc:
            checks.add("status_entries_match", False, f"status entry {number}: {exc}",
                       receipt=position)
            return
        if read.purpose != purpose.value or status_list != receipt.status_list \
                or read.index != receipt.status_list_index:
            checks.add("status_entries_match", False, f"status entry {number} ({read.purpose}) "
                       f"points at list {status_list} ({purpose.value}) entry {read.index}, "
                       f"the receipt at list {receipt.status_list} entry "
                       f"{receipt.status_list_index}", receipt=position,
                       entry=f"{status_list}/{read.index}")
            return
        purposes.add(purpose.value)
        prefixes.add(read.list_url.rsplit("/", 1)[0])
    missing = [p.value for p in StatusPurpose if p.value not in purposes]
    if missing or len(prefixes) != 1:
        checks.add("status_entries_match", False, "the credential's status entries are not "
                   "one revocation and one suspension entry of one issuer's list: "
                   + (f"no {missing[0]} entry" if missing else
                      f"their lists are at {' and '.join(sorted(prefixes))}"[:400]),
                   receipt=position)
        return
    checks.add("status_entries_match", True, f"the credential's {len(entries)} status "
               f"entries point at its anchored status (list {receipt.status_list}, entry "
               f"{receipt.status_list_index}) in its issuer's published lists",
               receipt=position)


def check_signature(credential: Mapping[str, Any], *, issuer_key: Multikey | None = None,
                    as_of: datetime | None = None) -> Check:
    """``signature_valid`` alone, offline, as :func:`verify` judges it: the credential's
    Data Integrity proof verifies with the key its verification method names, which is the
    credential's issuer's (and ``issuer_key``, when given), and has not expired (at
    ``as_of``, default now). A credential without a proof fails. Nothing here looks at the
    anchor, the chain or the registry: :func:`verify` does."""
    when = _seconds(as_of)
    checks = _Checks(when)
    _signature(checks, credential, True, issuer_key, int(time.time()) if when is None else when)
    return checks.items["signature_valid"]


def _signature(checks: _Checks, credential: Mapping[str, Any], require_signature: bool,
               issuer_key: Multikey | None, when: int) -> None:
    """``signature_valid``: the proof verifies with the key its verification method names,
    which is the credential's issuer's (and the caller's ``issuer_key``, if given), and has
    not expired at ``when``. Sets ``checks.signing`` when it passes, so that the chain checks
    look the key up."""
    if "proof" not in credential:
        if require_signature:
            checks.put(_UNSIGNED_REFUSED)
        else:
            checks.items.update(_UNSIGNED_ALLOWED)
            checks.unsigned_allowed = True
        return
    signing = _proof_key(checks, credential, issuer_key)
    if signing is None:
        return
    vm = signing.vm
    try:
        verified = verify_proof(credential, signing.key)
    except DataIntegrityError as exc:
        checks.add("signature_valid", False, f"the proof does not verify: {exc}",
                   code=exc.code, verificationMethod=vm)
        return
    expires_at = verified.expires_at
    if expires_at is not None and when >= expires_at:
        # Data Integrity: a proof past its "expires" does not verify.
        checks.add("signature_valid", False, f"the proof expired at {verified.expires}",
                   code="proof_expired", verificationMethod=vm, expires=verified.expires)
        return
    summary = MappingProxyType({"cryptosuite": verified.cryptosuite,
                                "verificationMethod": verified.verification_method,
                                "created": verified.created})
    detail = f"the {verified.cryptosuite} proof verifies with the issuer's key"
    if verified.uncovered_context:
        # Covered by the anchor (the digest is over the whole credential), not by the proof.
        detail += (f"; {len(verified.uncovered_context)} @context entries after the proof's "
                   "are not signed")
    checks.items["signature_valid"] = Check("signature_valid", CheckStatus.PASSED, detail,
                                            summary)
    checks.signing = signing
    checks.signature = summary


def _proof_key(checks: _Checks, credential: Mapping[str, Any],
               issuer_key: Multikey | None) -> _SigningKey | None:
    """The key the proof's verification method names, if it is one of the credential's
    issuer (and ``issuer_key``, when given); else None, ``signature_valid`` failed."""
    proof = credential["proof"]
    if isinstance(proof, list) and len(proof) == 1:  # a set of one proof is that proof
        proof = proof[0]
    if not isinstance(proof, Mapping):
        kind = (f"a set of {len(proof)} proofs" if isinstance(proof, list)
                else type(proof).__name__)
        checks.add("signature_valid", False, f"the proof is {kind}, not one DataIntegrityProof "
                   "object", code="malformed_proof")
        return None
    vm = proof.get("verificationMethod")
    try:
        signing = _signing_key(vm)
    except DataIntegrityError as exc:
        checks.add("signature_valid", False, f"unreadable verificationMethod: {exc}",
                   code=exc.code)
        return None
    claimed = issuer_id(credential)
    if signing.did != claimed:
        checks.add("signature_valid", False, f"the proof's key belongs to {signing.did!r}, not "
                   f"to the credential's issuer {claimed!r}", code="issuer_mismatch",
                   verificationMethod=vm, issuer=claimed)
        return None
    if issuer_key is not None and issuer_key != signing.key:
        checks.add("signature_valid", False, f"the proof names key {signing.key.multibase}, but "
                   f"the key given is {issuer_key.multibase}", code="key_mismatch",
                   verificationMethod=vm, givenKey=issuer_key.multibase)
        return None
    return signing


# keccak256 of a key's bytes costs more than the rest of a verification's chain checks when
# their answers are cached: kept for the keys seen last (a key is a few dozen bytes).
_key_id = functools.lru_cache(maxsize=1024)(signing_key_id)


def _signing_key_checks(checks: _Checks, reader: ChainReader, registry: str,
                        signing: _SigningKey, *, claimed: str | None, anchored_at: int,
                        anchoring: Entity) -> None:
    """``signing_key_registered`` and ``signing_key_trusted_at_anchoring``."""
    # The key's registry id (keccak) is computed here, with the chain: offline verification
    # needs neither it nor the chain extra that provides keccak.
    signing_id = _key_id(signing.key)
    key_id = "0x" + signing_id.hex()
    info = reader.signing_key(registry, signing_id)
    if not info.known:
        checks.add("signing_key_registered", False,
                   f"the signing key {signing.key.multibase} is not registered", keyId=key_id)
        return
    owner = (anchoring if info.entity_id == anchoring.id
             else reader.entity(registry, info.entity_id))
    if not checks.add("signing_key_registered", owner.did == claimed,
                      f"the signing key is registered to the credential's issuer {claimed!r}"
                      if owner.did == claimed else
                      f"the signing key is registered to {owner.did!r} (entity {owner.id}), "
                      f"not to the credential's issuer {claimed!r}",
                      keyId=key_id, entityId=info.entity_id, entityDid=owner.did):
        return
    trust_then = reader.signing_key_trusted_at(registry, signing_id, anchored_at)
    checks.add("signing_key_trusted_at_anchoring", trust_then.trusted,
               _trust_detail(trust_then, "the signing key, its issuer and every accreditation "
                             "body above were trusted when the credential was anchored"),
               keyId=key_id, anchoredAt=anchored_at, reason=trust_then.reason)


def _chain_checks(checks: _Checks, credential: Mapping[str, Any], receipt: Receipt, *,
                  deployment: TrustedDeployment, reader: ChainReader,
                  trust: TrustConfig, as_of: int | None,
                  status_lists: Sequence[Mapping[str, Any]]) -> VerificationReport:
    anchor = receipt.anchor
    if reader.chain_id() != anchor.chain_id:
        checks.add("anchored_on_chain", False, f"the node serves chain {reader.chain_id()}, "
                   f"the receipt names {anchor.chain_id}")
        return checks.report()
    head = reader.latest_block()
    if anchor.block_number > head:
        # The node has not reached the receipt's block (a lagging node, or an anchor this
        # second): that is not evidence against the credential, and a receipt cannot pass by
        # naming a future block either; the chain checks are not made.
        raise ChainBehindError(f"its head is block {head}, before the receipt's block "
                               f"{anchor.block_number}")
    key = "0x" + anchor.anchoring_key.hex()
    status = reader.anchor_of(deployment.anchor, key, receipt.root)
    block = reader.block(anchor.block_number)
    same_block = block is not None and block.hash == anchor.block_hash
    ok = (status.anchored and status.block_number == anchor.block_number and same_block
          and status.tree_size == receipt.tree_size and status.key.lower() == key)
    if not ok:
        detail = _why_not_anchored(status, anchor.block_number, same_block, receipt.tree_size,
                                   key)
    elif as_of is not None and status.anchored_at > as_of:
        ok, detail = False, (f"the root was anchored at {status.anchored_at}, after the as-of "
                             f"time {as_of}")
    else:
        detail = "the root is anchored at the stated contract, block and block hash"
    if not checks.add("anchored_on_chain", ok, detail, block=anchor.block_number,
                      anchoredAt=status.anchored_at, entityId=status.entity_id):
        return checks.report()
    depth = head - anchor.block_number + 1
    checks.add("confirmations", depth >= trust.min_confirmations,
               f"{depth} confirmations (need {trust.min_confirmations})",
               confirmations=depth, required=trust.min_confirmations)
    trust_then = reader.trusted_at(deployment.registry, status.key, status.anchored_at)
    checks.add("issuer_trusted_at_anchoring", trust_then.trusted,
               _trust_detail(trust_then, "the key, its issuer and every accreditation body "
                             "above were trusted when it anchored"),
               entityId=trust_then.entity_id, reason=trust_then.reason)
    entity = reader.entity(deployment.registry, status.entity_id)
    claimed = issuer_id(credential)
    checks.add("issuer_did_matches", claimed == entity.did,
               f"the credential's issuer {claimed!r} is the anchoring issuer"
               if claimed == entity.did else
               f"the credential claims issuer {claimed!r}, but {entity.did!r} anchored it",
               claimed=claimed, anchoringIssuer=entity.did)
    # The signing key is looked up for the issuer the credential names, once that issuer is
    # known to be the one that anchored it (else its checks stay "not checked").
    if checks.signing is not None and claimed == entity.did:
        _signing_key_checks(checks, reader, deployment.registry, checks.signing,
                            claimed=claimed, anchored_at=status.anchored_at, anchoring=entity)
    _scope(checks, credential, entity.scope)
    # As of a past time, the credential's status is read from the chain as it stood then
    # (a credential revoked later was not revoked then). Trust is not: the registry's answer
    # for the anchoring time already holds every back-dated revocation known now.
    # The status position is the one the receipt binds into the anchored leaf, in the lists
    # of the entity that anchored it.
    at_block = None if as_of is None else reader.block_at_time(as_of)
    revoked, suspended = reader.status_bits(deployment.anchor, status.entity_id,
                                            receipt.status_list, receipt.status_list_index,
                                            at_block)
    then = "" if at_block is None else f" as of block {at_block}"
    position = {"entityId": status.entity_id, "statusList": receipt.status_list,
                "statusListIndex": receipt.status_list_index, "atBlock": at_block}
    checks.add("not_revoked", not revoked,
               ("not revoked" if not revoked else "revoked by its issuer") + then, **position)
    checks.add("not_suspended", not suspended,
               ("not suspended" if not suspended else "suspended by its issuer") + then,
               **position)
    if status_lists:
        # A list stands for the credential's status only at the URL the credential names.
        urls = {str(entry["statusListCredential"]) for entry in status_entries_of(credential)
                if isinstance(entry.get("statusListCredential"), str)}
        compared = compare_lists(status_lists, reader=reader, registry=deployment.registry,
                                 anchor=deployment.anchor, chain_id=anchor.chain_id,
                                 entity=entity, status_list=receipt.status_list,
                                 list_urls=urls, min_confirmations=trust.min_confirmations)
        checks.add("status_list_matches_chain", compared.passed, compared.detail,
                   lists=compared.lists)
    return checks.report(issuer_did=entity.did, anchored_at=status.anchored_at,
                         issuer_name=_issuer_name(credential) if claimed == entity.did else None,
                         issuer_metadata_uri=entity.metadata_uri or None)


def _trust_detail(trust: Trust, trusted: str) -> str:
    """The detail of a trust-at-anchoring check: ``trusted``, or the registry's reason and the
    entity that failed."""
    if trust.trusted:
        return trusted
    failing = f" (entity {trust.failing_entity_id})" if trust.failing_entity_id else ""
    return f"not trusted at anchoring time: {trust.reason}{failing}"


def _why_not_anchored(status: AnchorInfo, block_number: int, same_block: bool, tree_size: int,
                      key: str) -> str:
    if not status.anchored:
        return "the root is not anchored by this issuer at the trusted contract"
    if not same_block or status.block_number != block_number:
        return ("the anchor is not in the stated block (the chain was reorganised, or the "
                "receipt is wrong)")
    if status.tree_size != tree_size:
        return f"the anchored tree has {status.tree_size} leaves, the receipt says {tree_size}"
    return f"the root was anchored by {status.key}, not {key}"


def _issuer_name(credential: Mapping[str, Any]) -> str | None:
    issuer = credential.get("issuer")
    if isinstance(issuer, Mapping) and isinstance(issuer.get("name"), str):
        return str(issuer["name"])
    return None


def _scope(checks: _Checks, credential: Mapping[str, Any], entity_scope: int | None) -> None:
    if not checks.names_scope:
        checks.put(_NO_SCOPE)
        return
    try:
        declared = declared_scopes(credential)
    except ScopeShapeError as exc:
        checks.add("scope_allows_kind", False, f"unreadable learningScope: {exc}")
        return
    if not declared:
        checks.put(_NO_SCOPE)
        return
    unknown = [scope for scope in declared if scope not in SCOPES]
    if unknown:
        checks.add("scope_allows_kind", False,
                   "unknown learningScope " + ", ".join(map(repr, unknown)),
                   declared=tuple(declared))
    elif entity_scope is None:
        checks.put(_OFFLINE["scope_allows_kind"])
    else:
        refused = [scope for scope in declared if not entity_scope & SCOPES[scope]]
        checks.add("scope_allows_kind", not refused,
                   f"the issuer is accredited for {', '.join(declared)}" if not refused else
                   f"the issuer is not accredited for {', '.join(refused)}",
                   declared=tuple(declared))


def _validity(checks: _Checks, credential: Mapping[str, Any], when: int) -> None:
    start = credential.get("validFrom", credential.get("issuanceDate"))
    end = credential.get("validUntil", credential.get("expirationDate"))
    if start is None and end is None:
        checks.put(_NO_VALIDITY)
        return
    try:
        begins = timestamp(start) if start is not None else None
        ends = timestamp(end) if end is not None else None
    except ValueError as exc:
        checks.add("validity_period", False, f"unreadable date: {exc}")
        return
    if begins is not None and when < begins:
        checks.add("validity_period", False, f"not valid yet (from {start})", validFrom=start)
    elif ends is not None and when >= ends:
        checks.add("validity_period", False, f"expired (until {end})", validUntil=end)
    else:
        checks.add("validity_period", True, "within its validity period",
                   validFrom=start, validUntil=end)
