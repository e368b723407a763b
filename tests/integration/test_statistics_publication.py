"""Statistics flows F6 and F13: activity counted at intake without personal data, the monthly publication job
(suppression applied, no operator dimension possible, published once, nothing but aggregates in the message)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import select

import adapters.aler
import gateway.statistics.publication as publication
from gateway.identity.synthetic import generate_tenants
from gateway.policy import Decision, load_registry
from gateway.settings import TopicSettings
from gateway.simulators import aler_arrears_message
from gateway.statistics.counting import NOT_STATED, ActivityEvent, activity_of
from gateway.statistics.publication import MeasureSpec, PeriodNotClosed, StatisticsPublisher
from gateway.store import Store
from gateway.store.tables import statistics_activity
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.statistics import StatisticsAggregate, StatisticsCell

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
REGISTRY = load_registry()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    made = Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}", b"k" * 32)
    await made.migrate()
    try:
        yield made
    finally:
        await made.close()


def publisher(store: Store, threshold: int = 5) -> StatisticsPublisher:
    return StatisticsPublisher(store, REGISTRY, TopicSettings(prefix=""), "test-instance", threshold,
                               clock=lambda: NOW)


def visits(quartiere: str, n: int, minutes: int, source: str = "asst") -> list[ActivityEvent]:
    return [ActivityEvent("2026-10", "visit", source, quartiere, weight=minutes)] * n


def vaccinations(quartiere: str, n: int, group: str | None = "influenza") -> list[ActivityEvent]:
    return [ActivityEvent("2026-10", "vaccination", "asst", quartiere, vaccine_group=group)] * n


def decisions(flow: str | None, quartiere: str, outcome: str, n: int) -> list[ActivityEvent]:
    return [ActivityEvent("2026-11", "decision", "aler", quartiere, flow, "comune", outcome)] * n  # type: ignore[arg-type]


async def seed(store: Store, events: list[ActivityEvent]) -> None:
    async with store.transaction() as tx:
        await tx.record_activity(events)


async def queued(store: Store) -> list[tuple[str, dict[str, Any], dict[str, str], Any]]:
    async with store.transaction() as tx:
        rows = await tx.pending_outbox(100)
    return [(r.topic, orjson.loads(r.value), dict(r.headers), r) for r in rows]


async def audit(store: Store) -> list[dict[str, Any]]:
    async with store.transaction() as tx:
        return [json.loads(e["record"]) for e in await tx.audit_entries()]


def cells(body: dict[str, Any], measure: str) -> dict[str, int | None]:
    [found] = [m for m in body["measures"] if m["measure"] == measure]
    return {"/".join(c["key"][d] for d in found["dimensions"]): c["value"] for c in found["cells"]}


F6_MONTH = [
    *visits("san-siro", 8, 30), *visits("lorenteggio", 10, 20), *visits("gratosoglio", 6, 45),
    *visits("mazzini", 2, 60), *visits("san-siro", 9, 30, source="comune"),
    *vaccinations("san-siro", 6), *vaccinations("gratosoglio", 5), *vaccinations("mazzini", 1),
]


async def test_f6_small_cells_are_published_as_suppressed_never_as_their_value(store: Store) -> None:
    await seed(store, F6_MONTH)

    published = await publisher(store).publish("2026-10", "F6")

    assert [(p.flow, p.recipient, p.queued) for p in published] == [("F6", "aler", True),
                                                                     ("F6-regione", "regione", True)]
    rows = await queued(store)
    assert [topic for topic, *_ in rows] == ["out.aler", "out.regione"]
    for _, body, _, _ in rows:
        # mazzini (2) is below 5; gratosoglio (6) is then the smallest, hidden so mazzini = total - rest fails
        assert cells(body, "visits") == {"gratosoglio": None, "lorenteggio": 10, "mazzini": None, "san-siro": 8}
        assert cells(body, "care-minutes") == {"gratosoglio": None, "lorenteggio": 200, "mazzini": None,
                                               "san-siro": 240}
        assert cells(body, "vaccinations") == {"gratosoglio/influenza": None, "mazzini/influenza": None,
                                               "san-siro/influenza": 6}
        suppressed = [c for m in body["measures"] for c in m["cells"] if c["suppressed"]]
        assert suppressed and all(c["value"] is None for c in suppressed)
        assert body["threshold"] == 5 and body["period"] == "2026-10"
    assert [body["flow"] for _, body, _, _ in rows] == ["F6", "F6-regione"]


async def test_f6_counts_vaccinations_per_vaccine_group_with_small_cells_suppressed_per_group(store: Store) -> None:
    await seed(store, [*vaccinations("san-siro", 7), *vaccinations("san-siro", 2, "covid-19"),
                       *vaccinations("san-siro", 8, "zoster"), *vaccinations("lorenteggio", 6),
                       *vaccinations("lorenteggio", 5, "covid-19"), *vaccinations("gratosoglio", 9, "pneumococcal"),
                       *vaccinations("gratosoglio", 5, None)])  # counted before groups were kept: "other"

    await publisher(store).publish("2026-10", "F6")

    [(_, body, _, _), _] = await queued(store)
    [measure] = [m for m in body["measures"] if m["measure"] == "vaccinations"]
    assert measure["dimensions"] == ["quartiere", "vaccine_group"]
    # san-siro/covid-19 (2) is below 5; then, so that it cannot be recovered from its quartiere or its group,
    # san-siro/influenza (the smallest left in san-siro), lorenteggio/covid-19 (the only other covid-19 cell)
    # and lorenteggio/influenza (the only other influenza cell) are hidden too
    assert cells(body, "vaccinations") == {
        "gratosoglio/other": 5, "gratosoglio/pneumococcal": 9, "lorenteggio/covid-19": None,
        "lorenteggio/influenza": None, "san-siro/covid-19": None, "san-siro/influenza": None, "san-siro/zoster": 8}


async def test_f6_counts_only_the_trusts_own_care(store: Store) -> None:
    await seed(store, visits("san-siro", 9, 30, source="comune") + visits("lorenteggio", 5, 10))

    await publisher(store).publish("2026-10", "F6")

    [(_, body, _, _), _] = await queued(store)
    assert cells(body, "visits") == {"lorenteggio": 5}


async def test_f13_counts_decisions_by_flow_quartiere_and_outcome(store: Store) -> None:
    await seed(store, decisions("F2", "san-siro", "permit", 6) + decisions("F2", "mazzini", "permit", 7)
               + decisions(None, "san-siro", "deny", 2) + decisions("F1", NOT_STATED, "deny", 9))

    later = StatisticsPublisher(store, REGISTRY, TopicSettings(prefix=""), "i", 5,
                                clock=lambda: datetime(2026, 12, 1, 0, 0, tzinfo=UTC))  # November is over
    result = await later.publish("2026-11", "F13")

    assert sorted((p.flow, p.recipient) for p in result) == [("F13", "regione"), ("F13-comune", "comune")]
    for _, body, headers, _ in await queued(store):
        assert headers["message-type"] == "statistics.aggregate" and headers["purpose"] == "statistics"
        [measure] = body["measures"]
        assert measure["dimensions"] == ["flow", "quartiere", "outcome"]
        found = cells(body, "decisions")
        assert found["F1/non-indicato/deny"] == 9
        assert found["non-dichiarato/san-siro/deny"] is None  # 2 decisions
        assert all(v is None or v >= 5 for v in found.values())


async def test_a_month_that_has_not_ended_is_not_published(store: Store) -> None:
    await seed(store, decisions("F2", "san-siro", "permit", 6))
    with pytest.raises(PeriodNotClosed):
        await publisher(store).publish("2026-11", "F13")
    with pytest.raises(ValueError, match="YYYY-MM"):
        await publisher(store).publish("2026-13")
    assert await queued(store) == []


async def test_publishing_a_month_twice_publishes_it_once(store: Store) -> None:
    await seed(store, F6_MONTH)

    first = await publisher(store).publish("2026-10")
    await seed(store, visits("mazzini", 20, 30))  # late data does not change what was published
    again = await publisher(store).publish("2026-10")

    assert all(p.queued for p in first) and not any(p.queued for p in again)
    assert [p.message_id for p in again] == [p.message_id for p in first]
    rows = await queued(store)
    assert len(rows) == len(first) == 4  # F6, F6-regione, F13, F13-comune
    assert len([r for r in await audit(store) if r["event_type"] == "disclosure"]) == 4


async def test_the_message_carries_nothing_but_aggregates(store: Store) -> None:
    await seed(store, F6_MONTH)
    await publisher(store).publish("2026-10", "F6")

    records = await audit(store)
    for (_, body, headers, row), record in zip(await queued(store), records, strict=True):
        assert set(body) == {"message_type", "flow", "period", "threshold", "generated_at", "measures"}
        assert StatisticsAggregate.model_validate(body)
        assert {k for m in body["measures"] for c in m["cells"] for k in c["key"]} == {"quartiere", "vaccine_group"}
        assert row.subject_pseudonym is None and row.consent_id is None
        assert row.key == f"{body['flow']}:2026-10".encode()
        assert headers["message-id"] == f"stat-{body['flow']}-2026-10"
        # one disclosure audit record per recipient: purpose statistics, no subject
        assert (record["event_type"], record["purpose"], record["flow_id"]) == ("disclosure", "statistics",
                                                                                  body["flow"])
        assert "subject_ref" not in record and record["recipient_org"] == row.recipient
        assert record["legal_basis"].startswith("GDPR 89") and record["labels"] == ["S0"]


def test_the_activity_table_has_no_column_that_could_name_a_person() -> None:
    assert set(statistics_activity.c.keys()) == {"id", "month", "kind", "source", "quartiere", "flow_id",
                                                 "recipient", "outcome", "weight", "source_key", "vaccine_group"}


async def test_no_operator_dimension_can_be_published(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        StatisticsCell.model_validate({"key": {"operator": "nurse-17"}, "value": 9, "suppressed": False})
    with pytest.raises(ValidationError):
        StatisticsCell.model_validate({"key": {"quartiere": "san-siro"}, "value": 3, "suppressed": True})
    ranked = publication.Family((MeasureSpec("visits", "visit", ("quartiere", "nurse")),), sender_only=True)
    monkeypatch.setitem(publication.FAMILIES, "F6", ranked)
    await seed(store, F6_MONTH)
    with pytest.raises(ValueError, match="operators"):
        await publisher(store).publish("2026-10", "F6")
    assert await queued(store) == []


def test_statistics_flows_are_s0_aggregates_no_partner_message_can_follow() -> None:
    statistics = [f for f in REGISTRY.flows if f.purpose == "statistics"]
    assert sorted((f.id, f.recipient) for f in statistics) == [
        ("F13", "regione"), ("F13-comune", "comune"), ("F6", "aler"), ("F6-regione", "regione")]
    assert all((f.message_type, f.sensitivity, f.consent.required) == ("statistics.aggregate", "S0", False)
               for f in statistics)
    # a care record the trust tags "statistics" finds no flow: it is counted, never forwarded
    assert REGISTRY.flows_for("asst", "care.encounter", "statistics") == ()


def test_an_unknown_statistics_flow_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown statistics flow"):
        publisher(store).flows("F5")


# --- activity counted at intake ---------------------------------------------------------------------------------

def envelope(message_type: str, payload: dict[str, Any], sender: str = "asst") -> Envelope:
    return Envelope(message_id="m-1", correlation_id="c-1", message_type=message_type, sender=sender,
                    subject=SubjectRef(identifiers=(Identifier(system="cf", value="RSSMRA85T10A562S"),)),
                    purpose="care-coordination", occurred_at=NOW, payload=payload)


def decision(flow_id: str | None, outcome: str) -> Decision:
    flow = next((f for f in REGISTRY.flows if f.id == flow_id), None)
    return Decision(decision_id="d", recipient=flow.recipient if flow else "", outcome=outcome,  # type: ignore[arg-type]
                    reason=None, flow=flow, consent_ref=None, legal_basis=None, policy_revision="r",
                    combining_rule="x", matched_provision=None)


ENCOUNTER = {"encounter_id": "enc-1", "status": "finished", "class_code": "HH", "service_type": "home-nursing",
             "period_start": "2026-10-31T23:30:00+01:00", "period_end": "2026-11-01T00:20:00+01:00",
             "quartiere": "mazzini"}


def test_a_finished_visit_counts_its_minutes_in_the_month_it_started_in_milan() -> None:
    events = activity_of(envelope("care.encounter", ENCOUNTER), [decision("F5", "permit")], NOW)
    assert events == [
        ActivityEvent("2026-11", "decision", "asst", "mazzini", "F5", "aler", "permit"),
        ActivityEvent("2026-10", "visit", "asst", "mazzini", weight=50, record=("Encounter", "enc-1")),
    ]
    stated = activity_of(envelope("care.encounter", {**ENCOUNTER, "length_minutes": 45}), [], NOW)
    assert [e.weight for e in stated] == [45]


def test_planned_or_masked_care_is_not_counted_and_a_missing_quartiere_is_not_stated() -> None:
    planned = {**ENCOUNTER, "status": "planned"}
    masked = {**ENCOUNTER, "masked_at_source": True}
    assert activity_of(envelope("care.encounter", planned), [], NOW) == []
    [denied, retraction] = activity_of(envelope("care.encounter", masked), [decision("F5", "deny")], NOW)
    assert denied.kind == "decision"
    assert (retraction.kind, retraction.record, retraction.retracted) == ("visit", ("Encounter", "enc-1"), True)
    nowhere = {k: v for k, v in ENCOUNTER.items() if k != "quartiere"}
    [visit] = activity_of(envelope("care.encounter", nowhere), [], NOW)
    assert visit.quartiere == NOT_STATED


def test_a_given_vaccination_counts_in_its_own_month() -> None:
    given = {"immunization_id": "imm-1", "status": "completed", "occurred_on": "2026-10-21",
             "season": "2026-2027", "quartiere": "gratosoglio",
             "vaccine": {"system": "http://www.whocc.no/atc", "code": "J07BB02"}}
    [denied, vaccination] = activity_of(envelope("care.immunization", given), [decision(None, "deny")], NOW)
    assert (denied.flow_id, denied.outcome, denied.quartiere) == (None, "deny", "gratosoglio")
    assert (vaccination.kind, vaccination.month, vaccination.quartiere) == ("vaccination", "2026-10", "gratosoglio")
    assert vaccination.record == ("Immunization", "imm-1") and not vaccination.retracted
    assert vaccination.vaccine_group == "influenza"  # an envelope from before groups existed gets its code's
    [not_done] = activity_of(envelope("care.immunization", {**given, "status": "not-done"}), [], NOW)
    assert not_done.retracted and not_done.record == ("Immunization", "imm-1")


@pytest.mark.parametrize(("system", "code", "group"), [
    ("http://www.whocc.no/atc", "J07BX03", "covid-19"), ("https://www.aifa.gov.it/aic", "046337010", "zoster"),
    ("http://hl7.org/fhir/sid/cvx", "216", "pneumococcal"), ("http://www.whocc.no/atc", "J07BC02", "other"),
])
def test_a_vaccination_is_counted_in_its_vaccine_group(system: str, code: str, group: str) -> None:
    given = {"immunization_id": "imm-2", "status": "completed", "occurred_on": "2026-11-03",
             "season": "2026-2027", "vaccine": {"system": system, "code": code}}
    [vaccination] = activity_of(envelope("care.immunization", given), [], NOW)
    assert (vaccination.kind, vaccination.vaccine_group) == ("vaccination", group)


def test_a_referral_is_counted_in_the_quartiere_of_its_tenancy() -> None:
    person = next(t for t in generate_tenants("S", seed=7, limit=50) if t.arrears_cents > 0)
    [referral] = adapters.aler.decode(orjson.dumps(aler_arrears_message(person, "m-1")))
    [event] = activity_of(referral, [decision("F1", "deny")], NOW)
    assert (event.source, event.quartiere, event.flow_id, event.recipient) == ("aler", person.quartiere, "F1", "fwa")
    assert event.quartiere == referral.payload["tenancy"]["quartiere"] != NOT_STATED


@pytest.mark.parametrize("change", [{"allowed_fields": ("period", "measures.cells")}, {"sensitivity": "S2"}],
                         ids=["fields-not-declared", "not-s0"])
async def test_a_statistics_flow_declared_otherwise_publishes_nothing(store: Store, change: dict[str, Any]) -> None:
    flows = tuple(f.model_copy(update=change) if f.id == "F6-regione" else f for f in REGISTRY.flows)
    narrowed = StatisticsPublisher(store, dataclasses.replace(REGISTRY, flows=flows), TopicSettings(prefix=""),
                                   "i", 5, clock=lambda: NOW)
    await seed(store, F6_MONTH)
    with pytest.raises(ValueError, match="not published"):
        await narrowed.publish("2026-10", "F6")
    assert await queued(store) == []


# --- a care record sent again is counted once ---------------------------------------------------------------------

async def intake_activity(store: Store, *messages: tuple[str, dict[str, Any]]) -> None:
    """Count each message as the intake does, one transaction per message (each a new message id)."""
    for n, (message_type, payload) in enumerate(messages):
        decided = envelope(message_type, payload).model_copy(update={"message_id": f"m-{n}"})
        await seed(store, activity_of(decided, [decision("F5", "permit")], NOW))


async def counted(store: Store, month: str, kind: str) -> list[ActivityEvent]:
    async with store.transaction() as tx:
        return await tx.activity(month, [kind])


async def test_an_encounter_sent_again_with_a_corrected_length_counts_once_with_the_corrected_minutes(
    store: Store,
) -> None:
    await intake_activity(store, ("care.encounter", ENCOUNTER),
                          ("care.encounter", {**ENCOUNTER, "length_minutes": 35, "quartiere": "san-siro"}))

    [visit] = await counted(store, "2026-10", "visit")
    assert (visit.weight, visit.quartiere) == (35, "san-siro")
    await publisher(store, threshold=1).publish("2026-10", "F6")
    [(_, body, _, _), _] = await queued(store)
    assert (cells(body, "visits"), cells(body, "care-minutes")) == ({"san-siro": 1}, {"san-siro": 35})
    decisions_counted = await counted(store, "2026-11", "decision")
    assert len(decisions_counted) == 2  # F13 counts each message's decision, as before
    async with store.engine.connect() as conn:
        keys = (await conn.execute(select(statistics_activity.c.kind, statistics_activity.c.source_key))).all()
    assert sorted(k for k, key in keys if key is None) == ["decision", "decision"]
    [(_, source_key)] = [row for row in keys if row[1] is not None]
    assert source_key == store.activity_source_key("asst", "Encounter", "enc-1") and "enc-1" not in source_key


async def test_two_different_encounters_count_twice_and_a_cancelled_one_no_more(store: Store) -> None:
    other = {**ENCOUNTER, "encounter_id": "enc-2", "length_minutes": 20}
    await intake_activity(store, ("care.encounter", ENCOUNTER), ("care.encounter", other))
    assert sorted(v.weight for v in await counted(store, "2026-10", "visit")) == [20, 50]

    await intake_activity(store, ("care.encounter", {**other, "status": "entered-in-error"}))
    assert [v.weight for v in await counted(store, "2026-10", "visit")] == [50]


async def test_within_one_batch_the_last_event_for_a_record_wins(store: Store) -> None:
    first = activity_of(envelope("care.encounter", ENCOUNTER), [], NOW)
    corrected = activity_of(envelope("care.encounter", {**ENCOUNTER, "length_minutes": 15}), [], NOW)
    given = {"immunization_id": "enc-1", "status": "completed", "occurred_on": "2026-10-21",
             "season": "2026-2027", "vaccine": {"system": "http://www.whocc.no/atc", "code": "J07BB02"}}
    vaccination = activity_of(envelope("care.immunization", given), [], NOW)
    await seed(store, first + corrected + vaccination)

    assert [v.weight for v in await counted(store, "2026-10", "visit")] == [15]
    assert len(await counted(store, "2026-10", "vaccination")) == 1  # another kind, another record
