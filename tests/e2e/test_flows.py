"""Flows F1-outcome, F2, F3, F4, F5, F7, F9, F10 and F11 end to end through the bus, on both backend pairs.

Each test submits a partner's native message on ``in.<partner>`` and reads what each recipient receives on
its topic, checking that exactly the flow's fields crossed and that identifiers a recipient may not see were
replaced by crosswalk tokens; and that a referral's lifecycle (acknowledged, accepted, completed) follows its
recipient's feedback, on ``status.aler`` and over HTTP by correlation id.

These are the wiring: one case or more per flow over real backends. The flows' other rules (denials for want of
explicit consent, sensitive labels, rejected and withdrawn referrals, feedback on a shared correlation id) are
decided by the same intake over the in-memory store in ``tests/unit/pipeline/test_flows_on_memory_store.py``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson

from adapters.asst_fhir.systems import CORRELATION_SYSTEM
from gateway.bootstrap import Gateway
from gateway.bus import OutgoingRecord
from gateway.simulators import (
    aler_arrears_message,
    asst_discharge,
    asst_encounter,
    comune_case_event,
    comune_emergency,
    fhir_consent,
    fwa_outcome,
)
from tests.conftest import bearer
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until, tenant

CF = "RSSMRA85T10A562S"


async def submit(gateway: Gateway, partner: str, message: dict[str, Any],
                 content_type: str = "application/json") -> None:
    """Produce as a partner does: keyed by correlation id, so the messages of one referral stay in order."""
    correlation = message.get("id_correlazione") or message.get("id")
    await gateway.bus.publish([OutgoingRecord(topic=gateway.settings.topics.name("in", partner),
                                              value=orjson.dumps(message),
                                              key=str(correlation).encode() if correlation else None,
                                              headers=(("content-type", content_type.encode()),))])


def aler_header(kind: str, message_id: str, purpose: str, recipients: list[str]) -> dict[str, Any]:
    return {"id_messaggio": message_id, "id_correlazione": f"corr-{message_id}", "tipo_messaggio": kind,
            "versione": "1.0", "data_evento": "2026-11-20T09:30:00+01:00", "finalita": purpose,
            "destinatari": recipients}


async def decisions(gateway: Gateway) -> list[tuple[str | None, str, str | None]]:
    return [(r.get("flow_id"), r["outcome"], r.get("reason"))
            for r in await audit_records(gateway) if r["event_type"] == "decision"]


async def test_F7_disclosure_travels_only_on_the_restricted_topic_with_explicit_consent(gateway: Gateway) -> None:
    await gateway.consents.record(fhir_consent(CF, purposes=("anti-violence-support",), recipients=("cav",),
                                               consent_type="explicit", security_labels=("SDV",)),
                                  "aler", "aler-test", "req")
    disclosure = {**aler_header("segnalazione-riservata", "f7-1", "anti-violence-support", ["cav"]),
                  "persona": {"codice_fiscale": CF},
                  "contatto": {"canale": "telefono-sicuro", "telefono_sicuro": "+39 333 123-4567",
                               "fascia_oraria": "weekday-morning"}}
    del disclosure["id_correlazione"]
    await submit(gateway, "aler", disclosure)
    [record] = await read_until(gateway, "s4.out", "cav", 1, settle_s=0.5)
    assert orjson.loads(record.value)["payload"] == {"channel": "phone-safe-number", "safe_phone": "+393331234567",
                                                     "time_window": "weekday-morning"}
    assert await read_until(gateway, "out", "cav", 0, settle_s=0.5) == []
    assert await read_until(gateway, "out", "aler", 0, settle_s=0.2) == []
    assert await decisions(gateway) == [("F7", "permit", None)]


def eviction_milestone(cf: str, message_id: str, recipients: list[str], correlation_id: str | None = None
                       ) -> dict[str, Any]:
    header = aler_header("evento-sfratto", message_id, "housing-support", recipients)
    return {**header, "id_correlazione": correlation_id or header["id_correlazione"],
            "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
            "intestatario": {"codice_fiscale": cf},
            "procedura": {"stadio": "eviction-validated", "scadenza": "2027-01-15"}}


async def test_F9_eviction_milestone_reaches_fwa_with_a_housing_support_consent_and_only_its_fields(
    gateway: Gateway,
) -> None:
    person = tenant(24)
    # consent to the microcredit referral does not cover the eviction milestone: another purpose
    await gateway.consents.record(fhir_consent(person.cf), "aler", "aler-test", "req")
    await submit(gateway, "aler", eviction_milestone(person.cf, "f9-2", ["comune", "fwa"]))
    [denied_status] = await read_until(gateway, "status", "aler", 1)
    assert orjson.loads(denied_status.value)["recipients"] == ["comune"]

    consent = await gateway.consents.record(fhir_consent(person.cf, purposes=("housing-support",),
                                                         recipients=("fwa",)), "aler", "aler-test", "req")
    await submit(gateway, "aler", eviction_milestone(person.cf, "f9-3", ["comune", "fwa"]))
    [record] = await read_until(gateway, "out", "fwa", 1, settle_s=1.0)  # f9-2 never reached FWA
    assert record.header("message-type") == "tenancy.eviction-milestone"
    assert record.header("purpose") == "housing-support"
    assert record.header("correlation-id") == "corr-f9-3"
    body = orjson.loads(record.value)
    assert set(body) == {"message_id", "correlation_id", "message_type", "schema_version", "sender", "recipients",
                         "subject", "purpose", "sensitivity", "occurred_at", "payload", "labels"}
    assert body["message_id"].startswith("gw-") and body["correlation_id"] == "corr-f9-3"
    assert (body["message_type"], body["sender"], body["recipients"], body["purpose"]) == (
        "tenancy.eviction-milestone", "aler", ["fwa"], "housing-support")
    assert body["subject"]["identifiers"] == [{"system": "cf", "value": person.cf}]
    # exactly F9-fwa's fields; no tenancy id, no comune case
    assert body["payload"] == {"stage": "eviction-validated", "deadline": "2027-01-15", "quartiere": "gratosoglio",
                               "municipio": 5}
    assert body["labels"] == {"consent_ref": f"{consent.consent_id}@1", "obligations": [],
                              "refrains": ["NORDSCLCD", "NOREUSE"]}
    assert "ALER-C-12345678" not in record.value.decode()

    to_comune = await read_until(gateway, "out", "comune", 2)
    assert all("ALER-C-12345678" not in r.value.decode() for r in to_comune)
    statuses = [orjson.loads(r.value) for r in await read_until(gateway, "status", "aler", 2)]
    assert [(s["message_id"], s["state"], s["recipients"]) for s in statuses] == [
        ("f9-2", "forwarded", ["comune"]), ("f9-3", "forwarded", ["comune", "fwa"])]
    records = await audit_records(gateway)
    f9_fwa = [(r["event_type"], r["outcome"], r.get("reason")) for r in records if r.get("flow_id") == "F9-fwa"]
    assert f9_fwa == [("decision", "deny", "no-applicable-consent"), ("decision", "permit", None),
                      ("disclosure", "permit", None)]
    [disclosure] = [r for r in records if r.get("flow_id") == "F9-fwa" and r["event_type"] == "disclosure"]
    assert disclosure["recipient_org"] == "fwa" and disclosure["consent_ref"] == f"{consent.consent_id}@1"
    assert json.dumps(records).count(person.cf) == 0


async def test_F10_emergency_crosses_without_consent_and_is_queued_for_review(gateway: Gateway) -> None:
    await submit(gateway, "comune", comune_emergency(CF, "f10-1"))
    [record] = await read_until(gateway, "out", "pis", 1, settle_s=0.5)
    assert "fire" in record.value.decode()
    records = [r for r in await audit_records(gateway) if r.get("flow_id") == "F10-comune"]
    assert [r["event_type"] for r in records] == ["decision", "disclosure"]
    assert all("EMERGENCY" in r["labels"] for r in records)
    assert records[0]["legal_basis"].startswith("GDPR 6(1)(d)")


async def test_F11_discharge_splits_care_needs_to_the_comune_and_logistics_to_aler(gateway: Gateway) -> None:
    await submit(gateway, "asst", asst_discharge(CF, "stay-9", "corr-f11"), "application/fhir+json")
    [to_comune] = await read_until(gateway, "out", "comune", 1, settle_s=0.5)
    [to_aler] = await read_until(gateway, "out", "aler", 1, settle_s=0.5)
    comune = orjson.loads(to_comune.value)["payload"]
    aler = orjson.loads(to_aler.value)["payload"]
    assert comune.get("care_needs") == ["home-care"] and not comune.get("logistics")
    assert aler.get("logistics") == ["mobility-aid"] and not aler.get("care_needs")
    assert CF not in to_aler.value.decode() and "stay-9" not in to_aler.value.decode()


async def test_F1_outcome_goes_back_to_aler_for_the_referred_person(gateway: Gateway) -> None:
    person = tenant(22)
    # the tenant agrees to the referral to FWA and to FWA telling ALER the outcome
    await gateway.consents.record(fhir_consent(person.cf, recipients=("fwa", "aler")), "aler", "aler-test", "req")
    await submit(gateway, "aler", aler_arrears_message(person, "f1-ref"))
    [referral] = await read_until(gateway, "out", "fwa", 1)
    referral_id = orjson.loads(referral.value)["id_segnalazione"]

    await submit(gateway, "fwa", fwa_outcome(referral_id, "fwa-out-1", "corr-f1-ref"))
    [outcome] = await read_until(gateway, "out", "aler", 1, settle_s=0.5)
    body = orjson.loads(outcome.value)
    assert body["payload"]["state"] == "approved" and body["payload"]["approved_amount_cents"] == 150000
    assert body["correlation_id"] == "corr-f1-ref"
    assert person.cf not in outcome.value.decode()
    records = await audit_records(gateway)
    outcome_decision = next(r for r in records if r.get("flow_id") == "F1-outcome" and r["event_type"] == "decision")
    referral_decision = next(r for r in records if r.get("flow_id") == "F1" and r["event_type"] == "decision")
    assert outcome_decision["outcome"] == "permit"
    assert outcome_decision["subject_ref"] == referral_decision["subject_ref"]  # the same person
    assert json.dumps(records).count(person.cf) == 0


# --- referral lifecycle across partners (F2 -> F3, F4 -> F5) ------------------------------------------------
# Every referral is acknowledged (``forwarded``), then accepted or rejected, then completed, as its recipient's
# own feedback says; ALER follows it on status.aler and over HTTP by correlation id. rejected, completed and
# withdrawn are final. Statuses are keyed per person (and recipient), so one person's statuses arrive in order
# on any backend.


def fragility_signal(cf: str, message_id: str, correlation_id: str | None = None) -> dict[str, Any]:
    header = aler_header("segnalazione-fragilita", message_id, "social-case-management", ["comune"])
    return {**header, "id_correlazione": correlation_id or header["id_correlazione"],
            "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
            "intestatario": {"codice_fiscale": cf},
            "nucleo": {"tipologia": "elderly-single", "componenti": 1, "presenza_minori": False,
                       "presenza_over_65": True, "presenza_disabilita": False},
            "segnali": ["isolation"]}


def care_request(cf: str, message_id: str, correlation_id: str | None = None) -> dict[str, Any]:
    header = aler_header("richiesta-assistenza", message_id, "care-coordination", ["asst"])
    return {**header, "id_correlazione": correlation_id or header["id_correlazione"],
            "id_richiesta": f"ALER-R-{message_id}", "assistito": {"codice_fiscale": cf},
            "servizio": "home-nursing-visit", "urgenza": "routine",
            "finestra": {"dal": "2026-11-23", "al": "2026-11-30"}}


async def explicit_care_consent(gateway: Gateway, cf: str) -> None:
    await gateway.consents.record(fhir_consent(cf, purposes=("care-coordination",), recipients=("asst",),
                                               consent_type="explicit"), "aler", "aler-test", "req")


Trail = list[tuple[str, str, str | None]]


async def lifecycle_over_http(http: httpx.AsyncClient, correlation_id: str) -> Trail:
    """ALER's view of a referral by correlation id: (message id, state, lifecycle) of each of its messages;
    a lifecycle state always comes with the time it was reached."""
    aler = await bearer(http, "aler-test")
    response = await http.get(f"/v1/partners/aler/correlations/{correlation_id}", headers=aler)
    assert response.status_code == 200, response.text
    body = response.json()
    assert all((s["lifecycle"] is None) == (s["lifecycle_at"] is None) for s in body), body
    return [(s["message_id"], s["state"], s["lifecycle"]) for s in body]


async def status_trail(gateway: Gateway, count: int, settle_s: float = 1.0) -> Trail:
    """What ALER received on status.aler, in order: exactly ``count`` records (the settle catches extras)."""
    records = await read_until(gateway, "status", "aler", count, settle_s=settle_s)
    trail = [(s["message_id"], s["state"], s["lifecycle"]) for s in (orjson.loads(r.value) for r in records)]
    assert len(trail) == count, trail
    return trail


def encounter_version(cf: str, encounter_id: str, correlation_id: str, status: str, version: int) -> dict[str, Any]:
    encounter = asst_encounter(cf, encounter_id, correlation_id, status=status)
    return {**encounter, "meta": {**encounter["meta"], "versionId": str(version)}}


async def test_F2_F3_fragility_signal_is_acknowledged_accepted_then_completed_as_the_comune_reports(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    person = tenant(81)
    await submit(gateway, "aler", fragility_signal(person.cf, "lc2-1"))
    [referral] = await read_until(gateway, "out", "comune", 1)
    assert orjson.loads(referral.value)["id_correlazione"] == "corr-lc2-1"
    assert await status_trail(gateway, 1) == [("lc2-1", "forwarded", None)]  # acknowledged, nothing reported yet
    assert await lifecycle_over_http(http, "corr-lc2-1") == [("lc2-1", "forwarded", None)]

    case = "MI-SST-2026-000801"
    await submit(gateway, "comune", comune_case_event(person.cf, case, "lc3-1", "corr-lc2-1", stato="assessing"))
    await submit(gateway, "comune", comune_case_event(person.cf, case, "lc3-2", "corr-lc2-1", evento="cambio-stato"))
    await submit(gateway, "comune", comune_case_event(person.cf, case, "lc3-3", "corr-lc2-1", evento="chiusura",
                                                      stato="closed"))
    back = [orjson.loads(r.value) for r in await read_until(gateway, "out", "aler", 3)]
    assert [(b["correlation_id"], b["payload"]["status"]) for b in back] == [
        ("corr-lc2-1", "assessing"), ("corr-lc2-1", "in-charge"), ("corr-lc2-1", "closed")]
    assert len({b["payload"]["case_id"] for b in back}) == 1 and case not in json.dumps(back)
    # assessing and in-charge both mean accepted: ALER hears of it once
    assert await status_trail(gateway, 3) == [
        ("lc2-1", "forwarded", None), ("lc2-1", "forwarded", "accepted"), ("lc2-1", "forwarded", "completed")]
    assert await lifecycle_over_http(http, "corr-lc2-1") == [("lc2-1", "forwarded", "completed")]


async def test_F4_F5_care_request_is_accepted_when_asst_plans_the_visit_and_completed_when_it_is_done(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    person = tenant(83)
    await explicit_care_consent(gateway, person.cf)
    await submit(gateway, "aler", care_request(person.cf, "lc4-1"))
    [request] = await read_until(gateway, "out", "asst", 1)
    identifiers = {i["system"]: i["value"] for i in orjson.loads(request.value)["identifier"]}
    # ASST quotes the correlation id it received: that is how its Encounter finds ALER's referral
    correlation = identifiers[CORRELATION_SYSTEM]
    assert correlation == "corr-lc4-1"

    # one Encounter, updated as the visit goes: each version is a message of its own
    for version, status in enumerate(("planned", "in-progress", "finished"), start=1):
        await submit(gateway, "asst", encounter_version(person.cf, "enc-lc-1", correlation, status, version),
                     "application/fhir+json")
    back = [orjson.loads(r.value)["payload"]["status"] for r in await read_until(gateway, "out", "aler", 3)]
    assert back == ["planned", "in-progress", "finished"]
    assert await status_trail(gateway, 3) == [
        ("lc4-1", "forwarded", None), ("lc4-1", "forwarded", "accepted"), ("lc4-1", "forwarded", "completed")]
    assert await lifecycle_over_http(http, correlation) == [("lc4-1", "forwarded", "completed")]
