"""Aggregates for statistics flows (F6 care activity per neighbourhood, F13 flow activity): counts by
dimensions with small cells suppressed, never per person and never per operator; and the activity events they
are counted from, taken from decoded messages and their decisions at intake.

Primary suppression hides every cell below the threshold; secondary suppression then hides, in each group
of cells that share all dimensions but one, the next smallest cell when exactly one is hidden, so a hidden
value cannot be recovered from a published total. Totals are computed from published cells only.

An :class:`ActivityEvent` is one counted event (a finished visit, a given vaccination, a decision): a month
and coded dimensions only, never a person, a pseudonym, a message id, an operator or a finer time.

A care event (F6) also names the trust's record it counts (``Encounter`` or ``Immunization`` and its id) so
that a record the trust sends again under a new message id — a correction of its length or quartiere —
replaces its earlier count instead of adding a second one: the store keeps only a keyed hash of (sender,
resource type, resource id), never the id itself. A record sent again as cancelled, entered in error, not done
or masked at source no longer counts: its event is a retraction, and the store removes the earlier row.
Decisions (F13) are counted once per recipient decided, and the alike decisions of a batch (same month, sender,
quartiere, flow, recipient and outcome) are stored as one event that stands for all of them
(:func:`combine_decisions`; its ``weight`` says how many). A vaccination names its vaccine group (influenza,
COVID-19, pneumococcal, zoster, other), so that F6 can count vaccinations per group.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from gateway.policy.decision import Decision
    from schemas.envelope import Envelope

__all__ = ["NOT_STATED", "NO_FLOW", "OTHER_VACCINE", "ActivityEvent", "AggregateCell", "activity_of", "aggregate",
           "combine_decisions", "month_of"]

NOT_STATED = "non-indicato"
"""Quartiere of an event whose message did not locate it."""
OTHER_VACCINE = "other"
"""Vaccine group of a vaccination whose vaccine names none (and of rows counted before groups were kept)."""
NO_FLOW = "non-dichiarato"
"""Flow of a decision no declared flow covered (always a denial)."""
STATISTICS_ZONE = ZoneInfo("Europe/Rome")
"""Months are calendar months in Milan."""

OPERATOR_DIMENSIONS = frozenset({"operator", "client_id", "user", "nurse", "community_manager"})
"""Dimensions that would rank individual operators (seed 003 §4.5): refused."""


@dataclass(frozen=True, slots=True)
class AggregateCell:
    """One cell: its dimension values and a count, or ``None`` when suppressed."""

    key: tuple[str, ...]
    count: int | None
    suppressed: bool


def aggregate(
    events: Iterable[Mapping[str, str]],
    dimensions: Sequence[str],
    threshold: int = 5,
    weights: Iterable[int] | None = None,
    occurrences: Iterable[int] | None = None,
) -> list[AggregateCell]:
    """Count ``events`` by ``dimensions`` (optionally summing ``weights``, e.g. minutes of care) and
    suppress cells whose number of contributing events is below ``threshold``. ``occurrences``: how many events
    each entry stands for (1 each when not given; a stored F13 row stands for the alike decisions of a batch),
    which is what a cell counts, and what its suppression counts, whether or not weights are summed."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    refused = OPERATOR_DIMENSIONS.intersection(dimensions)
    if refused:
        raise ValueError(f"aggregates never rank individual operators: {', '.join(sorted(refused))}")
    contributors: Counter[tuple[str, ...]] = Counter()
    totals: Counter[tuple[str, ...]] = Counter()
    weight_list = list(weights) if weights is not None else None
    occurrence_list = list(occurrences) if occurrences is not None else None
    for i, event in enumerate(events):
        key = tuple(str(event[d]) for d in dimensions)
        times = occurrence_list[i] if occurrence_list is not None else 1
        contributors[key] += times
        totals[key] += weight_list[i] if weight_list is not None else times
    hidden = {key for key, n in contributors.items() if n < threshold}
    hidden |= _secondary(contributors, hidden, len(dimensions))
    return [AggregateCell(key, None if key in hidden else totals[key], key in hidden) for key in sorted(contributors)]


def _secondary(
    contributors: Counter[tuple[str, ...]], hidden: set[tuple[str, ...]], width: int
) -> set[tuple[str, ...]]:
    extra: set[tuple[str, ...]] = set()
    changed = True
    while changed:
        changed = False
        for axis in range(width):
            groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
            for key in contributors:
                groups.setdefault(key[:axis] + key[axis + 1 :], []).append(key)
            for members in groups.values():
                concealed = [k for k in members if k in hidden or k in extra]
                visible = sorted(
                    (k for k in members if k not in hidden and k not in extra), key=lambda k: contributors[k]
                )
                if len(concealed) == 1 and visible:
                    extra.add(visible[0])
                    changed = True
    return extra


# --- activity events --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivityEvent:
    """One event the statistics flows count; stored in ``statistics_activity``."""

    month: str
    """``YYYY-MM`` in Europe/Rome."""
    kind: Literal["visit", "vaccination", "decision"]
    source: str
    """Partner whose message it came from."""
    quartiere: str = NOT_STATED
    flow_id: str | None = None
    """For decisions: the declared flow (None when none covered the message)."""
    recipient: str | None = None
    outcome: Literal["permit", "deny"] | None = None
    weight: int = 1
    """Minutes of care for a visit; for a decision, how many alike decisions the event stands for (see
    :func:`combine_decisions`); 1 for a vaccination."""
    record: tuple[str, str] | None = None
    """For care: the FHIR resource type and id of the source record counted, so that a re-send replaces its
    count. Held in memory only; the store keeps a keyed hash of it with ``source``. None for decisions."""
    retracted: bool = False
    """The record no longer counts (cancelled, entered in error, not done, masked): its row is removed."""
    vaccine_group: str | None = None
    """For a vaccination: its vaccine group (code list ``vaccine_groups``: influenza, covid-19, pneumococcal,
    zoster, other), the dimension F6 counts vaccinations by. None for visits and decisions."""


    @property
    def occurrences(self) -> int:
        """How many events this one stands for: a decision's weight, one for care (whose weight is minutes)."""
        return self.weight if self.kind == "decision" else 1


def combine_decisions(events: Sequence[ActivityEvent]) -> list[ActivityEvent]:
    """``events`` with their decisions (F13) combined: one event per distinct month, sender, quartiere, flow,
    recipient and outcome, weighing as many decisions as it stands for, first where the first of them was; care
    events as they are. What a batch stores: its decisions are a few alike groups, and one row each costs the
    store a fraction of one row per decision, while every count comes out the same (:func:`aggregate` counts
    ``occurrences``)."""
    combined: list[ActivityEvent] = []
    at: dict[tuple[object, ...], int] = {}
    weights: dict[tuple[object, ...], int] = {}
    for event in events:
        if event.kind != "decision" or event.record is not None or event.retracted:
            combined.append(event)
            continue
        key: tuple[object, ...] = (event.month, event.source, event.quartiere, event.flow_id, event.recipient,
                                   event.outcome)
        if key in at:
            weights[key] += event.weight
        else:
            at[key], weights[key] = len(combined), event.weight
            combined.append(event)
    for group, index in at.items():
        if weights[group] != combined[index].weight:
            combined[index] = replace(combined[index], weight=weights[group])
    return combined


@functools.lru_cache(maxsize=256)
def month_of(moment: datetime | date) -> str:
    """``YYYY-MM`` of a moment in Milan (a date is taken as it is). Remembered: every message of a batch is
    counted in the month of the batch's one decision time, and the time zone conversion cost more than a look-up.
    Equal moments have the same month, whatever their time zones."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(STATISTICS_ZONE)
    return f"{moment.year:04d}-{moment.month:02d}"


_CARE: dict[str, tuple[Literal["visit", "vaccination"], str, str, str, frozenset[str]]] = {
    "care.encounter": ("visit", "Encounter", "encounter_id", "finished",
                       frozenset({"cancelled", "entered-in-error"})),
    "care.immunization": ("vaccination", "Immunization", "immunization_id", "completed",
                          frozenset({"entered-in-error", "not-done"})),
}
"""Care message types F6 counts: kind, FHIR resource type, id field, the status that counts, and the statuses
that take an earlier count back."""


def activity_of(envelope: Envelope, decisions: Sequence[Decision], now: datetime) -> list[ActivityEvent]:
    """What a decided message adds to the statistics: one ``decision`` event per recipient decided (F13), and
    for a finished care visit or a given vaccination one ``visit`` / ``vaccination`` event (F6) naming its
    source record. Records the source masked ("oscurato"), cancelled, entered in error or did not do are not
    counted as care: they give a retraction of any earlier count of the same record."""
    payload = envelope.payload
    quartiere = _quartiere(payload)
    month = month_of(now)
    events = [
        ActivityEvent(month=month, kind="decision", source=envelope.sender, quartiere=quartiere,
                      flow_id=d.flow.id if d.flow is not None else None, recipient=d.recipient or None,
                      outcome=d.outcome)
        for d in decisions
    ]
    care = _CARE.get(envelope.message_type)
    if care is None:
        return events
    kind, resource_type, id_field, counted, withdrawn = care
    record = (resource_type, str(payload[id_field])) if payload.get(id_field) else None
    status = payload.get("status")
    if payload.get("masked_at_source") is True or status in withdrawn:
        if record is not None:  # an earlier count of this record, if any, is taken back
            events.append(ActivityEvent(month=month, kind=kind, source=envelope.sender, record=record,
                                        retracted=True))
        return events
    if status != counted:
        return events
    if kind == "visit":
        start = datetime.fromisoformat(str(payload["period_start"]))
        events.append(ActivityEvent(month=month_of(start), kind="visit", source=envelope.sender,
                                    quartiere=quartiere, weight=_minutes(payload, start), record=record))
    else:
        events.append(ActivityEvent(month=month_of(date.fromisoformat(str(payload["occurred_on"]))),
                                    kind="vaccination", source=envelope.sender, quartiere=quartiere, record=record,
                                    vaccine_group=_vaccine_group(payload)))
    return events


def _quartiere(payload: Mapping[str, Any]) -> str:
    """The quartiere the canonical payload carries (at its top level or on its tenancy), else ``non-indicato``."""
    for holder in (payload, payload.get("tenancy")):
        if isinstance(holder, Mapping) and isinstance(holder.get("quartiere"), str):
            return str(holder["quartiere"])
    return NOT_STATED


def _vaccine_group(payload: Mapping[str, Any]) -> str:
    """The vaccine group of a ``care.immunization`` payload; ``other`` when the vaccine names none."""
    vaccine = payload.get("vaccine")
    group = vaccine.get("group") if isinstance(vaccine, Mapping) else None
    return str(group) if isinstance(group, str) else OTHER_VACCINE


def _minutes(payload: Mapping[str, Any], start: datetime) -> int:
    """Minutes of care: as the source stated them, else from the period, else 0 (an open visit)."""
    if isinstance(payload.get("length_minutes"), int):
        return int(payload["length_minutes"])
    if payload.get("period_end"):
        seconds = (datetime.fromisoformat(str(payload["period_end"])) - start).total_seconds()
        return max(0, round(seconds / 60))
    return 0
