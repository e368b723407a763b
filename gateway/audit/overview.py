"""What the privacy officers' overview counts of each audit record: the one definition of the console's home charts.

An audit record of a decision adds one to its flow's permits or to one class of denials, a message dropped at
delivery to the drops, a consent given or withdrawn to the consents; every other record adds nothing. Each count
keeps the day it was recorded on (UTC) and the organisations the record names (sender, recipient, requester), so
that an officer sees only what their organisation is party to.

Two writers use it (:mod:`gateway.privacy.activity` says how they share the work): the append of a batch of records
counts them as it writes them (:func:`tally`), while the tally is caught up with the log; the workers' tally
counts what the appends could not, from the stored records, by grouping them in the database and applying
:func:`counted` to each group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final

from gateway.audit.record import AuditRecord

__all__ = ["COUNTED_FIELDS", "DENIAL_CLASSES", "OverviewKey", "counted", "reason_class", "tally"]

DENIAL_CLASSES: Final = ("deny-consent", "deny-policy", "deny-sensitive", "deny-other")
_CONSENT: Final = frozenset({"no-applicable-consent", "consent-expired", "consent-withdrawn", "objection-upheld"})
_POLICY: Final = frozenset({"purpose-missing", "purpose-not-permitted", "recipient-not-permitted",
                            "policy-unavailable"})
_SENSITIVE: Final = frozenset({"sensitive-label-denied", "masked-at-source"})

COUNTED_EVENTS: Final = frozenset({"decision", "delivery-dropped", "consent-change"})
"""The event types a record must have to count at all."""

OverviewKey = tuple[str, str, str, str, str | None, str | None, str | None]
"""(day, kind, flow, series, source organisation, recipient organisation, requesting organisation)."""

COUNTED_FIELDS: Final = ("event_type", "flow_id", "outcome", "reason", "action", "source_org", "recipient_org",
                         "requesting_org")
"""The fields of a record :func:`counted` reads."""


def reason_class(reason: str | None) -> str:
    """The chart's class of a denial reason: consent, policy (purpose, recipient, registry), sensitive data."""
    if reason in _CONSENT:
        return "deny-consent"
    if reason in _POLICY:
        return "deny-policy"
    if reason in _SENSITIVE:
        return "deny-sensitive"
    return "deny-other"


def counted(record: Mapping[str, object], day: str) -> OverviewKey | None:
    """The key a record of ``day`` adds one to, or None if the overview does not count it. ``record`` holds
    the :data:`COUNTED_FIELDS` (others are not read), as the stored record's JSON or a group of alike records."""
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


def tally(records: Iterable[AuditRecord], day: str) -> Counter[OverviewKey]:
    """What ``records``, all recorded on ``day``, add to the counts: the records are grouped by the fields
    :func:`counted` reads first, so it runs once per group (a batch of referrals makes a handful of groups)."""
    groups: Counter[tuple[object, ...]] = Counter(
        (r.event_type, r.flow_id, r.outcome, r.reason, r.action, r.source_org, r.recipient_org, r.requesting_org)
        for r in records if r.event_type in COUNTED_EVENTS)
    counts: Counter[OverviewKey] = Counter()
    for fields, n in groups.items():
        key = counted(dict(zip(COUNTED_FIELDS, fields, strict=True)), day)
        if key is not None:
            counts[key] += n
    return counts
