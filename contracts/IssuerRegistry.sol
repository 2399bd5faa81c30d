// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IIssuerRegistry} from "./interfaces/IIssuerRegistry.sol";

/// @title IssuerRegistry
/// @author microcred-anchor contributors
/// @notice EBSI-style trusted-issuer registry that can answer whether a key, its entity and
///         every accreditation body above it were trusted at any past time.
/// @dev Top-level administration uses OpenZeppelin's AccessControlDefaultAdminRules: the
///      DEFAULT_ADMIN_ROLE holder is handed over in two steps with a delay, and grants
///      ROOT_ADMIN_ROLE. Timestamps are uint40 (good until year 36812). The hot path of
///      {checkKeyNow} reads one slot for the key and one per entity on the accreditation chain.
contract IssuerRegistry is IIssuerRegistry, AccessControlDefaultAdminRules {
    /// @notice Role of the root administrators, who accredit top-level bodies and may act
    ///         for any accreditor.
    bytes32 public constant ROOT_ADMIN_ROLE = keccak256("ROOT_ADMIN_ROLE");

    /// @notice Scope bit: formal learning within a degree programme.
    uint32 public constant SCOPE_FORMAL_DEGREE = 1 << 0;
    /// @notice Scope bit: formal learning outside a degree programme.
    uint32 public constant SCOPE_FORMAL_NON_DEGREE = 1 << 1;
    /// @notice Scope bit: non-formal learning.
    uint32 public constant SCOPE_NON_FORMAL = 1 << 2;
    /// @notice Every scope bit this version knows.
    uint32 public constant SCOPE_ALL = SCOPE_FORMAL_DEGREE | SCOPE_FORMAL_NON_DEGREE | SCOPE_NON_FORMAL;

    /// @notice Maximum length of an accreditation chain, top-level body included.
    uint8 public constant MAX_DEPTH = 4;
    /// @notice Maximum DID length in bytes.
    uint256 public constant MAX_DID_LENGTH = 256;
    /// @notice Maximum number of signing keys an entity ever gets (revoked and expired ones
    ///         count: a key belongs to its entity forever). 64 allows a rotation every quarter
    ///         for sixteen years, or yearly ones with many emergency rotations, and bounds the
    ///         signing-key views (and the DID documents built from them) to 64 entries.
    uint256 public constant MAX_SIGNING_KEYS_PER_ENTITY = 64;

    /// @notice Maximum number of recognitions one entity ever records of another (withdrawn
    ///         ones count), which bounds {recognisedAt}: a change is a withdrawal and a new
    ///         recognition, so 16 allow eight changes of terms.
    uint256 public constant MAX_RECOGNITIONS_PER_PAIR = 16;

    uint40 private constant _FOREVER = type(uint40).max;

    /// @dev One storage slot: everything the trust check needs about an entity.
    struct EntityRecord {
        uint64 parentId;
        uint32 scope;
        Kind kind;
        Status status;
        uint8 depth;
        uint40 accreditedAt;
        uint40 statusSince;
        uint40 revokedFrom; // 0: not revoked with a back-dated effect
    }

    /// @dev One storage slot: everything the trust check needs about a key, anchoring key
    ///      (an address) or signing key (a Multikey). A signing key's public key takes this
    ///      slot's spare bytes (`keyTail`) and one more slot (`_signingKeyHeads`).
    struct KeyRecord {
        uint64 entityId;
        uint32 index;
        uint40 validFrom;
        uint40 validUntil;
        uint40 revokedAt;
        bytes3 keyTail; // signing keys: the Multikey's bytes after its first 32; else 0
    }

    /// @dev A recognition in two slots; the first holds all that {recognisedAt} reads. Who
    ///      recorded it is in its event.
    struct RecognitionRecord {
        uint32 scope;
        uint40 validFrom;
        uint40 validUntil;
        uint40 withdrawnAt; // 0: not withdrawn
        uint40 recordedAt;
        uint64 recogniserId;
        uint64 subjectId;
    }

    uint64 private _entityCount;
    mapping(uint64 id => EntityRecord) private _entities;
    mapping(uint64 id => string) private _dids;
    mapping(uint64 id => string) private _metadataURIs;
    mapping(uint64 id => bytes32) private _metadataHashes;
    mapping(uint64 id => address) private _accreditedBy;
    mapping(bytes32 didHash => uint64 id) private _entityByDid;
    mapping(uint64 id => StatusChange[]) private _history;
    mapping(address key => KeyRecord) private _keys;
    mapping(uint64 id => address[]) private _entityKeys;
    address[] private _keyList;
    mapping(bytes32 keyId => KeyRecord) private _signingKeys;
    mapping(bytes32 keyId => bytes32) private _signingKeyHeads; // the Multikey's first 32 bytes
    mapping(uint64 id => bytes32[]) private _entitySigningKeys;
    uint32 private _signingKeyCount;
    uint64 private _recognitionCount;
    mapping(uint64 id => RecognitionRecord) private _recognitions;
    mapping(uint128 pair => uint64[]) private _pairRecognitions; // recogniser << 64 | subject

    /// @notice Deploys the registry with `initialAdmin` as top and root administrator.
    /// @param adminTransferDelay Seconds a new top administrator must wait before accepting.
    /// @param initialAdmin The top administrator, also the first root administrator.
    constructor(uint48 adminTransferDelay, address initialAdmin)
        AccessControlDefaultAdminRules(adminTransferDelay, initialAdmin)
    {
        _grantRole(ROOT_ADMIN_ROLE, initialAdmin);
    }

    // ------------------------------------------------------------- administration

    /// @dev The top administrator is also a root administrator, and hands both roles over
    ///      together: otherwise the previous one would silently keep root powers.
    function _acceptDefaultAdminTransfer() internal override {
        address previous = defaultAdmin();
        super._acceptDefaultAdminTransfer();
        _revokeRole(ROOT_ADMIN_ROLE, previous);
        _grantRole(ROOT_ADMIN_ROLE, defaultAdmin());
    }

    /// @notice Give up `role` for the caller, who must be `account`. The top administrator
    ///         role can only be given up once a transfer to the zero address was begun and its
    ///         delay has passed ({beginDefaultAdminTransfer}).
    /// @dev A top administrator who renounces also stops being a root administrator: nobody
    ///      could revoke that role afterwards.
    /// @param role The role to give up.
    /// @param account The caller's own address.
    function renounceRole(bytes32 role, address account) public override {
        super.renounceRole(role, account);
        if (role == DEFAULT_ADMIN_ROLE) _revokeRole(ROOT_ADMIN_ROLE, account);
    }

    // ------------------------------------------------------------------ entities

    /// @inheritdoc IIssuerRegistry
    function accredit(
        uint64 parentId,
        Kind kind,
        string calldata did,
        uint32 scope,
        string calldata metadataURI,
        bytes32 metadataHash
    ) external returns (uint64 id) {
        if (kind != Kind.AccreditationBody && kind != Kind.TrustedIssuer) revert InvalidKind(kind);
        uint32 allowed = SCOPE_ALL;
        uint8 depth = 1;
        if (parentId == 0) {
            if (!isRootAdmin(msg.sender)) revert NotAuthorized(msg.sender, 0);
        } else {
            EntityRecord storage parent = _existing(parentId);
            if (parent.kind != Kind.AccreditationBody) revert InvalidKind(parent.kind);
            _requireAccreditorOrAdmin(parentId, parentId);
            // Nobody, not even a root administrator, accredits under an untrusted chain.
            uint64 failing = _firstInactiveNow(parentId);
            if (failing != 0) revert AccreditorNotTrusted(failing, TrustCode.AccreditorNotActive);
            allowed = parent.scope;
            depth = parent.depth + 1;
            if (depth > MAX_DEPTH) revert HierarchyTooDeep(depth);
        }
        if (scope == 0 || scope & ~allowed != 0) revert InvalidScope(scope, allowed);
        if (bytes(did).length == 0 || bytes(did).length > MAX_DID_LENGTH) revert InvalidDid();
        bytes32 didHash = keccak256(bytes(did));
        if (_entityByDid[didHash] != 0) revert DidAlreadyRegistered(_entityByDid[didHash]);

        id = ++_entityCount;
        uint40 now_ = uint40(block.timestamp);
        _entities[id] = EntityRecord({
            parentId: parentId,
            scope: scope,
            kind: kind,
            status: Status.Active,
            depth: depth,
            accreditedAt: now_,
            statusSince: now_,
            revokedFrom: 0
        });
        _dids[id] = did;
        _metadataURIs[id] = metadataURI;
        _metadataHashes[id] = metadataHash;
        _accreditedBy[id] = msg.sender;
        _entityByDid[didHash] = id;
        _history[id].push(StatusChange({status: Status.Active, since: now_}));
        emit EntityAccredited(id, parentId, kind, scope, did, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function setStatus(uint64 id, Status status) external {
        EntityRecord storage record = _existing(id);
        _requireAccreditorOrAdmin(id, record.parentId);
        Status current = record.status;
        if (current == Status.Revoked || status == Status.None || status == current) {
            revert InvalidStatusChange(id, current, status);
        }
        // For judging the past the change counts from the next second, so that whatever the
        // entity did earlier in this second stands; for anything new it counts at once.
        uint40 since = uint40(block.timestamp) + 1;
        record.status = status;
        record.statusSince = since;
        _history[id].push(StatusChange({status: status, since: since}));
        emit EntityStatusChanged(id, status, since, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function revokeSince(uint64 id, uint40 effectiveFrom) external {
        EntityRecord storage record = _existing(id);
        _requireAccreditorOrAdmin(id, record.parentId);
        uint40 now_ = uint40(block.timestamp);
        if (effectiveFrom > now_) revert RevocationInFuture(effectiveFrom);
        if (effectiveFrom < record.accreditedAt) effectiveFrom = record.accreditedAt;
        uint40 current = record.revokedFrom;
        if (current != 0 && effectiveFrom >= current) {
            revert EntityRevocationNotEarlier(id, current, effectiveFrom);
        }
        record.revokedFrom = effectiveFrom;
        if (record.status != Status.Revoked) {
            uint40 since = now_ + 1;
            record.status = Status.Revoked;
            record.statusSince = since;
            _history[id].push(StatusChange({status: Status.Revoked, since: since}));
            emit EntityStatusChanged(id, Status.Revoked, since, msg.sender);
        }
        emit EntityRevokedSince(id, effectiveFrom, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function updateMetadata(uint64 id, string calldata metadataURI, bytes32 metadataHash) external {
        EntityRecord storage record = _existing(id);
        if (!_isTrustedKeyOf(msg.sender, id)) _requireAccreditorOrAdmin(id, record.parentId);
        _metadataURIs[id] = metadataURI;
        _metadataHashes[id] = metadataHash;
        emit EntityMetadataUpdated(id, metadataURI, metadataHash, msg.sender);
    }

    // ---------------------------------------------------------------------- keys

    /// @inheritdoc IIssuerRegistry
    function addKey(uint64 entityId, address key, uint40 validFrom, uint40 validUntil) external {
        EntityRecord storage record = _keyAdminOf(entityId);
        if (key == address(0)) revert ZeroAddress();
        uint64 owner = _keys[key].entityId;
        if (owner != 0) revert KeyAlreadyRegistered(key, owner);
        uint32 index = uint32(_keyList.length);
        KeyRecord memory added = _newKeyRecord(entityId, record, index, validFrom, validUntil);
        _keys[key] = added;
        _keyList.push(key);
        _entityKeys[entityId].push(key);
        emit KeyAdded(entityId, key, index, added.validFrom, added.validUntil, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function shortenKeyExpiry(address key, uint40 validUntil) external {
        KeyRecord storage record = _existingKey(key);
        (bool shortened, uint40 current) = _shortenExpiry(record, validUntil);
        if (!shortened) revert ExpiryNotShortened(key, current, validUntil);
        emit KeyExpiryShortened(key, validUntil, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function revokeKey(address key, uint40 effectiveFrom) external {
        KeyRecord storage record = _existingKey(key);
        (bool revoked, uint40 effective, uint40 current) = _revokeKeyRecord(record, effectiveFrom);
        if (!revoked) revert RevocationNotEarlier(key, current, effective);
        emit KeyRevoked(key, effective, msg.sender);
    }

    // ---------------------------------------------------------------- signing keys

    /// @inheritdoc IIssuerRegistry
    function addSigningKey(uint64 entityId, bytes calldata publicKey, uint40 validFrom, uint40 validUntil)
        external
        returns (bytes32 keyId)
    {
        EntityRecord storage record = _keyAdminOf(entityId);
        if (!_isSigningKeyForm(publicKey)) revert InvalidSigningKey(publicKey);
        keyId = keccak256(publicKey);
        uint64 owner = _signingKeys[keyId].entityId;
        if (owner != 0) revert SigningKeyAlreadyRegistered(keyId, owner);
        if (_entitySigningKeys[entityId].length >= MAX_SIGNING_KEYS_PER_ENTITY) {
            revert TooManySigningKeys(entityId, MAX_SIGNING_KEYS_PER_ENTITY);
        }
        uint32 index = _signingKeyCount;
        KeyRecord memory added = _newKeyRecord(entityId, record, index, validFrom, validUntil);
        // The Multikey is 34 or 35 bytes: its first 32 take a slot of their own, the rest
        // the record's spare bytes, so the key costs one slot more than its record.
        added.keyTail = bytes3(publicKey[32:]);
        _signingKeys[keyId] = added;
        _signingKeyHeads[keyId] = bytes32(publicKey[:32]);
        _signingKeyCount = index + 1;
        _entitySigningKeys[entityId].push(keyId);
        emit SigningKeyAdded(entityId, keyId, publicKey, index, added.validFrom, added.validUntil, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function shortenSigningKeyExpiry(bytes32 keyId, uint40 validUntil) external {
        KeyRecord storage record = _existingSigningKey(keyId);
        (bool shortened, uint40 current) = _shortenExpiry(record, validUntil);
        if (!shortened) revert SigningKeyExpiryNotShortened(keyId, current, validUntil);
        emit SigningKeyExpiryShortened(keyId, validUntil, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function revokeSigningKey(bytes32 keyId, uint40 effectiveFrom) external {
        KeyRecord storage record = _existingSigningKey(keyId);
        (bool revoked, uint40 effective, uint40 current) = _revokeKeyRecord(record, effectiveFrom);
        if (!revoked) revert SigningKeyRevocationNotEarlier(keyId, current, effective);
        emit SigningKeyRevoked(keyId, effective, msg.sender);
    }

    // -------------------------------------------------------------- recognitions

    /// @inheritdoc IIssuerRegistry
    function recognise(uint64 recogniserId, uint64 subjectId, uint32 scope, uint40 validFrom, uint40 validUntil)
        external
        returns (uint64 id)
    {
        if (!_isTrustedKeyOf(msg.sender, recogniserId)) revert NotAuthorized(msg.sender, recogniserId);
        _existing(subjectId);
        if (subjectId == recogniserId) revert SelfRecognition(subjectId);
        if (scope == 0 || scope & ~SCOPE_ALL != 0) revert InvalidScope(scope, SCOPE_ALL);
        if (validUntil == 0) validUntil = _FOREVER;
        if (validUntil <= validFrom) revert InvalidValidity(validFrom, validUntil);
        uint64[] storage ids = _pairRecognitions[_pair(recogniserId, subjectId)];
        if (ids.length >= MAX_RECOGNITIONS_PER_PAIR) {
            revert TooManyRecognitions(recogniserId, subjectId, MAX_RECOGNITIONS_PER_PAIR);
        }
        id = ++_recognitionCount;
        _recognitions[id] = RecognitionRecord({
            scope: scope,
            validFrom: validFrom,
            validUntil: validUntil,
            withdrawnAt: 0,
            recordedAt: uint40(block.timestamp),
            recogniserId: recogniserId,
            subjectId: subjectId
        });
        ids.push(id);
        emit RecognitionRecorded(id, recogniserId, subjectId, scope, validFrom, validUntil, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function withdrawRecognition(uint64 id) external {
        RecognitionRecord storage record = _existingRecognition(id);
        uint64 recogniserId = record.recogniserId;
        if (!_isTrustedKeyOf(msg.sender, recogniserId)) revert NotAuthorized(msg.sender, recogniserId);
        if (record.withdrawnAt != 0) revert RecognitionAlreadyWithdrawn(id, record.withdrawnAt);
        // From the next second, as status changes: credentials anchored earlier in this second
        // stay recognised.
        uint40 withdrawnAt = uint40(block.timestamp) + 1;
        record.withdrawnAt = withdrawnAt;
        emit RecognitionWithdrawn(id, recogniserId, record.subjectId, withdrawnAt, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function recognition(uint64 id) external view returns (Recognition memory) {
        RecognitionRecord storage record = _existingRecognition(id);
        return Recognition({
            id: id,
            recogniserId: record.recogniserId,
            subjectId: record.subjectId,
            scope: record.scope,
            validFrom: record.validFrom,
            validUntil: record.validUntil,
            recordedAt: record.recordedAt,
            withdrawnAt: record.withdrawnAt
        });
    }

    /// @inheritdoc IIssuerRegistry
    function recognitionCount() external view returns (uint64) {
        return _recognitionCount;
    }

    /// @inheritdoc IIssuerRegistry
    function recognitionIdsBetween(uint64 recogniserId, uint64 subjectId) external view returns (uint64[] memory) {
        return _pairRecognitions[_pair(recogniserId, subjectId)];
    }

    /// @inheritdoc IIssuerRegistry
    function recognisedAt(uint64 recogniserId, uint64 subjectId, uint32 kind, uint40 when)
        external
        view
        returns (RecognitionAnswer memory answer)
    {
        _existing(recogniserId);
        _existing(subjectId);
        // Exactly one known bit: a credential is of one kind.
        if (kind == 0 || kind & (kind - 1) != 0 || kind & ~SCOPE_ALL != 0) revert InvalidScope(kind, SCOPE_ALL);
        if (recogniserId == subjectId) {
            return RecognitionAnswer({
                recognised: true, recognitionId: 0, recogniserId: recogniserId, subjectId: subjectId
            });
        }
        for (uint64 recogniser = recogniserId; recogniser != 0; recogniser = _entities[recogniser].parentId) {
            for (uint64 subject = subjectId; subject != 0; subject = _entities[subject].parentId) {
                uint64 found = _recognitionCovering(recogniser, subject, kind, when);
                if (found != 0) {
                    return RecognitionAnswer({
                        recognised: true, recognitionId: found, recogniserId: recogniser, subjectId: subject
                    });
                }
            }
        }
    }

    // --------------------------------------------------------------------- views

    /// @inheritdoc IIssuerRegistry
    function isRootAdmin(address account) public view returns (bool) {
        return hasRole(ROOT_ADMIN_ROLE, account);
    }

    /// @inheritdoc IIssuerRegistry
    function entity(uint64 id) external view returns (Entity memory) {
        EntityRecord storage record = _existing(id);
        return Entity({
            id: id,
            parentId: record.parentId,
            kind: record.kind,
            status: record.status,
            scope: record.scope,
            depth: record.depth,
            accreditedAt: record.accreditedAt,
            statusSince: record.statusSince,
            accreditedBy: _accreditedBy[id],
            did: _dids[id],
            metadataURI: _metadataURIs[id],
            metadataHash: _metadataHashes[id],
            revokedFrom: record.revokedFrom
        });
    }

    /// @inheritdoc IIssuerRegistry
    function entityCount() external view returns (uint64) {
        return _entityCount;
    }

    /// @inheritdoc IIssuerRegistry
    function entityIdByDid(string calldata did) external view returns (uint64) {
        return _entityByDid[keccak256(bytes(did))];
    }

    /// @inheritdoc IIssuerRegistry
    function statusHistory(uint64 id) external view returns (StatusChange[] memory) {
        _existing(id);
        return _history[id];
    }

    /// @inheritdoc IIssuerRegistry
    function isActiveAt(uint64 id, uint40 when) external view returns (bool) {
        return _activeAt(id, _existing(id), when);
    }

    /// @inheritdoc IIssuerRegistry
    function entityOfKey(address key) external view returns (uint64) {
        return _keys[key].entityId;
    }

    /// @inheritdoc IIssuerRegistry
    function keyInfo(address key) external view returns (KeyInfo memory) {
        KeyRecord storage record = _existingKey(key);
        return KeyInfo({
            key: key,
            entityId: record.entityId,
            index: record.index,
            validFrom: record.validFrom,
            validUntil: record.validUntil,
            revokedAt: record.revokedAt
        });
    }

    /// @inheritdoc IIssuerRegistry
    function keyAt(uint32 index) external view returns (address) {
        return _keyList[index];
    }

    /// @inheritdoc IIssuerRegistry
    function keyCount() external view returns (uint32) {
        return uint32(_keyList.length);
    }

    /// @inheritdoc IIssuerRegistry
    function entityKeys(uint64 id) external view returns (address[] memory) {
        _existing(id);
        return _entityKeys[id];
    }

    /// @inheritdoc IIssuerRegistry
    function trustedAt(address key, uint40 when) external view returns (Trust memory) {
        return _trustOf(_keys[key], when);
    }

    /// @inheritdoc IIssuerRegistry
    function signingKeyInfo(bytes32 keyId) public view returns (SigningKeyInfo memory info) {
        KeyRecord storage record = _signingKeys[keyId];
        info.keyId = keyId;
        uint64 entityId = record.entityId;
        if (entityId == 0) return info;
        info.entityId = entityId;
        info.index = record.index;
        info.validFrom = record.validFrom;
        info.validUntil = record.validUntil;
        info.revokedAt = record.revokedAt;
        bytes32 head = _signingKeyHeads[keyId];
        // The first byte of the multicodec header tells the length: 0xed Ed25519 (34 bytes),
        // 0x80 P-256 (35 bytes), the only two forms addSigningKey takes.
        info.publicKey = head[0] == 0xed
            ? abi.encodePacked(head, bytes2(record.keyTail))
            : abi.encodePacked(head, record.keyTail);
    }

    /// @inheritdoc IIssuerRegistry
    function entitySigningKeys(uint64 id) external view returns (bytes32[] memory) {
        _existing(id);
        return _entitySigningKeys[id];
    }

    /// @inheritdoc IIssuerRegistry
    function entitySigningKeyInfos(uint64 id) external view returns (SigningKeyInfo[] memory infos) {
        _existing(id);
        bytes32[] storage ids = _entitySigningKeys[id];
        uint256 count = ids.length;
        infos = new SigningKeyInfo[](count);
        for (uint256 i = 0; i < count; ++i) {
            infos[i] = signingKeyInfo(ids[i]);
        }
    }

    /// @inheritdoc IIssuerRegistry
    function signingKeyTrustedAt(bytes32 keyId, uint40 when) external view returns (Trust memory) {
        return _trustOf(_signingKeys[keyId], when);
    }

    /// @inheritdoc IIssuerRegistry
    function signingKeyCount() external view returns (uint32) {
        return _signingKeyCount;
    }

    /// @dev Whether `record` (an anchoring or signing key's, all zero when unknown) was
    ///      trusted at `when`, with its entity and every accreditation body above it.
    function _trustOf(KeyRecord memory record, uint40 when) private view returns (Trust memory trust) {
        trust.entityId = record.entityId;
        trust.keyIndex = record.index;
        if (record.entityId == 0) {
            trust.code = TrustCode.UnknownKey;
            return trust;
        }
        EntityRecord storage owner = _entities[record.entityId];
        trust.kind = owner.kind;
        trust.scope = owner.scope;
        trust.code = _keyCode(record, when);
        if (trust.code != TrustCode.Trusted) return trust;
        if (!_activeAt(record.entityId, owner, when)) {
            (trust.code, trust.failingEntityId) = (TrustCode.EntityNotActive, record.entityId);
            return trust;
        }
        uint64 failing = _firstInactive(owner.parentId, when);
        if (failing != 0) {
            (trust.code, trust.failingEntityId) = (TrustCode.AccreditorNotActive, failing);
            return trust;
        }
        trust.trusted = true;
    }

    /// @inheritdoc IIssuerRegistry
    function checkKeyNow(address key)
        external
        view
        returns (TrustCode code, uint64 entityId, uint32 keyIndex, Kind kind)
    {
        return _checkNow(key);
    }

    /// @inheritdoc IIssuerRegistry
    function version() external pure returns (string memory) {
        return "2.1.0";
    }

    // ------------------------------------------------------------------ internal

    function _existing(uint64 id) private view returns (EntityRecord storage record) {
        record = _entities[id];
        if (record.kind == Kind.None) revert UnknownEntity(id);
    }

    function _existingKey(address key) private view returns (KeyRecord storage record) {
        record = _keys[key];
        if (record.entityId == 0) revert UnknownKey(key);
    }

    function _existingSigningKey(bytes32 keyId) private view returns (KeyRecord storage record) {
        record = _signingKeys[keyId];
        if (record.entityId == 0) revert UnknownSigningKey(keyId);
    }

    /// @dev The entity `entityId`, to which the caller may add keys: root administrators and
    ///      the accreditor's trusted keys (a stolen key of the entity must not mint more keys).
    function _keyAdminOf(uint64 entityId) private view returns (EntityRecord storage record) {
        record = _existing(entityId);
        _requireAccreditorOrAdmin(entityId, record.parentId);
    }

    /// @dev The record of a key being added to `entityId` (`record`) with registry index
    ///      `index`: the entity must not be revoked; the window is normalised and checked.
    function _newKeyRecord(
        uint64 entityId,
        EntityRecord storage record,
        uint32 index,
        uint40 validFrom,
        uint40 validUntil
    ) private view returns (KeyRecord memory) {
        if (record.status == Status.Revoked) revert InvalidStatusChange(entityId, Status.Revoked, Status.Revoked);
        uint40 now_ = uint40(block.timestamp);
        // Validity never starts in the past: that would rewrite past trust answers.
        if (validFrom < now_) validFrom = now_;
        if (validUntil == 0) validUntil = _FOREVER;
        if (validUntil <= validFrom || validUntil <= now_) revert InvalidValidity(validFrom, validUntil);
        return KeyRecord({
            entityId: entityId,
            index: index,
            validFrom: validFrom,
            validUntil: validUntil,
            revokedAt: 0,
            keyTail: bytes3(0)
        });
    }

    /// @dev Move an existing key's expiry to `validUntil` if the caller may (root
    ///      administrators, the accreditor's or the entity's own trusted keys) and the time
    ///      is allowed; returns whether it moved and the expiry before.
    function _shortenExpiry(KeyRecord storage record, uint40 validUntil)
        private
        returns (bool shortened, uint40 current)
    {
        uint64 entityId = record.entityId;
        if (!_isTrustedKeyOf(msg.sender, entityId)) {
            _requireAccreditorOrAdmin(entityId, _entities[entityId].parentId);
        }
        current = record.validUntil;
        // Strictly after now: an expiry at the current second would retroactively untrust
        // anchors made with the key in this very second.
        if (validUntil >= current || validUntil <= block.timestamp || validUntil <= record.validFrom) {
            return (false, current);
        }
        record.validUntil = validUntil;
        return (true, current);
    }

    /// @dev Revoke an existing key from `effectiveFrom` (0: the next second) if the caller may;
    ///      returns whether it was revoked (false: not earlier than `current`, the revocation
    ///      time before) and the effective time.
    function _revokeKeyRecord(KeyRecord storage record, uint40 effectiveFrom)
        private
        returns (bool revoked, uint40 effective, uint40 current)
    {
        uint64 entityId = record.entityId;
        uint40 now_ = uint40(block.timestamp);
        if (effectiveFrom > now_) revert RevocationInFuture(effectiveFrom);
        if (!_isAccreditorOrAdmin(msg.sender, _entities[entityId].parentId)) {
            // The entity's own keys may pull the plug, but a stolen key must not be able to
            // erase the past, so they cannot back-date.
            if (!_isTrustedKeyOf(msg.sender, entityId)) revert NotAuthorized(msg.sender, entityId);
            if (effectiveFrom != 0) revert BackdatingNotAllowed(msg.sender);
        }
        // "Now" counts from the next second for judging the past (anchors already made in this
        // second stay valid); the key is unusable for anything new at once (see _checkNow).
        effective = effectiveFrom == 0 ? now_ + 1 : effectiveFrom;
        current = record.revokedAt;
        if (current != 0 && effective >= current) return (false, effective, current);
        record.revokedAt = effective;
        return (true, effective, current);
    }

    /// @dev Whether `publicKey` has the form of an Ed25519 or P-256 Multikey (header, length,
    ///      compressed-point prefix). Whether the point is on the curve is for readers to check:
    ///      it costs far more gas than the form, and a bad point only harms its own entity.
    function _isSigningKeyForm(bytes calldata publicKey) private pure returns (bool) {
        uint256 length = publicKey.length;
        if (length == 34) return publicKey[0] == 0xed && publicKey[1] == 0x01;
        if (length == 35) {
            return publicKey[0] == 0x80 && publicKey[1] == 0x24 && (publicKey[2] == 0x02 || publicKey[2] == 0x03);
        }
        return false;
    }

    function _keyCode(KeyRecord memory record, uint40 when) private pure returns (TrustCode) {
        if (when < record.validFrom) return TrustCode.KeyNotYetValid;
        if (when >= record.validUntil) return TrustCode.KeyExpired;
        if (record.revokedAt != 0 && when >= record.revokedAt) return TrustCode.KeyRevoked;
        return TrustCode.Trusted;
    }

    /// @dev Whether entity `id` was Active at `when`. The current status covers every time since
    ///      the last change, so the history is read only for earlier times, by binary search
    ///      (its times never decrease), so that a long history cannot make the view expensive.
    function _activeAt(uint64 id, EntityRecord storage record, uint40 when) private view returns (bool) {
        if (when < record.accreditedAt) return false;
        uint40 revokedFrom = record.revokedFrom;
        if (revokedFrom != 0 && when >= revokedFrom) return false;
        if (when >= record.statusSince) return record.status == Status.Active;
        StatusChange[] storage history = _history[id];
        // The last entry with since <= when: history[0].since == accreditedAt <= when.
        uint256 low = 0;
        uint256 high = history.length - 1;
        while (low < high) {
            uint256 mid = (low + high + 1) / 2;
            if (history[mid].since <= when) low = mid;
            else high = mid - 1;
        }
        return history[low].status == Status.Active;
    }

    /// @dev The first entity on the chain starting at `id` (upwards) not active at `at`, or 0.
    function _firstInactive(uint64 id, uint40 when) private view returns (uint64) {
        while (id != 0) {
            EntityRecord storage record = _entities[id];
            if (!_activeAt(id, record, when)) return id;
            id = record.parentId;
        }
        return 0;
    }

    /// @dev Whether `key` may act now and belongs to entity `entityId`.
    function _isTrustedKeyOf(address key, uint64 entityId) private view returns (bool) {
        (TrustCode code, uint64 owner,,) = _checkNow(key);
        return code == TrustCode.Trusted && owner == entityId && entityId != 0;
    }

    /// @dev Whether `key` may act now: for new actions every revocation and status change
    ///      counts at once, even one stamped from the next second. Hot path of every anchor:
    ///      one storage read for the key and one per entity; the history is never read.
    function _checkNow(address key)
        private
        view
        returns (TrustCode code, uint64 entityId, uint32 keyIndex, Kind kind)
    {
        KeyRecord storage record = _keys[key];
        entityId = record.entityId;
        if (entityId == 0) return (TrustCode.UnknownKey, 0, 0, Kind.None);
        keyIndex = record.index;
        uint40 now_ = uint40(block.timestamp);
        if (now_ < record.validFrom) code = TrustCode.KeyNotYetValid;
        else if (now_ >= record.validUntil) code = TrustCode.KeyExpired;
        else if (record.revokedAt != 0) code = TrustCode.KeyRevoked;
        EntityRecord storage owner = _entities[entityId];
        kind = owner.kind;
        if (code != TrustCode.Trusted) return (code, entityId, keyIndex, kind);
        if (owner.status != Status.Active) return (TrustCode.EntityNotActive, entityId, keyIndex, kind);
        if (_firstInactiveNow(owner.parentId) != 0) {
            return (TrustCode.AccreditorNotActive, entityId, keyIndex, kind);
        }
    }

    /// @dev The first entity on the chain starting at `id` (upwards) not active now, or 0.
    function _firstInactiveNow(uint64 id) private view returns (uint64) {
        while (id != 0) {
            EntityRecord storage record = _entities[id];
            if (record.status != Status.Active) return id;
            id = record.parentId;
        }
        return 0;
    }

    function _existingRecognition(uint64 id) private view returns (RecognitionRecord storage record) {
        record = _recognitions[id];
        if (record.recogniserId == 0) revert UnknownRecognition(id);
    }

    function _pair(uint64 recogniserId, uint64 subjectId) private pure returns (uint128) {
        return (uint128(recogniserId) << 64) | subjectId;
    }

    /// @dev The newest recognition `recogniser` recorded of `subject` that covers a credential
    ///      of `kind` issued at `when`, or 0.
    function _recognitionCovering(uint64 recogniser, uint64 subject, uint32 kind, uint40 when)
        private
        view
        returns (uint64)
    {
        uint64[] storage ids = _pairRecognitions[_pair(recogniser, subject)];
        for (uint256 i = ids.length; i > 0; --i) {
            RecognitionRecord storage record = _recognitions[ids[i - 1]];
            uint40 withdrawnAt = record.withdrawnAt;
            if (
                record.scope & kind != 0 && when >= record.validFrom && when < record.validUntil
                    && (withdrawnAt == 0 || when < withdrawnAt)
            ) return ids[i - 1];
        }
        return 0;
    }

    /// @dev Root administrators, or trusted keys of the accreditor `accreditorId` (0: root only).
    function _isAccreditorOrAdmin(address caller, uint64 accreditorId) private view returns (bool) {
        return isRootAdmin(caller) || (accreditorId != 0 && _isTrustedKeyOf(caller, accreditorId));
    }

    function _requireAccreditorOrAdmin(uint64 subjectId, uint64 accreditorId) private view {
        if (!_isAccreditorOrAdmin(msg.sender, accreditorId)) revert NotAuthorized(msg.sender, subjectId);
    }
}
