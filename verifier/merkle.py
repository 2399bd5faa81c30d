"""Merkle trees, inclusion and consistency proofs exactly as in RFC 9162 section 2.1 (SHA-256).

- Leaf hash: ``SHA-256(0x00 || leaf_input)``; node hash: ``SHA-256(0x01 || left || right)``.
  The distinct prefixes are what stops a node from being passed off as a leaf (second preimages).
- A tree of ``n > 1`` leaves splits at the largest power of two smaller than ``n``.
- The empty tree's root is ``SHA-256("")``.

Everything here is a pure function over bytes. Verification checks every precondition (sizes,
index, hash lengths, path length) before it hashes anything, then runs the algorithms of
RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step. Failures raise subclasses of
:class:`verifier.errors.ProofError`; bad arguments to tree building raise
:class:`verifier.errors.MerkleInputError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from hashlib import sha256
from typing import Final, cast

from verifier.errors import MalformedProofError, MerkleInputError, RootMismatchError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "consistency_proof_length",
    "inclusion_proof_length",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = sha256(b"").digest()
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"
# Hashes are produced a chunk at a time and joined at once: keeping millions of small bytes
# objects alive costs more than the hashing itself, joining a short list each time does not.
_CHUNK: Final = 1024


def leaf_hash(leaf_input: bytes) -> bytes:
    """Return ``SHA-256(0x00 || leaf_input)``, the RFC 9162 hash of a leaf."""
    _require_bytes_like("leaf_input", leaf_input)
    return sha256(_LEAF_PREFIX + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``, the RFC 9162 hash of an interior node."""
    _require_hash("left", left)
    _require_hash("right", right)
    return sha256(_NODE_PREFIX + left + right).digest()


class MerkleTree:
    """An immutable RFC 9162 Merkle tree over a sequence of leaf inputs.

    Every level is kept as one contiguous ``bytes`` of 32-byte hashes (a 1,000,000-leaf tree
    holds about 64 MB), so proofs are read, never recomputed. Level ``l`` holds node ``k`` as
    the hash of leaves ``[k * 2**l, min((k + 1) * 2**l, size))``; a node without a right sibling
    is carried up unchanged, which yields exactly the RFC's split at the largest power of two.
    """

    __slots__ = ("_levels", "_sizes")

    def __init__(self, leaf_inputs: Iterable[bytes]) -> None:
        if isinstance(leaf_inputs, (bytes, bytearray, memoryview, str)):
            raise MerkleInputError(
                "leaf_inputs must be an iterable of byte strings, not a single "
                f"{type(leaf_inputs).__name__}"
            )
        inputs = leaf_inputs if isinstance(leaf_inputs, list) else list(leaf_inputs)
        try:
            bottom = _hash_leaves(inputs)
        except TypeError:
            raise _first_non_bytes(inputs) from None
        self._levels: list[bytes] = []
        self._sizes: list[int] = []
        size = len(inputs)
        if size:
            self._levels.append(bottom)
            self._sizes.append(size)
        while size > 1:
            bottom = _hash_level(bottom, size)
            size = (size + 1) // 2
            self._levels.append(bottom)
            self._sizes.append(size)

    @classmethod
    def from_levels(cls, levels: Sequence[bytes]) -> MerkleTree:
        """Restore a tree from :attr:`levels` without rehashing its leaves.

        The shape is checked (each level half the one below, rounded up, ending in one root),
        and so is the root against its two children; the other nodes are taken as given, so
        restore only levels this code wrote (the service keeps them in its own database).
        """
        tree = cls([])
        count = None
        for number, level in enumerate(levels):
            if not isinstance(level, bytes) or not level or len(level) % HASH_SIZE:
                raise MerkleInputError(f"level {number} is not a non-empty run of 32-byte hashes")
            width = len(level) // HASH_SIZE
            if count is not None and width != (count + 1) // 2:
                raise MerkleInputError(
                    f"level {number} has {width} nodes, expected {(count + 1) // 2}"
                )
            tree._levels.append(level)
            tree._sizes.append(width)
            count = width
        if count not in (None, 1):
            raise MerkleInputError(f"the top level has {count} nodes, not 1")
        # Below a root there are always exactly two nodes.
        if len(tree._levels) > 1 and sha256(_NODE_PREFIX + tree._levels[-2]).digest() != tree.root:
            raise MerkleInputError("the root does not match its children")
        return tree

    @property
    def levels(self) -> tuple[bytes, ...]:
        """Every level, leaves first, each the concatenation of its 32-byte hashes: what
        :meth:`from_levels` needs to restore the tree."""
        return tuple(self._levels)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._sizes[0] if self._sizes else 0

    @property
    def root(self) -> bytes:
        """The Merkle Tree Hash of all leaves (``SHA-256("")`` for the empty tree)."""
        return self._levels[-1] if self._levels else EMPTY_ROOT

    def leaf_hash_at(self, index: int) -> bytes:
        """The leaf hash stored at ``index``."""
        self._require_index(index)
        return self._node(0, index)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` (RFC 9162 ``PATH``), ordered from the leaf upwards."""
        self._require_index(index)
        proof = []
        for buf, count in zip(self._levels, self._sizes[:-1], strict=False):
            sibling = index ^ 1
            if sibling < count:
                offset = sibling * HASH_SIZE
                proof.append(buf[offset : offset + HASH_SIZE])
            index >>= 1
        return proof

    def inclusion_proofs(self, start: int = 0, stop: int | None = None) -> Iterator[list[bytes]]:
        """Yield the audit paths of leaves ``start`` .. ``stop - 1`` in order.

        Equal to ``inclusion_proof(i)`` for each ``i``, but neighbouring leaves share most of
        their path, so only the levels whose node changed are read again: about two per leaf.
        """
        stop = self.size if stop is None else stop
        if not (_is_int(start) and _is_int(stop) and 0 <= start <= stop <= self.size):
            raise MerkleInputError(f"need 0 <= start <= stop <= {self.size}, got {start}, {stop}")
        return self._stream_proofs(start, stop)

    def _stream_proofs(self, start: int, stop: int) -> Iterator[list[bytes]]:
        if start == stop:
            return
        levels = list(zip(self._levels, self._sizes[:-1], strict=False))
        # path[l] is the sibling at level l of the current leaf, or None where the node has
        # no sibling (the right edge of an unbalanced tree); `missing` counts the Nones.
        path: list[bytes | None] = [self._sibling(buf, count, start >> lvl)
                                    for lvl, (buf, count) in enumerate(levels)]
        missing = path.count(None)
        # With no gap in the path, a plain copy is the proof (and the fast path).
        yield cast(list[bytes], path.copy()) if not missing else [h for h in path if h]
        depth = len(levels)
        for index in range(start + 1, stop):
            # Level l's node changes exactly when bits l and above of the index change.
            changed = min((index ^ (index - 1)).bit_length(), depth)
            for lvl in range(changed):
                buf, count = levels[lvl]
                old = path[lvl]
                new = path[lvl] = self._sibling(buf, count, index >> lvl)
                missing += (new is None) - (old is None)
            yield cast(list[bytes], path.copy()) if not missing else [h for h in path if h]

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """The consistency proof from the tree of the first ``old_size`` leaves to this tree
        (RFC 9162 ``PROOF(m, D[n])``). Empty when ``old_size`` is 0 or the full size."""
        if not _is_int(old_size) or not 0 <= old_size <= self.size:
            raise MerkleInputError(f"old_size must be an int in [0, {self.size}], got {old_size!r}")
        if old_size in (0, self.size):
            return []
        # RFC 9162 SUBPROOF, unrolled. The recursion appends each subtree hash after the
        # proof of the part it descends into, so collect outermost first and reverse.
        proof = []
        m, start, end, complete = old_size, 0, self.size, True
        while m != end - start:
            k = _largest_power_of_two_below(end - start)
            if m <= k:
                proof.append(self._subtree_hash(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree_hash(start, start + k))
                m -= k
                start += k
                complete = False
        if not complete:
            proof.append(self._subtree_hash(start, end))
        proof.reverse()
        return proof

    def _subtree_hash(self, start: int, end: int) -> bytes:
        # Every range the RFC recursion asks for starts on a multiple of the smallest power of
        # two covering it, and is either that full power of two or runs to the tree's end:
        # exactly one stored node.
        level = (end - start - 1).bit_length()
        return self._node(level, start >> level)

    def _node(self, level: int, index: int) -> bytes:
        offset = index * HASH_SIZE
        return self._levels[level][offset : offset + HASH_SIZE]

    @staticmethod
    def _sibling(buf: bytes, count: int, index: int) -> bytes | None:
        sibling = index ^ 1
        if sibling >= count:
            return None
        offset = sibling * HASH_SIZE
        return buf[offset : offset + HASH_SIZE]

    def _require_index(self, index: int) -> None:
        if not _is_int(index) or not 0 <= index < self.size:
            raise MerkleInputError(
                f"leaf index must be an int in [0, {self.size}), got {index!r}"
            )


def inclusion_proof_length(index: int, size: int) -> int:
    """Number of hashes in the audit path of leaf ``index`` in a tree of ``size`` leaves."""
    if not (_is_int(index) and _is_int(size) and 0 <= index < size):
        raise MerkleInputError(f"need 0 <= index < size, got index={index!r}, size={size!r}")
    # Below the level where the paths to `index` and to the last leaf diverge, every level has
    # a sibling; above it, only the levels where `index` is a right child do.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """Number of hashes in the consistency proof from ``old_size`` to ``new_size`` leaves."""
    if not (_is_int(old_size) and _is_int(new_size) and 0 <= old_size <= new_size):
        raise MerkleInputError(
            f"need 0 <= old_size <= new_size, got old_size={old_size!r}, new_size={new_size!r}"
        )
    if old_size in (0, new_size):
        return 0
    count, m, width, complete = 0, old_size, new_size, True
    while m != width:
        k = _largest_power_of_two_below(width)
        count += 1
        if m <= k:
            width = k
        else:
            m -= k
            width -= k
            complete = False
    return count + (not complete)


def verify_inclusion(
    leaf_input: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_input`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    RFC 9162 section 2.1.3.2. Returns None on success; raises
    :class:`~verifier.errors.MalformedProofError` when a precondition fails and
    :class:`~verifier.errors.RootMismatchError` when the path leads to another root.
    """
    _require_bytes_like("leaf_input", leaf_input, MalformedProofError)
    _require_size("size", size)
    if not _is_int(index) or not 0 <= index < size:
        raise MalformedProofError(f"leaf index {index!r} is not in [0, {size!r})")
    _require_hash("root", root, MalformedProofError)
    _require_path(proof)
    expected = inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise MalformedProofError(
            f"audit path has {len(proof)} hashes; leaf {index} of {size} needs {expected}"
        )

    fn, sn = index, size - 1
    r = sha256(_LEAF_PREFIX + leaf_input).digest()
    for p in proof:
        if sn == 0:
            raise MalformedProofError("audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = sha256(_NODE_PREFIX + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(_NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MalformedProofError("audit path is shorter than the tree is deep")
    if r != root:
        raise RootMismatchError("inclusion proof leads to another root", expected=root, computed=r)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` leaves with ``root2`` extends the tree of ``size1``
    leaves with ``root1``.

    RFC 9162 section 2.1.4.2. A proof between equal sizes, or from the empty tree, is empty:
    then the roots must be equal, or ``root1`` must be the empty tree's root. Returns None on
    success; raises :class:`~verifier.errors.MalformedProofError` or
    :class:`~verifier.errors.RootMismatchError`.
    """
    _check_consistency_preconditions(size1, size2, proof, root1, root2)
    if size1 in (0, size2):
        _verify_empty_consistency(size1, size2, root1, root2)
        return

    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise MalformedProofError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = sha256(_NODE_PREFIX + c + fr).digest()
            sr = sha256(_NODE_PREFIX + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha256(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MalformedProofError("consistency proof is shorter than the tree is deep")
    if fr != root1:
        raise RootMismatchError("proof does not lead to root1", expected=root1, computed=fr)
    if sr != root2:
        raise RootMismatchError("proof does not lead to root2", expected=root2, computed=sr)


def _check_consistency_preconditions(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    _require_size("size1", size1, allow_zero=True)
    _require_size("size2", size2, allow_zero=True)
    if size1 > size2:
        raise MalformedProofError(f"size1 {size1} is larger than size2 {size2}")
    _require_hash("root1", root1, MalformedProofError)
    _require_hash("root2", root2, MalformedProofError)
    _require_path(proof)
    expected = consistency_proof_length(size1, size2)
    if len(proof) != expected:
        raise MalformedProofError(
            f"consistency proof has {len(proof)} hashes; {size1} -> {size2} needs {expected}"
        )


def _verify_empty_consistency(size1: int, size2: int, root1: bytes, root2: bytes) -> None:
    """The two cases whose proof is empty: equal sizes, and growth from the empty tree."""
    if size1 == size2 and root1 != root2:
        raise RootMismatchError("equal sizes with different roots", expected=root1,
                                computed=root2)
    if size1 == 0 and root1 != EMPTY_ROOT:
        raise RootMismatchError("root1 is not the empty tree's root", expected=EMPTY_ROOT,
                                computed=root1)


def _hash_leaves(inputs: list[bytes]) -> bytes:
    prefix, join = _LEAF_PREFIX, b"".join
    return join([
        join([sha256(prefix + x).digest() for x in inputs[i : i + _CHUNK]])
        for i in range(0, len(inputs), _CHUNK)
    ])


def _hash_level(buf: bytes, count: int) -> bytes:
    """Hash adjacent pairs of a level of ``count`` nodes; an odd last node is carried up."""
    prefix, join = _NODE_PREFIX, b"".join
    end = (count // 2) * 2 * HASH_SIZE
    step = _CHUNK * 2 * HASH_SIZE
    pair = 2 * HASH_SIZE
    upper = join([
        join([sha256(prefix + buf[j : j + pair]).digest()
              for j in range(i, min(i + step, end), pair)])
        for i in range(0, end, step)
    ])
    return upper + buf[end:] if count & 1 else upper


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _first_non_bytes(inputs: list[bytes]) -> MerkleInputError:
    for i, item in enumerate(inputs):
        if not isinstance(item, (bytes, bytearray, memoryview)):
            return MerkleInputError(f"leaf input {i} is {type(item).__name__}, not bytes")
    return MerkleInputError("leaf inputs must be bytes")


def _require_bytes_like(
    name: str, value: object, error: type[MerkleInputError | MalformedProofError] = MerkleInputError
) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise error(f"{name} must be bytes, not {type(value).__name__}")


def _require_hash(
    name: str, value: object, error: type[MerkleInputError | MalformedProofError] = MerkleInputError
) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        shown = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise error(f"{name} must be a {HASH_SIZE}-byte hash, got {shown}")


def _require_size(name: str, value: object, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not _is_int(value) or value < low:  # type: ignore[operator]
        raise MalformedProofError(f"{name} must be an int >= {low}, got {value!r}")


def _require_path(proof: Sequence[bytes]) -> None:
    if isinstance(proof, (bytes, bytearray, str)) or not isinstance(proof, Sequence):
        raise MalformedProofError("proof must be a sequence of 32-byte hashes")
    # The common case, all well formed, decided without a Python-level loop.
    if set(map(type, proof)) <= {bytes} and set(map(len, proof)) <= {HASH_SIZE}:
        return
    for i, p in enumerate(proof):
        _require_hash(f"proof[{i}]", p, MalformedProofError)
