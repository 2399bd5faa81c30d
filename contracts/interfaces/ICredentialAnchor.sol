// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IIssuerRegistry} from "./IIssuerRegistry.sol";

/// @title ICredentialAnchor
/// @author microcred-anchor contributors
/// @notice Anchors RFC 9162 Merkle roots of credential batches, records who anchored them,
///         when and with which tree size, and keeps per-credential revocation and suspension
///         keyed by (issuer, root, leaf index).
/// @dev Anchors belong to the anchoring issuer: the same root anchored by two issuers is two
///      independent claims, so nobody can take over (or front-run) another issuer's batch.
///      Views take the anchoring key, which is what a receipt carries; the registry maps it to
///      its issuer forever. Status changes take the issuer's entity id.
interface ICredentialAnchor {
    /// @notice An anchored root as returned by {anchorOf}. All zero when not anchored.
    struct AnchorInfo {
        bool anchored;
        uint64 entityId;
        address key;
        uint40 anchoredAt;
        uint48 blockNumber;
        uint64 treeSize;
    }

    /// @notice The whole status of one credential, for one `eth_call`.
    struct CredentialStatus {
        bool anchored;
        uint64 entityId;
        address key;
        uint40 anchoredAt;
        uint48 blockNumber;
        uint64 treeSize;
        bool indexInTree;
        bool issuerTrustedAtAnchoring;
        IIssuerRegistry.TrustCode trustCode;
        bool revoked;
        bool suspended;
    }

    /// @notice Emitted when a batch root was anchored by `key` of issuer `entityId`.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param entityId The id of the anchoring issuer.
    /// @param key The issuer's signing key that anchored it.
    /// @param treeSize The number of leaves in the batch's tree.
    event RootAnchored(bytes32 indexed root, uint64 indexed entityId, address key, uint64 treeSize);
    /// @notice Emitted when credentials of a batch were revoked.
    /// @param entityId The id of the issuer that anchored the batch.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param leafIndices The credentials' leaf indices in the batch, as given.
    /// @param reason The caller's reason code (0 to 255), recorded only here.
    /// @param by The account that made the change.
    event CredentialsRevoked(
        uint64 indexed entityId, bytes32 indexed root, uint256[] leafIndices, uint8 reason, address by
    );
    /// @notice Emitted when credentials of a batch were suspended.
    /// @param entityId The id of the issuer that anchored the batch.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param leafIndices The credentials' leaf indices in the batch, as given.
    /// @param reason The caller's reason code (0 to 255), recorded only here.
    /// @param by The account that made the change.
    event CredentialsSuspended(
        uint64 indexed entityId, bytes32 indexed root, uint256[] leafIndices, uint8 reason, address by
    );
    /// @notice Emitted when suspended credentials of a batch were reinstated.
    /// @param entityId The id of the issuer that anchored the batch.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param leafIndices The credentials' leaf indices in the batch, as given.
    /// @param reason The caller's reason code (0 to 255), recorded only here.
    /// @param by The account that made the change.
    event CredentialsReinstated(
        uint64 indexed entityId, bytes32 indexed root, uint256[] leafIndices, uint8 reason, address by
    );
    /// @notice Emitted when a root administrator lifted revocations, e.g. ones made with a key
    ///         later found compromised.
    /// @param entityId The id of the issuer that anchored the batch.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param leafIndices The credentials' leaf indices in the batch, as given.
    /// @param reason The caller's reason code (0 to 255), recorded only here.
    /// @param by The account that made the change.
    event RevocationsLifted(
        uint64 indexed entityId, bytes32 indexed root, uint256[] leafIndices, uint8 reason, address by
    );
    /// @notice Emitted when a key gave up a nonce, cancelling requests signed with it.
    /// @param key The key (the caller) that gave up its nonce.
    /// @param nonce The nonce given up; the key's next nonce is one more.
    event NonceUsed(address indexed key, uint256 nonce);

    /// @notice The root is zero.
    error ZeroRoot();
    /// @notice The tree size is 0 or above {MAX_TREE_SIZE}.
    error InvalidTreeSize(uint64 treeSize);
    /// @notice This issuer anchored this root already, at `anchoredAt`.
    error RootAlreadyAnchored(bytes32 root, uint40 anchoredAt);
    /// @notice This issuer never anchored this root here.
    error UnknownRoot(uint64 entityId, bytes32 root);
    /// @notice The key is not trusted now; `code` says why.
    error KeyNotTrusted(address key, IIssuerRegistry.TrustCode code);
    /// @notice Only keys of trusted issuers may anchor, not those of accreditation bodies.
    error NotAnIssuer(address key, uint64 entityId);
    /// @notice The caller may not change the status of this issuer's credentials.
    error NotAuthorized(address caller, uint64 entityId);
    /// @notice A leaf index is not below the anchored tree size.
    error LeafIndexOutOfRange(uint256 leafIndex, uint64 treeSize);
    /// @notice No leaf index was given.
    error NoLeafIndices();
    /// @notice The signed anchoring request expired at `deadline`.
    error SignatureExpired(uint256 deadline);
    /// @notice The signature was not made by `key`.
    error InvalidSignature(address key, address recovered);

    /// @notice Anchor a batch root with the caller's key, which must be trusted now.
    /// @param root The batch's RFC 9162 Merkle root, not zero.
    /// @param treeSize The number of leaves in the batch's tree, 1 to {MAX_TREE_SIZE}.
    function anchor(bytes32 root, uint64 treeSize) external;

    /// @notice Anchor a batch root signed offline by `key` (EIP-712); anyone may submit it and
    ///         pay the gas. The signature binds chain id, this contract, `nonce` and `deadline`.
    /// @param root The batch's RFC 9162 Merkle root, not zero.
    /// @param treeSize The number of leaves in the batch's tree, 1 to {MAX_TREE_SIZE}.
    /// @param key The signing key of a trusted issuer that signed the request, and anchors.
    /// @param nonce The key's current nonce (see `nonces`), used up by this call.
    /// @param deadline Unix time (seconds) after which the signature is no longer accepted.
    /// @param signature The key's ECDSA signature over the EIP-712 `Anchor` request.
    function anchorWithSignature(
        bytes32 root,
        uint64 treeSize,
        address key,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Revoke credentials of batch `root` of issuer `entityId`. Only a root
    ///         administrator can lift a revocation ({liftRevocations}).
    /// @dev The issuer's keys trusted now, or root administrators.
    /// @param entityId The id of the issuer that anchored the batch.
    /// @param root The batch's RFC 9162 Merkle root, as anchored by that issuer.
    /// @param leafIndices The credentials' leaf indices in the batch, at least one, each below
    ///        the anchored tree size; in ascending order they cost the least gas.
    /// @param reason A reason code (0 to 255), only recorded in the event.
    function revoke(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external;

    /// @notice Suspend credentials of batch `root` of issuer `entityId` (reversible).
    /// @dev The issuer's keys trusted now, or root administrators.
    /// @param entityId The id of the issuer that anchored the batch.
    /// @param root The batch's RFC 9162 Merkle root, as anchored by that issuer.
    /// @param leafIndices The credentials' leaf indices in the batch, at least one, each below
    ///        the anchored tree size; in ascending order they cost the least gas.
    /// @param reason A reason code (0 to 255), only recorded in the event.
    function suspend(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external;

    /// @notice Lift the suspension of credentials. Revocation is not lifted.
    /// @dev The issuer's keys trusted now, or root administrators.
    /// @param entityId The id of the issuer that anchored the batch.
    /// @param root The batch's RFC 9162 Merkle root, as anchored by that issuer.
    /// @param leafIndices The credentials' leaf indices in the batch, at least one, each below
    ///        the anchored tree size; in ascending order they cost the least gas.
    /// @param reason A reason code (0 to 255), only recorded in the event.
    function reinstate(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external;

    /// @notice Lift revocations, for example those made with a key later found compromised.
    /// @dev Root administrators only: an issuer cannot undo its own revocations.
    /// @param entityId The id of the issuer that anchored the batch.
    /// @param root The batch's RFC 9162 Merkle root, as anchored by that issuer.
    /// @param leafIndices The credentials' leaf indices in the batch, at least one, each below
    ///        the anchored tree size; in ascending order they cost the least gas.
    /// @param reason A reason code (0 to 255), only recorded in the event.
    function liftRevocations(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason)
        external;

    /// @notice Use up the caller's current nonce, cancelling any anchoring request signed with it.
    function useNonce() external;

    /// @notice The anchor of `root` by the issuer that `anchoringKey` belongs to.
    /// @param anchoringKey Any key of the issuer that anchored the batch, such as the one a
    ///        receipt names.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @return The anchor; all zero when the key is unknown or its issuer never anchored `root`.
    function anchorOf(address anchoringKey, bytes32 root) external view returns (AnchorInfo memory);

    /// @notice Whether credential `leafIndex` of that batch is revoked.
    /// @param anchoringKey Any key of the issuer that anchored the batch, such as the one a
    ///        receipt names.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param leafIndex The credential's leaf index in the batch.
    /// @return Whether it is revoked; false when the batch is not anchored.
    function isRevoked(address anchoringKey, bytes32 root, uint256 leafIndex) external view returns (bool);

    /// @notice Whether credential `leafIndex` of that batch is suspended.
    /// @param anchoringKey Any key of the issuer that anchored the batch, such as the one a
    ///        receipt names.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param leafIndex The credential's leaf index in the batch.
    /// @return Whether it is suspended; false when the batch is not anchored.
    function isSuspended(address anchoringKey, bytes32 root, uint256 leafIndex) external view returns (bool);

    /// @notice The revocation and suspension bitmaps of a batch, `count` 256-bit words from word
    ///         `first`: word w holds leaf indices 256w to 256w + 255, bit i being 256w + i. A
    ///         verifier checking many credentials of one batch reads their status in one call.
    /// @param anchoringKey Any key of the issuer that anchored the batch, such as the one a
    ///        receipt names.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param first The index of the first 256-bit word.
    /// @param count The number of words to read.
    /// @return revoked The revocation bitmap words `first` to `first + count - 1`.
    /// @return suspended The suspension bitmap words `first` to `first + count - 1`.
    function statusWords(address anchoringKey, bytes32 root, uint256 first, uint256 count)
        external
        view
        returns (uint256[] memory revoked, uint256[] memory suspended);

    /// @notice Everything about credential `leafIndex` of batch `root`, anchored by the issuer
    ///         of `anchoringKey` (as a receipt states), in one call: anchored, by which entity
    ///         and key, when, whether the issuer was trusted then, revoked, suspended.
    /// @param anchoringKey Any key of the issuer that anchored the batch, such as the one a
    ///        receipt names.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param leafIndex The credential's leaf index in the batch.
    /// @return The credential's status; all zero when the key is unknown or its issuer never
    ///         anchored `root`.
    function credentialStatus(address anchoringKey, bytes32 root, uint256 leafIndex)
        external
        view
        returns (CredentialStatus memory);

    /// @notice {credentialStatus} plus the RFC 9162 inclusion check of `leafInput` against the
    ///         anchored root and the anchored tree size.
    /// @param anchoringKey Any key of the issuer that anchored the batch, such as the one a
    ///        receipt names.
    /// @param leafInput The credential's leaf input; its leaf hash is SHA-256(0x00 || leafInput).
    /// @param leafIndex The credential's leaf index in the batch.
    /// @param proof The RFC 9162 inclusion proof: sibling hashes, from the leaf upwards.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @return status The same as {credentialStatus} returns.
    /// @return included Whether the batch is anchored and `proof` shows `leafInput` at
    ///         `leafIndex` in its tree of the anchored size.
    function checkCredential(
        address anchoringKey,
        bytes calldata leafInput,
        uint256 leafIndex,
        bytes32[] calldata proof,
        bytes32 root
    ) external view returns (CredentialStatus memory status, bool included);

    /// @notice RFC 9162 section 2.1.3.2 inclusion verification with SHA-256, the same scheme
    ///         as the Python `verifier.merkle.verify_inclusion`.
    /// @param leafInput The leaf input; its leaf hash is SHA-256(0x00 || leafInput).
    /// @param leafIndex The leaf's index in the tree.
    /// @param treeSize The number of leaves in the tree.
    /// @param proof The inclusion proof: sibling hashes, from the leaf upwards.
    /// @param root The Merkle root to check against.
    /// @return Whether `proof` shows `leafInput` at `leafIndex` in a tree of `treeSize` leaves
    ///         with root `root`; false for any malformed input.
    function verifyInclusion(
        bytes calldata leafInput,
        uint256 leafIndex,
        uint256 treeSize,
        bytes32[] calldata proof,
        bytes32 root
    ) external pure returns (bool);

    /// @notice The issuer registry this contract trusts.
    /// @return The registry, fixed at deployment.
    function registry() external view returns (IIssuerRegistry);

    /// @notice The EIP-712 domain separator of this contract on this chain.
    /// @return The domain separator of the anchoring requests signed for {anchorWithSignature}.
    function domainSeparator() external view returns (bytes32);

    /// @notice Semantic version of this contract.
    /// @return The version, such as "1.0.0".
    function version() external pure returns (string memory);
}
