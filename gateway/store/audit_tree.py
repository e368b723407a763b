"""The audit log's Merkle tree as stored: leaf hashes and the hashes of complete subtrees.

Leaf hashes are a column of ``audit_log`` (migration 0001); table ``audit_merkle_nodes`` (0007) holds the hash of
every complete subtree of :data:`~gateway.audit.merkle.STORED_NODE_LEVEL` (8 leaves) and above (of level 1 and above
in a log written before), written in the same transaction as the records that complete it
(:meth:`~gateway.store.audit_log.AuditLogRepository.append_audit`). Inclusion and consistency proofs, and
``gateway audit verify``, read them here instead of hashing every leaf again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.audit.merkle import STORED_NODE_LEVEL, NodeKey, derived_nodes, leaf_range
from gateway.store.base import Repository
from gateway.store.tables import audit_log, audit_merkle_nodes

__all__ = ["AuditTreeRepository"]

_ADD_NODES_POSTGRESQL = (
    "INSERT INTO audit_merkle_nodes (level, idx, hash) "
    "SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[]) ON CONFLICT (level, idx) DO NOTHING"
)


class AuditTreeRepository(Repository):
    """Leaf and subtree hashes of the audit log."""

    async def audit_leaf_hashes(self, tree_size: int, start: int = 0) -> list[bytes]:
        """Stored leaf hashes of records ``start .. tree_size - 1`` in index order, in one query."""
        rows = await self.conn.execute(
            select(audit_log.c.leaf_hash)
            .where(audit_log.c.idx >= start, audit_log.c.idx < tree_size)
            .order_by(audit_log.c.idx)
        )
        return [bytes(h) for h in rows.scalars()]

    async def audit_tree_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """The hashes of these Merkle subtrees, in one query: those of :data:`STORED_NODE_LEVEL` and up from
        ``audit_merkle_nodes``, the smaller ones (leaves included) hashed from the records' leaf hashes. Keys not
        stored (yet), or whose leaves are not all there, are absent from the result."""
        # Plain SQL with one bind per key or leaf range: the statement's text depends only on how many there are,
        # so it is compiled once per shape, and each term is a primary-key lookup or range on both engines.
        params: dict[str, int] = {}
        ranges: list[str] = []
        nodes: list[str] = []
        for n, key in enumerate(dict.fromkeys(keys)):
            level, index = key
            if level < STORED_NODE_LEVEL:
                params[f"a{n}"], params[f"b{n}"] = leaf_range(key)
                ranges.append(f"(idx >= :a{n} AND idx < :b{n})")
            else:
                params[f"l{n}"], params[f"i{n}"] = level, index
                nodes.append(f"(level = :l{n} AND idx = :i{n})")
        parts = []  # only bind names are interpolated below, never a value
        if ranges:
            parts.append(f"SELECT 0 AS level, idx, leaf_hash AS hash FROM audit_log "  # noqa: S608
                         f"WHERE {' OR '.join(ranges)}")
        if nodes:
            parts.append(f"SELECT level, idx, hash FROM audit_merkle_nodes WHERE {' OR '.join(nodes)}")  # noqa: S608
        if not parts:
            return {}
        rows = await self.conn.execute(text(" UNION ALL ".join(parts)), params)
        found: dict[NodeKey, bytes] = {}
        leaves: dict[int, bytes] = {}
        for row in rows:
            if int(row.level) == 0:
                leaves[int(row.idx)] = bytes(row.hash)
            else:
                found[(int(row.level), int(row.idx))] = bytes(row.hash)
        return {**found, **derived_nodes(keys, leaves)}

    async def add_audit_nodes(self, nodes: Sequence[tuple[NodeKey, bytes]]) -> None:
        """Store hashes of complete Merkle subtrees (level >= 1) in one statement. A subtree stored before
        keeps its hash: nodes are never rewritten, so a wrong one stays for ``gateway audit verify`` to name."""
        if not nodes:
            return
        if self._store.dialect == "postgresql":
            # One statement over arrays: an append completes about one subtree per record, and a row-by-row
            # executemany cost a statement execution on the server for each of them.
            await self._fetch(_ADD_NODES_POSTGRESQL, [level for (level, _), _ in nodes],
                              [index for (_, index), _ in nodes], [value for _, value in nodes])
            return
        await self.conn.execute(
            sqlite_insert(audit_merkle_nodes).on_conflict_do_nothing(index_elements=["level", "idx"]),
            [{"level": level, "idx": index, "hash": value} for (level, index), value in nodes],
        )

    async def audit_nodes_completed_within(self, start: int, end: int) -> dict[NodeKey, bytes]:
        """Stored subtree hashes completed by records ``start .. end - 1`` (those whose last record is there)."""
        if end <= start:
            return {}
        nodes = audit_merkle_nodes.c
        ranges = [and_(nodes.level == level, nodes.idx >= start >> level, nodes.idx < end >> level)
                  for level in range(1, end.bit_length()) if end >> level > start >> level]
        if not ranges:
            return {}
        rows = await self.conn.execute(select(nodes.level, nodes.idx, nodes.hash).where(or_(*ranges)))
        return {(int(r.level), int(r.idx)): bytes(r.hash) for r in rows}
