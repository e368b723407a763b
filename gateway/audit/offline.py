"""Offline verification of the audit log held in a store: every record, every signed checkpoint.

Reads the head, the checkpoints and the registered public keys in one transaction, then the records in pages
(bounded memory), and hands everything to :class:`~gateway.audit.verify.AuditVerifier`. Used by
``gateway audit verify`` and by the tamper-evidence tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.audit.checkpoint import VerifierKey
from gateway.audit.verify import AuditVerifier, VerificationReport
from gateway.store import Store

__all__ = ["verify_stored_log"]


async def verify_stored_log(store: Store, origin: str | None, trusted: Sequence[VerifierKey] | None = None, *,
                            page_size: int = 5_000) -> VerificationReport:
    """Recompute the log in ``store`` and check its checkpoints, signed as ``origin`` (any name if None).

    ``trusted`` are the only keys whose signatures count (for example a witness's own copy of the verifier
    keys); by default, the keys registered in the store. Retirement times always come from the store.
    """
    async with store.transaction() as tx:
        head = await tx.audit_head()
        checkpoints = await tx.audit_checkpoints()
        stored_keys = await tx.audit_signing_keys()
    verifier = AuditVerifier(c.tree_size for c in checkpoints)
    start = 0
    while start <= head.size:  # one entry past the head too: an entry the head does not count is a problem
        async with store.transaction() as tx:
            page = await tx.audit_entries(start, min(page_size, head.size + 1 - start))
        if not page or not verifier.feed(page):
            break
        start = int(page[-1]["idx"]) + 1
    keys = list(trusted) if trusted is not None else [k.verifier for k in stored_keys]
    retired = {k.verifier: k.retired_at for k in stored_keys if k.retired_at is not None}
    return verifier.report(head, checkpoints, keys, origin=origin, retired_at=retired)
