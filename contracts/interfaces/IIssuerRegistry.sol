// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IIssuerRegistry
/// @author microcred-anchor contributors
/// @notice An EBSI-style trust hierarchy for micro-credential issuers that can answer
///         "was key K trusted at time T, for which entity, and was every accreditation body
///         above it trusted at T as well?".
/// @dev Root administrators accredit accreditation bodies; a body accredits issuers (and
///      sub-bodies). Every entity keeps its full status history. An entity has two kinds of
///      keys: anchoring keys (account addresses, which anchor and administer; "key" below) and
///      signing keys (Ed25519 and P-256 Multikeys, which sign credentials; "signing key"
///      functions). Each key belongs to one entity forever, with a validity window and an
///      optional, possibly back-dated, revocation time.
interface IIssuerRegistry {
    /// @notice What an entity is.
    enum Kind {
        None,
        AccreditationBody,
        TrustedIssuer
    }

    /// @notice Lifecycle of an entity. `Revoked` is final.
    enum Status {
        None,
        Active,
        Suspended,
        Revoked
    }

    /// @notice Why a key is, or is not, trusted at a given time.
    enum TrustCode {
        Trusted,
        UnknownKey,
        KeyNotYetValid,
        KeyExpired,
        KeyRevoked,
        EntityNotActive,
        AccreditorNotActive
    }

    /// @notice An entity as returned by {entity}.
    struct Entity {
        uint64 id;
        uint64 parentId;
        Kind kind;
        Status status;
        uint32 scope;
        uint8 depth;
        uint40 accreditedAt;
        uint40 statusSince;
        address accreditedBy;
        string did;
        string metadataURI;
        bytes32 metadataHash;
        uint40 revokedFrom;
    }

    /// @notice One entry of an entity's status history: `status` holds from `since` on.
    struct StatusChange {
        Status status;
        uint40 since;
    }

    /// @notice A signing key as returned by {keyInfo}. `revokedAt` is 0 when not revoked.
    struct KeyInfo {
        address key;
        uint64 entityId;
        uint32 index;
        uint40 validFrom;
        uint40 validUntil;
        uint40 revokedAt;
    }

    /// @notice The answer of {trustedAt}. `failingEntityId` names the entity that was not
    ///         active when `code` is `EntityNotActive` or `AccreditorNotActive`.
    struct Trust {
        bool trusted;
        TrustCode code;
        uint64 entityId;
        uint64 failingEntityId;
        uint32 keyIndex;
        Kind kind;
        uint32 scope;
    }

    /// @notice A signing key (a credential-signing verification method) as returned by
    ///         {signingKeyInfo}: all zero but `keyId` when no entity holds the key.
    /// @dev `publicKey` is the Multikey's bytes, multicodec header and raw key: Ed25519
    ///      `0xed01` and 32 bytes, or P-256 `0x8024` and the 33-byte compressed point.
    ///      `keyId` is `keccak256(publicKey)`. `revokedAt` is 0 when not revoked.
    struct SigningKeyInfo {
        bytes32 keyId;
        uint64 entityId;
        uint32 index;
        uint40 validFrom;
        uint40 validUntil;
        uint40 revokedAt;
        bytes publicKey;
    }

    /// @notice A recognition as returned by {recognition}: entity `recogniserId` recognises the
    ///         credentials of entity `subjectId` (a trusted issuer; or an accreditation body,
    ///         and then those of every entity accredited below it, at any depth) of the kinds
    ///         in `scope`, issued from `validFrom` (0: any time) until `validUntil` (exclusive;
    ///         the largest uint40 when open), and before `withdrawnAt` (0: not withdrawn).
    ///         `recordedAt` is when it was recorded; who recorded it is in {RecognitionRecorded}.
    struct Recognition {
        uint64 id;
        uint64 recogniserId;
        uint64 subjectId;
        uint32 scope;
        uint40 validFrom;
        uint40 validUntil;
        uint40 recordedAt;
        uint40 withdrawnAt;
    }

    /// @notice The answer of {recognisedAt}. `recognitionId` names the recognition that
    ///         answers; `recogniserId` is the entity that recorded it (the one asked about, or
    ///         a body above it acting for its members) and `subjectId` the entity it names (the
    ///         issuer asked about, or a body above it). An entity recognises itself: then
    ///         `recognitionId` is 0 and both ids are its own. All zero when not recognised.
    struct RecognitionAnswer {
        bool recognised;
        uint64 recognitionId;
        uint64 recogniserId;
        uint64 subjectId;
    }

    /// @notice Emitted when an entity is accredited.
    /// @param id The new entity's id.
    /// @param parentId The accrediting body's id, 0 when accredited by a root administrator.
    /// @param kind Accreditation body or trusted issuer.
    /// @param scope The entity's scope bits, within its parent's.
    /// @param did The entity's DID.
    /// @param accreditedBy The account that accredited it.
    event EntityAccredited(
        uint64 indexed id, uint64 indexed parentId, Kind kind, uint32 scope, string did, address accreditedBy
    );
    /// @notice Emitted when an entity's status changed, effective from `since`.
    /// @param id The entity's id.
    /// @param status The new status.
    /// @param since Unix time (seconds) from which the new status holds: the next second.
    /// @param changedBy The account that changed it.
    event EntityStatusChanged(uint64 indexed id, Status status, uint40 since, address changedBy);
    /// @notice Emitted when an entity was revoked with effect from `effectiveFrom` (possibly in
    ///         the past).
    /// @param id The entity's id.
    /// @param effectiveFrom Unix time (seconds) from which the entity counts as revoked.
    /// @param revokedBy The account that revoked it.
    event EntityRevokedSince(uint64 indexed id, uint40 effectiveFrom, address revokedBy);
    /// @notice Emitted when an entity's metadata URI and hash were replaced.
    /// @param id The entity's id.
    /// @param metadataURI The new metadata URI.
    /// @param metadataHash The new hash of the metadata.
    /// @param updatedBy The account that replaced them.
    event EntityMetadataUpdated(uint64 indexed id, string metadataURI, bytes32 metadataHash, address updatedBy);
    /// @notice Emitted when a signing key was added to an entity.
    /// @param entityId The id of the entity the key now belongs to, forever.
    /// @param key The signing key's address.
    /// @param index The key's 0-based registry index, in registration order (see {keyAt}).
    /// @param validFrom Unix time (seconds) from which the key is valid (never in the past).
    /// @param validUntil Unix time (seconds) from which the key has expired; the largest
    ///        uint40 when it never expires.
    /// @param addedBy The account that added it.
    event KeyAdded(
        uint64 indexed entityId, address indexed key, uint32 index, uint40 validFrom, uint40 validUntil, address addedBy
    );
    /// @notice Emitted when a key's validity window was shortened (key rotation).
    /// @param key The signing key's address.
    /// @param validUntil The new expiry, Unix time (seconds) from which the key has expired.
    /// @param changedBy The account that shortened it.
    event KeyExpiryShortened(address indexed key, uint40 validUntil, address changedBy);
    /// @notice Emitted when a key was revoked with effect from `effectiveFrom` (possibly in the past).
    /// @param key The signing key's address.
    /// @param effectiveFrom Unix time (seconds) from which the key counts as revoked.
    /// @param revokedBy The account that revoked it.
    event KeyRevoked(address indexed key, uint40 effectiveFrom, address revokedBy);
    /// @notice Emitted when a signing key (verification method) was added to an entity.
    /// @param entityId The id of the entity the signing key now belongs to, forever.
    /// @param keyId The signing key's id, `keccak256(publicKey)`.
    /// @param publicKey The Multikey bytes: multicodec header and raw public key.
    /// @param index The signing key's 0-based index, in registration order.
    /// @param validFrom Unix time (seconds) from which the key is valid (never in the past).
    /// @param validUntil Unix time (seconds) from which the key has expired; the largest
    ///        uint40 when it never expires.
    /// @param by The account that added it.
    event SigningKeyAdded(
        uint64 indexed entityId,
        bytes32 indexed keyId,
        bytes publicKey,
        uint32 index,
        uint40 validFrom,
        uint40 validUntil,
        address indexed by
    );
    /// @notice Emitted when a signing key's validity window was shortened (key rotation).
    /// @param keyId The signing key's id.
    /// @param validUntil The new expiry, Unix time (seconds) from which the key has expired.
    /// @param by The account that shortened it.
    event SigningKeyExpiryShortened(bytes32 indexed keyId, uint40 validUntil, address indexed by);
    /// @notice Emitted when a signing key was revoked with effect from `effectiveFrom`
    ///         (possibly in the past).
    /// @param keyId The signing key's id.
    /// @param effectiveFrom Unix time (seconds) from which the key counts as revoked.
    /// @param by The account that revoked it.
    event SigningKeyRevoked(bytes32 indexed keyId, uint40 effectiveFrom, address indexed by);

    /// @notice Emitted when an entity recorded that it recognises another entity's credentials.
    /// @param id The recognition's id.
    /// @param recogniserId The entity that recognises.
    /// @param subjectId The entity recognised (for a body: every entity below it as well).
    /// @param scope The kinds of credentials recognised (`SCOPE_*` bits).
    /// @param validFrom Issuance times from which credentials are recognised (0: any).
    /// @param validUntil Issuance times from which they no longer are (largest uint40: open).
    /// @param recordedBy The account (a trusted key of the recogniser) that recorded it.
    event RecognitionRecorded(
        uint64 indexed id,
        uint64 indexed recogniserId,
        uint64 indexed subjectId,
        uint32 scope,
        uint40 validFrom,
        uint40 validUntil,
        address recordedBy
    );
    /// @notice Emitted when a recognition was withdrawn, with effect from `withdrawnAt`.
    /// @param id The recognition's id.
    /// @param recogniserId The entity that recognised.
    /// @param subjectId The entity that was recognised.
    /// @param withdrawnAt Unix time (seconds) from which credentials issued are no longer
    ///        recognised by it: the next second.
    /// @param withdrawnBy The account (a trusted key of the recogniser) that withdrew it.
    event RecognitionWithdrawn(
        uint64 indexed id, uint64 indexed recogniserId, uint64 indexed subjectId, uint40 withdrawnAt, address withdrawnBy
    );

    /// @notice The caller may not act on `entityId`.
    error NotAuthorized(address caller, uint64 entityId);
    /// @notice No entity has this id.
    error UnknownEntity(uint64 id);
    /// @notice No entity holds this key.
    error UnknownKey(address key);
    /// @notice The parent must be an accreditation body; the new entity must be a body or issuer.
    error InvalidKind(Kind kind);
    /// @notice The accrediting entity is not trusted now.
    error AccreditorNotTrusted(uint64 parentId, TrustCode code);
    /// @notice The scope is empty, unknown, or wider than the accreditor's.
    error InvalidScope(uint32 scope, uint32 allowed);
    /// @notice The DID is empty or too long.
    error InvalidDid();
    /// @notice Another entity already uses this DID.
    error DidAlreadyRegistered(uint64 existingId);
    /// @notice The accreditation chain would exceed {MAX_DEPTH}.
    error HierarchyTooDeep(uint8 depth);
    /// @notice The key already belongs to an entity, forever.
    error KeyAlreadyRegistered(address key, uint64 entityId);
    /// @notice The validity window is empty or ends in the past.
    error InvalidValidity(uint40 validFrom, uint40 validUntil);
    /// @notice The zero address cannot be a key or an administrator.
    error ZeroAddress();
    /// @notice The requested status transition is not allowed (e.g. out of `Revoked`).
    error InvalidStatusChange(uint64 id, Status from, Status to);
    /// @notice A key's expiry can only move earlier, and not into the past.
    error ExpiryNotShortened(address key, uint40 current, uint40 requested);
    /// @notice A revocation cannot take effect in the future.
    error RevocationInFuture(uint40 effectiveFrom);
    /// @notice Only accreditors and root administrators may back-date a revocation.
    error BackdatingNotAllowed(address caller);
    /// @notice A revoked entity's revocation time can only move earlier.
    error EntityRevocationNotEarlier(uint64 id, uint40 current, uint40 requested);
    /// @notice A revoked key's revocation time can only move earlier.
    error RevocationNotEarlier(address key, uint40 current, uint40 requested);
    /// @notice No entity holds this signing key.
    error UnknownSigningKey(bytes32 keyId);
    /// @notice The bytes are not an Ed25519 (`0xed01` + 32 bytes) or P-256 (`0x8024` + 33-byte
    ///         compressed point) Multikey.
    error InvalidSigningKey(bytes publicKey);
    /// @notice The signing key already belongs to an entity, forever.
    error SigningKeyAlreadyRegistered(bytes32 keyId, uint64 entityId);
    /// @notice The entity already has {MAX_SIGNING_KEYS_PER_ENTITY} signing keys.
    error TooManySigningKeys(uint64 entityId, uint256 max);
    /// @notice A signing key's expiry can only move earlier, and not into the past.
    error SigningKeyExpiryNotShortened(bytes32 keyId, uint40 current, uint40 requested);
    /// @notice A revoked signing key's revocation time can only move earlier.
    error SigningKeyRevocationNotEarlier(bytes32 keyId, uint40 current, uint40 requested);

    /// @notice An entity cannot record a recognition of itself (it always recognises itself).
    error SelfRecognition(uint64 id);
    /// @notice The pair already has {MAX_RECOGNITIONS_PER_PAIR} recognitions (withdrawn ones
    ///         count: they still answer for the past).
    error TooManyRecognitions(uint64 recogniserId, uint64 subjectId, uint256 max);
    /// @notice No recognition has this id.
    error UnknownRecognition(uint64 id);
    /// @notice The recognition was already withdrawn.
    error RecognitionAlreadyWithdrawn(uint64 id, uint40 withdrawnAt);

    /// @notice Accredit a new accreditation body or trusted issuer under `parentId`
    ///         (0: directly under the root administrators).
    /// @dev Root administrators may accredit anywhere; a body's trusted keys may accredit
    ///      under that body. The scope must be within the parent's.
    /// @param parentId The accreditation body to accredit under, or 0 for top level.
    /// @param kind `AccreditationBody` or `TrustedIssuer`.
    /// @param did The new entity's DID: unique, 1 to {MAX_DID_LENGTH} bytes.
    /// @param scope The new entity's scope bits (`SCOPE_*`): not empty, within the parent's.
    /// @param metadataURI Where the entity's metadata can be found.
    /// @param metadataHash The hash of that metadata.
    /// @return id The new entity's stable id.
    function accredit(
        uint64 parentId,
        Kind kind,
        string calldata did,
        uint32 scope,
        string calldata metadataURI,
        bytes32 metadataHash
    ) external returns (uint64 id);

    /// @notice Suspend, reactivate or revoke an entity. `Revoked` is final. The change stops the
    ///         entity (and all below it) from acting at once; in the history it is stamped from
    ///         the next second, so that what the entity did earlier in this second stands.
    /// @dev Root administrators, or trusted keys of the entity's accreditor.
    /// @param id The entity's id.
    /// @param status The new status: `Active`, `Suspended` or `Revoked`, not the current one.
    function setStatus(uint64 id, Status status) external;

    /// @notice Revoke an entity (final) with effect from `effectiveFrom`, which may lie in the
    ///         past: for a body or issuer found to have been compromised or fraudulent since
    ///         then. Everything it, and everything below it, anchored from that time on stops
    ///         being trusted; what came before stays valid. 0 means since its accreditation.
    /// @dev Root administrators, or trusted keys of the entity's accreditor. The time can only
    ///      move earlier.
    /// @param id The entity's id.
    /// @param effectiveFrom Unix time (seconds) from which it counts as revoked, not in the
    ///        future; a time before its accreditation (such as 0) means since its accreditation.
    function revokeSince(uint64 id, uint40 effectiveFrom) external;

    /// @notice Replace an entity's metadata URI and its hash.
    /// @dev Root administrators, the accreditor's trusted keys, or the entity's own trusted keys.
    /// @param id The entity's id.
    /// @param metadataURI The new metadata URI.
    /// @param metadataHash The hash of the new metadata.
    function updateMetadata(uint64 id, string calldata metadataURI, bytes32 metadataHash) external;

    /// @notice Add a signing key to an entity. The key then belongs to that entity forever.
    /// @dev Root administrators, or trusted keys of the entity's accreditor. A `validFrom` in
    ///      the past (or 0) means now; `validUntil` 0 means no expiry.
    /// @param entityId The id of the entity the key will belong to; not revoked.
    /// @param key The signing key's address: not zero, never registered before.
    /// @param validFrom Unix time (seconds) from which the key is valid; 0 or past means now.
    /// @param validUntil Unix time (seconds) from which the key has expired, after `validFrom`
    ///        and now; 0 means no expiry.
    function addKey(uint64 entityId, address key, uint40 validFrom, uint40 validUntil) external;

    /// @notice Move a key's expiry earlier (key rotation). Not into the past.
    /// @dev Root administrators, the accreditor's trusted keys, or the entity's own trusted keys.
    /// @param key The signing key's address.
    /// @param validUntil The new expiry, Unix time (seconds): earlier than the current one,
    ///        after now and after the key's `validFrom`.
    function shortenKeyExpiry(address key, uint40 validUntil) external;

    /// @notice Revoke a key with effect from `effectiveFrom`, or with 0 from the next second
    ///         (so anchors already made in this second stay valid). Anchors made with the key
    ///         from that time on stop being trusted; earlier ones stay valid. The key cannot act
    ///         any more from the moment of this call.
    /// @dev Root administrators and the accreditor's trusted keys may back-date (to the time
    ///      of a compromise, any time up to now); the entity's own trusted keys may only pass 0.
    /// @param key The signing key's address.
    /// @param effectiveFrom Unix time (seconds) from which the key counts as revoked, not in
    ///        the future, earlier than any previous revocation time; 0 means the next second.
    function revokeKey(address key, uint40 effectiveFrom) external;

    /// @notice Add a signing key (a verification method that signs credentials) to an entity.
    ///         The key then belongs to that entity forever.
    /// @dev Root administrators, or trusted keys of the entity's accreditor, as for {addKey}.
    ///      The bytes are checked for form (multicodec header, length, P-256 point prefix),
    ///      not for being a point on the curve: off-chain readers check that.
    /// @param entityId The id of the entity the key will belong to; not revoked, and below
    ///        {MAX_SIGNING_KEYS_PER_ENTITY} signing keys.
    /// @param publicKey The Multikey bytes: `0xed01` and a 32-byte Ed25519 key, or `0x8024`
    ///        and a 33-byte compressed P-256 point (`0x02` or `0x03` first); never registered.
    /// @param validFrom Unix time (seconds) from which the key is valid; 0 or past means now.
    /// @param validUntil Unix time (seconds) from which the key has expired, after `validFrom`
    ///        and now; 0 means no expiry.
    /// @return keyId The signing key's id, `keccak256(publicKey)`.
    function addSigningKey(uint64 entityId, bytes calldata publicKey, uint40 validFrom, uint40 validUntil)
        external
        returns (bytes32 keyId);

    /// @notice Move a signing key's expiry earlier (key rotation). Not into the past.
    /// @dev Root administrators, the accreditor's trusted keys, or the entity's own trusted
    ///      (anchoring) keys, as for {shortenKeyExpiry}.
    /// @param keyId The signing key's id.
    /// @param validUntil The new expiry, Unix time (seconds): earlier than the current one,
    ///        after now and after the key's `validFrom`.
    function shortenSigningKeyExpiry(bytes32 keyId, uint40 validUntil) external;

    /// @notice Revoke a signing key with effect from `effectiveFrom`, or with 0 from the next
    ///         second. Credentials anchored from that time on no longer count as signed by a
    ///         trusted key; earlier ones still do.
    /// @dev As {revokeKey}: root administrators and the accreditor's trusted keys may back-date
    ///      (to the time of a compromise); the entity's own trusted (anchoring) keys may only
    ///      pass 0.
    /// @param keyId The signing key's id.
    /// @param effectiveFrom Unix time (seconds) from which the key counts as revoked, not in
    ///        the future, earlier than any previous revocation time; 0 means the next second.
    function revokeSigningKey(bytes32 keyId, uint40 effectiveFrom) external;

    /// @notice Record that entity `recogniserId` recognises the credentials of `subjectId` (and,
    ///         when `subjectId` is an accreditation body, of every entity accredited below it)
    ///         of the kinds in `scope`, issued from `validFrom` until `validUntil`. A body may
    ///         record recognitions for its members: {recognisedAt} reads them for every entity
    ///         below it. To change a recognition, withdraw it and record a new one.
    /// @dev Only the recogniser's own trusted (anchoring) keys: not its accreditor, not a root
    ///      administrator. At most {MAX_RECOGNITIONS_PER_PAIR} per pair, withdrawn ones
    ///      included, so that {recognisedAt} stays bounded.
    /// @param recogniserId The recognising entity: the caller's own.
    /// @param subjectId The entity recognised: any other entity.
    /// @param scope The kinds recognised (`SCOPE_*` bits): not empty, no unknown bit.
    /// @param validFrom Issuance times from which credentials are recognised; 0 means any time
    ///        (a recognition may cover credentials issued before it was recorded).
    /// @param validUntil Issuance times from which they are not; 0 means no end. After
    ///        `validFrom`.
    /// @return id The new recognition's id (ids run from 1).
    function recognise(uint64 recogniserId, uint64 subjectId, uint32 scope, uint40 validFrom, uint40 validUntil)
        external
        returns (uint64 id);

    /// @notice Withdraw a recognition: credentials issued from the next second on are no
    ///         longer recognised by it; those issued before stay recognised.
    /// @dev Only the recogniser's own trusted (anchoring) keys.
    /// @param id The recognition's id; not withdrawn yet.
    function withdrawRecognition(uint64 id) external;

    /// @notice The recognition with this id; reverts with {UnknownRecognition} if there is none.
    /// @param id The recognition's id.
    /// @return The recognition.
    function recognition(uint64 id) external view returns (Recognition memory);

    /// @notice Number of recognitions ever recorded (ids run from 1 to this).
    /// @return The number of recognitions, which is also the highest id.
    function recognitionCount() external view returns (uint64);

    /// @notice The ids of every recognition `recogniserId` recorded of `subjectId`, oldest
    ///         first (at most {MAX_RECOGNITIONS_PER_PAIR}); read each with {recognition}.
    /// @param recogniserId The recognising entity.
    /// @param subjectId The recognised entity.
    /// @return The recognitions' ids, withdrawn ones included.
    function recognitionIdsBetween(uint64 recogniserId, uint64 subjectId) external view returns (uint64[] memory);

    /// @notice Does `recogniserId` recognise the credentials of kind `kind` that `subjectId`
    ///         issued at time `when`? Recognitions recorded by the entity, or by a body above
    ///         it for its members, of the subject or of a body above the subject, count; the
    ///         first match is answered, searched in that order (the entity's own recognitions
    ///         of the subject first, the farthest bodies' last). An entity recognises itself.
    /// @dev Reads at most MAX_DEPTH^2 pairs (a chain holds at most MAX_DEPTH entities) of at
    ///      most {MAX_RECOGNITIONS_PER_PAIR} recognitions each. Entity status is not part of the answer: whether the subject was
    ///      trusted is {trustedAt}'s question.
    /// @param recogniserId The recognising entity; reverts with {UnknownEntity} if none.
    /// @param subjectId The issuing entity; reverts with {UnknownEntity} if none.
    /// @param kind Exactly one `SCOPE_*` bit; else reverts with {InvalidScope}.
    /// @param when The credential's issuance time, Unix seconds.
    /// @return The answer, with the recognition that gives it and its path.
    function recognisedAt(uint64 recogniserId, uint64 subjectId, uint32 kind, uint40 when)
        external
        view
        returns (RecognitionAnswer memory);

    /// @notice Whether `account` is a root administrator.
    /// @param account The account to check.
    /// @return Whether `account` holds `ROOT_ADMIN_ROLE`.
    function isRootAdmin(address account) external view returns (bool);

    /// @notice The entity with this id; reverts with {UnknownEntity} if there is none.
    /// @param id The entity's id.
    /// @return The entity's current record.
    function entity(uint64 id) external view returns (Entity memory);

    /// @notice Number of entities ever accredited (ids run from 1 to this).
    /// @return The number of entities, which is also the highest id.
    function entityCount() external view returns (uint64);

    /// @notice The id of the entity with this DID, or 0.
    /// @param did The DID, compared byte for byte.
    /// @return The entity's id, or 0 if no entity has this DID.
    function entityIdByDid(string calldata did) external view returns (uint64);

    /// @notice The complete status history of an entity, oldest first.
    /// @param id The entity's id; reverts with {UnknownEntity} if there is none.
    /// @return Every status the entity had, each with the Unix time (seconds) it held from.
    function statusHistory(uint64 id) external view returns (StatusChange[] memory);

    /// @notice Whether the entity itself (not its accreditors) was active at time `when`.
    /// @param id The entity's id; reverts with {UnknownEntity} if there is none.
    /// @param when The time, Unix seconds.
    /// @return Whether its status was `Active` then and no back-dated revocation covers `when`.
    function isActiveAt(uint64 id, uint40 when) external view returns (bool);

    /// @notice The entity a key belongs to (forever), or 0 for an unknown key.
    /// @param key The signing key's address.
    /// @return The id of the key's entity, or 0.
    function entityOfKey(address key) external view returns (uint64);

    /// @notice A key's record; reverts with {UnknownKey} if no entity holds it.
    /// @param key The signing key's address.
    /// @return The key's entity, index, validity window and revocation time.
    function keyInfo(address key) external view returns (KeyInfo memory);

    /// @notice The key registered with index `index` (0-based, in registration order).
    /// @param index The key's registry index, below {keyCount}.
    /// @return The signing key's address.
    function keyAt(uint32 index) external view returns (address);

    /// @notice Number of keys ever registered.
    /// @return The number of keys, one more than the highest key index.
    function keyCount() external view returns (uint32);

    /// @notice Every key ever added to an entity.
    /// @param id The entity's id; reverts with {UnknownEntity} if there is none.
    /// @return The entity's keys, in the order they were added.
    function entityKeys(uint64 id) external view returns (address[] memory);

    /// @notice Was `key` trusted at time `when`: valid and not revoked then, its entity active
    ///         then, and every accreditation body above it active then?
    /// @param key The signing key's address.
    /// @param when The time, Unix seconds.
    /// @return The answer, with the reason code, the key's entity and index, and the entity's
    ///         kind and scope.
    function trustedAt(address key, uint40 when) external view returns (Trust memory);

    /// @notice The lean form of {trustedAt} for now, used by the anchor contract on every anchor.
    /// @param key The signing key's address.
    /// @return code `Trusted`, or why the key may not act now.
    /// @return entityId The id of the key's entity, 0 for an unknown key.
    /// @return keyIndex The key's registry index (0 for an unknown key).
    /// @return kind The kind of the key's entity, `None` for an unknown key.
    function checkKeyNow(address key)
        external
        view
        returns (TrustCode code, uint64 entityId, uint32 keyIndex, Kind kind);

    /// @notice A signing key's record; for an unknown key, `entityId` 0 and empty `publicKey`
    ///         (no revert, so that a verifier learns "not registered" in one call).
    /// @param keyId The signing key's id, `keccak256(publicKey)`.
    /// @return The key's id, entity, index, validity window, revocation time and bytes.
    function signingKeyInfo(bytes32 keyId) external view returns (SigningKeyInfo memory);

    /// @notice The ids of every signing key ever added to an entity (at most
    ///         {MAX_SIGNING_KEYS_PER_ENTITY}).
    /// @param id The entity's id; reverts with {UnknownEntity} if there is none.
    /// @return The entity's signing key ids, in the order they were added.
    function entitySigningKeys(uint64 id) external view returns (bytes32[] memory);

    /// @notice The records of every signing key ever added to an entity, in one call (at most
    ///         {MAX_SIGNING_KEYS_PER_ENTITY}): what a DID document is built from.
    /// @param id The entity's id; reverts with {UnknownEntity} if there is none.
    /// @return The entity's signing keys, in the order they were added.
    function entitySigningKeyInfos(uint64 id) external view returns (SigningKeyInfo[] memory);

    /// @notice Was signing key `keyId` trusted at time `when`: valid and not revoked then, its
    ///         entity active then, and every accreditation body above it active then? The
    ///         same rules as {trustedAt}; `keyIndex` is the signing key's index.
    /// @param keyId The signing key's id.
    /// @param when The time, Unix seconds.
    /// @return The answer, with the reason code, the key's entity and index, and the entity's
    ///         kind and scope.
    function signingKeyTrustedAt(bytes32 keyId, uint40 when) external view returns (Trust memory);

    /// @notice Number of signing keys ever registered.
    /// @return The number of signing keys, one more than the highest signing key index.
    function signingKeyCount() external view returns (uint32);

    /// @notice Semantic version of this contract.
    /// @return The version, such as "2.1.0".
    function version() external pure returns (string memory);
}
