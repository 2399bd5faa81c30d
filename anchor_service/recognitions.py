"""Recognitions between registry entities, as the administration records them (the
``anchor-service registry recognise|withdraw-recognition|recognitions`` commands and the
``/v1/admin/recognitions`` routes): record one, withdraw one, list them, and say in words why
the registry refused. The registry takes these transactions only from the recogniser's own
trusted anchoring keys (not its accreditor's, not a root administrator's; those can add a key
to the entity, a public ``KeyAdded`` event, and act with it). Needs web3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from anchor_service.errors import (
    RecognitionInputError,
    RecognitionRefusedError,
    RevertError,
)
from verifier.chain import LOG_RANGE, block_ranges
from verifier.contract_types import SCOPES, Recognition, Scope, read
from verifier.times import iso_seconds

if TYPE_CHECKING:
    from web3.contract import Contract

    from anchor_service.chain import Transactor

__all__ = [
    "MAX_LISTED",
    "MAX_PER_PAIR",
    "RecognitionInputError",
    "RecognitionRefusedError",
    "recognise",
    "recognition",
    "recognitions_between",
    "recognitions_of",
    "refusal",
    "resolve_entity",
    "withdraw",
]

#: The registry keeps at most this many recognitions per (recogniser, subject) pair.
MAX_PER_PAIR: Final = 16
#: At most this many recognitions are listed for one recogniser (a listing reads each one).
MAX_LISTED: Final = 1000


@dataclass(frozen=True, slots=True)
class _Refusal:
    http_status: int
    code: str


# The registry's refusals of recognise / withdrawRecognition, as an HTTP status and code.
_REFUSALS: Final[dict[str, _Refusal]] = {
    "NotAuthorized": _Refusal(403, "not_authorized"),
    # 409, not 422: the request is well-formed, the registry's rules refuse it.
    "SelfRecognition": _Refusal(409, "self_recognition"),
    "TooManyRecognitions": _Refusal(409, "too_many_recognitions"),
    "RecognitionAlreadyWithdrawn": _Refusal(409, "already_withdrawn"),
    "InvalidValidity": _Refusal(409, "invalid_window"),
    "InvalidScope": _Refusal(409, "invalid_kind"),
    "UnknownEntity": _Refusal(404, "unknown_entity"),
    "UnknownRecognition": _Refusal(404, "unknown_recognition"),
}


def refusal(exc: RevertError, registry: Contract) -> RecognitionRefusedError:
    """The registry's revert ``exc`` of a recognition transaction, in words."""
    name, args = exc.name, exc.args_
    if name == "NotAuthorized":
        caller, entity_id = args
        who = ("is a root administrator's key" if registry.functions.isRootAdmin(caller).call()
               else f"is not a trusted anchoring key of entity {entity_id}")
        message = (f"not authorised: {caller} {who}; recognitions of entity {entity_id} are "
                   "recorded and withdrawn only with its own anchoring keys (not its "
                   "accreditor's, not a root administrator's)")
    elif name == "SelfRecognition":
        message = f"entity {args[0]} cannot record a recognition of itself (it always " \
                  "recognises itself)"
    elif name == "TooManyRecognitions":
        recogniser, subject, most = args
        message = (f"entity {recogniser} already has {most} recognitions of entity {subject} "
                   "(withdrawn ones count): the registry takes no more for this pair")
    elif name == "RecognitionAlreadyWithdrawn":
        recognition_id, withdrawn_at = args
        message = (f"recognition {recognition_id} is already withdrawn, with effect from "
                   f"{iso_seconds(withdrawn_at)} ({withdrawn_at})")
    elif name == "InvalidValidity":
        valid_from, valid_until = args
        message = (f"empty window: its end ({iso_seconds(valid_until)}) must be after its start "
                   f"({iso_seconds(valid_from)})")
    elif name == "InvalidScope":
        message = (f"invalid kinds (scope bits {args[0]}): give one or more of "
                   f"{', '.join(SCOPES)}")
    elif name == "UnknownEntity":
        message = f"no entity {args[0]} in the registry"
    elif name == "UnknownRecognition":
        message = f"no recognition {args[0]} in the registry"
    else:
        message = str(exc)
    refused = _REFUSALS.get(name, _Refusal(409, "refused"))
    return RecognitionRefusedError(message, name, http_status=refused.http_status,
                                   code=refused.code)


def resolve_entity(registry: Contract, reference: str | int) -> int:
    """The entity id of ``reference``: an id (checked to exist) or a DID registered in the
    registry; :class:`RecognitionInputError` otherwise."""
    if isinstance(reference, int) or reference.strip().isdigit():
        entity_id = int(reference)
        count = int(registry.functions.entityCount().call())
        if not 1 <= entity_id <= count:
            raise RecognitionInputError(f"no entity {entity_id} in the registry (ids run from "
                                        f"1 to {count})", not_found=True)
        return entity_id
    did = reference.strip()
    if not did.startswith("did:"):
        raise RecognitionInputError(f"{reference!r:.80} is neither an entity id nor a DID")
    entity_id = int(registry.functions.entityIdByDid(did).call())
    if entity_id == 0:
        raise RecognitionInputError(f"no entity with DID {did} in the registry", not_found=True)
    return entity_id


def recognition(registry: Contract, recognition_id: int) -> Recognition:
    """The recognition with this id; :class:`RecognitionInputError` when there is none."""
    count = int(registry.functions.recognitionCount().call())
    if not 1 <= recognition_id <= count:
        raise RecognitionInputError(f"no recognition {recognition_id} in the registry",
                                    not_found=True)
    return read(Recognition, registry.functions.recognition(recognition_id))


def recognise(tx: Transactor, registry: Contract, *, recogniser: int, subject: int,
              scope: Scope, valid_from: int = 0, valid_until: int = 0) -> Recognition:
    """Record that ``recogniser`` recognises ``subject`` for the kinds in ``scope``, for
    credentials issued from ``valid_from`` (0: any time) until ``valid_until`` (0: open),
    signed by ``tx`` (a key of the recogniser); the recognition as recorded.
    :class:`RecognitionRefusedError` when the registry refuses."""
    try:
        receipt = tx.transact(registry.functions.recognise(recogniser, subject, int(scope),
                                                           valid_from, valid_until))
    except RevertError as exc:
        raise refusal(exc, registry) from None
    (event,) = registry.events.RecognitionRecorded().process_receipt(receipt)
    return recognition(registry, int(event["args"]["id"]))


def withdraw(tx: Transactor, registry: Contract, recognition_id: int) -> Recognition:
    """Withdraw recognition ``recognition_id`` (from the next second on), signed by ``tx``
    (a key of its recogniser); the recognition as it now is."""
    try:
        tx.transact(registry.functions.withdrawRecognition(recognition_id))
    except RevertError as exc:
        raise refusal(exc, registry) from None
    return recognition(registry, recognition_id)


def recognitions_between(registry: Contract, recogniser: int, subject: int) -> list[Recognition]:
    """Every recognition ``recogniser`` recorded of ``subject``, oldest first (at most
    :data:`MAX_PER_PAIR`)."""
    ids = registry.functions.recognitionIdsBetween(recogniser, subject).call()
    return [read(Recognition, registry.functions.recognition(int(i))) for i in ids]


def recognitions_of(registry: Contract, recogniser: int, *, from_block: int = 0,
                    chunk_blocks: int = LOG_RANGE, most: int = MAX_LISTED
                    ) -> list[Recognition]:
    """Every recognition ``recogniser`` recorded, oldest first, found by the registry's
    ``RecognitionRecorded`` events from ``from_block`` (the deployment's block) to the latest
    block, read ``chunk_blocks`` blocks at a time (nodes limit the range of one log query).
    More than ``most`` (:data:`MAX_LISTED`) is a :class:`RecognitionInputError`, raised as
    soon as the reading passes it: the logs held and the queries made stay bounded."""
    latest = int(registry.w3.eth.block_number)
    ids: set[int] = set()
    for start, end in block_ranges(from_block, latest, chunk_blocks):
        logs: list[Any] = registry.events.RecognitionRecorded().get_logs(
            argument_filters={"recogniserId": recogniser}, from_block=start, to_block=end)
        ids.update(int(log["args"]["id"]) for log in logs)
        if len(ids) > most:
            raise RecognitionInputError(f"entity {recogniser} has recorded more than {most} "
                                        "recognitions; list them by --subject")
    return [read(Recognition, registry.functions.recognition(i)) for i in sorted(ids)]
