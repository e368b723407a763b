"""The last days of the audit log, counted for the privacy officers' overview: decisions per flow and day
(permitted, or denied by reason class), deliveries dropped at delivery, and consents given and withdrawn.

:class:`ActivityTally` keeps running counts in the process that shows them: the first look reads the records
of the window once (found by a binary search on the log, whose ``recorded_at`` never goes backwards), every later
one only the records appended since. The counts keep the organisations each record names (sender, recipient,
requester) so that :meth:`ActivityTally.view` shows an officer only what their organisation is party to, by the
same rule as every other answer (:meth:`gateway.privacy_office.Officer.concerns`). Recomputable, never the only
copy of anything: the audit log stays the evidence.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import orjson

if TYPE_CHECKING:
    from gateway.privacy_office import Officer
    from gateway.store import StoreTransaction

__all__ = ["DENIAL_CLASSES", "ActivityTally", "ActivityView", "reason_class"]

DENIAL_CLASSES = ("deny-consent", "deny-policy", "deny-sensitive", "deny-other")
_CONSENT = frozenset({"no-applicable-consent", "consent-expired", "consent-withdrawn", "objection-upheld"})
_POLICY = frozenset({"purpose-missing", "purpose-not-permitted", "recipient-not-permitted", "policy-unavailable"})
_SENSITIVE = frozenset({"sensitive-label-denied", "masked-at-source"})
_BATCH = 10_000

Kind = Literal["decision", "drop", "consent"]
_Key = tuple[str, str, str, str, str | None, str | None, str | None]
"""(day, kind, flow, series, source organisation, recipient organisation, requesting organisation)."""


def reason_class(reason: str | None) -> str:
    """The chart's class of a denial reason: consent, policy (purpose, recipient, registry), sensitive data."""
    if reason in _CONSENT:
        return "deny-consent"
    if reason in _POLICY:
        return "deny-policy"
    if reason in _SENSITIVE:
        return "deny-sensitive"
    return "deny-other"


def _counted(record: dict[str, object], day: str) -> _Key | None:
    event, flow = record.get("event_type"), str(record.get("flow_id") or "-")
    orgs = (record.get("source_org"), record.get("recipient_org"), record.get("requesting_org"))
    source, recipient, requesting = (str(o) if o else None for o in orgs)
    if event == "decision":
        series = "permit" if record.get("outcome") == "permit" else reason_class(str(record.get("reason") or ""))
        return day, "decision", flow, series, source, recipient, requesting
    if event == "delivery-dropped":
        return day, "drop", flow, "drop", source, recipient, requesting
    if event == "consent-change" and record.get("action") in ("record-consent", "withdraw-consent"):
        series = "given" if record.get("action") == "record-consent" else "withdrawn"
        return day, "consent", "-", series, source, recipient, requesting
    return None


@dataclass(frozen=True, slots=True)
class ActivityView:
    """What one officer may see of the window: counts by (kind, flow, series, day)."""

    days: tuple[str, ...]
    counts: dict[tuple[str, str, str, str], int]
    records_read: int
    """Records the tally read to bring itself up to date for this view (0 when nothing was appended)."""

    def series(self, kind: str, flow: str | None = None) -> dict[str, dict[str, int]]:
        """``{series: {day: count}}`` of ``kind``, for one flow or all of them."""
        found: dict[str, dict[str, int]] = {}
        for (k, f, s, day), n in self.counts.items():
            if k == kind and (flow is None or f == flow):
                found.setdefault(s, {}).setdefault(day, 0)
                found[s][day] += n
        return found

    def flows(self, kind: str = "decision") -> list[str]:
        return sorted({f for (k, f, _, _) in self.counts if k == kind})


class ActivityTally:
    """Running counts of the last ``days`` days of the audit log (module docstring)."""

    def __init__(self, days: int = 30) -> None:
        self.days = days
        self._next_index: int | None = None
        self._counts: Counter[_Key] = Counter()
        self._lock = asyncio.Lock()

    async def refresh(self, tx: StoreTransaction, now: datetime) -> int:
        """Count the records appended since the last refresh (the whole window the first time); how many."""
        async with self._lock:
            start_day = (now - timedelta(days=self.days - 1)).date()
            if self._next_index is None:
                since = datetime.combine(start_day, datetime.min.time(), tzinfo=now.tzinfo)
                self._next_index = await tx.first_audit_index_recorded_since(since)
            read = 0
            while True:
                entries = await tx.audit_entries(self._next_index, _BATCH)
                for entry in entries:
                    recorded = entry["recorded_at"]
                    key = _counted(orjson.loads(entry["record"]), recorded.date().isoformat())
                    if key is not None:
                        self._counts[key] += 1
                self._next_index += len(entries)
                read += len(entries)
                if len(entries) < _BATCH:
                    break
            oldest = start_day.isoformat()
            for key in [k for k in self._counts if k[0] < oldest]:
                del self._counts[key]
            return read

    def view(self, officer: Officer, now: datetime, records_read: int = 0) -> ActivityView:
        """The window as ``officer`` may see it."""
        first = (now - timedelta(days=self.days - 1)).date()
        days = tuple((first + timedelta(days=i)).isoformat() for i in range(self.days))
        counts: Counter[tuple[str, str, str, str]] = Counter()
        for (day, kind, flow, series, source, recipient, requesting), n in self._counts.items():
            if officer.concerns({"source_org": source, "recipient_org": recipient, "requesting_org": requesting}):
                counts[(kind, flow, series, day)] += n
        return ActivityView(days, dict(counts), records_read)
