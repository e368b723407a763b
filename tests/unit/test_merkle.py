"""Tests for the audit log's Merkle tree (gateway.audit.merkle) and its leaf input (gateway.audit.canonical).

T-01: RFC 6962 known-answer vectors from transparency-dev/merkle (see rfc6962_vectors.py), valid and
corrupted, for inclusion and consistency proofs. Property tests compare every proof and root with a direct
transcription of the recursive definitions in RFC 6962 section 2.1 and check that verification accepts
every honest proof and rejects altered ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rfc6962_vectors import (
    CONSISTENCY_VECTORS,
    EMPTY_TREE_HASH,
    HASHER_VECTORS,
    INCLUSION_VECTORS,
    LEAVES,
    ROOTS,
    SOME_HASH,
    ConsistencyVector,
    HasherVector,
    InclusionVector,
)

from gateway.audit.canonical import CanonicalJSONError, canonical_json
from gateway.audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

LEAF_HASHES = tuple(leaf_hash(data) for data in LEAVES)


def _root(size: int) -> bytes:
    return ROOTS[size - 1]


def _leaves(count: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(8, "big")) for i in range(count)]


def _flip_bit(proof: Sequence[bytes], position: int, mask: int) -> list[bytes]:
    altered = list(proof)
    altered[position] = bytes([altered[position][0] ^ mask]) + altered[position][1:]
    return altered


# --- RFC 6962 section 2.1, transcribed recursively: the reference the fast code is checked against ---


def _mth(hashes: Sequence[bytes]) -> bytes:
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def _path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*_path(m, hashes[:k]), _mth(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _mth(hashes[:k])]


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [_mth(hashes)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*_subproof(m, hashes[:k], complete), _mth(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), _mth(hashes[:k])]


# --- T-01 known answers ---


@pytest.mark.parametrize("vector", HASHER_VECTORS, ids=lambda v: v.description)
def test_T01_leaf_and_node_hash_known_answers(vector: HasherVector) -> None:
    if vector.kind == "empty":
        assert root_from_leaf_hashes([]) == vector.expected == EMPTY_ROOT
    elif vector.kind == "leaf":
        assert leaf_hash(vector.inputs[0]) == vector.expected
    else:
        assert node_hash(vector.inputs[0], vector.inputs[1]) == vector.expected


def test_T01_tree_roots_known_answer_vectors() -> None:
    accumulator = MerkleAccumulator()
    for size in range(1, len(LEAVES) + 1):
        assert root_from_leaf_hashes(LEAF_HASHES[:size]) == _root(size)
        accumulator.append(LEAF_HASHES[size - 1])
        assert accumulator.root() == _root(size)


@pytest.mark.parametrize("vector", INCLUSION_VECTORS, ids=lambda v: f"leaf{v.index}-size{v.tree_size}")
def test_T01_inclusion_known_answer_vectors(vector: InclusionVector) -> None:
    proof = inclusion_proof(LEAF_HASHES[: vector.tree_size], vector.index)
    assert tuple(proof) == vector.proof
    verify_inclusion(LEAF_HASHES[vector.index], vector.index, vector.tree_size, vector.proof, _root(vector.tree_size))


@pytest.mark.parametrize("vector", CONSISTENCY_VECTORS, ids=lambda v: f"{v.old_size}-to-{v.new_size}")
def test_T01_consistency_known_answer_vectors(vector: ConsistencyVector) -> None:
    proof = consistency_proof(LEAF_HASHES[: vector.new_size], vector.old_size)
    assert tuple(proof) == vector.proof
    verify_consistency(vector.old_size, vector.new_size, _root(vector.old_size), _root(vector.new_size), vector.proof)


# --- T-01 corrupted proofs (the probes of transparency-dev/merkle proof/verify_test.go) ---


class InclusionProbe(NamedTuple):
    description: str
    index: int
    tree_size: int
    root: bytes
    leaf: bytes
    proof: Sequence[bytes]


class ConsistencyProbe(NamedTuple):
    description: str
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: Sequence[bytes]


def _corrupted_inclusion_probes(vector: InclusionVector) -> list[InclusionProbe]:
    i, n, p = vector.index, vector.tree_size, list(vector.proof)
    root, leaf = _root(n), LEAF_HASHES[i]
    probes = [
        InclusionProbe("wrong index: index - 1", i - 1, n, root, leaf, p),
        InclusionProbe("wrong index: index + 1", i + 1, n, root, leaf, p),
        InclusionProbe("wrong index: index ^ 2", i ^ 2, n, root, leaf, p),
        InclusionProbe("wrong size: size * 2", i, n * 2, root, leaf, p),
        InclusionProbe("wrong size: size // 2", i, n // 2, root, leaf, p),
        InclusionProbe("wrong leaf (bytes)", i, n, root, b"WrongLeaf", p),
        InclusionProbe("wrong leaf (hash)", i, n, root, leaf_hash(b"WrongLeaf"), p),
        InclusionProbe("empty-tree root", i, n, EMPTY_TREE_HASH, leaf, p),
        InclusionProbe("random root", i, n, SOME_HASH, leaf, p),
        InclusionProbe("padded: trailing garbage", i, n, root, leaf, [*p, b""]),
        InclusionProbe("padded: trailing root", i, n, root, leaf, [*p, root]),
        InclusionProbe("padded: preceding garbage", i, n, root, leaf, [b"", *p]),
        InclusionProbe("padded: preceding root", i, n, root, leaf, [root, *p]),
    ]
    probes += [
        InclusionProbe(f"flipped bit 3 of proof[{k}]", i, n, root, leaf, _flip_bit(p, k, 8)) for k in range(len(p))
    ]
    if p:
        probes.append(InclusionProbe("truncated: last hash removed", i, n, root, leaf, p[:-1]))
    if len(p) > 1:
        probes.append(InclusionProbe("inserted hash", i, n, root, leaf, [p[0], SOME_HASH, *p[1:]]))
    return probes


def _corrupted_consistency_probes(vector: ConsistencyVector) -> list[ConsistencyProbe]:
    m, n, p = vector.old_size, vector.new_size, list(vector.proof)
    r1, r2 = _root(m), _root(n)
    probes = [
        ConsistencyProbe("wrong old size: - 1", m - 1, n, r1, r2, p),
        ConsistencyProbe("wrong old size: + 1", m + 1, n, r1, r2, p),
        ConsistencyProbe("wrong old size: ^ 2", m ^ 2, n, r1, r2, p),
        ConsistencyProbe("wrong new size: * 2", m, n * 2, r1, r2, p),
        ConsistencyProbe("wrong new size: // 2", m, n // 2, r1, r2, p),
        ConsistencyProbe("wrong old root (bytes)", m, n, b"WrongRoot", r2, p),
        ConsistencyProbe("wrong new root (bytes)", m, n, r1, b"WrongRoot", p),
        ConsistencyProbe("wrong old root (hash)", m, n, SOME_HASH, r2, p),
        ConsistencyProbe("wrong new root (hash)", m, n, r1, SOME_HASH, p),
        ConsistencyProbe("swapped roots", m, n, r2, r1, p),
        ConsistencyProbe("empty proof", m, n, r1, r2, []),
        ConsistencyProbe("padded: trailing garbage", m, n, r1, r2, [*p, b""]),
        ConsistencyProbe("padded: trailing old root", m, n, r1, r2, [*p, r1]),
        ConsistencyProbe("padded: trailing new root", m, n, r1, r2, [*p, r2]),
        ConsistencyProbe("padded: preceding garbage", m, n, r1, r2, [b"", *p]),
        ConsistencyProbe("padded: preceding old root", m, n, r1, r2, [r1, *p]),
        ConsistencyProbe("padded: preceding new root", m, n, r1, r2, [r2, *p]),
        ConsistencyProbe("padded: preceding proof[0]", m, n, r1, r2, [p[0], *p]),
        ConsistencyProbe("truncated: last hash removed", m, n, r1, r2, p[:-1]),
    ]
    probes += [
        ConsistencyProbe(f"flipped bit 4 of proof[{k}]", m, n, r1, r2, _flip_bit(p, k, 16)) for k in range(len(p))
    ]
    return probes


@pytest.mark.parametrize("vector", INCLUSION_VECTORS, ids=lambda v: f"leaf{v.index}-size{v.tree_size}")
def test_T01_corrupted_inclusion_proofs_rejected(vector: InclusionVector) -> None:
    accepted = []
    for probe in _corrupted_inclusion_probes(vector):
        try:
            verify_inclusion(probe.leaf, probe.index, probe.tree_size, probe.proof, probe.root)
        except ProofError:
            continue
        accepted.append(probe.description)
    assert accepted == []


@pytest.mark.parametrize(
    "vector", [v for v in CONSISTENCY_VECTORS if v.proof], ids=lambda v: f"{v.old_size}-to-{v.new_size}"
)
def test_T01_corrupted_consistency_proofs_rejected(vector: ConsistencyVector) -> None:
    accepted = []
    for probe in _corrupted_consistency_probes(vector):
        try:
            verify_consistency(probe.old_size, probe.new_size, probe.old_root, probe.new_root, probe.proof)
        except ProofError:
            continue
        accepted.append(probe.description)
    assert accepted == []


_PROOF_5_OF_8 = list(INCLUSION_VECTORS[2].proof)  # leaf index 5 in the 8-leaf tree
_LEAF_5 = LEAF_HASHES[5]


@pytest.mark.parametrize(
    ("leaf", "index", "size", "proof", "reason"),
    [
        pytest.param(LEAF_HASHES[4], 5, 8, _PROOF_5_OF_8, "does not lead to the expected root", id="wrong leaf"),
        pytest.param(_LEAF_5, 4, 8, _PROOF_5_OF_8, "does not lead to the expected root", id="wrong index"),
        pytest.param(_LEAF_5, 8, 8, _PROOF_5_OF_8, "outside a tree of size 8", id="index equal to size"),
        # Not size 7: leaf 5's path has the same shape in trees of 7 and 8 leaves, so the proof binds the
        # root, not the size. Checkpoints sign size and root together, which closes that gap.
        pytest.param(_LEAF_5, 5, 6, _PROOF_5_OF_8, "needs exactly 2", id="wrong size"),
        pytest.param(
            _LEAF_5, 5, 8, _flip_bit(_PROOF_5_OF_8, 1, 1), "does not lead to the expected root", id="flipped bit"
        ),
        pytest.param(_LEAF_5, 5, 8, _PROOF_5_OF_8[:-1], "needs exactly 3", id="truncated proof"),
        pytest.param(_LEAF_5, 5, 8, [*_PROOF_5_OF_8, SOME_HASH], "needs exactly 3", id="padded proof"),
        pytest.param(
            _LEAF_5, 5, 8, [_PROOF_5_OF_8[0][:31], *_PROOF_5_OF_8[1:]], "proof hash 0 is 31 bytes", id="short hash"
        ),
    ],
)
def test_T01_corrupted_proofs_rejected(leaf: bytes, index: int, size: int, proof: list[bytes], reason: str) -> None:
    with pytest.raises(ProofError, match=reason):
        verify_inclusion(leaf, index, size, proof, _root(8))


def test_T01_corrupted_consistency_proofs_name_the_failure() -> None:
    proof = list(CONSISTENCY_VECTORS[2].proof)  # 6 -> 8
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(6, 8, _root(5), _root(8), proof)
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(6, 8, _root(6), _root(7), proof)
    with pytest.raises(ProofError, match="need exactly 3"):
        verify_consistency(6, 8, _root(6), _root(8), proof[:-1])
    with pytest.raises(ProofError, match="need exactly 3"):
        verify_consistency(6, 8, _root(6), _root(8), [*proof, SOME_HASH])
    with pytest.raises(ProofError, match="smaller than old tree size"):
        verify_consistency(8, 6, _root(8), _root(6), proof)


def test_T01_inclusion_edge_cases() -> None:
    data_hash = leaf_hash(b"data")
    verify_inclusion(data_hash, 0, 1, [], data_hash)  # a one-leaf tree's root is its leaf hash
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(SOME_HASH, index, size, [], EMPTY_TREE_HASH)
    with pytest.raises(ProofError):
        verify_inclusion(data_hash, 0, 1, [], b"")
    with pytest.raises(ProofError):
        verify_inclusion(b"", 0, 1, [], data_hash)


def test_T01_consistency_edge_cases() -> None:
    other = SOME_HASH
    verify_consistency(0, 0, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [])
    verify_consistency(0, 5, EMPTY_TREE_HASH, other, [])  # every tree extends the empty tree
    verify_consistency(1, 1, other, other, [])
    rejected = [
        (0, 0, EMPTY_TREE_HASH, other, []),  # equal sizes, different roots
        (1, 1, EMPTY_TREE_HASH, other, []),
        (0, 1, other, other, []),  # an empty tree has the empty-tree root
        (1, 0, other, other, []),  # time travel to the past
        (2, 1, other, other, []),
        (1, 2, other, other, []),  # proof needed but empty
        (0, 0, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH]),  # roots match, proof not empty
        (0, 1, EMPTY_TREE_HASH, other, [EMPTY_TREE_HASH]),
        (1, 1, other, other, [EMPTY_TREE_HASH]),
    ]
    for old_size, new_size, old_root, new_root, proof in rejected:
        with pytest.raises(ProofError):
            verify_consistency(old_size, new_size, old_root, new_root, proof)


def test_proof_builders_reject_bad_arguments() -> None:
    hashes = _leaves(4)
    for index in (-1, 4):
        with pytest.raises(ValueError, match="outside a tree of size 4"):
            inclusion_proof(hashes, index)
    for old_size in (-1, 5):
        with pytest.raises(ValueError, match="outside"):
            consistency_proof(hashes, old_size)
    with pytest.raises(ValueError, match="leaf hash 1 is 3 bytes"):
        root_from_leaf_hashes([hashes[0], b"abc"])
    assert consistency_proof(hashes, 0) == consistency_proof(hashes, 4) == []


def test_one_byte_edit_reorder_and_truncation_change_the_root() -> None:
    records = [f'{{"record":{i}}}'.encode() for i in range(20)]
    hashes = [leaf_hash(r) for r in records]
    root = root_from_leaf_hashes(hashes)

    edited = list(records)
    edited[7] = edited[7][:-2] + b"8}"
    edited_hashes = [leaf_hash(r) for r in edited]
    assert root_from_leaf_hashes(edited_hashes) != root
    with pytest.raises(ProofError):
        verify_inclusion(edited_hashes[7], 7, 20, inclusion_proof(hashes, 7), root)

    reordered = [hashes[1], hashes[0], *hashes[2:]]
    assert root_from_leaf_hashes(reordered) != root

    # A truncated log cannot be shown to extend the checkpoint it fell behind.
    with pytest.raises(ProofError, match="smaller"):
        verify_consistency(20, 19, root, root_from_leaf_hashes(hashes[:19]), [])


# --- properties ---


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_proof_verifies_and_matches_rfc6962_path(size_and_index: tuple[int, int]) -> None:
    size, index = size_and_index
    hashes = _leaves(size)
    root = root_from_leaf_hashes(hashes)
    assert root == _mth(hashes)
    proof = inclusion_proof(hashes, index)
    assert proof == _path(index, hashes)
    verify_inclusion(hashes[index], index, size, proof, root)
    if index + 1 < size:
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index + 1], index, size, proof, root)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_every_consistency_proof_verifies_and_matches_rfc6962_subproof(sizes: tuple[int, int]) -> None:
    old_size, new_size = sizes
    hashes = _leaves(new_size)
    old_root, new_root = root_from_leaf_hashes(hashes[:old_size]), root_from_leaf_hashes(hashes)
    proof = consistency_proof(hashes, old_size)
    assert proof == _subproof(old_size, hashes, True)
    verify_consistency(old_size, new_size, old_root, new_root, proof)
    verify_consistency(0, new_size, EMPTY_ROOT, new_root, [])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_flipped_bit_in_a_proof_is_rejected(data: st.DataObject) -> None:
    new_size = data.draw(st.integers(min_value=2, max_value=200), label="new_size")
    hashes = _leaves(new_size)
    root = root_from_leaf_hashes(hashes)
    index = data.draw(st.integers(0, new_size - 1), label="index")
    proof = inclusion_proof(hashes, index)
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    byte, bit = data.draw(st.integers(0, 31), label="byte"), data.draw(st.integers(0, 7), label="bit")
    altered = list(proof)
    altered[position] = (
        altered[position][:byte] + bytes([altered[position][byte] ^ (1 << bit)]) + altered[position][byte + 1 :]
    )
    with pytest.raises(ProofError):
        verify_inclusion(hashes[index], index, new_size, altered, root)

    old_size = data.draw(st.integers(1, new_size - 1), label="old_size")
    proof = consistency_proof(hashes, old_size)
    position = data.draw(st.integers(0, len(proof) - 1), label="consistency position")
    altered = list(proof)
    altered[position] = (
        altered[position][:byte] + bytes([altered[position][byte] ^ (1 << bit)]) + altered[position][byte + 1 :]
    )
    with pytest.raises(ProofError):
        verify_consistency(old_size, new_size, root_from_leaf_hashes(hashes[:old_size]), root, altered)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=16), max_size=150), st.data())
def test_accumulator_root_equals_batch_root(records: list[bytes], data: st.DataObject) -> None:
    hashes = [leaf_hash(r) for r in records]
    accumulator = MerkleAccumulator()
    assert accumulator.root() == EMPTY_ROOT
    for size, h in enumerate(hashes, start=1):
        accumulator.append(h)
        assert accumulator.size == size
        assert len(accumulator.frontier) == size.bit_count()
        assert accumulator.root() == root_from_leaf_hashes(hashes[:size])

    # Persist and restore at an arbitrary point, then carry on appending.
    cut = data.draw(st.integers(0, len(hashes)), label="cut")
    partial = MerkleAccumulator()
    partial.extend(hashes[:cut])
    restored = MerkleAccumulator.from_frontier(partial.size, list(partial.frontier))
    restored.extend(hashes[cut:])
    assert restored.size == accumulator.size
    assert restored.frontier == accumulator.frontier
    assert restored.root() == accumulator.root()


def test_accumulator_matches_batch_root_for_a_large_tree() -> None:
    hashes = _leaves(70_001)
    accumulator = MerkleAccumulator()
    accumulator.extend(hashes)
    assert accumulator.root() == root_from_leaf_hashes(hashes)
    copy = accumulator.copy()
    copy.append(hashes[0])
    assert accumulator.size == 70_001
    assert copy.root() == root_from_leaf_hashes([*hashes, hashes[0]])


def test_accumulator_rejects_bad_state() -> None:
    with pytest.raises(ValueError, match="has 2 frontier hashes, got 1"):
        MerkleAccumulator.from_frontier(3, [SOME_HASH])
    with pytest.raises(ValueError, match="frontier hash 0 is 4 bytes"):
        MerkleAccumulator.from_frontier(1, [b"abcd"])
    with pytest.raises(ValueError, match="negative"):
        MerkleAccumulator.from_frontier(-1, [])
    with pytest.raises(ValueError, match="leaf hash is 3 bytes"):
        MerkleAccumulator().append(b"abc")


# --- leaf input: canonical JSON (RFC 8785) ---


def test_canonical_json_matches_rfc8785_examples() -> None:
    # RFC 8785 section 3.2.2 input and output.
    source = (
        r'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        r' "string": "\u20ac$\u000F\u000aA' + "'" + r'\u0042\u0022\u005c\\\"\/",'
        r' "literals": [null, true, false]}'
    )
    expected = (
        r'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        r'"string":"€$\u000f\nA' + "'" + r'B\"\\\\\"/"}'
    )
    assert canonical_json(json.loads(source)) == expected.encode()

    # RFC 8785 section 3.2.3: properties sorted by UTF-16 code units.
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    ordered = list(json.loads(canonical_json(dict.fromkeys(keys, 0))))
    assert ordered == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_canonical_json_is_independent_of_key_order_and_container_type() -> None:
    a = {"b": [1, 2, {"y": None, "x": True}], "a": "\u00e8"}
    b = {"a": "\u00e8", "b": (1, 2, {"x": True, "y": None})}
    assert canonical_json(a) == canonical_json(b) == '{"a":"è","b":[1,2,{"x":true,"y":null}]}'.encode()
    assert leaf_hash(canonical_json(a)) == leaf_hash(canonical_json(b))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"score": float("nan")}, r"\$\.score: NaN and infinite"),
        ({"list": [1, float("inf")]}, r"\$\.list\[1\]: NaN and infinite"),
        ({"n": 2**53}, r"\$\.n: integer outside"),
        ({"when": object()}, r"\$\.when: object is not a JSON type"),
        ({"raw": b"x"}, r"\$\.raw: bytes is not a JSON type"),
        ({"tags": {"a", "b"}}, r"\$\.tags: set is not a JSON type"),
        ({1: "one"}, r"\$: object key of type int"),
        ({"odd key": "\ud800"}, r'\$\["odd key"\]: string contains a lone surrogate'),
    ],
)
def test_canonical_json_refuses_values_json_cannot_carry(value: object, message: str) -> None:
    with pytest.raises(CanonicalJSONError, match=message):
        canonical_json(value)


def test_canonical_json_error_does_not_echo_values() -> None:
    with pytest.raises(CanonicalJSONError) as caught:
        canonical_json({"phone": 393331234567890123})
    assert "393331234567890123" not in str(caught.value)
