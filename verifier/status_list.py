"""W3C Bitstring Status List v1.0 validation from a status list credential alone: what a
standard verifier that knows nothing of the chain concludes about one status entry.

    result = check_status(entry, list_credential, at=now)
    result.outcome   # CLEAR (bit 0), SET (bit 1: revoked / suspended ...) or INVALID
    result.reason    # why, in words; result.code names an INVALID outcome as the REC does

The steps are the Recommendation's validation algorithm (section 3.2), without fetching and
without the list credential's signature, which are the caller's (:mod:`verifier.list_check`
checks this project's lists against the chain and their issuer's registered keys):

* the entry is a ``BitstringStatusListEntry`` with a ``statusPurpose`` string, a
  ``statusListCredential`` URL and a ``statusListIndex``;
* the list credential is a VC 2.0 document (its ``@context`` begins with the VC 2.0 context),
  its ``type`` holds ``VerifiableCredential`` and
  ``BitstringStatusListCredential``, its ``credentialSubject`` is one object of type
  ``BitstringStatusList`` whose ``statusPurpose`` (a string, or a list of strings) holds the
  entry's purpose;
* the list credential is valid at the given time (``validFrom``, ``validUntil``);
* ``encodedList`` decodes (:func:`verifier.bitstring.decode_list`: multibase base64url of
  GZIP, the ``u`` prefix optional on input) to at least 131,072 bits, and the entry's index is
  inside it; the outcome is the bit at that index.

Strictness: ``statusListIndex`` must be a string of base-10 digits, as the Recommendation
defines it (an arbitrary-size integer expressed as a string in base 10). A JSON number is
refused (INVALID), not read: a verifier that read numbers would accept entries other
verifiers refuse. ``statusSize`` other than 1 (multi-bit ``message`` statuses) is INVALID:
this implementation reads one bit per entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from verifier.bitstring import MIN_LIST_BITS, bit, decode_list
from verifier.data_integrity import VC_2_0_CONTEXT
from verifier.errors import StatusListError
from verifier.times import timestamp

__all__ = [
    "ENTRY_TYPE",
    "LIST_CREDENTIAL_TYPE",
    "LIST_TYPE",
    "StatusEntry",
    "StatusOutcome",
    "StatusResult",
    "check_status",
    "list_bitstring",
    "read_entry",
    "status_entries_of",
]

ENTRY_TYPE: Final = "BitstringStatusListEntry"
LIST_CREDENTIAL_TYPE: Final = "BitstringStatusListCredential"
LIST_TYPE: Final = "BitstringStatusList"
# Longest statusListIndex read: 131,072 entries fit in 6 digits, and the decoder's bound
# (2**27 bits) in 9; more digits are refused before any conversion.
_MAX_INDEX_DIGITS: Final = 12


class StatusOutcome(StrEnum):
    """What a list says of one entry."""

    CLEAR = "clear"  # the entry's bit is 0: not revoked, not suspended...
    SET = "set"  # the bit is 1: revoked, suspended... (as the purpose says)
    INVALID = "invalid"  # the list or the entry cannot be used: the status is not known


@dataclass(frozen=True, slots=True)
class StatusResult:
    """The outcome of :func:`check_status`, with the reason; ``code`` is the Recommendation's
    error name for an INVALID outcome (``STATUS_VERIFICATION_ERROR``, ``STATUS_LIST_LENGTH_
    ERROR``, ``RANGE_ERROR``, ``MALFORMED_VALUE_ERROR``), else None."""

    outcome: StatusOutcome
    reason: str
    purpose: str | None = None
    index: int | None = None
    code: str | None = None

    @property
    def status(self) -> bool | None:
        """The entry's bit (True: revoked, suspended...), None when the list is not usable."""
        return None if self.outcome is StatusOutcome.INVALID else \
            self.outcome is StatusOutcome.SET


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """A ``BitstringStatusListEntry`` as read by :func:`read_entry`."""

    purpose: str
    index: int
    list_url: str


def _invalid(code: str, reason: str) -> StatusListError:
    """A step of the algorithm failed: the Recommendation's error name and the reason."""
    return StatusListError(reason, code)


def _types(value: object) -> list[Any]:
    """A ``type`` value as a list (JSON-LD allows one string or an array)."""
    return value if isinstance(value, list) else [value]


def status_entries_of(credential: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``BitstringStatusListEntry`` objects of a credential's ``credentialStatus`` (one
    object, or an array of them); others (another status type) are left out."""
    status = credential.get("credentialStatus")
    items = status if isinstance(status, list) else [] if status is None else [status]
    return [item for item in items
            if isinstance(item, Mapping) and ENTRY_TYPE in _types(item.get("type"))]


def read_entry(entry: Mapping[str, Any]) -> StatusEntry:
    """Purpose, index and list URL of a ``BitstringStatusListEntry``; :class:`StatusListError`
    (its ``code`` ``MALFORMED_VALUE_ERROR``) when a field is missing or malformed."""
    if not isinstance(entry, Mapping) or ENTRY_TYPE not in _types(entry.get("type")):
        raise _invalid("MALFORMED_VALUE_ERROR", f"the status entry is not a {ENTRY_TYPE}")
    purpose = entry.get("statusPurpose")
    if not isinstance(purpose, str) or not purpose:
        raise _invalid("MALFORMED_VALUE_ERROR", "the entry's statusPurpose is not a string")
    url = entry.get("statusListCredential")
    if not isinstance(url, str) or not url:
        raise _invalid("MALFORMED_VALUE_ERROR",
                            "the entry's statusListCredential is not a URL")
    size = entry.get("statusSize", 1)
    if size != 1 or type(size) is not int:
        raise _invalid("MALFORMED_VALUE_ERROR", f"statusSize {size!r:.20} is not supported "
                            "(one bit per entry)")
    return StatusEntry(purpose, _index(entry.get("statusListIndex")), url)


def _index(value: object) -> int:
    if not isinstance(value, str):
        kind = "a JSON number" if isinstance(value, int | float) and type(value) is not bool \
            else type(value).__name__
        raise _invalid("MALFORMED_VALUE_ERROR", f"statusListIndex is {kind}, not a string of "
                            "base-10 digits")
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_INDEX_DIGITS:
        raise _invalid("MALFORMED_VALUE_ERROR", f"statusListIndex {value[:20]!r} is not a "
                            "base-10 integer string")
    return int(value)


def list_bitstring(list_credential: Mapping[str, Any], *, purpose: str | None,
                   at: int | None) -> bytes:
    """The bitstring of a status list credential, after the Recommendation's checks of the
    list alone: its types, its subject, ``purpose`` among its purposes (unless None), valid
    at ``at`` (Unix seconds; None: not checked), and at least 131,072 entries.
    :class:`StatusListError` (with the Recommendation's error name as ``code``) otherwise."""
    if not isinstance(list_credential, Mapping):
        raise _invalid("STATUS_VERIFICATION_ERROR", "the status list credential is not a JSON "
                            "object")
    context = list_credential.get("@context")
    if not isinstance(context, list) or not context or context[0] != VC_2_0_CONTEXT:
        raise _invalid("STATUS_VERIFICATION_ERROR", "the status list credential's "
                            f"@context does not begin with {VC_2_0_CONTEXT} (a VC 2.0 document)")
    types = _types(list_credential.get("type"))
    for needed in ("VerifiableCredential", LIST_CREDENTIAL_TYPE):
        if needed not in types:
            raise _invalid("STATUS_VERIFICATION_ERROR", f"the status list credential's type "
                                f"lacks {needed}")
    subject = list_credential.get("credentialSubject")
    if not isinstance(subject, Mapping) or LIST_TYPE not in _types(subject.get("type")):
        raise _invalid("STATUS_VERIFICATION_ERROR", "the credentialSubject is not a "
                            f"{LIST_TYPE}")
    purposes = subject.get("statusPurpose")
    listed = purposes if isinstance(purposes, list) else [purposes]
    if not listed or not all(isinstance(p, str) for p in listed):
        raise _invalid("STATUS_VERIFICATION_ERROR", "the list's statusPurpose is not a string "
                            "or a list of strings")
    if purpose is not None and purpose not in listed:
        raise _invalid("STATUS_VERIFICATION_ERROR", f"the entry's purpose {purpose!r:.40} is "
                            f"not among the list's ({', '.join(map(repr, listed))[:200]})")
    if at is not None:
        _valid_at(list_credential, at)
    try:
        bitstring = decode_list(subject.get("encodedList"))
    except StatusListError as exc:
        raise _invalid("STATUS_LIST_LENGTH_ERROR", f"unreadable encodedList: {exc}") from None
    if 8 * len(bitstring) < MIN_LIST_BITS:
        raise _invalid("STATUS_LIST_LENGTH_ERROR", f"the list has {8 * len(bitstring)} "
                            f"entries, fewer than the minimum {MIN_LIST_BITS}")
    return bitstring


def _valid_at(list_credential: Mapping[str, Any], at: int) -> None:
    start, end = list_credential.get("validFrom"), list_credential.get("validUntil")
    try:
        begins = None if start is None else timestamp(start)
        ends = None if end is None else timestamp(end)
    except ValueError as exc:
        raise _invalid("STATUS_VERIFICATION_ERROR", f"unreadable list validity: {exc}") \
            from None
    if begins is not None and at < begins:
        raise _invalid("STATUS_VERIFICATION_ERROR", f"the list is not valid yet (validFrom "
                            f"{start})")
    if ends is not None and at >= ends:
        raise _invalid("STATUS_VERIFICATION_ERROR", f"the list is no longer valid (validUntil "
                            f"{end})")


def check_status(entry: Mapping[str, Any], list_credential: Mapping[str, Any], *,
                 at: int) -> StatusResult:
    """The status of ``entry`` according to ``list_credential`` (the credential its
    ``statusListCredential`` names, already fetched and, if need be, its proof checked) at
    time ``at`` (Unix seconds). Never raises for bad input: an unusable entry or list is an
    INVALID result naming why."""
    purpose: str | None = None
    index: int | None = None
    try:
        read = read_entry(entry)
        purpose, index = read.purpose, read.index
        bitstring = list_bitstring(list_credential, purpose=read.purpose, at=at)
        if index >= 8 * len(bitstring):
            raise _invalid("RANGE_ERROR", f"statusListIndex {index} is outside the list's "
                                f"{8 * len(bitstring)} entries")
        status = bit(bitstring, index)
    except StatusListError as exc:
        return StatusResult(StatusOutcome.INVALID, str(exc), purpose, index, exc.code)
    outcome = StatusOutcome.SET if status else StatusOutcome.CLEAR
    return StatusResult(outcome, f"entry {index} of the {purpose} list is "
                        f"{'set' if status else 'not set'}", purpose, index)

