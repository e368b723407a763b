"""Offline verification of the audit log held in a store: every record, every signed checkpoint, every
stored Merkle subtree; and the rebuild of subtree hashes a log written before they were stored lacks.

Reads the head, the checkpoints and the registered public keys in one transaction, then the records in pages
(bounded memory), and hands everything to :class:`~gateway.audit.verify.AuditVerifier`, with the stored
subtree hashes each page completes. Used by ``gateway audit verify`` and by the tamper-evidence tests.
:func:`rebuild_stored_nodes` is ``gateway audit rebuild-nodes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.audit.checkpoint import VerifierKey
from gateway.audit.merkle import MerkleAccumulator
from gateway.audit.verify import AuditVerifier, VerificationReport
from gateway.store import Store

__all__ = ["NodeRebuild", "Progress", "rebuild_stored_nodes", "verify_stored_log"]

Progress = Callable[[int, int], None]
"""Called after each page with (records done, records in all): the commands draw a progress bar from it."""


async def verify_stored_log(store: Store, origin: str | None, trusted: Sequence[VerifierKey] | None = None, *,
                            page_size: int = 5_000, progress: Progress | None = None) -> VerificationReport:
    """Recompute the log in ``store`` and check its checkpoints, signed as ``origin`` (any name if None).

    ``trusted`` are the only keys whose signatures count (for example a witness's own copy of the verifier
    keys); by default, the keys registered in the store. Retirement times always come from the store. The
    stored Merkle subtree hashes are recomputed from the records and compared, never trusted.
    """
    async with store.transaction() as tx:
        head = await tx.audit_head()
        checkpoints = await tx.audit_checkpoints()
        stored_keys = await tx.audit_signing_keys()
    verifier = AuditVerifier((c.tree_size for c in checkpoints), check_nodes=True)
    start = 0
    while start <= head.size:  # one entry past the head too: an entry the head does not count is a problem
        async with store.transaction() as tx:
            page = await tx.audit_entries(start, min(page_size, head.size + 1 - start))
            # If the page feeds without a problem, its indexes are start .. start + len(page) - 1.
            nodes = await tx.audit_nodes_completed_within(start, start + len(page))
        if not page or not verifier.feed(page):
            break
        verifier.check_nodes(nodes)
        start = int(page[-1]["idx"]) + 1
        if progress is not None:
            progress(min(start, head.size), head.size)
    keys = list(trusted) if trusted is not None else [k.verifier for k in stored_keys]
    retired = {k.verifier: k.retired_at for k in stored_keys if k.retired_at is not None}
    return verifier.report(head, checkpoints, keys, origin=origin, retired_at=retired)


@dataclass(frozen=True, slots=True)
class NodeRebuild:
    """Outcome of :func:`rebuild_stored_nodes`."""

    size: int
    """Records whose subtrees were considered (the log's size when the rebuild started)."""
    added: int
    """Subtree hashes that were missing and are now stored."""
    root_matches: bool
    """Whether the root recomputed from the stored leaf hashes is the head's; if not, run ``audit verify``."""


async def rebuild_stored_nodes(store: Store, *, page_size: int = 50_000,
                               progress: Progress | None = None) -> NodeRebuild:
    """Store the hash of every complete Merkle subtree of the log that is missing, from the leaf hashes.

    For logs written before subtree hashes were stored (migration 0007). Reads the leaf hashes in pages of
    ``page_size``, one transaction each, so appends go on meanwhile (they store the subtrees they complete
    themselves). A subtree already stored is left as it is, even if it differs: ``gateway audit verify``
    names such a node. Raises ``ValueError`` if records are missing below the head's size.
    """
    async with store.transaction() as tx:
        head = await tx.audit_head()
    tree = MerkleAccumulator()
    tree.track_completed()
    added = 0
    for start in range(0, head.size, page_size):
        end = min(head.size, start + page_size)
        async with store.transaction() as tx:
            leaves = await tx.audit_leaf_hashes(end, start)
            if len(leaves) != end - start:
                raise ValueError(f"records {start} to {end - 1}: {len(leaves)} found, {end - start} expected; "
                                 "run `gateway audit verify`")
            tree.extend(leaves)
            stored = await tx.audit_nodes_completed_within(start, end)
            missing = [(key, value) for key, value in tree.take_completed() if key not in stored]
            await tx.add_audit_nodes(missing)
            added += len(missing)
        if progress is not None:
            progress(end, head.size)
    return NodeRebuild(size=head.size, added=added, root_matches=tree.root() == head.root())
