"""Statistics flows F6 and F13 end to end through the bus, on both backend pairs.

ASST's visits and vaccinations and ALER's referrals go through the pipeline as partners send them; the intake
counts them without personal data; the monthly publication queues the aggregates, the relay delivers them, and
each recipient reads them on ``out.<recipient>`` (checked against the AsyncAPI channel), small cells suppressed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.asst_fhir.systems import QUARTIERE_SYSTEM
from gateway.bootstrap import Gateway
from gateway.bus import BusRecord
from gateway.simulators import aler_arrears_message, asst_encounter
from gateway.statistics.counting import NO_FLOW, aggregate
from gateway.statistics.publication import StatisticsPublisher
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until, tenant
from tests.e2e.test_flows import CF, aler_header, submit
from tests.unit.test_adapter_asst_fhir import immunization

MONTH = "2026-10"
DECIDED_AT = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
"""When the intake decides in this test: inside the month published."""
PUBLISHED_AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

VISITS = {"gratosoglio": 8, "san-siro": 6, "mazzini": 2}
VACCINATIONS = {("san-siro", "influenza"): 6, ("gratosoglio", "influenza"): 5, ("mazzini", "influenza"): 1,
                ("san-siro", "covid-19"): 5}
ATC = {"influenza": "J07BB02", "covid-19": "J07BX03"}
"""The ATC code a vaccination of each vaccine group is sent with."""
FRAGILITY_SIGNALS = 5  # F2, san-siro
MINUTES_PER_VISIT = 50


def located(quartiere: str) -> dict[str, Any]:
    return {"identifier": {"system": QUARTIERE_SYSTEM, "value": quartiere}}


def visit(n: int, quartiere: str, status: str = "finished") -> dict[str, Any]:
    encounter = asst_encounter(CF, f"stat-enc-{n}", f"corr-stat-enc-{n}", status=status)
    encounter["period"] = {"start": "2026-10-12T09:00:00+02:00", "end": "2026-10-12T09:50:00+02:00"}
    encounter["location"] = [{"location": located(quartiere)}]
    return encounter


def fragility_signal(n: int) -> dict[str, Any]:
    return {
        **aler_header("segnalazione-fragilita", f"stat-f2-{n}", "social-case-management", ["comune"]),
        "contratto": {"id_contratto": f"ALER-C-{n:08d}", "quartiere": "S. Siro", "municipio": 7},
        "intestatario": {"codice_fiscale": CF},
        "nucleo": {"tipologia": "elderly-single", "componenti": 1, "presenza_minori": False,
                   "presenza_over_65": True, "presenza_disabilita": False},
        "segnali": ["isolation"],
    }


def aggregates(records: list[BusRecord]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records if r.header("message-type") == "statistics.aggregate"]


def cells(body: dict[str, Any], measure: str) -> dict[tuple[str, ...], int | None]:
    [found] = [m for m in body["measures"] if m["measure"] == measure]
    return {tuple(c["key"][d] for d in found["dimensions"]): c["value"] for c in found["cells"]}


async def test_F6_and_F13_aggregates_reach_their_recipients_with_small_cells_suppressed(gateway: Gateway) -> None:
    gateway.intake.clock = lambda: DECIDED_AT
    people = [tenant(31), tenant(32)]
    n = 0
    for quartiere, count in VISITS.items():
        for _ in range(count):
            n += 1
            await submit(gateway, "asst", visit(n, quartiere), "application/fhir+json")
    await submit(gateway, "asst", visit(99, "san-siro", status="planned"), "application/fhir+json")  # not care yet
    for (quartiere, group), count in VACCINATIONS.items():
        for i in range(count):
            vaccine = {"coding": [{"system": "http://www.whocc.no/atc", "code": ATC[group]}]}
            await submit(gateway, "asst", immunization(id=f"stat-imm-{quartiere}-{group}-{i}", vaccineCode=vaccine,
                                                       location=located(quartiere)), "application/fhir+json")
    for i in range(FRAGILITY_SIGNALS):
        await submit(gateway, "aler", fragility_signal(i))
    for i, person in enumerate(people):
        await submit(gateway, "aler", aler_arrears_message(person, f"stat-f1-{i}"))  # no consent: denied
    encounters = sum(VISITS.values()) + 1
    await read_until(gateway, "status", "asst", encounters + sum(VACCINATIONS.values()))
    await read_until(gateway, "status", "aler", FRAGILITY_SIGNALS + len(people))

    publisher = StatisticsPublisher(gateway.store, gateway.registry, gateway.settings.topics,
                                    gateway.settings.instance_id, gateway.settings.statistics_threshold,
                                    clock=lambda: PUBLISHED_AT, on_enqueued=gateway.relay.wake)
    published = await publisher.publish(MONTH)
    again = await publisher.publish(MONTH)

    assert sorted((p.flow, p.recipient) for p in published if p.queued) == [
        ("F13", "regione"), ("F13-comune", "comune"), ("F6", "aler"), ("F6-regione", "regione")]
    assert not any(p.queued for p in again)

    [to_aler] = aggregates(await read_until(gateway, "out", "aler", encounters + 1, settle_s=0.5))
    to_regione = {b["flow"]: b for b in aggregates(await read_until(gateway, "out", "regione", 2, settle_s=0.5))}
    [to_comune] = aggregates(await read_until(gateway, "out", "comune", FRAGILITY_SIGNALS + 1, settle_s=0.5))
    assert sorted(to_regione) == ["F13", "F6-regione"] and to_aler["flow"] == "F6"
    assert to_comune["flow"] == "F13-comune"

    for f6 in (to_aler, to_regione["F6-regione"]):
        assert f6["period"] == MONTH and f6["threshold"] == 5
        # mazzini (2 visits) is below 5; san-siro (6) is then the smallest, hidden with it; the planned visit
        # is not counted
        assert cells(f6, "visits") == {("gratosoglio",): 8, ("san-siro",): None, ("mazzini",): None}
        assert cells(f6, "care-minutes") == {("gratosoglio",): 8 * MINUTES_PER_VISIT, ("san-siro",): None,
                                             ("mazzini",): None}
        # per vaccine group: mazzini's one influenza vaccination is below 5, and gratosoglio's (5, the smallest
        # other influenza cell) is hidden with it; san-siro's five COVID-19 vaccinations are published
        assert cells(f6, "vaccinations") == {("san-siro", "influenza"): 6, ("san-siro", "covid-19"): 5,
                                             ("gratosoglio", "influenza"): None, ("mazzini", "influenza"): None}

    expected: list[dict[str, str]] = []
    for quartiere, count in VISITS.items():
        expected += [{"flow": "F5", "quartiere": quartiere, "outcome": "permit"}] * count
    expected.append({"flow": "F5", "quartiere": "san-siro", "outcome": "permit"})  # the planned visit
    for (quartiere, _), count in VACCINATIONS.items():  # no flow takes vaccinations anywhere: denied
        expected += [{"flow": NO_FLOW, "quartiere": quartiere, "outcome": "deny"}] * count
    expected += [{"flow": "F2", "quartiere": "san-siro", "outcome": "permit"}] * FRAGILITY_SIGNALS
    expected += [{"flow": "F1", "quartiere": p.quartiere, "outcome": "deny"} for p in people]
    dimensions = ("flow", "quartiere", "outcome")
    want = {c.key: c.count for c in aggregate(expected, dimensions, threshold=5)}
    for f13 in (to_regione["F13"], to_comune):
        got = cells(f13, "decisions")
        assert got == want
        assert got[("F5", "gratosoglio", "permit")] == 8
        assert got[("F5", "mazzini", "permit")] is None
        assert all(got[("F1", p.quartiere, "deny")] is None for p in people)
        assert all(value is None or value >= 5 for value in got.values())

    raw = b"".join(orjson.dumps(b) for b in (to_aler, to_comune, *to_regione.values())).decode()
    for never in (CF, *(p.cf for p in people), "stat-enc-", "stat-imm-", "sbj_", "gw-"):
        assert never not in raw
    disclosures = [r for r in await audit_records(gateway)
                   if r["event_type"] == "disclosure" and r.get("purpose") == "statistics"]
    assert sorted(r["recipient_org"] for r in disclosures) == ["aler", "comune", "regione", "regione"]
    assert all("subject_ref" not in r for r in disclosures)
