"""Retention of stored payloads (privacy.md D-08): what the gateway keeps about a message, and for how long.

Every flow declares ``retention_days`` in the flow registry. Once a stored row is older than that, the job
removes what it holds about the person:

* outgoing messages (``outbox``) already delivered, or dropped at delivery: the payload and Kafka key are
  emptied. The row's ids, recipient and consent reference stay, so that an art. 19 notice can still reach a
  past recipient if the person withdraws, and a recipient quoting a referral id back is still understood.
  A row is attributed to a flow by its recipient, outbound message type and purpose (the ``message-type`` and
  ``purpose`` headers); if several flows match, the longest of their retentions applies.
* message statuses (``messages``): deleted, by the sender's flows for that message type (the longest
  retention of them; a replayed message id older than that is then treated as new).
* rows that belong to no flow (referral statuses, restriction notices, consent events, statuses of messages
  that matched no declared flow) follow the longest retention of any flow the partner concerned takes part in
  (the longest in the registry for an organisation that takes part in none).

Rows not yet delivered are never touched. The audit log is never touched either: it is kept at least
:data:`AUDIT_RETENTION_MONTHS` months (Garante guidance for health dossiers) and only ever grows. Each run
writes one ``retention`` audit record with the counts per flow (e.g. ``F1/outbox-payloads``) and nothing
personal, in the same transaction as the purge. ``gateway retention run`` runs it once; workers run it daily.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.errors import DependencyUnavailable
from gateway.logging import get_logger
from gateway.pipeline import ledger
from gateway.policy.registry import Flow, PolicyRegistry
from gateway.store import Store

__all__ = ["AUDIT_RETENTION_MONTHS", "RetentionJob", "RetentionPolicy", "RetentionReport"]

log = get_logger(__name__)

AUDIT_RETENTION_MONTHS = 24
"""Minimum life of audit records; the retention job never deletes any."""

RUN_EVERY = timedelta(days=1)
FIRST_RUN_AFTER = timedelta(minutes=10)
"""Workers run the job this long after they start, then every :data:`RUN_EVERY`."""


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run purged."""

    ran_at: datetime
    """The job's "now": rows created before now minus their retention were purged."""
    counts: dict[str, int]
    """``<flow ids or message type>/<what>`` -> rows purged; only non-zero counts."""
    audit_index: int
    """Log index of the run's ``retention`` audit record."""


class RetentionPolicy:
    """How long a stored row is kept, from the flow registry (see the module docstring)."""

    def __init__(self, registry: PolicyRegistry) -> None:
        self.registry = registry
        self.shortest_days = min(f.retention_days for f in registry.flows)
        self._longest = max(f.retention_days for f in registry.flows)

    def partner_days(self, organisation: str) -> int:
        """The longest retention of any flow ``organisation`` sends or receives on (the registry's longest if none)."""
        days = [f.retention_days for f in self.registry.flows if organisation in (f.sender, f.recipient)]
        return max(days, default=self._longest)

    def outgoing(self, recipient: str, headers: dict[str, str]) -> tuple[str, int]:
        """(label, retention days) of an outgoing row."""
        message_type, purpose = headers.get("message-type", ""), headers.get("purpose")
        flows = [f for f in self.registry.flows if f.recipient == recipient
                 and f.outbound_message_type == message_type and f.purpose == purpose]
        if flows:
            return _label(flows), max(f.retention_days for f in flows)
        return message_type or "unknown", self.partner_days(recipient)

    def status(self, sender: str, message_type: str) -> tuple[str, int]:
        """(label, retention days) of the status of a message ``sender`` sent."""
        flows = [f for f in self.registry.flows if f.sender == sender and f.message_type == message_type]
        if flows:
            return _label(flows), max(f.retention_days for f in flows)
        return message_type, self.partner_days(sender)


def _label(flows: list[Flow]) -> str:
    return "|".join(sorted(f.id for f in flows))


class RetentionJob:
    """Purges expired payloads from ``store`` by the retention the registry declares."""

    def __init__(self, store: Store, registry: PolicyRegistry, instance_id: str, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), page_size: int = 2_000) -> None:
        self.store = store
        self.policy = RetentionPolicy(registry)
        self.instance_id = instance_id
        self.clock = clock
        self.page_size = page_size

    async def run_once(self, now: datetime | None = None) -> RetentionReport:
        """Purge everything past its retention as of ``now`` (default: the clock) and audit what was purged."""
        now = now or self.clock()
        counts: dict[str, int] = {}

        def count(label: str, what: str, n: int) -> None:
            if n:
                counts[f"{label}/{what}"] = counts.get(f"{label}/{what}", 0) + n

        async with self.store.transaction() as tx:
            oldest_expiry = now - timedelta(days=self.policy.shortest_days)
            after = 0
            while page := await tx.expired_outbox_candidates(oldest_expiry, after, self.page_size):
                expired: dict[str, list[int]] = {}
                for row_id, recipient, headers, created_at in page:
                    label, days = self.policy.outgoing(recipient, dict(headers))
                    if created_at < now - timedelta(days=days):
                        expired.setdefault(label, []).append(row_id)
                for label, ids in expired.items():
                    count(label, "outbox-payloads", await tx.purge_outbox_payloads(ids))
                after = page[-1][0]
            for sender, message_type in await tx.message_kinds_received_before(oldest_expiry):
                label, days = self.policy.status(sender, message_type)
                deleted = await tx.delete_messages(sender, message_type, now - timedelta(days=days))
                count(label, "message-statuses", deleted)
            [entry] = await tx.append_audit([ledger.retention_record(counts, self.instance_id, now)])
        log.info("retention-run", purged=sum(counts.values()), audit_index=entry.index)
        return RetentionReport(now, dict(sorted(counts.items())), entry.index)

    async def run(self, stop: asyncio.Event, *, first_after: timedelta = FIRST_RUN_AFTER,
                  every: timedelta = RUN_EVERY) -> None:
        """Run the job ``first_after`` from now and then every ``every``, until ``stop`` is set."""
        wait = first_after
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait.total_seconds())
            if stop.is_set():
                return
            wait = every
            try:
                await self.run_once()
            except DependencyUnavailable as exc:
                log.warning("retention-retrying", error_type=type(exc.__cause__ or exc).__name__)
                wait = min(every, timedelta(minutes=5))
            except Exception as exc:  # keep the worker up; the next run tries again
                log.error("retention-failed", error_type=type(exc).__name__, exc_info=exc)
