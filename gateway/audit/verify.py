"""Offline verification of the audit log: recompute every hash and name the first bad index.

Checks, for each stored entry in index order: no gap or repeat in indexes; the stored text is the RFC 8785
canonical form of itself; its ``log_index`` and ``prev_chain_hash`` fields match its position; the leaf hash
and chain hash recompute; and at the end that the head's size, chain hash and Merkle root match.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.audit.canonical import CanonicalJSONError, canonical_json
from gateway.audit.chain import GENESIS_CHAIN_HASH, ChainHead, chain_hash
from gateway.audit.merkle import MerkleAccumulator, leaf_hash

__all__ = ["VerificationReport", "verify_log"]


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """Outcome of :func:`verify_log`."""

    ok: bool
    size: int
    root_hex: str
    first_bad_index: int | None = None
    problem: str | None = None


def verify_log(entries: Iterable[Mapping[str, Any]], head: ChainHead) -> VerificationReport:
    """Verify stored entries (``idx``, ``record``, ``leaf_hash``, ``chain_hash``) against the head."""
    tree = MerkleAccumulator()
    previous = GENESIS_CHAIN_HASH
    expected = 0
    for entry in entries:
        index = int(entry["idx"])
        problem = _check_entry(entry, expected, previous)
        if problem is not None:
            return VerificationReport(False, expected, tree.root().hex(), min(index, expected), problem)
        leaf = bytes(entry["leaf_hash"])
        previous = chain_hash(previous, leaf)
        tree.append(leaf)
        expected += 1
    if expected != head.size:
        return VerificationReport(False, expected, tree.root().hex(), expected,
                                  f"the head says {head.size} records, the log holds {expected}")
    if previous != head.chain_hash:
        return VerificationReport(False, expected, tree.root().hex(), expected - 1 if expected else 0,
                                  "chain hash of the last record differs from the head")
    if tree.root() != head.root():
        return VerificationReport(False, expected, tree.root().hex(), expected - 1 if expected else 0,
                                  "Merkle root differs from the head")
    return VerificationReport(True, expected, tree.root().hex())


def _check_entry(entry: Mapping[str, Any], expected: int, previous: bytes) -> str | None:
    index = int(entry["idx"])
    if index != expected:
        return f"expected index {expected}, found {index} (gap, repeat or reordering)"
    text = str(entry["record"])
    try:
        body = json.loads(text)
        if canonical_json(body).decode("utf-8") != text:
            return "record text is not in canonical form (edited)"
    except (ValueError, CanonicalJSONError):
        return "record text is not valid JSON"
    if body.get("log_index") != index:
        return "record's log_index does not match its position"
    if body.get("prev_chain_hash") != previous.hex():
        return "record's prev_chain_hash does not match the chain"
    leaf = leaf_hash(text.encode("utf-8"))
    if leaf != bytes(entry["leaf_hash"]):
        return "leaf hash does not match the record"
    if chain_hash(previous, leaf) != bytes(entry["chain_hash"]):
        return "chain hash does not match"
    return None
