"""Publication of the statistics flows: ``gateway statistics publish --period YYYY-MM [--flow F6|F13]``.

Reads the statistics activity of a closed month, aggregates it with small cells suppressed
(:func:`gateway.statistics.counting.aggregate`) and, for each declared flow of the statistics family (F6 to ALER and the
Region, F13 to the Region and the Comune), queues one ``statistics.aggregate`` message on
``out.<recipient>`` with one ``disclosure`` audit record, all in one transaction; the relay delivers them.

An aggregate has no subject: it never goes through the per-person intake, carries no consent and its audit
record no subject reference. The message id is fixed per flow and month (``stat-<flow>-<YYYY-MM>``), so a
month is published once: publishing it again queues nothing. Deny by default: a family with no declared
flow publishes nothing, and a declared flow that is not an S0 ``statistics`` flow of ``statistics.aggregate``
is refused.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

import orjson

from gateway.audit.record import AuditRecord
from gateway.logging import get_logger
from gateway.pipeline import ledger
from gateway.policy.registry import Flow, PolicyRegistry
from gateway.settings import TopicSettings
from gateway.statistics.counting import (
    NO_FLOW,
    OPERATOR_DIMENSIONS,
    OTHER_VACCINE,
    STATISTICS_ZONE,
    ActivityEvent,
    aggregate,
)
from gateway.store import OutboxRow, Store, StoreTransaction
from schemas.statistics import AggregateMeasure, Dimension, StatisticsAggregate

__all__ = ["FAMILIES", "MeasureSpec", "PeriodNotClosed", "Publication", "StatisticsPublisher", "family_of"]

log = get_logger(__name__)

MESSAGE_TYPE = "statistics.aggregate"
SCHEMA_VERSION = "1.0"
_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class MeasureSpec:
    """One measure of a family: which events it counts and by which dimensions."""

    measure: str
    kind: str
    dimensions: tuple[str, ...]
    unit: str = "count"
    """``count`` of events, or ``minutes``: the sum of the events' weights."""


@dataclass(frozen=True, slots=True)
class Family:
    """A statistics flow family (F6, F13): its measures, the same for every recipient."""

    measures: tuple[MeasureSpec, ...]
    sender_only: bool
    """Count only the events of the flow's sender (F6: the trust's own care), or of every partner (F13)."""


FAMILIES: dict[str, Family] = {
    "F6": Family((
        MeasureSpec("visits", "visit", ("quartiere",)),
        MeasureSpec("care-minutes", "visit", ("quartiere",), unit="minutes"),
        MeasureSpec("vaccinations", "vaccination", ("quartiere", "vaccine_group")),
    ), sender_only=True),
    "F13": Family((MeasureSpec("decisions", "decision", ("flow", "quartiere", "outcome")),), sender_only=False),
}
"""The statistics families and what each counts."""


class PeriodNotClosed(ValueError):
    """The month has not ended yet: publishing it would freeze incomplete figures."""


@dataclass(frozen=True, slots=True)
class Publication:
    """What publishing one flow for one month did."""

    flow: str
    recipient: str
    period: str
    message_id: str
    queued: bool
    """False when this flow and month had been published before (nothing queued)."""
    cells: int = 0
    suppressed: int = 0


def family_of(flow_id: str) -> str:
    """``F6-regione`` -> ``F6``."""
    return flow_id.split("-", 1)[0]


def _dimension(event: ActivityEvent, name: str) -> str:
    if name == "flow":
        return event.flow_id or NO_FLOW
    if name == "vaccine_group":
        return event.vaccine_group or OTHER_VACCINE  # counted before vaccines were grouped
    return str(getattr(event, name))


def _next_month(period: str) -> datetime:
    year, month = (int(part) for part in period.split("-"))
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=STATISTICS_ZONE)


class StatisticsPublisher:
    """Publishes the statistics flows of a month."""

    def __init__(self, store: Store, registry: PolicyRegistry, topics: TopicSettings, instance_id: str,
                 threshold: int = 5, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 on_enqueued: Callable[[], None] | None = None) -> None:
        self.store = store
        self.registry = registry
        self.topics = topics
        self.instance_id = instance_id
        self.threshold = threshold
        self.clock = clock
        self.on_enqueued = on_enqueued
        """Called after a commit that queued messages (the relay's wake-up)."""

    def flows(self, family: str) -> list[Flow]:
        """The declared flows of a family; refuses one that is not an S0 statistics flow of aggregates."""
        if family not in FAMILIES:
            raise ValueError(f"unknown statistics flow {family!r}; known: {', '.join(FAMILIES)}")
        for spec in FAMILIES[family].measures:
            refused = sorted(OPERATOR_DIMENSIONS.intersection(spec.dimensions))
            if refused:
                raise ValueError(f"aggregates never rank individual operators: {', '.join(refused)}")
            unknown = sorted(set(spec.dimensions) - set(get_args(Dimension)))
            if unknown:
                raise ValueError(f"{family} counts by dimensions the message cannot carry: {', '.join(unknown)}")
        declared = [f for f in self.registry.flows if family_of(f.id) == family]
        for flow in declared:
            if (flow.purpose, flow.sensitivity, flow.outbound_message_type) != ("statistics", "S0", MESSAGE_TYPE):
                raise ValueError(f"flow {flow.id} is not an S0 statistics flow of {MESSAGE_TYPE}: not published")
        return declared

    async def publish(self, period: str, family: str | None = None,
                      request_id: str | None = None) -> list[Publication]:
        """Queue the aggregates of ``period`` (``YYYY-MM``, a month that has ended) for every recipient of
        ``family`` (default: every family), in one transaction."""
        if not _PERIOD.match(period):
            raise ValueError("period must be a month, YYYY-MM")
        now = self.clock()
        if _next_month(period) > now:
            raise PeriodNotClosed(f"{period} has not ended yet; publish it once it has")
        families = [family] if family is not None else list(FAMILIES)
        plan = [(name, flow) for name in families for flow in self.flows(name)]
        request_id = request_id or f"statistics-{uuid.uuid4()}"
        publications: list[Publication] = []
        rows: list[OutboxRow] = []
        audit: list[AuditRecord] = []
        async with self.store.transaction() as tx:
            for name, flow in plan:
                message_id = f"stat-{flow.id}-{period}"
                if await tx.outbox_message(flow.recipient, message_id) is not None:
                    publications.append(Publication(flow.id, flow.recipient, period, message_id, queued=False))
                    continue
                payload = await self._aggregate(tx, FAMILIES[name], flow, period, now)
                rows.append(self._row(flow, name, period, message_id, payload, request_id, now))
                audit.append(self._audit(flow, name, period, message_id, request_id, now))
                cells = [c for m in payload.measures for c in m.cells]
                publications.append(Publication(flow.id, flow.recipient, period, message_id, queued=True,
                                                cells=len(cells), suppressed=sum(c.suppressed for c in cells)))
            await tx.enqueue(rows)
            await tx.append_audit(audit)
        for p in publications:
            log.info("statistics-published" if p.queued else "statistics-already-published", flow=p.flow,
                     recipient=p.recipient, message_id=p.message_id, count=p.cells, request_id=request_id)
        if rows and self.on_enqueued is not None:
            self.on_enqueued()
        return publications

    async def _aggregate(self, tx: StoreTransaction, family: Family, flow: Flow, period: str,
                         now: datetime) -> StatisticsAggregate:
        events = await tx.activity(period, sorted({m.kind for m in family.measures}))
        if family.sender_only:
            events = [e for e in events if e.source == flow.sender]
        measures = []
        for spec in family.measures:
            counted = [e for e in events if e.kind == spec.kind]
            keyed = [{d: _dimension(e, d) for d in spec.dimensions} for e in counted]
            weights = [e.weight for e in counted] if spec.unit == "minutes" else None
            cells = aggregate(keyed, spec.dimensions, self.threshold, weights, [e.occurrences for e in counted])
            measures.append({
                "measure": spec.measure, "unit": spec.unit, "dimensions": spec.dimensions,
                "cells": [{"key": dict(zip(spec.dimensions, c.key, strict=True)), "value": c.count,
                           "suppressed": c.suppressed} for c in cells],
            })
        payload = StatisticsAggregate.model_validate({
            "message_type": MESSAGE_TYPE, "flow": flow.id, "period": period, "threshold": self.threshold,
            "generated_at": now, "measures": measures,
        })
        _check_allowed(payload, flow)
        return payload

    def _row(self, flow: Flow, family: str, period: str, message_id: str, payload: StatisticsAggregate,
             request_id: str, now: datetime) -> OutboxRow:
        return ledger.aggregate_row(flow, self.topics, f"stat-{family}-{period}", message_id,
                                    orjson.dumps(payload.model_dump(mode="json")), period, request_id, MESSAGE_TYPE,
                                    SCHEMA_VERSION, now)

    def _audit(self, flow: Flow, family: str, period: str, message_id: str, request_id: str,
               now: datetime) -> AuditRecord:
        return ledger.aggregate_publication_record(flow, f"stat-{family}-{period}", message_id, request_id,
                                                   self.registry.revision, self.instance_id, now)


def _check_allowed(payload: StatisticsAggregate, flow: Flow) -> None:
    """Minimisation for aggregates: every field the message carries is one the flow declares (fail closed)."""
    carried = [*(name for name in type(payload).model_fields if name not in ("message_type", "measures")),
               *(f"measures.{name}" for name in AggregateMeasure.model_fields)]
    undeclared = [path for path in carried if path not in flow.allowed_fields]
    if undeclared:
        raise ValueError(f"flow {flow.id} does not declare {', '.join(undeclared)}: not published")
