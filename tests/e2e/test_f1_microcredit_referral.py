"""Flow F1 end to end through the bus: ALER's arrears record in ``in.aler``, FWA's referral out of ``out.fwa``.

Runs on both pairs of backends: the embedded bus with SQLite, and a real Kafka broker with a real PostgreSQL
server. Drives permit, replay, drop at delivery and dead-lettering, and checks the referral field by field, the
status message and the audit chain. F1's denials (no consent, a withdrawn consent) are decided by the same intake
over the in-memory store in ``tests/unit/pipeline/test_f1_decisions_on_memory_store.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from gateway.audit.verify import verify_log
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.bus import BusRecord, OutgoingRecord
from gateway.contracts.asyncapi import validate_against_channel
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.pipeline import Submission
from gateway.simulators import aler_arrears_message, fhir_consent
from tests.conftest import Backends

DEADLINE_S = 60.0
CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def tenant(seed: int) -> SyntheticTenant:
    return next(t for t in generate_tenants("S", seed=seed, limit=50) if t.arrears_cents > 0)


async def submit_over_bus(gateway: Gateway, message: dict[str, Any]) -> None:
    topic = gateway.settings.topics.name("in", "aler")
    await gateway.bus.publish([OutgoingRecord(topic=topic, value=orjson.dumps(message),
                                              headers=(("request-id", b"req-e2e"),))])


@functools.cache
def asyncapi() -> dict[str, Any]:
    return json.loads((CONTRACTS / "asyncapi.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def assert_matches_channel(gateway: Gateway, record: BusRecord) -> None:
    """Every message the gateway produced must match its channel in the published AsyncAPI document."""
    headers = {name: value.decode() for name, value in record.headers}
    problems = validate_against_channel(asyncapi(), record.topic, orjson.loads(record.value), headers,
                                        prefix=gateway.settings.topics.prefix)
    assert problems == [], f"{record.topic}: {problems}"


async def read_until(gateway: Gateway, kind: str, partner: str, count: int, settle_s: float = 0.0) -> list[BusRecord]:
    """Read ``kind.partner`` from the start until ``count`` records arrived (then ``settle_s`` more for extras);
    each one is checked against its AsyncAPI channel."""
    consumer = gateway.bus.consumer(f"e2e-{uuid.uuid4().hex[:8]}", [gateway.settings.topics.name(kind, partner)])
    await consumer.start()
    records: list[BusRecord] = []
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(records) < count:
            assert time.monotonic() < deadline, f"{len(records)} of {count} records on {kind}.{partner}"
            records += await consumer.fetch(timeout_s=0.5)
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            records += await consumer.fetch(timeout_s=0.2)
    finally:
        await consumer.stop()
    for record in records:
        assert_matches_channel(gateway, record)
    return records


async def record_consent(gateway: Gateway, cf: str) -> str:
    consent = await gateway.consents.record(fhir_consent(cf), "aler", "aler-test", "req-consent")
    return consent.consent_id


async def audit_records(gateway: Gateway) -> list[dict[str, Any]]:
    async with gateway.store.transaction() as tx:
        head = await tx.audit_head()
        # the records the head counts: a running gateway may append after the head was read
        entries = await tx.audit_entries(0, head.size)
    report = verify_log(entries, head)
    assert report.ok, report
    return [json.loads(e["record"]) for e in entries]


async def test_f1_permitted_referral_carries_exactly_the_f1_fields(gateway: Gateway) -> None:
    person = tenant(1)
    consent_id = await record_consent(gateway, person.cf)
    message = aler_arrears_message(person, "m-permit", isee_value_cents=512_345)
    await submit_over_bus(gateway, message)

    [referral] = await read_until(gateway, "out", "fwa", 1, settle_s=1.0)
    body = orjson.loads(referral.value)
    schema = json.loads((CONTRACTS / "fwa/segnalazione-microcredito.schema.json").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(body)) == []
    assert body.pop("id_segnalazione").startswith("gw-")
    assert body.pop("inviato_il")
    assert body == {
        "tipo_messaggio": "segnalazione-microcredito",
        "versione": "1.0",
        "id_correlazione": "corr-m-permit",
        "ente_inviante": "aler",
        "finalita_trattamento": "microcredit-assessment",
        "riferimento_consenso": f"{consent_id}@1",
        "richiedente": {"codice_fiscale": person.cf},
        "requisiti": {"residenza_citta_metropolitana": True, "lavoro_citta_metropolitana": False},
        "nucleo": {"tipologia": person.household_type},
        "fascia_isee": person.isee_band,
        "morosita": {"importo_euro": message["morosita"]["importo_euro"],
                     "mensilita": message["morosita"]["mensilita"]},
        "richiesta": {"tipo": "microcredit", "importo_euro": message["richiesta"]["importo_euro"]},
        "etichette": {"obblighi": ["PSEUD"], "divieti": ["NORDSCLCD", "NOREUSE"]},
    }
    raw = referral.value.decode()
    for never in (person.contract_id, person.unit_id, "5123.45", person.quartiere):
        assert never not in raw
    assert referral.header("correlation-id") == "corr-m-permit"
    assert referral.header("purpose") == "microcredit-assessment"
    assert referral.header("request-id") == "req-e2e"
    assert referral.key is not None and person.cf.encode() not in referral.key

    [status] = await read_until(gateway, "status", "aler", 1)
    assert orjson.loads(status.value) | {"at": None} == {
        "message_type": "referral.status", "message_id": "m-permit", "correlation_id": "corr-m-permit",
        "state": "forwarded", "reason_class": None, "recipients": ["fwa"], "lifecycle": None, "at": None,
    }

    records = await audit_records(gateway)
    f1 = [r for r in records if r.get("flow_id") == "F1"]
    assert [(r["event_type"], r["outcome"]) for r in f1] == [("decision", "permit"), ("disclosure", "permit")]
    assert all(r["consent_ref"] == f"{consent_id}@1" for r in f1)
    assert f1[1]["recipient_org"] == "fwa" and "isee_band" in f1[1]["data_categories"]
    assert f1[0]["kafka"]["topic"] == gateway.settings.topics.name("in", "aler")
    assert person.cf not in json.dumps(records)


async def test_f1_replayed_message_id_is_forwarded_once(gateway: Gateway) -> None:
    person = tenant(5)
    await record_consent(gateway, person.cf)
    message = aler_arrears_message(person, "m-replay")
    await submit_over_bus(gateway, message)
    await submit_over_bus(gateway, message)
    await submit_over_bus(gateway, aler_arrears_message(person, "m-after"))

    referrals = await read_until(gateway, "out", "fwa", 2, settle_s=1.5)
    assert sorted(r.header("correlation-id") for r in referrals) == ["corr-m-after", "corr-m-replay"]
    statuses = await read_until(gateway, "status", "aler", 2, settle_s=0.5)
    assert sorted(orjson.loads(s.value)["message_id"] for s in statuses) == ["m-after", "m-replay"]
    decisions = [r for r in await audit_records(gateway) if r["event_type"] == "decision"]
    assert len(decisions) == 2


async def test_f1_bad_record_is_dead_lettered_and_consumer_keeps_going(gateway: Gateway) -> None:
    person = tenant(6)
    await record_consent(gateway, person.cf)
    topic = gateway.settings.topics.name("in", "aler")
    bad_cf = dict(aler_arrears_message(person, "m-bad"))
    bad_cf["intestatario"] = {**bad_cf["intestatario"], "codice_fiscale": "RSSMRA85T10A562X"}
    await gateway.bus.publish([
        OutgoingRecord(topic=topic, value=b"{not json", headers=(("message-id", b"m-garbage"),)),
        OutgoingRecord(topic=topic, value=orjson.dumps(bad_cf)),
        OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(person, "m-good"))),
    ])

    # unkeyed dead letters may land on different partitions: match them by reason, not by order
    dead = {d["reason"]: d for d in (orjson.loads(r.value) for r in await read_until(gateway, "dlq", "aler", 2))}
    assert sorted(dead) == ["contract-violation", "malformed-message"]
    assert dead["malformed-message"]["message_id"] == "m-garbage"
    assert dead["malformed-message"]["source"]["topic"] == topic
    assert dead["contract-violation"]["problems"][0]["pointer"] == "/intestatario/codice_fiscale"
    assert "RSSMRA85T10A562X" not in json.dumps(dead)
    [referral] = await read_until(gateway, "out", "fwa", 1)
    assert referral.header("correlation-id") == "corr-m-good"




@pytest.fixture
async def idle_gateway(backends: Backends, settings_for: Callable[[Backends], object],
                       clients: tuple[PartnerClient, ...]) -> AsyncIterator[Gateway]:
    """A gateway whose relay and consumer are not running: the test moves the outbox itself."""
    gw = build(await settings_for(backends), clients=clients)  # type: ignore[misc]
    await gw.start(workers=False)
    try:
        yield gw
    finally:
        await gw.stop()


async def test_W01_referral_queued_before_withdrawal_is_dropped_at_delivery(idle_gateway: Gateway) -> None:
    gateway = idle_gateway
    person = tenant(7)
    consent_id = await record_consent(gateway, person.cf)
    [status] = await gateway.intake.submit(Submission(
        sender="aler", sender_role="system", raw=orjson.dumps(aler_arrears_message(person, "m-queued")),
        content_type="application/json", request_id="req-w01"))
    assert status.state == "forwarded"
    await gateway.consents.withdraw(consent_id, "aler", "aler-test", "req-withdraw")

    # the referral (dropped), ALER's status and the consent.withdrawn event; FWA received nothing under the
    # consent, so it gets no restriction notice either
    assert await gateway.relay.drain() == 3
    assert len(await read_until(gateway, "status", "aler", 1)) == 1
    records = await audit_records(gateway)
    [dropped] = [r for r in records if r["event_type"] == "delivery-dropped"]
    assert (dropped["reason"], dropped["recipient_org"]) == ("consent-withdrawn", "fwa")
    assert dropped["consent_ref"] == f"{consent_id}@1"
    assert "restriction-notice" not in [r["action"] for r in records]


async def test_W01_a_delivery_a_relay_already_claimed_ends_before_the_withdrawal_and_is_notified(
    idle_gateway: Gateway,
) -> None:
    """The relay re-checks the consent, then publishes: a withdrawal committing in between would let the
    message out after it. The withdrawal waits for the relay holding the row, so the delivery comes first
    and the art. 19 notice names it."""
    gateway = idle_gateway
    person = tenant(8)
    consent_id = await record_consent(gateway, person.cf)
    await gateway.intake.submit(Submission(
        sender="aler", sender_role="system", raw=orjson.dumps(aler_arrears_message(person, "m-claimed")),
        content_type="application/json", request_id="req-w01-race"))
    async with gateway.store.transaction() as tx:  # a relay's batch, claimed and consent re-checked
        [referral] = [r for r in await tx.pending_outbox(50) if r.consent_id == consent_id]
        withdrawal = asyncio.create_task(gateway.consents.withdraw(consent_id, "aler", "aler-test", "req-w"))
        await asyncio.sleep(0.5)
        assert not withdrawal.done()
        assert referral.id is not None
        await tx.mark_delivered([referral.id])
    await asyncio.wait_for(withdrawal, timeout=10)
    await gateway.relay.drain()
    [notice] = [orjson.loads(r.value) for r in await read_until(gateway, "out", "fwa", 1, settle_s=1.0)]
    assert (notice["message_type"], notice["disclosures"]) == ("consent.restriction-notice", [referral.message_id])
