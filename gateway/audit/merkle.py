"""RFC 6962 / RFC 9162 Merkle tree hashing for the tamper-evident audit log.

Each audit record's canonical bytes become a leaf (``leaf_hash``); the log's state at size n is the Merkle
Tree Hash of its first n leaves. This module computes roots, builds inclusion and consistency proofs, and
verifies them with the iterative algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2, so that a signed
checkpoint (see :mod:`gateway.audit.checkpoint`) commits to every record before it.

Roots are computed level by level (pairs of nodes hashed together, an unpaired last node carried up
unchanged), which yields the same tree as RFC 6962's "largest power of two smaller than n" split without
recursion. :class:`MerkleAccumulator` keeps only the roots of the perfect subtrees along the right edge of
the tree (at most log2(n) hashes), so the log can append one record at a time and read its current root in
O(log n).

Proofs from stored subtrees: every hash in an inclusion or consistency proof, and every root, is the
Merkle Tree Hash of a range [a, b) of leaves whose start is a multiple of a power of two at least b - a, so
it is the right fold of the O(log n) perfect ("complete") subtrees that the binary digits of b - a mark
out from a. A perfect subtree is named by its :data:`NodeKey` (level, index): the hash of leaves
[index * 2**level, (index + 1) * 2**level). The accumulator reports each one it completes (the log stores
them as it appends), :func:`inclusion_nodes` / :func:`consistency_nodes` list the keys a proof needs, and
:func:`inclusion_proof_from_nodes` / :func:`consistency_proof_from_nodes` assemble the same bytes as
:func:`inclusion_proof` / :func:`consistency_proof`, which read every leaf.

Pure functions over bytes: no I/O, no clock, no settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "STORED_NODE_LEVEL",
    "MerkleAccumulator",
    "MissingNodes",
    "NodeKey",
    "ProofError",
    "consistency_nodes",
    "consistency_proof",
    "consistency_proof_from_nodes",
    "derived_nodes",
    "inclusion_nodes",
    "inclusion_proof",
    "inclusion_proof_from_nodes",
    "inclusion_proof_with_root",
    "leaf_hash",
    "leaf_range",
    "node_hash",
    "range_nodes",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

STORED_NODE_LEVEL = 3
"""The smallest subtrees the log stores: those of 8 leaves (level 3) and up, a quarter as many rows as every
level from 1 took (one per record appended). A smaller one, when a proof needs it, is hashed again from its 2 or
4 leaf hashes (:func:`derived_nodes`): a proof reads a dozen leaf hashes more at most. What a stored subtree also
gives, a rewrite of the records under it that ``gateway audit verify`` names even when the chain and the head
were forged to match (T-02), now starts at blocks of 8: the newest records of an incomplete block are covered by
the next signed checkpoint only. A log written before keeps its smaller subtrees, which verify still compares."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root of the empty tree: SHA-256 of the empty string (RFC 6962 section 2.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


NodeKey = tuple[int, int]
"""(level, index) of a perfect subtree: the hash of leaves [index * 2**level, (index + 1) * 2**level).

Level 0 is a leaf hash; level 1 hashes two leaves, and so on.
"""


class ProofError(ValueError):
    """An inclusion or consistency proof does not verify; the message says which check failed."""


class MissingNodes(LookupError):
    """Subtree hashes a proof needs are not at hand (for example a log written before they were stored)."""

    def __init__(self, missing: Sequence[NodeKey]) -> None:
        self.missing = tuple(missing)
        shown = ", ".join(f"level {level} index {index}" for level, index in self.missing[:5])
        more = f" and {len(self.missing) - 5} more" if len(self.missing) > 5 else ""
        super().__init__(f"{len(self.missing)} subtree hash(es) missing: {shown}{more}")


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def leaf_range(key: NodeKey) -> tuple[int, int]:
    """The leaves [start, end) of subtree ``key``."""
    level, index = key
    return index << level, (index + 1) << level


def derived_nodes(keys: Iterable[NodeKey], leaf_hashes: Mapping[int, bytes]) -> dict[NodeKey, bytes]:
    """The subtrees of ``keys`` below :data:`STORED_NODE_LEVEL` (leaves included) hashed from ``leaf_hashes``
    (index -> leaf hash): those whose every leaf is there."""
    found: dict[NodeKey, bytes] = {}
    for key in keys:
        if key[0] >= STORED_NODE_LEVEL:
            continue
        start, end = leaf_range(key)
        leaves = [leaf_hashes[i] for i in range(start, end) if i in leaf_hashes]
        if len(leaves) == end - start:
            found[key] = root_from_leaf_hashes(leaves)
    return found


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of the leaves whose leaf hashes are ``hashes`` (in log order).

    The empty tree's root is :data:`EMPTY_ROOT`. Raises ``ValueError`` if a hash is not 32 bytes.
    """
    level = list(hashes)
    _check_hashes(level, "leaf hash")
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path (RFC 6962 PATH) proving leaf ``index`` is in the tree of ``leaf_hashes``.

    Hashes are ordered from the leaf's sibling up to the child of the root, as RFC 9162 verifiers expect.
    Raises ``ValueError`` if ``index`` is not a leaf of the tree or a hash is not 32 bytes.
    """
    return inclusion_proof_with_root(leaf_hashes, index)[0]


def inclusion_proof_with_root(leaf_hashes: Sequence[bytes], index: int) -> tuple[list[bytes], bytes]:
    """Return the audit path of leaf ``index`` (as :func:`inclusion_proof`) and the tree's root, in one pass.

    Costs about n hashes for n leaves, the same as computing the root alone.
    """
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is outside a tree of size {len(leaf_hashes)}")
    level = list(leaf_hashes)
    _check_hashes(level, "leaf hash")
    proof: list[bytes] = []
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        # The last node of an odd-sized level has no sibling: it is carried up unchanged.
        if sibling < len(level):
            proof.append(level[sibling])
        position >>= 1
        level = _parent_level(level)
    return proof, level[0]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return the proof (RFC 6962 section 2.1.2, SUBPROOF) that the first ``old_size`` leaves are a prefix.

    The proof relates the tree of ``leaf_hashes[:old_size]`` to the tree of all ``leaf_hashes``. It is empty
    when ``old_size`` is 0 or equals the tree size. Raises ``ValueError`` if ``old_size`` is out of range or
    a hash is not 32 bytes.
    """
    new_size = len(leaf_hashes)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is outside 0..{new_size}")
    _check_hashes(leaf_hashes, "leaf hash")
    if old_size in (0, new_size):
        return []

    # SUBPROOF(m, D[start:end], complete) unrolled: each step descends into one half and records the
    # root of the other half; the recorded roots come out in reverse order of the recursion.
    start, end, m, complete = 0, new_size, old_size, True
    siblings: list[bytes] = []
    while m != end - start:
        split = _largest_power_of_two_below(end - start)
        if m <= split:
            siblings.append(root_from_leaf_hashes(leaf_hashes[start + split : end]))
            end = start + split
        else:
            siblings.append(root_from_leaf_hashes(leaf_hashes[start : start + split]))
            start += split
            m -= split
            complete = False
    proof = [] if complete else [root_from_leaf_hashes(leaf_hashes[start:end])]
    proof.extend(reversed(siblings))
    return proof


def range_nodes(start: int, end: int) -> list[NodeKey]:
    """Return the perfect subtrees whose right fold is the Merkle Tree Hash of leaves [start, end), largest first.

    Only ranges that RFC 6962 splits along the global tree qualify: ``start`` must be a multiple of the
    largest power of two below ``end - start`` (of ``end - start`` itself if that is a power of two), as for
    every node of a proof and for a root (start 0). Raises ``ValueError`` for any other range.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative leaf range [{start}, {end})")
    nodes: list[NodeKey] = []
    position = start
    while position < end:
        level = (end - position).bit_length() - 1
        if position & ((1 << level) - 1):
            raise ValueError(f"leaf range [{start}, {end}) is not a subtree range of the log's tree")
        nodes.append((level, position >> level))
        position += 1 << level
    return nodes


def inclusion_nodes(index: int, tree_size: int) -> list[NodeKey]:
    """Return the subtrees :func:`inclusion_proof_from_nodes` reads: the leaf, its proof and the root.

    At most about 2 log2(n) + 1 keys, without repeats. Raises ``ValueError`` if ``index`` is not a leaf.
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is outside a tree of size {tree_size}")
    return _unique([(0, index)], *(range_nodes(a, b) for a, b in _inclusion_ranges(index, tree_size)),
                   range_nodes(0, tree_size))


def consistency_nodes(old_size: int, new_size: int) -> list[NodeKey]:
    """Return the subtrees :func:`consistency_proof_from_nodes` reads: the proof's and both roots'."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} is outside 0..{new_size}")
    roots = [range_nodes(0, size) for size in (old_size, new_size) if size]
    return _unique(*(range_nodes(a, b) for a, b in _consistency_ranges(old_size, new_size)), *roots)


def inclusion_proof_from_nodes(nodes: Mapping[NodeKey, bytes], index: int,
                               tree_size: int) -> tuple[list[bytes], bytes, bytes]:
    """Return (audit path, root, leaf hash) of leaf ``index`` from the subtree hashes in ``nodes``.

    The same bytes as :func:`inclusion_proof_with_root` over the leaves the subtrees were built from, in
    O(log^2 n) hashing at worst. Raises :class:`MissingNodes` naming every key of :func:`inclusion_nodes`
    absent from ``nodes``, and ``ValueError`` if ``index`` is not a leaf or a hash is not 32 bytes.
    """
    _require_nodes(nodes, inclusion_nodes(index, tree_size))
    proof = [_range_hash(nodes, a, b) for a, b in _inclusion_ranges(index, tree_size)]
    return proof, _range_hash(nodes, 0, tree_size), nodes[(0, index)]


def consistency_proof_from_nodes(nodes: Mapping[NodeKey, bytes], old_size: int,
                                 new_size: int) -> tuple[list[bytes], bytes, bytes]:
    """Return (proof, old root, new root) of sizes ``old_size`` -> ``new_size`` from the subtrees in ``nodes``.

    The same bytes as :func:`consistency_proof` and :func:`root_from_leaf_hashes` over the leaves; raises
    :class:`MissingNodes` naming every key of :func:`consistency_nodes` absent from ``nodes``.
    """
    _require_nodes(nodes, consistency_nodes(old_size, new_size))
    proof = [_range_hash(nodes, a, b) for a, b in _consistency_ranges(old_size, new_size)]
    old_root = _range_hash(nodes, 0, old_size) if old_size else EMPTY_ROOT
    new_root = _range_hash(nodes, 0, new_size) if new_size else EMPTY_ROOT
    return proof, old_root, new_root


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges [a, b) whose hashes make the audit path of ``index`` (RFC 6962 PATH), leaf end first."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        split = _largest_power_of_two_below(end - start)
        if index < start + split:
            ranges.append((start + split, end))
            end = start + split
        else:
            ranges.append((start, start + split))
            start += split
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges [a, b) whose hashes make the consistency proof (RFC 6962 SUBPROOF), in proof order."""
    if old_size in (0, new_size):
        return []
    start, end, m, complete = 0, new_size, old_size, True
    siblings: list[tuple[int, int]] = []
    while m != end - start:
        split = _largest_power_of_two_below(end - start)
        if m <= split:
            siblings.append((start + split, end))
            end = start + split
        else:
            siblings.append((start, start + split))
            start += split
            m -= split
            complete = False
    ranges = [] if complete else [(start, end)]
    ranges.extend(reversed(siblings))
    return ranges


def _range_hash(nodes: Mapping[NodeKey, bytes], start: int, end: int) -> bytes:
    parts = [nodes[key] for key in range_nodes(start, end)]
    _check_hashes(parts, "subtree hash")
    root = parts[-1]
    for left in reversed(parts[:-1]):
        root = node_hash(left, root)
    return root


def _require_nodes(nodes: Mapping[NodeKey, bytes], needed: Iterable[NodeKey]) -> None:
    missing = [key for key in needed if key not in nodes]
    if missing:
        raise MissingNodes(missing)


def _unique(*groups: Iterable[NodeKey]) -> list[NodeKey]:
    return list(dict.fromkeys(key for group in groups for key in group))


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``tree_size`` with ``root``.

    Implements RFC 9162 section 2.1.3.2, after checking that the proof has exactly the length the index and
    size require (so padded or truncated proofs are named as such). Raises :class:`ProofError` on any
    mismatch; returns ``None`` when the proof holds.
    """
    _require_hash(leaf_hash, "leaf hash")
    _require_hash(root, "root hash")
    _require_proof_hashes(proof)
    if index < 0 or tree_size < 0:
        raise ProofError(f"negative leaf index {index} or tree size {tree_size}")
    if index >= tree_size:
        raise ProofError(f"leaf index {index} is outside a tree of size {tree_size}")
    expected = _inclusion_proof_length(index, tree_size)
    if len(proof) != expected:
        raise ProofError(
            f"inclusion proof has {len(proof)} hashes; leaf {index} of a tree of size {tree_size} "
            f"needs exactly {expected}"
        )

    fn, sn, computed = index, tree_size - 1, leaf_hash
    for sibling in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            computed = node_hash(sibling, computed)
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            computed = node_hash(computed, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if computed != root:
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the expected root of a tree of size {tree_size}"
        )


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that ``proof`` shows the tree at ``old_size`` is a prefix of the tree at ``new_size``.

    Implements RFC 9162 section 2.1.4.2 for 0 < old_size < new_size, after checking the proof length.
    Equal sizes need an empty proof and equal roots; an empty old tree needs an empty proof and the
    empty-tree root. Raises :class:`ProofError` on any mismatch; returns ``None`` when the proof holds.
    """
    _require_hash(old_root, "old root hash")
    _require_hash(new_root, "new root hash")
    _require_proof_hashes(proof)
    if old_size < 0:
        raise ProofError(f"negative old tree size {old_size}")
    if new_size < old_size:
        raise ProofError(f"new tree size {new_size} is smaller than old tree size {old_size}")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise ProofError(
                f"consistency proof from size {old_size} to size {new_size} must be empty, got {len(proof)} hashes"
            )
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("old root of an empty tree is not the empty-tree hash")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    expected = _consistency_proof_length(old_size, new_size)
    if len(proof) != expected:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes; sizes {old_size} -> {new_size} need exactly {expected}"
        )

    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one, so its root is the proof's implicit first node.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_computed = new_computed = path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            old_computed = node_hash(node, old_computed)
            new_computed = node_hash(node, new_computed)
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            new_computed = node_hash(new_computed, node)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than needed")
    if old_computed != old_root:
        raise ProofError(f"consistency proof does not reproduce the old root (size {old_size})")
    if new_computed != new_root:
        raise ProofError(f"consistency proof does not reproduce the new root (size {new_size})")


class MerkleAccumulator:
    """Append-only Merkle tree state: the size and the compact range ("frontier") of the whole tree.

    The frontier holds the roots of the perfect subtrees that make up the tree, largest (leftmost) first:
    one per set bit of the size, so at most log2(n) + 1 hashes. Appending merges equal-sized subtrees like
    a binary counter; :meth:`root` folds the frontier from the right. Persist ``size`` and ``frontier`` and
    rebuild with :meth:`from_frontier`.

    After :meth:`track_completed`, every merge (a perfect subtree of two or more leaves just completed) is
    kept as ``((level, index), hash)`` until :meth:`take_completed` hands them over: what the log stores so
    that proofs need not read every leaf.
    """

    __slots__ = ("_completed", "_frontier", "_size", "_track_from")

    def __init__(self) -> None:
        self._size = 0
        self._frontier: list[bytes] = []
        self._completed: list[tuple[NodeKey, bytes]] | None = None
        self._track_from = 1

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes]) -> MerkleAccumulator:
        """Rebuild an accumulator from a persisted ``size`` and ``frontier``.

        Raises ``ValueError`` if the number of hashes does not match the size or a hash is not 32 bytes.
        """
        if size < 0:
            raise ValueError(f"negative tree size {size}")
        if len(frontier) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(frontier)}")
        _check_hashes(frontier, "frontier hash")
        accumulator = cls()
        accumulator._size = size
        accumulator._frontier = list(frontier)
        return accumulator

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees covering the tree, leftmost (largest) first."""
        return tuple(self._frontier)

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf (its RFC 6962 leaf hash) to the right edge of the tree."""
        _require_hash(leaf_hash, "leaf hash", ValueError)
        frontier = self._frontier
        frontier.append(leaf_hash)
        # Each trailing 1 bit of the old size is a subtree of the same height as the one just completed.
        carry = self._size
        level = 0
        while carry & 1:
            right = frontier.pop()
            frontier[-1] = node_hash(frontier[-1], right)
            carry >>= 1
            level += 1
            if self._completed is not None and level >= self._track_from:
                self._completed.append(((level, self._size >> level), frontier[-1]))
        self._size += 1

    def append_subtree(self, level: int, subtree_hash: bytes) -> None:
        """Add ``2**level`` leaves at once, given the Merkle Tree Hash of their perfect subtree.

        The same as appending those leaves one by one, for a tree whose size is a multiple of ``2**level``
        (raises ``ValueError`` otherwise): this is how leaves hashed elsewhere, in aligned blocks, join the tree.
        Subtrees completed by the merge are tracked as :meth:`append` tracks them (the block's own inner
        subtrees are not: whoever hashed the block has them).
        """
        if level < 0 or self._size & ((1 << level) - 1):
            raise ValueError(f"a subtree of level {level} cannot be appended at tree size {self._size}")
        _require_hash(subtree_hash, "subtree hash", ValueError)
        frontier = self._frontier
        frontier.append(subtree_hash)
        leaves = 1 << level
        carry = self._size >> level
        while carry & 1:
            right = frontier.pop()
            frontier[-1] = node_hash(frontier[-1], right)
            carry >>= 1
            level += 1
            if self._completed is not None and level >= self._track_from:
                self._completed.append(((level, self._size >> level), frontier[-1]))
        self._size += leaves

    def track_completed(self, from_level: int = 1) -> None:
        """Start keeping the perfect subtrees of ``from_level`` and up that appends complete (see
        :meth:`take_completed`); the log stores those of :data:`STORED_NODE_LEVEL` and up."""
        self._track_from = max(from_level, 1)
        if self._completed is None:
            self._completed = []

    def take_completed(self) -> list[tuple[NodeKey, bytes]]:
        """Hand over the ``((level, index), hash)`` of subtrees completed since the last call, oldest first.

        Levels start at 1 (leaves are not repeated). Empty unless :meth:`track_completed` was called.
        """
        completed = self._completed or []
        if self._completed is not None:
            self._completed = []
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for leaf in leaf_hashes:
            self.append(leaf)

    def root(self) -> bytes:
        """Return the Merkle Tree Hash of all leaves appended so far."""
        if not self._frontier:
            return EMPTY_ROOT
        nodes = reversed(self._frontier)
        root = next(nodes)
        for left in nodes:
            root = node_hash(left, root)
        return root

    def copy(self) -> MerkleAccumulator:
        """Return an independent accumulator with the same state."""
        return MerkleAccumulator.from_frontier(self._size, self._frontier)

    def __repr__(self) -> str:
        return f"MerkleAccumulator(size={self._size}, root={self.root().hex()})"


def _parent_level(level: list[bytes]) -> list[bytes]:
    sha256 = hashlib.sha256
    parents = [
        sha256(_NODE_PREFIX + left + right).digest() for left, right in zip(level[0::2], level[1::2], strict=False)
    ]
    if len(level) & 1:
        parents.append(level[-1])
    return parents


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (for n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_proof_length(index: int, size: int) -> int:
    # Levels where the paths to leaf `index` and to the last leaf differ each contribute a sibling; above
    # them, a sibling exists only where `index` is a right child.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    # The old tree's rightmost perfect subtree sits at `level`; its root is in the proof unless it is the
    # whole old tree (old size a power of two), then the path from it to the new root as for inclusion.
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size - 1) >> level
    inner = (index ^ ((new_size - 1) >> level)).bit_length()
    return (1 if index else 0) + inner + (index >> inner).bit_count()


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for position, value in enumerate(hashes):
        if len(value) != HASH_SIZE:
            raise ValueError(f"{what} {position} is {len(value)} bytes, expected {HASH_SIZE}")


def _require_hash(value: bytes, what: str, error: type[ValueError] = ProofError) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def _require_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofError(f"proof hash {position} is {len(value)} bytes, expected {HASH_SIZE}")
