// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ICredentialAnchor} from "./interfaces/ICredentialAnchor.sol";
import {IIssuerRegistry} from "./interfaces/IIssuerRegistry.sol";

/// @title CredentialAnchor
/// @author microcred-anchor contributors
/// @notice Anchors RFC 9162 batch roots of micro-credentials and keeps per-credential
///         revocation and suspension, trusting the keys of an {IIssuerRegistry}.
/// @dev An anchor is one storage slot (key index, entity, time, block, tree size) under the
///      batch id `keccak256(entityId, root)`, so one anchor costs a single new slot whatever the
///      batch size, and issuers cannot collide. Status is two bitmaps per batch (256
///      credentials per slot), so credentials revoked together cost little each.
contract CredentialAnchor is ICredentialAnchor, EIP712, Nonces {
    /// @notice EIP-712 type of a signed anchoring request.
    bytes32 public constant ANCHOR_TYPEHASH =
        keccak256("Anchor(bytes32 root,uint64 treeSize,address key,uint256 nonce,uint256 deadline)");
    /// @notice Largest tree size accepted: 2**53 - 1, the largest exact JSON integer.
    uint64 public constant MAX_TREE_SIZE = 2 ** 53 - 1;

    /// @dev One storage slot (248 bits). The key is stored as its registry index; the
    ///      registry never reassigns a key, so the index names it forever.
    struct AnchorRecord {
        uint32 keyIndex;
        uint64 entityId;
        uint40 anchoredAt;
        uint48 blockNumber;
        uint64 treeSize;
    }

    IIssuerRegistry private immutable _registry;
    mapping(bytes32 batchId => AnchorRecord) private _anchors;
    mapping(bytes32 batchId => mapping(uint256 word => uint256)) private _revoked;
    mapping(bytes32 batchId => mapping(uint256 word => uint256)) private _suspended;

    /// @notice Deploys the anchor, trusting the keys of `issuerRegistry` for good.
    /// @param issuerRegistry The registry whose keys may anchor and change status.
    constructor(IIssuerRegistry issuerRegistry) EIP712("CredentialAnchor", "1") {
        _registry = issuerRegistry;
    }

    // ------------------------------------------------------------------ anchoring

    /// @inheritdoc ICredentialAnchor
    function anchor(bytes32 root, uint64 treeSize) external {
        _anchor(root, treeSize, msg.sender);
    }

    /// @inheritdoc ICredentialAnchor
    function anchorWithSignature(
        bytes32 root,
        uint64 treeSize,
        address key,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(ANCHOR_TYPEHASH, root, treeSize, key, nonce, deadline)));
        address recovered = ECDSA.recover(digest, signature);
        if (recovered != key) revert InvalidSignature(key, recovered);
        _useCheckedNonce(key, nonce);
        _anchor(root, treeSize, key);
    }

    // ------------------------------------------------------------------- status

    /// @inheritdoc ICredentialAnchor
    function revoke(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external {
        bytes32 batch = _batchId(entityId, root);
        _updateBits(_revoked[batch], leafIndices, _authorizedTreeSize(entityId, root, batch, false), true);
        emit CredentialsRevoked(entityId, root, leafIndices, reason, msg.sender);
    }

    /// @inheritdoc ICredentialAnchor
    function suspend(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external {
        bytes32 batch = _batchId(entityId, root);
        _updateBits(_suspended[batch], leafIndices, _authorizedTreeSize(entityId, root, batch, false), true);
        emit CredentialsSuspended(entityId, root, leafIndices, reason, msg.sender);
    }

    /// @inheritdoc ICredentialAnchor
    function reinstate(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason) external {
        bytes32 batch = _batchId(entityId, root);
        _updateBits(_suspended[batch], leafIndices, _authorizedTreeSize(entityId, root, batch, false), false);
        emit CredentialsReinstated(entityId, root, leafIndices, reason, msg.sender);
    }

    /// @inheritdoc ICredentialAnchor
    function liftRevocations(uint64 entityId, bytes32 root, uint256[] calldata leafIndices, uint8 reason)
        external
    {
        bytes32 batch = _batchId(entityId, root);
        _updateBits(_revoked[batch], leafIndices, _authorizedTreeSize(entityId, root, batch, true), false);
        emit RevocationsLifted(entityId, root, leafIndices, reason, msg.sender);
    }

    /// @inheritdoc ICredentialAnchor
    function useNonce() external {
        emit NonceUsed(msg.sender, _useNonce(msg.sender));
    }

    // -------------------------------------------------------------------- views

    /// @inheritdoc ICredentialAnchor
    function anchorOf(address anchoringKey, bytes32 root) public view returns (AnchorInfo memory info) {
        uint64 entityId = _registry.entityOfKey(anchoringKey);
        AnchorRecord memory record = _anchors[_batchId(entityId, root)];
        if (entityId == 0 || record.anchoredAt == 0) return info;
        info = AnchorInfo({
            anchored: true,
            entityId: record.entityId,
            key: _registry.keyAt(record.keyIndex),
            anchoredAt: record.anchoredAt,
            blockNumber: record.blockNumber,
            treeSize: record.treeSize
        });
    }

    /// @inheritdoc ICredentialAnchor
    function isRevoked(address anchoringKey, bytes32 root, uint256 leafIndex) external view returns (bool) {
        return _bit(_revoked[_batchId(_registry.entityOfKey(anchoringKey), root)], leafIndex);
    }

    /// @inheritdoc ICredentialAnchor
    function isSuspended(address anchoringKey, bytes32 root, uint256 leafIndex) external view returns (bool) {
        return _bit(_suspended[_batchId(_registry.entityOfKey(anchoringKey), root)], leafIndex);
    }

    /// @inheritdoc ICredentialAnchor
    function statusWords(address anchoringKey, bytes32 root, uint256 first, uint256 count)
        external
        view
        returns (uint256[] memory revoked, uint256[] memory suspended)
    {
        bytes32 batch = _batchId(_registry.entityOfKey(anchoringKey), root);
        mapping(uint256 => uint256) storage revokedBits = _revoked[batch];
        mapping(uint256 => uint256) storage suspendedBits = _suspended[batch];
        revoked = new uint256[](count);
        suspended = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            revoked[i] = revokedBits[first + i];
            suspended[i] = suspendedBits[first + i];
        }
    }

    /// @inheritdoc ICredentialAnchor
    function credentialStatus(address anchoringKey, bytes32 root, uint256 leafIndex)
        public
        view
        returns (CredentialStatus memory status)
    {
        AnchorInfo memory info = anchorOf(anchoringKey, root);
        if (!info.anchored) return status;
        bytes32 batch = _batchId(info.entityId, root);
        IIssuerRegistry.Trust memory trust = _registry.trustedAt(info.key, info.anchoredAt);
        status = CredentialStatus({
            anchored: true,
            entityId: info.entityId,
            key: info.key,
            anchoredAt: info.anchoredAt,
            blockNumber: info.blockNumber,
            treeSize: info.treeSize,
            indexInTree: leafIndex < info.treeSize,
            issuerTrustedAtAnchoring: trust.trusted,
            trustCode: trust.code,
            revoked: _bit(_revoked[batch], leafIndex),
            suspended: _bit(_suspended[batch], leafIndex)
        });
    }

    /// @inheritdoc ICredentialAnchor
    function checkCredential(
        address anchoringKey,
        bytes calldata leafInput,
        uint256 leafIndex,
        bytes32[] calldata proof,
        bytes32 root
    ) external view returns (CredentialStatus memory status, bool included) {
        status = credentialStatus(anchoringKey, root, leafIndex);
        // The tree size comes from the anchor: an RFC 9162 root does not commit to it.
        included = status.anchored && _verifyInclusion(leafInput, leafIndex, status.treeSize, proof, root);
    }

    /// @inheritdoc ICredentialAnchor
    function verifyInclusion(
        bytes calldata leafInput,
        uint256 leafIndex,
        uint256 treeSize,
        bytes32[] calldata proof,
        bytes32 root
    ) external pure returns (bool) {
        return _verifyInclusion(leafInput, leafIndex, treeSize, proof, root);
    }

    /// @inheritdoc ICredentialAnchor
    function registry() external view returns (IIssuerRegistry) {
        return _registry;
    }

    /// @inheritdoc ICredentialAnchor
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc ICredentialAnchor
    function version() external pure returns (string memory) {
        return "1.0.0";
    }

    // ----------------------------------------------------------------- internal

    function _anchor(bytes32 root, uint64 treeSize, address key) private {
        if (root == bytes32(0)) revert ZeroRoot();
        if (treeSize == 0 || treeSize > MAX_TREE_SIZE) revert InvalidTreeSize(treeSize);
        (IIssuerRegistry.TrustCode code, uint64 entityId, uint32 keyIndex, IIssuerRegistry.Kind kind) =
            _registry.checkKeyNow(key);
        if (code != IIssuerRegistry.TrustCode.Trusted) revert KeyNotTrusted(key, code);
        if (kind != IIssuerRegistry.Kind.TrustedIssuer) revert NotAnIssuer(key, entityId);
        bytes32 batch = _batchId(entityId, root);
        uint40 previous = _anchors[batch].anchoredAt;
        if (previous != 0) revert RootAlreadyAnchored(root, previous);
        _anchors[batch] = AnchorRecord({
            keyIndex: keyIndex,
            entityId: entityId,
            anchoredAt: uint40(block.timestamp),
            blockNumber: uint48(block.number),
            treeSize: treeSize
        });
        emit RootAnchored(root, entityId, key, treeSize);
    }

    /// @dev The batch of issuer `entityId` and `root`: the key of all per-batch storage.
    function _batchId(uint64 entityId, bytes32 root) private pure returns (bytes32) {
        return keccak256(abi.encode(entityId, root));
    }

    /// @dev The anchored tree size of the batch, once the caller is known to be allowed to
    ///      change its credentials' status: a root administrator, or (unless `adminOnly`) a key
    ///      of the issuer trusted now.
    function _authorizedTreeSize(uint64 entityId, bytes32 root, bytes32 batch, bool adminOnly)
        private
        view
        returns (uint64)
    {
        AnchorRecord memory record = _anchors[batch];
        if (record.anchoredAt == 0) revert UnknownRoot(entityId, root);
        if (!_registry.isRootAdmin(msg.sender)) {
            if (adminOnly) revert NotAuthorized(msg.sender, entityId);
            (IIssuerRegistry.TrustCode code, uint64 callerEntity,,) = _registry.checkKeyNow(msg.sender);
            if (code != IIssuerRegistry.TrustCode.Trusted || callerEntity != entityId) {
                revert NotAuthorized(msg.sender, entityId);
            }
        }
        return record.treeSize;
    }

    /// @dev Sets or clears the bits of `leafIndices`, writing each 256-bit word once per run of
    ///      indices that fall into it.
    function _updateBits(
        mapping(uint256 => uint256) storage bitmap,
        uint256[] calldata leafIndices,
        uint64 treeSize,
        bool set
    ) private {
        uint256 count = leafIndices.length;
        if (count == 0) revert NoLeafIndices();
        uint256 word = leafIndices[0] >> 8;
        uint256 bits = bitmap[word];
        for (uint256 i = 0; i < count; ++i) {
            uint256 index = leafIndices[i];
            if (index >= treeSize) revert LeafIndexOutOfRange(index, treeSize);
            if (index >> 8 != word) {
                bitmap[word] = bits;
                word = index >> 8;
                bits = bitmap[word];
            }
            uint256 mask = 1 << (index & 255);
            bits = set ? bits | mask : bits & ~mask;
        }
        bitmap[word] = bits;
    }

    function _bit(mapping(uint256 => uint256) storage bitmap, uint256 index) private view returns (bool) {
        return (bitmap[index >> 8] >> (index & 255)) & 1 == 1;
    }

    /// @dev RFC 9162 section 2.1.3.2, step by step. Any malformed input returns false.
    function _verifyInclusion(
        bytes calldata leafInput,
        uint256 leafIndex,
        uint256 treeSize,
        bytes32[] calldata proof,
        bytes32 root
    ) private pure returns (bool) {
        if (leafIndex >= treeSize) return false;
        uint256 fn = leafIndex;
        uint256 sn = treeSize - 1;
        bytes32 r = sha256(abi.encodePacked(bytes1(0x00), leafInput));
        for (uint256 i = 0; i < proof.length; ++i) {
            if (sn == 0) return false;
            bytes32 p = proof[i];
            if ((fn & 1) == 1 || fn == sn) {
                r = sha256(abi.encodePacked(bytes1(0x01), p, r));
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                r = sha256(abi.encodePacked(bytes1(0x01), r, p));
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root;
    }
}
