"""Property tests: agreement with pymerkle (an independent RFC 9162 implementation), and every
single mutation of a valid proof is rejected.

One limit is inherent to RFC 9162 and tested as such: a Merkle Tree Hash does not commit to the
tree size. When a size mutation keeps the route from root to leaf (for example leaf 0 of 7 or
of 8 leaves: three right-hand siblings either way), the proof hashes identically and no
verifier can tell the sizes apart from (leaf, index, size, path, root) alone. That is why the
anchor records the tree size next to the root, and the receipt's size is checked against it.
Every size mutation that changes the route is rejected; see test_size_is_not_committed_by_root.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from tests.verifier.rfc9162_reference import path_sides, proof_sides
from verifier.errors import ProofError
from verifier.merkle import MerkleTree, verify_consistency, verify_inclusion

# Unique leaves: a "mutation" that moves a leaf to an index holding an equal leaf would be a
# true statement, not a forgery.
leaf_lists = st.lists(st.binary(max_size=48), min_size=1, max_size=160, unique=True)


def _pymerkle_tree(leaves: list[bytes]) -> Any:
    tree = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        tree.append_entry(leaf)
    return tree


@given(leaves=leaf_lists, data=st.data())
def test_agrees_with_pymerkle(leaves: list[bytes], data: st.DataObject) -> None:
    ours = MerkleTree(leaves)
    theirs = _pymerkle_tree(leaves)
    assert ours.root == theirs.get_root()
    index = data.draw(st.integers(0, len(leaves) - 1))
    # pymerkle's path starts with the leaf hash itself (and uses 1-based indices).
    their_path = [bytes.fromhex(h) for h in theirs.prove_inclusion(index + 1).serialize()["path"]]
    assert their_path[0] == ours.leaf_hash_at(index)
    assert their_path[1:] == ours.inclusion_proof(index)
    old_size = data.draw(st.integers(1, len(leaves)))
    assert theirs.get_root(old_size) == MerkleTree(leaves[:old_size]).root


def _assert_rejected(name: str, verify: Callable[..., None], *args: Any) -> None:
    try:
        verify(*args)
    except ProofError:
        return
    pytest.fail(f"mutation {name} verified: {args!r}")


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _same_route(index: int, size: int, index2: int, size2: int) -> bool:
    return 0 <= index2 < size2 and path_sides(index, size) == path_sides(index2, size2)


def _same_consistency_route(size1: int, size2: int, m: int, n: int) -> bool:
    return 0 < m < n and proof_sides(size1, size2) == proof_sides(m, n)


def test_size_is_not_committed_by_root() -> None:
    """The documented limit: leaf 0's proof in an 8-leaf tree also verifies as size 5, 6 or 7,
    while any size whose route differs is rejected."""
    leaves = [bytes([i]) for i in range(8)]
    tree = MerkleTree(leaves)
    path = tree.inclusion_proof(0)
    for size in (5, 6, 7, 8):
        assert path_sides(0, size) == ["R", "R", "R"]
        verify_inclusion(leaves[0], 0, size, path, tree.root)
    for size in (4, 9):
        with pytest.raises(ProofError):
            verify_inclusion(leaves[0], 0, size, path, tree.root)
    # The last leaf has a route that pins the size exactly.
    with pytest.raises(ProofError):
        verify_inclusion(leaves[7], 7, 9, tree.inclusion_proof(7), tree.root)


InclusionArgs = tuple[bytes, int, int, list[bytes], bytes]


def _inclusion_mutations(
    args: InclusionArgs, leaves: list[bytes], other_root: bytes, bit: int
) -> dict[str, InclusionArgs]:
    leaf, index, size, path, root = args
    cases: dict[str, InclusionArgs] = {
        "flip-root": (leaf, index, size, path, _flip(root, bit)),
        "flip-leaf": (_flip(leaf, bit) if leaf else b"\x00", index, size, path, root),
        "wrong-leaf": (leaves[(index + 1) % size] if size > 1 else leaf + b"x",
                       index, size, path, root),
        "index+1": (leaf, index + 1, size, path, root),
        "index-1": (leaf, index - 1, size, path, root),
        "size+1": (leaf, index, size + 1, path, root),
        "size-1": (leaf, index, size - 1, path, root),
        "extended": (leaf, index, size, [*path, root], root),
        "swapped-root": (leaf, index, size, path, other_root),
    }
    if path:
        for i in range(len(path)):
            flipped = [*path[:i], _flip(path[i], bit), *path[i + 1 :]]
            cases[f"flip-path-{i}"] = (leaf, index, size, flipped, root)
        cases["truncated"] = (leaf, index, size, path[:-1], root)
        cases["dropped-first"] = (leaf, index, size, path[1:], root)
        if len(path) > 1:
            cases["reversed"] = (leaf, index, size, path[::-1], root)
    return cases


@given(leaves=leaf_lists, data=st.data())
def test_every_single_inclusion_mutation_is_rejected(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, tree.size - 1), label="index")
    bit = data.draw(st.integers(0, 255), label="bit")
    args: InclusionArgs = (leaves[index], index, tree.size, tree.inclusion_proof(index), tree.root)
    verify_inclusion(*args)
    other_root = MerkleTree([*leaves[:-1], leaves[-1] + b"!"]).root
    for name, mutated in _inclusion_mutations(args, leaves, other_root, bit).items():
        if name == "wrong-leaf":
            assume(mutated[0] != leaves[index])
        if name.startswith("size") and _same_route(index, tree.size, mutated[1], mutated[2]):
            verify_inclusion(*mutated)  # indistinguishable by construction, see module doc
            continue
        _assert_rejected(name, verify_inclusion, *mutated)


ConsistencyArgs = tuple[int, int, list[bytes], bytes, bytes]


def _consistency_mutations(args: ConsistencyArgs, bit: int) -> dict[str, ConsistencyArgs]:
    size1, size2, proof, root1, root2 = args
    cases: dict[str, ConsistencyArgs] = {
        "flip-root1": (size1, size2, proof, _flip(root1, bit), root2),
        "flip-root2": (size1, size2, proof, root1, _flip(root2, bit)),
        "swapped-roots": (size1, size2, proof, root2, root1),
        "size1+1": (size1 + 1, size2, proof, root1, root2),
        "size1-1": (size1 - 1, size2, proof, root1, root2),
        "size2+1": (size1, size2 + 1, proof, root1, root2),
        "size2-1": (size1, size2 - 1, proof, root1, root2),
        "truncated": (size1, size2, proof[:-1], root1, root2),
        "extended": (size1, size2, [*proof, root2], root1, root2),
    }
    for i in range(len(proof)):
        flipped = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
        cases[f"flip-proof-{i}"] = (size1, size2, flipped, root1, root2)
    return cases


@given(leaves=leaf_lists.filter(lambda v: len(v) >= 2), data=st.data())
def test_every_single_consistency_mutation_is_rejected(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size2 = len(leaves)
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    bit = data.draw(st.integers(0, 255), label="bit")
    new = MerkleTree(leaves)
    args: ConsistencyArgs = (size1, size2, new.consistency_proof(size1),
                             MerkleTree(leaves[:size1]).root, new.root)
    verify_consistency(*args)
    for name, mutated in _consistency_mutations(args, bit).items():
        if name.startswith("size") and _same_consistency_route(size1, size2, *mutated[:2]):
            verify_consistency(*mutated)  # indistinguishable by construction, see module doc
            continue
        _assert_rejected(name, verify_consistency, *mutated)


@given(leaves=leaf_lists, data=st.data())
def test_equal_size_consistency_rejects_any_other_root(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree(leaves)
    bit = data.draw(st.integers(0, 255))
    verify_consistency(tree.size, tree.size, [], tree.root, tree.root)
    with pytest.raises(ProofError):
        verify_consistency(tree.size, tree.size, [], tree.root, _flip(tree.root, bit))
    with pytest.raises(ProofError):
        verify_consistency(tree.size, tree.size, [tree.root], tree.root, tree.root)
