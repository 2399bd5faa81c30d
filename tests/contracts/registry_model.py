"""A plain Python model of IssuerRegistry 2.1.0 and CredentialAnchor 2.0.0: what every call
should do, written from the contracts' rules (contracts/README.md, the interfaces' NatSpec)
without looking at how the chain stores anything.

The state machine (tests/contracts/test_state_machine.py) runs each action on the chain and
here, and compares. Every action takes the block's timestamp ``now`` (and number ``block``)
it executes in; it either applies its effect and returns ``None``, or changes nothing and
returns the name of the custom error the contract reverts with, checked in the contract's
order so that the first failing rule names the error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from verifier.contract_types import (
    ALL_SCOPES,
    STATUS_LIST_SIZE,
    STATUS_LIST_WORDS,
    AnchorInfo,
    Entity,
    KeyInfo,
    Kind,
    Recognition,
    RecognitionAnswer,
    Scope,
    SigningKeyInfo,
    Status,
    StatusChange,
    Trust,
    TrustCode,
)

__all__ = ["FOREVER", "MAX_DEPTH", "MAX_DID_LENGTH", "MAX_RECOGNITIONS_PER_PAIR",
           "MAX_SIGNING_KEYS", "MAX_TREE_SIZE", "AnchorRecord", "EntityRecord", "KeyRecord",
           "Model", "Refused"]

FOREVER = 2**40 - 1  # IssuerRegistry._FOREVER: a key that never expires
MAX_DEPTH = 4
MAX_DID_LENGTH = 256
MAX_SIGNING_KEYS = 64
MAX_RECOGNITIONS_PER_PAIR = 16
MAX_TREE_SIZE = 2**53 - 1
_WORD_BITS = 256


class Refused(Exception):  # noqa: N818 - a control-flow signal inside the model, not an error
    """The contract reverts with custom error ``name``; the model changed nothing."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class EntityRecord:
    id: int
    parent_id: int
    kind: Kind
    status: Status
    scope: int
    depth: int
    accredited_at: int
    status_since: int
    accredited_by: str
    did: str
    metadata_uri: str
    metadata_hash: bytes
    revoked_from: int = 0
    history: list[tuple[Status, int]] = field(default_factory=list)

    def view(self) -> Entity:
        """What ``entity(id)`` returns."""
        return Entity(id=self.id, parent_id=self.parent_id, kind=self.kind, status=self.status,
                      scope=Scope(self.scope), depth=self.depth,
                      accredited_at=self.accredited_at, status_since=self.status_since,
                      accredited_by=self.accredited_by, did=self.did,
                      metadata_uri=self.metadata_uri, metadata_hash=self.metadata_hash,
                      revoked_from=self.revoked_from)

    def history_view(self) -> tuple[StatusChange, ...]:
        return tuple(StatusChange(status=status, since=since) for status, since in self.history)


@dataclass
class KeyRecord:
    entity_id: int
    index: int
    valid_from: int
    valid_until: int
    revoked_at: int = 0
    public_key: bytes = b""  # signing keys only

    def code_at(self, when: int) -> TrustCode:
        """IssuerRegistry._keyCode: the key's own window at ``when``."""
        if when < self.valid_from:
            return TrustCode.KEY_NOT_YET_VALID
        if when >= self.valid_until:
            return TrustCode.KEY_EXPIRED
        if self.revoked_at != 0 and when >= self.revoked_at:
            return TrustCode.KEY_REVOKED
        return TrustCode.TRUSTED


@dataclass(frozen=True)
class AnchorRecord:
    key: str  # the anchoring key (lower case)
    entity_id: int
    anchored_at: int
    block_number: int
    tree_size: int


@dataclass
class Model:
    """The expected state of both contracts. Addresses are kept in lower case."""

    root_admins: set[str]
    entities: dict[int, EntityRecord] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    key_list: list[str] = field(default_factory=list)
    entity_keys: dict[int, list[str]] = field(default_factory=dict)
    signing_keys: dict[bytes, KeyRecord] = field(default_factory=dict)
    entity_signing_keys: dict[int, list[bytes]] = field(default_factory=dict)
    dids: dict[str, int] = field(default_factory=dict)
    anchors: dict[tuple[int, bytes], AnchorRecord] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)
    recognitions: dict[int, Recognition] = field(default_factory=dict)
    # (recogniser, subject) -> ids of its recognitions, oldest first
    pair_recognitions: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    # (entity, list, word) -> the word's bits, entry i of the word in bit 255 - i
    revoked: dict[tuple[int, int, int], int] = field(default_factory=dict)
    suspended: dict[tuple[int, int, int], int] = field(default_factory=dict)

    # ------------------------------------------------------------------ trust

    def check_now(self, key: str, now: int) -> tuple[TrustCode, int, Kind]:
        """IssuerRegistry.checkKeyNow at ``now``: (code, entity id, kind). For new actions any
        revocation and status change counts at once."""
        record = self.keys.get(key.lower())
        if record is None:
            return TrustCode.UNKNOWN_KEY, 0, Kind.NONE
        owner = self.entities[record.entity_id]
        code = TrustCode.TRUSTED
        if now < record.valid_from:
            code = TrustCode.KEY_NOT_YET_VALID
        elif now >= record.valid_until:
            code = TrustCode.KEY_EXPIRED
        elif record.revoked_at != 0:
            code = TrustCode.KEY_REVOKED
        elif owner.status is not Status.ACTIVE:
            code = TrustCode.ENTITY_NOT_ACTIVE
        elif self._first_inactive_now(owner.parent_id) != 0:
            code = TrustCode.ACCREDITOR_NOT_ACTIVE
        return code, record.entity_id, owner.kind

    def key_index_of(self, key: str) -> int:
        record = self.keys.get(key.lower())
        return 0 if record is None else record.index

    def is_trusted_key_of(self, key: str, entity_id: int, now: int) -> bool:
        code, owner, _ = self.check_now(key, now)
        return code is TrustCode.TRUSTED and owner == entity_id and entity_id != 0

    def is_accreditor_or_admin(self, caller: str, accreditor_id: int, now: int) -> bool:
        return caller.lower() in self.root_admins or (
            accreditor_id != 0 and self.is_trusted_key_of(caller, accreditor_id, now))

    def active_at(self, entity_id: int, when: int) -> bool:
        """IssuerRegistry._activeAt: the entity itself was Active at ``when``."""
        record = self.entities[entity_id]
        if when < record.accredited_at:
            return False
        if record.revoked_from != 0 and when >= record.revoked_from:
            return False
        status = Status.NONE
        for changed_to, since in record.history:
            if since <= when:
                status = changed_to
        return status is Status.ACTIVE

    def _first_inactive(self, entity_id: int, when: int) -> int:
        while entity_id != 0:
            if not self.active_at(entity_id, when):
                return entity_id
            entity_id = self.entities[entity_id].parent_id
        return 0

    def _first_inactive_now(self, entity_id: int) -> int:
        while entity_id != 0:
            record = self.entities[entity_id]
            if record.status is not Status.ACTIVE:
                return entity_id
            entity_id = record.parent_id
        return 0

    def _trust_of(self, record: KeyRecord | None, when: int) -> Trust:
        if record is None:
            return Trust(trusted=False, code=TrustCode.UNKNOWN_KEY, entity_id=0,
                         failing_entity_id=0, key_index=0, kind=Kind.NONE, scope=Scope(0))
        owner = self.entities[record.entity_id]
        base = Trust(trusted=False, code=record.code_at(when), entity_id=record.entity_id,
                     failing_entity_id=0, key_index=record.index, kind=owner.kind,
                     scope=Scope(owner.scope))
        if base.code is not TrustCode.TRUSTED:
            return base
        if not self.active_at(record.entity_id, when):
            return replace(base, code=TrustCode.ENTITY_NOT_ACTIVE,
                           failing_entity_id=record.entity_id)
        failing = self._first_inactive(owner.parent_id, when)
        if failing != 0:
            return replace(base, code=TrustCode.ACCREDITOR_NOT_ACTIVE, failing_entity_id=failing)
        return replace(base, trusted=True)

    def trusted_at(self, key: str, when: int) -> Trust:
        """IssuerRegistry.trustedAt."""
        return self._trust_of(self.keys.get(key.lower()), when)

    def signing_key_trusted_at(self, key_id: bytes, when: int) -> Trust:
        """IssuerRegistry.signingKeyTrustedAt."""
        return self._trust_of(self.signing_keys.get(key_id), when)

    # ------------------------------------------------------------------ entities

    def _existing(self, entity_id: int) -> EntityRecord:
        record = self.entities.get(entity_id)
        if record is None:
            raise Refused("UnknownEntity")
        return record

    def _require_accreditor_or_admin(self, caller: str, accreditor_id: int, now: int) -> None:
        if not self.is_accreditor_or_admin(caller, accreditor_id, now):
            raise Refused("NotAuthorized")

    def accredit(self, caller: str, *, parent_id: int, kind: Kind, did: str, scope: int,
                 metadata_uri: str, metadata_hash: bytes, now: int) -> int:
        """IssuerRegistry.accredit; the new id. Raises :class:`Refused`."""
        if kind not in (Kind.ACCREDITATION_BODY, Kind.TRUSTED_ISSUER):
            raise Refused("InvalidKind")
        allowed, depth = int(ALL_SCOPES), 1
        if parent_id == 0:
            if caller.lower() not in self.root_admins:
                raise Refused("NotAuthorized")
        else:
            parent = self._existing(parent_id)
            if parent.kind is not Kind.ACCREDITATION_BODY:
                raise Refused("InvalidKind")
            self._require_accreditor_or_admin(caller, parent_id, now)
            if self._first_inactive_now(parent_id) != 0:
                raise Refused("AccreditorNotTrusted")
            allowed, depth = parent.scope, parent.depth + 1
            if depth > MAX_DEPTH:
                raise Refused("HierarchyTooDeep")
        if scope == 0 or scope & ~allowed:
            raise Refused("InvalidScope")
        if not did or len(did.encode()) > MAX_DID_LENGTH:
            raise Refused("InvalidDid")
        if did in self.dids:
            raise Refused("DidAlreadyRegistered")
        entity_id = len(self.entities) + 1
        self.entities[entity_id] = EntityRecord(
            id=entity_id, parent_id=parent_id, kind=kind, status=Status.ACTIVE, scope=scope,
            depth=depth, accredited_at=now, status_since=now, accredited_by=caller.lower(),
            did=did, metadata_uri=metadata_uri, metadata_hash=metadata_hash,
            history=[(Status.ACTIVE, now)])
        self.dids[did] = entity_id
        self.entity_keys[entity_id] = []
        self.entity_signing_keys[entity_id] = []
        return entity_id

    def set_status(self, caller: str, entity_id: int, status: Status, now: int) -> None:
        """IssuerRegistry.setStatus: stamped from the next second."""
        record = self._existing(entity_id)
        self._require_accreditor_or_admin(caller, record.parent_id, now)
        if record.status is Status.REVOKED or status is Status.NONE or status is record.status:
            raise Refused("InvalidStatusChange")
        record.status, record.status_since = status, now + 1
        record.history.append((status, now + 1))

    def revoke_since(self, caller: str, entity_id: int, effective_from: int, now: int) -> None:
        """IssuerRegistry.revokeSince: final, possibly back-dated, only ever earlier."""
        record = self._existing(entity_id)
        self._require_accreditor_or_admin(caller, record.parent_id, now)
        if effective_from > now:
            raise Refused("RevocationInFuture")
        effective_from = max(effective_from, record.accredited_at)
        if record.revoked_from != 0 and effective_from >= record.revoked_from:
            raise Refused("EntityRevocationNotEarlier")
        record.revoked_from = effective_from
        if record.status is not Status.REVOKED:
            record.status, record.status_since = Status.REVOKED, now + 1
            record.history.append((Status.REVOKED, now + 1))

    def update_metadata(self, caller: str, entity_id: int, uri: str, digest: bytes,
                        now: int) -> None:
        record = self._existing(entity_id)
        if not self.is_trusted_key_of(caller, entity_id, now):
            self._require_accreditor_or_admin(caller, record.parent_id, now)
        record.metadata_uri, record.metadata_hash = uri, digest

    # ---------------------------------------------------------------------- keys

    def _new_key(self, entity_id: int, index: int, valid_from: int, valid_until: int,
                 now: int) -> KeyRecord:
        if self.entities[entity_id].status is Status.REVOKED:
            raise Refused("InvalidStatusChange")
        valid_from = max(valid_from, now)
        if valid_until == 0:
            valid_until = FOREVER
        if valid_until <= valid_from or valid_until <= now:
            raise Refused("InvalidValidity")
        return KeyRecord(entity_id=entity_id, index=index, valid_from=valid_from,
                         valid_until=valid_until)

    def add_key(self, caller: str, entity_id: int, key: str, *, valid_from: int,
                valid_until: int, now: int) -> None:
        record = self._existing(entity_id)
        self._require_accreditor_or_admin(caller, record.parent_id, now)
        key = key.lower()
        if int(key, 16) == 0:
            raise Refused("ZeroAddress")
        if key in self.keys:
            raise Refused("KeyAlreadyRegistered")
        added = self._new_key(entity_id, len(self.key_list), valid_from, valid_until, now)
        self.keys[key] = added
        self.key_list.append(key)
        self.entity_keys[entity_id].append(key)

    def _shorten(self, caller: str, record: KeyRecord, valid_until: int, now: int,
                 error: str) -> None:
        entity = self.entities[record.entity_id]
        if not self.is_trusted_key_of(caller, record.entity_id, now):
            self._require_accreditor_or_admin(caller, entity.parent_id, now)
        if valid_until >= record.valid_until or valid_until <= now \
                or valid_until <= record.valid_from:
            raise Refused(error)
        record.valid_until = valid_until

    def _revoke(self, caller: str, record: KeyRecord, effective_from: int, now: int,
                error: str) -> None:
        entity = self.entities[record.entity_id]
        if effective_from > now:
            raise Refused("RevocationInFuture")
        if not self.is_accreditor_or_admin(caller, entity.parent_id, now):
            if not self.is_trusted_key_of(caller, record.entity_id, now):
                raise Refused("NotAuthorized")
            if effective_from != 0:
                raise Refused("BackdatingNotAllowed")
        effective = now + 1 if effective_from == 0 else effective_from
        if record.revoked_at != 0 and effective >= record.revoked_at:
            raise Refused(error)
        record.revoked_at = effective

    def shorten_key_expiry(self, caller: str, key: str, valid_until: int, now: int) -> None:
        record = self.keys.get(key.lower())
        if record is None:
            raise Refused("UnknownKey")
        self._shorten(caller, record, valid_until, now, "ExpiryNotShortened")

    def revoke_key(self, caller: str, key: str, effective_from: int, now: int) -> None:
        record = self.keys.get(key.lower())
        if record is None:
            raise Refused("UnknownKey")
        self._revoke(caller, record, effective_from, now, "RevocationNotEarlier")

    @staticmethod
    def signing_key_form_ok(public_key: bytes) -> bool:
        """IssuerRegistry._isSigningKeyForm."""
        if len(public_key) == 34:
            return public_key[:2] == b"\xed\x01"
        if len(public_key) == 35:
            return public_key[:2] == b"\x80\x24" and public_key[2] in (2, 3)
        return False

    def add_signing_key(self, caller: str, entity_id: int, public_key: bytes, *, key_id: bytes,
                        valid_from: int, valid_until: int, now: int) -> None:
        record = self._existing(entity_id)
        self._require_accreditor_or_admin(caller, record.parent_id, now)
        if not self.signing_key_form_ok(public_key):
            raise Refused("InvalidSigningKey")
        if key_id in self.signing_keys:
            raise Refused("SigningKeyAlreadyRegistered")
        if len(self.entity_signing_keys[entity_id]) >= MAX_SIGNING_KEYS:
            raise Refused("TooManySigningKeys")
        added = self._new_key(entity_id, len(self.signing_keys), valid_from, valid_until, now)
        added.public_key = public_key
        self.signing_keys[key_id] = added
        self.entity_signing_keys[entity_id].append(key_id)

    def shorten_signing_key_expiry(self, caller: str, key_id: bytes, valid_until: int,
                                   now: int) -> None:
        record = self.signing_keys.get(key_id)
        if record is None:
            raise Refused("UnknownSigningKey")
        self._shorten(caller, record, valid_until, now, "SigningKeyExpiryNotShortened")

    def revoke_signing_key(self, caller: str, key_id: bytes, effective_from: int,
                           now: int) -> None:
        record = self.signing_keys.get(key_id)
        if record is None:
            raise Refused("UnknownSigningKey")
        self._revoke(caller, record, effective_from, now, "SigningKeyRevocationNotEarlier")

    def key_info(self, key: str) -> KeyInfo | None:
        record = self.keys.get(key.lower())
        if record is None:
            return None
        return KeyInfo(key=key.lower(), entity_id=record.entity_id, index=record.index,
                       valid_from=record.valid_from, valid_until=record.valid_until,
                       revoked_at=record.revoked_at)

    def signing_key_info(self, key_id: bytes) -> SigningKeyInfo:
        record = self.signing_keys.get(key_id)
        if record is None:
            return SigningKeyInfo(key_id=key_id, entity_id=0, index=0, valid_from=0,
                                  valid_until=0, revoked_at=0, public_key=b"")
        return SigningKeyInfo(key_id=key_id, entity_id=record.entity_id, index=record.index,
                              valid_from=record.valid_from, valid_until=record.valid_until,
                              revoked_at=record.revoked_at, public_key=record.public_key)

    # --------------------------------------------------------------- recognitions

    def recognise(self, caller: str, recogniser_id: int, subject_id: int, *, scope: int,
                  valid_from: int, valid_until: int, now: int) -> int:
        """IssuerRegistry.recognise: only the recogniser's own keys trusted now; the new id."""
        if not self.is_trusted_key_of(caller, recogniser_id, now):
            raise Refused("NotAuthorized")
        self._existing(subject_id)
        if subject_id == recogniser_id:
            raise Refused("SelfRecognition")
        if scope == 0 or scope & ~int(ALL_SCOPES):
            raise Refused("InvalidScope")
        if valid_until == 0:
            valid_until = FOREVER
        if valid_until <= valid_from:
            raise Refused("InvalidValidity")
        ids = self.pair_recognitions.setdefault((recogniser_id, subject_id), [])
        if len(ids) >= MAX_RECOGNITIONS_PER_PAIR:
            raise Refused("TooManyRecognitions")
        recognition_id = len(self.recognitions) + 1
        self.recognitions[recognition_id] = Recognition(
            id=recognition_id, recogniser_id=recogniser_id, subject_id=subject_id,
            scope=Scope(scope), valid_from=valid_from, valid_until=valid_until,
            recorded_at=now, withdrawn_at=0)
        ids.append(recognition_id)
        return recognition_id

    def withdraw_recognition(self, caller: str, recognition_id: int, now: int) -> None:
        """IssuerRegistry.withdrawRecognition: effective from the next second."""
        found = self.recognitions.get(recognition_id)
        if found is None:
            raise Refused("UnknownRecognition")
        if not self.is_trusted_key_of(caller, found.recogniser_id, now):
            raise Refused("NotAuthorized")
        if found.withdrawn_at != 0:
            raise Refused("RecognitionAlreadyWithdrawn")
        self.recognitions[recognition_id] = replace(found, withdrawn_at=now + 1)

    def _chain_of(self, entity_id: int) -> list[int]:
        """The entity and the bodies above it, nearest first."""
        found = []
        while entity_id != 0:
            found.append(entity_id)
            entity_id = self.entities[entity_id].parent_id
        return found

    def recognised_at(self, recogniser_id: int, subject_id: int, kind: int,
                      when: int) -> RecognitionAnswer:
        """IssuerRegistry.recognisedAt: the recogniser's chain outer, the subject's inner,
        each pair's newest recognition first; the first that covers kind and time answers."""
        self._existing(recogniser_id)
        self._existing(subject_id)
        if kind not in (1, 2, 4):
            raise Refused("InvalidScope")
        if recogniser_id == subject_id:
            return RecognitionAnswer(recognised=True, recognition_id=0,
                                     recogniser_id=recogniser_id, subject_id=subject_id)
        for recogniser in self._chain_of(recogniser_id):
            for subject in self._chain_of(subject_id):
                for recognition_id in reversed(self.pair_recognitions.get((recogniser,
                                                                           subject), [])):
                    if self.recognitions[recognition_id].covers(Scope(kind), when):
                        return RecognitionAnswer(recognised=True,
                                                 recognition_id=recognition_id,
                                                 recogniser_id=recogniser, subject_id=subject)
        return RecognitionAnswer(recognised=False, recognition_id=0, recogniser_id=0,
                                 subject_id=0)

    # ------------------------------------------------------------------ anchoring

    def anchor(self, key: str, root: bytes, tree_size: int, now: int, block: int) -> None:
        """CredentialAnchor._anchor with ``key`` anchoring."""
        if root == bytes(32):
            raise Refused("ZeroRoot")
        if tree_size == 0 or tree_size > MAX_TREE_SIZE:
            raise Refused("InvalidTreeSize")
        code, entity_id, kind = self.check_now(key, now)
        if code is not TrustCode.TRUSTED:
            raise Refused("KeyNotTrusted")
        if kind is not Kind.TRUSTED_ISSUER:
            raise Refused("NotAnIssuer")
        if (entity_id, root) in self.anchors:
            raise Refused("RootAlreadyAnchored")
        self.anchors[(entity_id, root)] = AnchorRecord(
            key=key.lower(), entity_id=entity_id, anchored_at=now, block_number=block,
            tree_size=tree_size)

    def anchor_with_signature(self, key: str, *, signer_ok: bool, nonce: int, deadline: int,
                              root: bytes, tree_size: int, now: int, block: int) -> None:
        """CredentialAnchor.anchorWithSignature; ``signer_ok``: the signature is ``key``'s
        over exactly this request."""
        if now > deadline:
            raise Refused("SignatureExpired")
        if not signer_ok:
            raise Refused("InvalidSignature")
        if nonce != self.nonces.get(key.lower(), 0):
            raise Refused("InvalidAccountNonce")
        self.anchor(key, root, tree_size, now, block)
        self.nonces[key.lower()] = nonce + 1

    def use_nonce(self, caller: str) -> None:
        self.nonces[caller.lower()] = self.nonces.get(caller.lower(), 0) + 1

    def anchor_of(self, key: str, root: bytes) -> AnchorInfo:
        record = self.keys.get(key.lower())
        found = None if record is None else self.anchors.get((record.entity_id, root))
        if found is None:
            return AnchorInfo(anchored=False, entity_id=0, key="0x" + "00" * 20,
                              anchored_at=0, block_number=0, tree_size=0)
        return AnchorInfo(anchored=True, entity_id=found.entity_id, key=found.key,
                          anchored_at=found.anchored_at, block_number=found.block_number,
                          tree_size=found.tree_size)

    # --------------------------------------------------------------------- status

    def change_status(self, action: str, caller: str, entity_id: int, *, status_list: int,
                      indices: bytes, now: int) -> None:
        """CredentialAnchor.revoke / suspend / reinstate / liftRevocations."""
        if action == "liftRevocations":
            if caller.lower() not in self.root_admins:
                raise Refused("NotAuthorized")
        elif not self.is_trusted_key_of(caller, entity_id, now) \
                or self.entities[entity_id].kind is not Kind.TRUSTED_ISSUER:
            raise Refused("NotAuthorized")
        if not indices or len(indices) % 4:
            raise Refused("MalformedStatusIndices")
        values = [int.from_bytes(indices[at:at + 4], "big") for at in range(0, len(indices), 4)]
        if any(index >= STATUS_LIST_SIZE for index in values):
            raise Refused("StatusIndexOutOfRange")
        bitmap = self.suspended if action in ("suspend", "reinstate") else self.revoked
        set_bit = action in ("revoke", "suspend")
        for index in values:
            where = (entity_id, status_list, index // _WORD_BITS)
            mask = 1 << (_WORD_BITS - 1 - index % _WORD_BITS)
            bits = bitmap.get(where, 0)
            bitmap[where] = bits | mask if set_bit else bits & ~mask

    def status_of(self, entity_id: int, status_list: int, index: int) -> tuple[bool, bool]:
        """(revoked, suspended) of one entry (index below STATUS_LIST_SIZE)."""
        where = (entity_id, status_list, index // _WORD_BITS)
        shift = _WORD_BITS - 1 - index % _WORD_BITS
        return (bool(self.revoked.get(where, 0) >> shift & 1),
                bool(self.suspended.get(where, 0) >> shift & 1))

    def status_words(self, entity_id: int, status_list: int, first: int,
                     count: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if first >= STATUS_LIST_WORDS or count > STATUS_LIST_WORDS - first:
            raise Refused("WordRangeOutOfList")
        words = range(first, first + count)
        return (tuple(self.revoked.get((entity_id, status_list, w), 0) for w in words),
                tuple(self.suspended.get((entity_id, status_list, w), 0) for w in words))
