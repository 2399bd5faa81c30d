// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IIssuerRegistry} from "./IIssuerRegistry.sol";

/// @title ICredentialAnchor
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
    event RootAnchored(bytes32 indexed root, uint64 indexed entityId, address key, uint64 treeSize);
    /// @notice Emitted when credentials of a batch were revoked.
    event CredentialsRevoked(
        uint64 indexed entityId, bytes32 indexed root, uint256[] leafIndices, uint8 reason, address by
    );
    /// @notice Emitted when credentials of a batch were suspended.
    event CredentialsSuspended(
        uint64 indexed entityId, bytes32 indexed root, uint256[] leafIndices, uint8 reason, address by
    );
    /// @notice Emitted when suspended credentials of a batch were reinstated.
    event CredentialsReinstated(
        uint64 indexed entityId, bytes32 indexed root, uint256[] leafIndices, uint8 reason, address by
    );
    /// @notice Emitted when a root administrator lifted revocations, e.g. ones made with a key
    ///         later found compromised.
    event RevocationsLifted(
        uint64 indexed entityId, bytes32 indexed root, uint256[] leafIndices, uint8 reason, address by
    );
    /// @notice Emitted when a key gave up a nonce, cancelling requests signed with it.
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
    function anchor(bytes32 root, uint64 treeSize) external;

    /// @notice Anchor a batch root signed offline by `key` (EIP-712); anyone may submit it and
    ///         pay the gas. The signature binds chain id, this contract, `nonce` and `deadline`.
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
    function revoke(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external;

    /// @notice Suspend credentials of batch `root` of issuer `entityId` (reversible).
    /// @dev The issuer's keys trusted now, or root administrators.
    function suspend(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external;

    /// @notice Lift the suspension of credentials. Revocation is not lifted.
    /// @dev The issuer's keys trusted now, or root administrators.
    function reinstate(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external;

    /// @notice Lift revocations, for example those made with a key later found compromised.
    /// @dev Root administrators only: an issuer cannot undo its own revocations.
    function liftRevocations(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason)
        external;

    /// @notice Use up the caller's current nonce, cancelling any anchoring request signed with it.
    function useNonce() external;

    /// @notice The anchor of `root` by the issuer that `anchoringKey` belongs to.
    function anchorOf(address anchoringKey, bytes32 root) external view returns (AnchorInfo memory);

    /// @notice Whether credential `leafIndex` of that batch is revoked.
    function isRevoked(address anchoringKey, bytes32 root, uint256 leafIndex) external view returns (bool);

    /// @notice Whether credential `leafIndex` of that batch is suspended.
    function isSuspended(address anchoringKey, bytes32 root, uint256 leafIndex) external view returns (bool);

    /// @notice The revocation and suspension bitmaps of a batch, `count` 256-bit words from word
    ///         `first`: word w holds leaf indices 256w to 256w + 255, bit i being 256w + i. A
    ///         verifier checking many credentials of one batch reads their status in one call.
    function statusWords(address anchoringKey, bytes32 root, uint256 first, uint256 count)
        external
        view
        returns (uint256[] memory revoked, uint256[] memory suspended);

    /// @notice Everything about credential `leafIndex` of batch `root`, anchored by the issuer
    ///         of `anchoringKey` (as a receipt states), in one call: anchored, by which entity
    ///         and key, when, whether the issuer was trusted then, revoked, suspended.
    function credentialStatus(address anchoringKey, bytes32 root, uint256 leafIndex)
        external
        view
        returns (CredentialStatus memory);

    /// @notice {credentialStatus} plus the RFC 9162 inclusion check of `leafInput` against the
    ///         anchored root and the anchored tree size.
    function checkCredential(
        address anchoringKey,
        bytes calldata leafInput,
        uint256 leafIndex,
        bytes32[] calldata proof,
        bytes32 root
    ) external view returns (CredentialStatus memory status, bool included);

    /// @notice RFC 9162 section 2.1.3.2 inclusion verification with SHA-256, the same scheme
    ///         as the Python `verifier.merkle.verify_inclusion`.
    function verifyInclusion(
        bytes calldata leafInput,
        uint256 leafIndex,
        uint256 treeSize,
        bytes32[] calldata proof,
        bytes32 root
    ) external pure returns (bool);

    /// @notice The issuer registry this contract trusts.
    function registry() external view returns (IIssuerRegistry);

    /// @notice The EIP-712 domain separator of this contract on this chain.
    function domainSeparator() external view returns (bytes32);

    /// @notice Semantic version of this contract.
    function version() external pure returns (string memory);
}
