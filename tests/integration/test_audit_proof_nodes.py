"""Proofs served from stored Merkle subtrees, the fallback to the leaves, ``rebuild-nodes`` and the offline
check of the stored subtrees (privacy.md T-01, T-02), on both pairs of backends.

The API must serve the same bytes whether it reads a handful of stored subtrees or every leaf hash; it must
fall back to the leaves for a log written before subtrees were stored and for a subtree that does not agree
with the head; and ``gateway audit verify`` must name a stored subtree that differs from the records.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import delete, update

from gateway.audit.merkle import consistency_proof, inclusion_proof_with_root, root_from_leaf_hashes
from gateway.audit.offline import rebuild_stored_nodes, verify_stored_log
from gateway.audit.record import AuditRecord
from gateway.bootstrap import Gateway
from gateway.store import StoreTransaction
from gateway.store.tables import audit_merkle_nodes
from tests.conftest import QUIET_CHECKPOINTER, bearer
from tests.integration import test_audit_api

clients = test_audit_api.clients
"""The audit API tests' clients: the partners and a privacy officer."""
pytestmark = QUIET_CHECKPOINTER

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SIZES = (1, 2, 7, 8, 9, 16, 23, 37)


class LeafReads:
    """Counts the proof endpoints' reads of every leaf hash (the fallback path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = StoreTransaction.audit_leaf_hashes

        async def counted(tx: StoreTransaction, tree_size: int, start: int = 0) -> list[bytes]:
            self.count += 1
            return await original(tx, tree_size, start)

        monkeypatch.setattr(StoreTransaction, "audit_leaf_hashes", counted)


async def fill_log(gateway: Gateway, size: int) -> list[bytes]:
    """``size`` records appended in batches of 1, 2, 3, ... (a checkpoint at 21 records); their leaf hashes."""
    batch = 1
    while (current := await log_size(gateway)) < size:
        async with gateway.store.transaction() as tx:
            await tx.append_audit([
                AuditRecord(event_type="decision", action="deny", occurred_at=NOW, outcome="deny",
                            instance="test", message_ids=(f"m-{current + i}",))
                for i in range(min(batch, size - current))
            ])
        if current < 16 <= await log_size(gateway):
            await gateway.checkpointer.checkpoint_now()
        batch += 1
    async with gateway.store.transaction() as tx:
        return await tx.audit_leaf_hashes(size)


async def log_size(gateway: Gateway) -> int:
    async with gateway.store.transaction() as tx:
        return (await tx.audit_head()).size


async def assert_proofs_are_the_leaf_proofs(http: httpx.AsyncClient, dpo: dict[str, str],
                                            leaves: list[bytes]) -> None:
    for size in SIZES:
        for index in sorted({0, size // 2, size - 1}):
            response = await http.get(f"/v1/audit/proof/inclusion?index={index}&tree_size={size}", headers=dpo)
            assert response.status_code == 200, response.text
            body = response.json()
            proof, root = inclusion_proof_with_root(leaves[:size], index)
            assert (body["proof"], body["root_hash"], body["leaf_hash"]) == (
                [h.hex() for h in proof], root.hex(), leaves[index].hex()), (size, index)
        for first in sorted({0, 1, size // 2, size}):
            response = await http.get(f"/v1/audit/proof/consistency?first={first}&second={size}", headers=dpo)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["proof"] == [h.hex() for h in consistency_proof(leaves[:size], first)], (first, size)
            assert body["first_root"] == root_from_leaf_hashes(leaves[:first]).hex()
            assert body["second_root"] == root_from_leaf_hashes(leaves[:size]).hex()


async def test_T01_proofs_come_from_stored_subtrees_and_equal_the_leaf_proofs(
    http: httpx.AsyncClient, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaves = await fill_log(gateway, 37)
    reads = LeafReads(monkeypatch)
    dpo = await bearer(http, "dpo-test")
    await assert_proofs_are_the_leaf_proofs(http, dpo, leaves)
    signed = (await http.get("/v1/audit/proof/inclusion?index=3&tree_size=21", headers=dpo)).json()
    assert signed["checkpoint"] is not None  # the checkpoint signed at 21 records comes along
    assert reads.count == 0


async def test_T01_a_log_without_stored_subtrees_is_proved_from_the_leaves_until_rebuilt(
    http: httpx.AsyncClient, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaves = await fill_log(gateway, 37)
    async with gateway.store.transaction() as tx:  # as a log written before migration 0007 would be
        await tx.conn.execute(delete(audit_merkle_nodes))
    reads = LeafReads(monkeypatch)
    dpo = await bearer(http, "dpo-test")
    await assert_proofs_are_the_leaf_proofs(http, dpo, leaves)
    assert reads.count > 0

    report = await verify_stored_log(gateway.store, gateway.settings.audit_origin, page_size=5)
    assert report.ok and any("rebuild-nodes" in w for w in report.warnings), report

    rebuilt = await rebuild_stored_nodes(gateway.store, page_size=8)
    assert (rebuilt.added, rebuilt.root_matches) == (4 + 2 + 1, True)  # levels 3, 4 and 5; smaller ones are hashed
    reads.count = 0
    await assert_proofs_are_the_leaf_proofs(http, dpo, leaves)
    assert reads.count == 0
    report = await verify_stored_log(gateway.store, gateway.settings.audit_origin, page_size=5)
    assert report.ok and not report.warnings, report


async def test_T02_a_tampered_subtree_is_never_served_and_verify_names_it(
    http: httpx.AsyncClient, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaves = await fill_log(gateway, 37)
    dpo = await bearer(http, "dpo-test")
    for level, index in ((3, 0), (5, 0)):  # records 0..7; records 0..31, part of every root from size 32 on
        async with gateway.store.transaction() as tx:
            await tx.conn.execute(
                update(audit_merkle_nodes)
                .where(audit_merkle_nodes.c.level == level, audit_merkle_nodes.c.idx == index)
                .values(hash=root_from_leaf_hashes(leaves[:3]))  # a well-formed hash of the wrong records
            )
        reads = LeafReads(monkeypatch)
        await assert_proofs_are_the_leaf_proofs(http, dpo, leaves)
        assert reads.count > 0  # the proofs that needed it were computed from the leaves

    report = await verify_stored_log(gateway.store, gateway.settings.audit_origin, page_size=5)
    assert not report.ok and report.chain_ok, report
    assert report.first_bad_index is None and report.bad_node == (3, 0)
    assert report.problems == (
        "stored Merkle node at level 3, index 0 (records 0 to 7) differs from the hash of those records",
        "stored Merkle node at level 5, index 0 (records 0 to 31) differs from the hash of those records",
    )
