"""Proofs from stored Merkle subtrees (gateway.audit.merkle): the same bytes as proofs from every leaf.

The accumulator reports each perfect subtree it completes, the log stores them, and the proof builders read
only the O(log n) subtrees a proof needs. T-01: the RFC 6962 known-answer vectors hold for proofs built
from subtrees too; property tests compare node-based and leaf-based proofs for random sizes and indexes,
and check that both verify.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rfc6962_vectors import CONSISTENCY_VECTORS, INCLUSION_VECTORS, LEAVES, ROOTS, ConsistencyVector, InclusionVector

from gateway.audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    MissingNodes,
    NodeKey,
    consistency_nodes,
    consistency_proof,
    consistency_proof_from_nodes,
    inclusion_nodes,
    inclusion_proof_from_nodes,
    inclusion_proof_with_root,
    leaf_hash,
    range_nodes,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

LEAF_HASHES = [leaf_hash(data) for data in LEAVES]


def stored_nodes(leaves: list[bytes]) -> dict[NodeKey, bytes]:
    """What the log holds for these leaves: leaf hashes at level 0 and every subtree the appends completed."""
    tree = MerkleAccumulator()
    tree.track_completed()
    tree.extend(leaves)
    return {**{(0, i): h for i, h in enumerate(leaves)}, **dict(tree.take_completed())}


def leaves_of(count: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(8, "big")) for i in range(count)]


# --- T-01 known answers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", INCLUSION_VECTORS, ids=lambda v: f"leaf{v.index}-size{v.tree_size}")
def test_T01_inclusion_known_answers_from_stored_nodes(vector: InclusionVector) -> None:
    nodes = stored_nodes(LEAF_HASHES[: vector.tree_size])
    proof, root, leaf = inclusion_proof_from_nodes(nodes, vector.index, vector.tree_size)
    assert (tuple(proof), root, leaf) == (vector.proof, ROOTS[vector.tree_size - 1], LEAF_HASHES[vector.index])


@pytest.mark.parametrize("vector", CONSISTENCY_VECTORS, ids=lambda v: f"{v.old_size}-to-{v.new_size}")
def test_T01_consistency_known_answers_from_stored_nodes(vector: ConsistencyVector) -> None:
    nodes = stored_nodes(LEAF_HASHES[: vector.new_size])
    proof, old_root, new_root = consistency_proof_from_nodes(nodes, vector.old_size, vector.new_size)
    assert tuple(proof) == vector.proof
    assert (old_root, new_root) == (ROOTS[vector.old_size - 1], ROOTS[vector.new_size - 1])


# --- properties ---------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=3000).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(0, n))))
def test_node_proofs_equal_leaf_proofs_and_both_verify(case: tuple[int, int, int]) -> None:
    size, index, old_size = case
    leaves = leaves_of(size)
    nodes = stored_nodes(leaves)

    from_leaves, root = inclusion_proof_with_root(leaves, index)
    assert inclusion_proof_from_nodes(nodes, index, size) == (from_leaves, root, leaves[index])
    verify_inclusion(leaves[index], index, size, from_leaves, root)

    proof, old_root, new_root = consistency_proof_from_nodes(nodes, old_size, size)
    assert proof == consistency_proof(leaves, old_size)
    assert (old_root, new_root) == (root_from_leaf_hashes(leaves[:old_size]), root)
    verify_consistency(old_size, size, old_root, new_root, proof)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=600))
def test_the_accumulator_completes_exactly_the_perfect_subtrees_inside_the_tree(size: int) -> None:
    leaves = leaves_of(size)
    completed = {key: value for key, value in stored_nodes(leaves).items() if key[0] > 0}
    expected = {(level, index) for level in range(1, max(size, 1).bit_length())
                for index in range(size >> level)}
    assert set(completed) == expected
    for (level, index), value in completed.items():
        assert value == root_from_leaf_hashes(leaves[index << level:(index + 1) << level])


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**12).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(0, n))))
def test_proofs_read_only_complete_subtrees_and_few_of_them(case: tuple[int, int, int]) -> None:
    size, index, old_size = case
    bound = 2 * math.ceil(math.log2(size)) + 2
    for keys in (inclusion_nodes(index, size), consistency_nodes(old_size, size)):
        assert len(keys) == len(set(keys)) <= bound
        # every subtree read ends inside the tree, so an append has already stored it
        assert all((idx + 1) << level <= size for level, idx in keys)


def test_a_missing_subtree_is_named_not_guessed() -> None:
    nodes = stored_nodes(leaves_of(13))
    del nodes[(2, 1)], nodes[(0, 5)]
    with pytest.raises(MissingNodes) as caught:
        inclusion_proof_from_nodes(nodes, 5, 13)
    assert set(caught.value.missing) == {(0, 5)}  # (2, 1) holds leaf 5, so its path does not need it
    with pytest.raises(MissingNodes) as caught:
        inclusion_proof_from_nodes(nodes, 1, 13)
    assert caught.value.missing == ((2, 1),)
    assert "level 2 index 1" in str(caught.value)
    with pytest.raises(MissingNodes):
        consistency_proof_from_nodes(nodes, 5, 13)
    assert consistency_proof_from_nodes({}, 0, 0) == ([], EMPTY_ROOT, EMPTY_ROOT)


def test_range_nodes_splits_like_rfc6962_and_refuses_other_ranges() -> None:
    assert range_nodes(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert range_nodes(8, 13) == [(2, 2), (0, 12)]
    assert range_nodes(12, 16) == [(2, 3)]
    for start, end in ((3, 7), (4, 12), (5, 5), (-1, 2)):
        with pytest.raises(ValueError):
            range_nodes(start, end)


def test_completed_subtrees_are_handed_over_once_and_only_when_tracked() -> None:
    untracked = MerkleAccumulator()
    untracked.extend(leaves_of(4))
    assert untracked.take_completed() == []
    tracked = MerkleAccumulator()
    tracked.track_completed()
    tracked.extend(leaves_of(4))
    assert [key for key, _ in tracked.take_completed()] == [(1, 0), (1, 1), (2, 0)]
    assert tracked.take_completed() == []
    tracked.append(leaf_hash(b"5"))
    tracked.append(leaf_hash(b"6"))
    assert [key for key, _ in tracked.take_completed()] == [(1, 2)]
