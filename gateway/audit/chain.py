"""Hash chain and Merkle bookkeeping of the audit log, independent of where records are stored.

Each record's canonical JSON (RFC 8785) becomes an RFC 6962 leaf hash; the chain hash is
SHA-256(previous chain hash || leaf hash), starting from 32 zero bytes. The Merkle accumulator gives the
current tree root in O(log n) per append, so checkpoints can be signed without rereading the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.audit.canonical import canonical_json_float_free
from gateway.audit.merkle import MerkleAccumulator, leaf_hash
from gateway.audit.record import AuditRecord

__all__ = ["GENESIS_CHAIN_HASH", "ChainHead", "ChainedEntry", "chain_hash", "extend"]

GENESIS_CHAIN_HASH = bytes(32)


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()


@dataclass(frozen=True, slots=True)
class ChainedEntry:
    """A record ready to store: its index, canonical bytes and hashes."""

    index: int
    canonical: bytes
    leaf_hash: bytes
    chain_hash: bytes


@dataclass(slots=True)
class ChainHead:
    """The state after the last record: size, chain hash and Merkle frontier."""

    size: int
    chain_hash: bytes
    tree: MerkleAccumulator

    @classmethod
    def genesis(cls) -> ChainHead:
        return cls(size=0, chain_hash=GENESIS_CHAIN_HASH, tree=MerkleAccumulator())

    def root(self) -> bytes:
        return self.tree.root()


def extend(head: ChainHead, records: Sequence[AuditRecord], recorded_at: datetime) -> list[ChainedEntry]:
    """Append ``records`` after ``head`` (which is mutated) and return the stored form of each."""
    entries: list[ChainedEntry] = []
    recorded = recorded_at.isoformat()  # what AuditRecord.for_log writes, once for all of them
    for record in records:
        data = canonical_json_float_free(record.log_body(head.size, head.chain_hash, recorded))
        leaf = leaf_hash(data)
        head.chain_hash = chain_hash(head.chain_hash, leaf)
        head.tree.append(leaf)
        entries.append(ChainedEntry(head.size, data, leaf, head.chain_hash))
        head.size += 1
    return entries
