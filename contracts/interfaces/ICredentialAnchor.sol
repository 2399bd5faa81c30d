// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IIssuerRegistry} from "./IIssuerRegistry.sol";

/// @title ICredentialAnchor
/// @author microcred-anchor contributors
/// @notice Anchors RFC 9162 Merkle roots of credential batches, records who anchored them,
///         when and with which tree size, and keeps every issuer's W3C Bitstring Status Lists
///         (revocation and suspension) on chain, addressed by (issuer, list, index).
/// @dev Anchors belong to the anchoring issuer: the same root anchored by two issuers is two
///      independent claims, so nobody can take over (or front-run) another issuer's batch.
///      Anchor views take the anchoring key, which is what a receipt carries; the registry maps
///      it to its issuer forever. Status belongs to the issuer's entity: list `statusList` of
///      issuer `entityId` holds {STATUS_LIST_SIZE} entries per purpose, entry `index` being bit
///      `255 - index % 256` of word `index / 256` (most significant bit first), so the words'
///      big-endian bytes are the Recommendation's bitstring as they stand. A credential's list
///      and index are bound into its Merkle leaf (the last 8 bytes of the leaf input, two
///      big-endian uint32), so a receipt cannot point at another credential's status.
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

    /// @notice The whole status of one credential, as {checkCredential} returns it.
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
        uint32 statusList;
        uint32 statusListIndex;
        bool revoked;
        bool suspended;
    }

    /// @notice The status bits of one credential, as {statusOf} returns them.
    struct StatusBits {
        bool revoked;
        bool suspended;
    }

    /// @notice Emitted when a batch root was anchored by `key` of issuer `entityId`.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @param entityId The id of the anchoring issuer.
    /// @param key The issuer's signing key that anchored it.
    /// @param treeSize The number of leaves in the batch's tree.
    event RootAnchored(bytes32 indexed root, uint64 indexed entityId, address key, uint64 treeSize);

    /// @notice Emitted when credentials of an issuer were revoked.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param indices The credentials' indices in that list, as given: big-endian uint32s.
    /// @param reason The caller's reason code (0 to 255), recorded only here.
    /// @param by The account that made the change.
    event CredentialsRevoked(
        uint64 indexed entityId, uint32 indexed statusList, bytes indices, uint8 reason, address by
    );

    /// @notice Emitted when credentials of an issuer were suspended.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param indices The credentials' indices in that list, as given: big-endian uint32s.
    /// @param reason The caller's reason code (0 to 255), recorded only here.
    /// @param by The account that made the change.
    event CredentialsSuspended(
        uint64 indexed entityId, uint32 indexed statusList, bytes indices, uint8 reason, address by
    );

    /// @notice Emitted when suspended credentials of an issuer were reinstated.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param indices The credentials' indices in that list, as given: big-endian uint32s.
    /// @param reason The caller's reason code (0 to 255), recorded only here.
    /// @param by The account that made the change.
    event CredentialsReinstated(
        uint64 indexed entityId, uint32 indexed statusList, bytes indices, uint8 reason, address by
    );

    /// @notice Emitted when a root administrator lifted revocations, e.g. ones made with a key
    ///         later found compromised.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param indices The credentials' indices in that list, as given: big-endian uint32s.
    /// @param reason The caller's reason code (0 to 255), recorded only here.
    /// @param by The account that made the change.
    event RevocationsLifted(
        uint64 indexed entityId, uint32 indexed statusList, bytes indices, uint8 reason, address by
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
    /// @notice The key is not trusted now; `code` says why.
    error KeyNotTrusted(address key, IIssuerRegistry.TrustCode code);
    /// @notice Only keys of trusted issuers may anchor, not those of accreditation bodies.
    error NotAnIssuer(address key, uint64 entityId);
    /// @notice The caller may not make this change to the status of this issuer's credentials.
    error NotAuthorized(address caller, uint64 entityId);
    /// @notice A status list index is not below {STATUS_LIST_SIZE}.
    error StatusIndexOutOfRange(uint32 index);
    /// @notice No status list index was given, or the indices' length (in bytes) is not a
    ///         multiple of 4.
    error MalformedStatusIndices(uint256 length);
    /// @notice Words `first` to `first + count - 1` do not lie within one status list's
    ///         {STATUS_LIST_WORDS} words.
    error WordRangeOutOfList(uint256 first, uint256 count);
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

    /// @notice Revoke credentials of issuer `entityId`. Only a root administrator can lift a
    ///         revocation ({liftRevocations}).
    /// @dev The issuer's own keys trusted now only: nobody else changes an issuer's status.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param indices The credentials' indices in that list, each a big-endian uint32 (4 bytes),
    ///        at least one, each below {STATUS_LIST_SIZE}; indices that share a 256-entry word
    ///        cost little each when they are given next to each other (ascending is cheapest).
    /// @param reason A reason code (0 to 255), only recorded in the event.
    function revoke(uint64 entityId, uint32 statusList, bytes calldata indices, uint8 reason) external;

    /// @notice Suspend credentials of issuer `entityId` (reversible with {reinstate}).
    /// @dev The issuer's own keys trusted now only.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param indices The credentials' indices in that list, each a big-endian uint32 (4 bytes),
    ///        at least one, each below {STATUS_LIST_SIZE}; indices that share a 256-entry word
    ///        cost little each when they are given next to each other (ascending is cheapest).
    /// @param reason A reason code (0 to 255), only recorded in the event.
    function suspend(uint64 entityId, uint32 statusList, bytes calldata indices, uint8 reason) external;

    /// @notice Lift the suspension of credentials of issuer `entityId`. Revocation is not lifted.
    /// @dev The issuer's own keys trusted now only.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param indices The credentials' indices in that list, each a big-endian uint32 (4 bytes),
    ///        at least one, each below {STATUS_LIST_SIZE}; indices that share a 256-entry word
    ///        cost little each when they are given next to each other (ascending is cheapest).
    /// @param reason A reason code (0 to 255), only recorded in the event.
    function reinstate(uint64 entityId, uint32 statusList, bytes calldata indices, uint8 reason)
        external;

    /// @notice Lift revocations, for example those made with a key later found compromised.
    /// @dev Root administrators only: an issuer cannot undo its own revocations.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param indices The credentials' indices in that list, each a big-endian uint32 (4 bytes),
    ///        at least one, each below {STATUS_LIST_SIZE}; indices that share a 256-entry word
    ///        cost little each when they are given next to each other (ascending is cheapest).
    /// @param reason A reason code (0 to 255), only recorded in the event.
    function liftRevocations(uint64 entityId, uint32 statusList, bytes calldata indices, uint8 reason)
        external;

    /// @notice Use up the caller's current nonce, cancelling any anchoring request signed with it.
    function useNonce() external;

    /// @notice The anchor of `root` by the issuer that `anchoringKey` belongs to.
    /// @param anchoringKey Any key of the issuer that anchored the batch, such as the one a
    ///        receipt names.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @return The anchor; all zero when the key is unknown or its issuer never anchored `root`.
    function anchorOf(address anchoringKey, bytes32 root) external view returns (AnchorInfo memory);

    /// @notice Whether entry `index` of status list `statusList` of issuer `entityId` is
    ///         revoked and whether it is suspended.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param index The entry's index in the list, below {STATUS_LIST_SIZE}.
    /// @return The entry's two status bits.
    function statusOf(uint64 entityId, uint32 statusList, uint32 index) external view returns (StatusBits memory);

    /// @notice Words `first` to `first + count - 1` of both status lists (revocation and
    ///         suspension) number `statusList` of issuer `entityId`. Word w holds indices 256w to
    ///         256w + 255, index 256w + i in bit 255 - i (most significant first), so the words'
    ///         big-endian bytes are the Bitstring Status List's bitstring. One word, or a whole
    ///         list ({STATUS_LIST_WORDS} words, about 2.5 million gas), in one call.
    /// @param entityId The issuer's entity id.
    /// @param statusList The number of the issuer's status list.
    /// @param first The index of the first word, below {STATUS_LIST_WORDS}.
    /// @param count The number of words; `first + count` is at most {STATUS_LIST_WORDS}.
    /// @return revoked The revocation list's words.
    /// @return suspended The suspension list's words.
    function statusWords(uint64 entityId, uint32 statusList, uint256 first, uint256 count)
        external
        view
        returns (uint256[] memory revoked, uint256[] memory suspended);

    /// @notice Everything about one credential in one call: the anchor of `root` by the issuer
    ///         of `anchoringKey`, whether the issuer was trusted then, the RFC 9162 inclusion of
    ///         `leafInput` in the anchored tree, and the status bits at the list and index that
    ///         the leaf input binds (its last 8 bytes: two big-endian uint32).
    /// @param anchoringKey Any key of the issuer that anchored the batch, such as the one a
    ///        receipt names.
    /// @param leafInput The credential's leaf input (salt, digest, status list, status index);
    ///        its leaf hash is SHA-256(0x00 || leafInput).
    /// @param leafIndex The credential's leaf index in the batch.
    /// @param proof The RFC 9162 inclusion proof: sibling hashes, from the leaf upwards.
    /// @param root The batch's RFC 9162 Merkle root.
    /// @return status The anchor and the status; all zero when the key is unknown or its issuer
    ///         never anchored `root`, and no status bits when the leaf input is shorter than 8
    ///         bytes.
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
    /// @return The version, such as "2.0.0".
    function version() external pure returns (string memory);
}
