"""Statistics activity for the aggregate flows F6 and F13: one row per counted care event, and one per group of
alike decisions of a batch (its ``weight`` says how many: migration 0021).

Table ``statistics_activity`` (migration 0005; the keyed hash of the source care record from 0008, so that a
record sent again replaces its row; the vaccine group from 0011). Rows hold coded dimensions only, never a
person; :mod:`gateway.statistics` counts and publishes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, or_, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.statistics.counting import ActivityEvent, combine_decisions
from gateway.store.base import Repository
from gateway.store.tables import CARE_ROWS, statistics_activity

__all__ = ["ActivityRepository"]

_CORRECTABLE_ACTIVITY = ("month", "quartiere", "outcome", "weight", "vaccine_group")
"""What a care record sent again may change in the row it counted before."""


_ACTIVITY_COLUMNS = ("month", "kind", "source", "quartiere", "flow_id", "recipient", "outcome", "weight", "source_key",
                     "vaccine_group")

_RECORD_POSTGRESQL = """
INSERT INTO statistics_activity (month, kind, source, quartiere, flow_id, recipient, outcome, weight, source_key,
                                 vaccine_group)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::integer[], $9::text[], $10::text[])
ON CONFLICT (kind, source_key) WHERE source_key IS NOT NULL DO UPDATE
SET month = EXCLUDED.month, quartiere = EXCLUDED.quartiere, outcome = EXCLUDED.outcome, weight = EXCLUDED.weight,
    vaccine_group = EXCLUDED.vaccine_group
"""
"""``record_activity``'s insert on PostgreSQL of the care events of a batch: the rows as arrays, unnested in their
order (the columns of ``_ACTIVITY_COLUMNS``; a re-sent care record updates ``_CORRECTABLE_ACTIVITY``). The
decisions (F13), which name no source record and so never replace a row, are copied instead (``COPY``): no
array per column to encode and unnest, at one row per decision of every referral."""


def _activity_row(e: ActivityEvent, source_key: str | None) -> dict[str, Any]:
    return {"month": e.month, "kind": e.kind, "source": e.source, "quartiere": e.quartiere, "flow_id": e.flow_id,
            "recipient": e.recipient, "outcome": e.outcome, "weight": e.weight, "source_key": source_key,
            "vaccine_group": e.vaccine_group}


class ActivityRepository(Repository):
    """Counted events of the statistics flows."""

    async def record_activity(self, events: Sequence[ActivityEvent]) -> None:
        """Store counted events (the intake calls it once per batch). An event naming its source record (F6
        care) replaces the row of an earlier event for the same record — month, quartiere, outcome, weight and
        vaccine group — or, when it is a retraction, removes it; within the batch the last event for a record
        wins. Events without a record (F13 decisions) are always added, the alike ones of the batch as one row
        that weighs as many as they are."""
        latest: dict[tuple[str, str], ActivityEvent] = {}
        # decisions (F13): never replaced, and a batch's alike ones stored as one row (combine_decisions)
        added = [e for e in combine_decisions(events) if e.record is None and not e.retracted]
        for e in events:
            if e.record is None:
                continue
            key = (e.kind, self._store.activity_source_key(e.source, *e.record))
            latest.pop(key, None)  # re-inserted so that rows keep the batch's order
            latest[key] = e
        rows = [_activity_row(e, source_key) for (_, source_key), e in latest.items() if not e.retracted]
        withdrawn = [(kind, source_key) for (kind, source_key), e in latest.items() if e.retracted]
        activity = statistics_activity.c
        if withdrawn:
            await self.conn.execute(delete(statistics_activity).where(or_(
                *(and_(activity.kind == kind, activity.source_key == source_key) for kind, source_key in withdrawn)
            )))
        if added and await self._copy(statistics_activity.name, _ACTIVITY_COLUMNS, [
            (e.month, e.kind, e.source, e.quartiere, e.flow_id, e.recipient, e.outcome, e.weight, None,
             e.vaccine_group) for e in added
        ]):
            added = []  # copied (PostgreSQL): events without a source record never meet a row to replace
        rows = [_activity_row(e, None) for e in added] + rows
        if rows and self._store.dialect == "postgresql":
            # One array per column, one statement for any number of rows: no per-row SQLAlchemy work.
            await self._fetch(_RECORD_POSTGRESQL, *([r[c] for r in rows] for c in _ACTIVITY_COLUMNS))
        elif rows:
            statement = sqlite_insert(statistics_activity)
            await self.conn.execute(statement.on_conflict_do_update(
                index_elements=["kind", "source_key"], index_where=text(CARE_ROWS),
                set_={name: statement.excluded[name] for name in _CORRECTABLE_ACTIVITY},
            ), rows)

    async def activity(self, month: str, kinds: Sequence[str]) -> list[ActivityEvent]:
        """The counted events of ``month`` of these kinds."""
        rows = await self.conn.execute(
            select(statistics_activity)
            .where(statistics_activity.c.month == month, statistics_activity.c.kind.in_(list(kinds)))
        )
        return [
            ActivityEvent(month=m["month"], kind=m["kind"], source=m["source"], quartiere=m["quartiere"],
                          flow_id=m["flow_id"], recipient=m["recipient"], outcome=m["outcome"], weight=m["weight"],
                          vaccine_group=m["vaccine_group"])
            for m in (r._mapping for r in rows)
        ]
