// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ICredentialAnchor} from "./interfaces/ICredentialAnchor.sol";
import {IIssuerRegistry} from "./interfaces/IIssuerRegistry.sol";

/// @title CredentialAnchor
/// @author microcred-anchor contributors
/// @notice Anchors RFC 9162 batch roots of micro-credentials and keeps every issuer's
///         revocation and suspension status lists, trusting the keys of an {IIssuerRegistry}.
/// @dev An anchor is one storage slot (key index, entity, time, block, tree size) under the
///      batch id `keccak256(entityId, root)`, so one anchor costs a single new slot whatever the
///      batch size, and issuers cannot collide. Status is two bitmaps per issuer, 256 entries a
///      slot, keyed by (list, word): credentials revoked together cost little each, and a whole
///      W3C Bitstring Status List is {STATUS_LIST_WORDS} consecutive words.
contract CredentialAnchor is ICredentialAnchor, EIP712, Nonces {
    /// @notice EIP-712 type of a signed anchoring request.
    bytes32 public constant ANCHOR_TYPEHASH =
        keccak256("Anchor(bytes32 root,uint64 treeSize,address key,uint256 nonce,uint256 deadline)");
    /// @notice Largest tree size accepted: 2**53 - 1, the largest exact JSON integer.
    uint64 public constant MAX_TREE_SIZE = 2 ** 53 - 1;
    /// @notice Entries in one status list (per purpose): the Recommendation's minimum, 16 KiB.
    uint32 public constant STATUS_LIST_SIZE = 131_072;
    /// @notice 256-bit words in one status list.
    uint256 public constant STATUS_LIST_WORDS = 512;

    /// @dev One storage slot (248 bits). The key is stored as its registry index; the
    ///      registry never reassigns a key, so the index names it forever.
    struct AnchorRecord {
        uint32 keyIndex;
        uint64 entityId;
        uint40 anchoredAt;
        uint48 blockNumber;
        uint64 treeSize;
    }

    /// @dev Who may make a status change: the issuer's own keys, or root administrators only.
    enum Changer {
        Issuer,
        RootAdmin
    }

    IIssuerRegistry private immutable _registry;
    mapping(bytes32 batchId => AnchorRecord) private _anchors;
    /// @dev Word `statusList * STATUS_LIST_WORDS + index / 256` of the issuer's bitmaps.
    mapping(uint64 entityId => mapping(uint256 word => uint256)) private _revoked;
    mapping(uint64 entityId => mapping(uint256 word => uint256)) private _suspended;

    /// @notice Deploys the anchor, trusting the keys of `issuerRegistry` for good.
    /// @param issuerRegistry The registry whose keys may anchor and change status.
    constructor(IIssuerRegistry issuerRegistry) EIP712("CredentialAnchor", "2") {
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
    function revoke(uint64 entityId, uint32 statusList, bytes calldata indices, uint8 reason) external {
        _authorize(entityId, Changer.Issuer);
        _updateBits(_revoked[entityId], statusList, indices, true);
        emit CredentialsRevoked(entityId, statusList, indices, reason, msg.sender);
    }

    /// @inheritdoc ICredentialAnchor
    function suspend(uint64 entityId, uint32 statusList, bytes calldata indices, uint8 reason) external {
        _authorize(entityId, Changer.Issuer);
        _updateBits(_suspended[entityId], statusList, indices, true);
        emit CredentialsSuspended(entityId, statusList, indices, reason, msg.sender);
    }

    /// @inheritdoc ICredentialAnchor
    function reinstate(uint64 entityId, uint32 statusList, bytes calldata indices, uint8 reason)
        external
    {
        _authorize(entityId, Changer.Issuer);
        _updateBits(_suspended[entityId], statusList, indices, false);
        emit CredentialsReinstated(entityId, statusList, indices, reason, msg.sender);
    }

    /// @inheritdoc ICredentialAnchor
    function liftRevocations(uint64 entityId, uint32 statusList, bytes calldata indices, uint8 reason)
        external
    {
        _authorize(entityId, Changer.RootAdmin);
        _updateBits(_revoked[entityId], statusList, indices, false);
        emit RevocationsLifted(entityId, statusList, indices, reason, msg.sender);
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
    function statusOf(uint64 entityId, uint32 statusList, uint32 index)
        public
        view
        returns (StatusBits memory bits)
    {
        if (index >= STATUS_LIST_SIZE) revert StatusIndexOutOfRange(index);
        uint256 word = _wordOf(statusList, index);
        uint256 shift = _shiftOf(index);
        bits = StatusBits({
            revoked: (_revoked[entityId][word] >> shift) & 1 == 1,
            suspended: (_suspended[entityId][word] >> shift) & 1 == 1
        });
    }

    /// @inheritdoc ICredentialAnchor
    function statusWords(uint64 entityId, uint32 statusList, uint256 first, uint256 count)
        external
        view
        returns (uint256[] memory revoked, uint256[] memory suspended)
    {
        if (first >= STATUS_LIST_WORDS || count > STATUS_LIST_WORDS - first) {
            revert WordRangeOutOfList(first, count);
        }
        mapping(uint256 => uint256) storage revokedBits = _revoked[entityId];
        mapping(uint256 => uint256) storage suspendedBits = _suspended[entityId];
        uint256 base = uint256(statusList) * STATUS_LIST_WORDS + first;
        revoked = new uint256[](count);
        suspended = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            revoked[i] = revokedBits[base + i];
            suspended[i] = suspendedBits[base + i];
        }
    }

    /// @inheritdoc ICredentialAnchor
    function checkCredential(
        address anchoringKey,
        bytes calldata leafInput,
        uint256 leafIndex,
        bytes32[] calldata proof,
        bytes32 root
    ) external view returns (CredentialStatus memory status, bool included) {
        AnchorInfo memory info = anchorOf(anchoringKey, root);
        if (!info.anchored) return (status, false);
        IIssuerRegistry.Trust memory trust = _registry.trustedAt(info.key, info.anchoredAt);
        status.anchored = true;
        status.entityId = info.entityId;
        status.key = info.key;
        status.anchoredAt = info.anchoredAt;
        status.blockNumber = info.blockNumber;
        status.treeSize = info.treeSize;
        status.indexInTree = leafIndex < info.treeSize;
        status.issuerTrustedAtAnchoring = trust.trusted;
        status.trustCode = trust.code;
        uint256 length = leafInput.length;
        if (length >= 8) {
            // The leaf input ends with the credential's status list and index: the proof below
            // binds them, so the bits read are this credential's.
            uint32 statusList = uint32(bytes4(leafInput[length - 8:length - 4]));
            uint32 index = uint32(bytes4(leafInput[length - 4:]));
            status.statusList = statusList;
            status.statusListIndex = index;
            if (index < STATUS_LIST_SIZE) {
                StatusBits memory bits = statusOf(info.entityId, statusList, index);
                status.revoked = bits.revoked;
                status.suspended = bits.suspended;
            }
        }
        // The tree size comes from the anchor: an RFC 9162 root does not commit to it.
        included = _verifyInclusion(leafInput, leafIndex, info.treeSize, proof, root);
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
        return "2.0.0";
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

    /// @dev The batch of issuer `entityId` and `root`: the key of its anchor record.
    function _batchId(uint64 entityId, bytes32 root) private pure returns (bytes32) {
        return keccak256(abi.encode(entityId, root));
    }

    /// @dev Reverts unless the caller may make a change of kind `changer` to the status of
    ///      issuer `entityId`'s credentials: one of the issuer's keys trusted now (a trusted
    ///      issuer's: accreditation bodies anchor nothing, so they have no status to change), or
    ///      a root administrator.
    function _authorize(uint64 entityId, Changer changer) private view {
        if (changer == Changer.RootAdmin) {
            if (!_registry.isRootAdmin(msg.sender)) revert NotAuthorized(msg.sender, entityId);
            return;
        }
        (IIssuerRegistry.TrustCode code, uint64 callerEntity,, IIssuerRegistry.Kind kind) =
            _registry.checkKeyNow(msg.sender);
        if (
            code != IIssuerRegistry.TrustCode.Trusted || callerEntity != entityId
                || kind != IIssuerRegistry.Kind.TrustedIssuer
        ) {
            revert NotAuthorized(msg.sender, entityId);
        }
    }

    /// @dev Sets or clears the bits of `indices` (big-endian uint32s) in list `statusList` of
    ///      `bitmap`, writing each 256-bit word once per run of indices that fall into it.
    function _updateBits(
        mapping(uint256 => uint256) storage bitmap,
        uint32 statusList,
        bytes calldata indices,
        bool set
    ) private {
        uint256 length = indices.length;
        if (length == 0 || length % 4 != 0) revert MalformedStatusIndices(length);
        uint256 word = _wordOf(statusList, uint32(bytes4(indices[:4])));
        uint256 bits = bitmap[word];
        for (uint256 offset = 0; offset < length; offset += 4) {
            uint32 index = uint32(bytes4(indices[offset:offset + 4]));
            if (index >= STATUS_LIST_SIZE) revert StatusIndexOutOfRange(index);
            uint256 next = _wordOf(statusList, index);
            if (next != word) {
                bitmap[word] = bits;
                word = next;
                bits = bitmap[word];
            }
            uint256 mask = 1 << _shiftOf(index);
            bits = set ? bits | mask : bits & ~mask;
        }
        bitmap[word] = bits;
    }

    /// @dev The bitmap word of entry `index` (below {STATUS_LIST_SIZE}) of list `statusList`.
    function _wordOf(uint32 statusList, uint32 index) private pure returns (uint256) {
        return uint256(statusList) * STATUS_LIST_WORDS + (index >> 8);
    }

    /// @dev The bit of entry `index` in its word: most significant first, as in the bitstring.
    function _shiftOf(uint32 index) private pure returns (uint256) {
        return 255 - (index & 255);
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
