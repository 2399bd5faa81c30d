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

    /// @dev One storage slot: everything the trust check needs about a key.
    struct KeyRecord {
        uint64 entityId;
        uint32 index;
        uint40 validFrom;
        uint40 validUntil;
        uint40 revokedAt;
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
        EntityRecord storage record = _existing(entityId);
        _requireAccreditorOrAdmin(entityId, record.parentId);
        if (key == address(0)) revert ZeroAddress();
        uint64 owner = _keys[key].entityId;
        if (owner != 0) revert KeyAlreadyRegistered(key, owner);
        if (record.status == Status.Revoked) revert InvalidStatusChange(entityId, Status.Revoked, Status.Revoked);
        uint40 now_ = uint40(block.timestamp);
        // Validity never starts in the past: that would rewrite past trust answers.
        if (validFrom < now_) validFrom = now_;
        if (validUntil == 0) validUntil = _FOREVER;
        if (validUntil <= validFrom || validUntil <= now_) revert InvalidValidity(validFrom, validUntil);

        uint32 index = uint32(_keyList.length);
        _keys[key] = KeyRecord({
            entityId: entityId,
            index: index,
            validFrom: validFrom,
            validUntil: validUntil,
            revokedAt: 0
        });
        _keyList.push(key);
        _entityKeys[entityId].push(key);
        emit KeyAdded(entityId, key, index, validFrom, validUntil, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function shortenKeyExpiry(address key, uint40 validUntil) external {
        KeyRecord storage record = _existingKey(key);
        uint64 entityId = record.entityId;
        if (!_isTrustedKeyOf(msg.sender, entityId)) {
            _requireAccreditorOrAdmin(entityId, _entities[entityId].parentId);
        }
        uint40 current = record.validUntil;
        // Strictly after now: an expiry at the current second would retroactively untrust
        // anchors made with the key in this very second.
        if (validUntil >= current || validUntil <= block.timestamp || validUntil <= record.validFrom) {
            revert ExpiryNotShortened(key, current, validUntil);
        }
        record.validUntil = validUntil;
        emit KeyExpiryShortened(key, validUntil, msg.sender);
    }

    /// @inheritdoc IIssuerRegistry
    function revokeKey(address key, uint40 effectiveFrom) external {
        KeyRecord storage record = _existingKey(key);
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
        if (effectiveFrom == 0) effectiveFrom = now_ + 1;
        uint40 current = record.revokedAt;
        if (current != 0 && effectiveFrom >= current) revert RevocationNotEarlier(key, current, effectiveFrom);
        record.revokedAt = effectiveFrom;
        emit KeyRevoked(key, effectiveFrom, msg.sender);
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
    function trustedAt(address key, uint40 when) external view returns (Trust memory trust) {
        KeyRecord memory record = _keys[key];
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
        return "1.0.0";
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

    /// @dev Root administrators, or trusted keys of the accreditor `accreditorId` (0: root only).
    function _isAccreditorOrAdmin(address caller, uint64 accreditorId) private view returns (bool) {
        return isRootAdmin(caller) || (accreditorId != 0 && _isTrustedKeyOf(caller, accreditorId));
    }

    function _requireAccreditorOrAdmin(uint64 subjectId, uint64 accreditorId) private view {
        if (!_isAccreditorOrAdmin(msg.sender, accreditorId)) revert NotAuthorized(msg.sender, subjectId);
    }
}
