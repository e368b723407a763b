"""Withdrawal of consent (privacy.md rule 10, plan W-01..W-08) through the bus on both backend pairs."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway
from gateway.bus import OutgoingRecord
from gateway.privacy.office import PrivacyOffice
from gateway.privacy.officer import Officer
from gateway.simulators import aler_arrears_message, fhir_consent, fwa_outcome
from tests.conftest import ALL_SCOPES, bearer
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until, record_consent, submit_over_bus, tenant


@pytest.fixture(scope="session")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    return tuple(PartnerClient(f"{org}-test", secret_hash, org, "system", frozenset(ALL_SCOPES))
                 for org in ("aler", "fwa"))


async def referred_twice(gateway: Gateway, seed: int) -> tuple[str, str]:
    person = tenant(seed)
    consent_id = await record_consent(gateway, person.cf)
    await submit_over_bus(gateway, aler_arrears_message(person, f"w-{seed}-1"))
    await submit_over_bus(gateway, aler_arrears_message(person, f"w-{seed}-2"))
    await read_until(gateway, "out", "fwa", 2)
    return consent_id, person.cf


async def test_W03_withdrawal_emits_one_consent_withdrawn_event(gateway: Gateway) -> None:
    consent_id, _ = await referred_twice(gateway, 31)
    await gateway.consents.withdraw(consent_id, "aler", "aler-test", "r1")
    await gateway.consents.withdraw(consent_id, "aler", "aler-test", "r2")
    events = await read_until(gateway, "gateway", "consent-events", 1, settle_s=1.0)  # gateway.consent-events
    assert [orjson.loads(e.value) | {"withdrawn_at": None} for e in events] == [{
        "event": "consent.withdrawn", "consent_ref": f"{consent_id}@2", "withdrawn_at": None,
        "purposes": ["microcredit-assessment"], "recipients": ["fwa"],
    }]


async def test_W04_every_past_recipient_gets_an_art19_notice_and_its_acknowledgement_is_audited(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    consent_id, _ = await referred_twice(gateway, 32)
    referrals = await read_until(gateway, "out", "fwa", 2)
    await gateway.consents.withdraw(consent_id, "aler", "aler-test", "r1")
    records = await read_until(gateway, "out", "fwa", 3)
    [notice] = [orjson.loads(r.value) for r in records if r.header("message-type") == "consent.restriction-notice"]
    assert notice["consent_ref"] == f"{consent_id}@2"
    assert sorted(notice["disclosures"]) == sorted(r.header("message-id") for r in referrals)

    actions = [r["action"] for r in await audit_records(gateway) if r["event_type"] == "consent-change"]
    assert actions == ["record-consent", "withdraw-consent", "restriction-notice"]


async def test_W04_each_partner_that_received_data_under_the_consent_gets_its_own_notice(gateway: Gateway) -> None:
    """Two recipients under one consent: FWA got the referral, ALER the outcome FWA sent back; each is told of
    exactly the messages it received."""
    person = tenant(36)
    consent = await gateway.consents.record(fhir_consent(person.cf, recipients=("fwa", "aler")), "aler",
                                            "aler-test", "req")
    await submit_over_bus(gateway, aler_arrears_message(person, "w-36-1"))
    [referral] = await read_until(gateway, "out", "fwa", 1)
    referral_id = orjson.loads(referral.value)["id_segnalazione"]
    await gateway.bus.publish([OutgoingRecord(
        topic=gateway.settings.topics.name("in", "fwa"),
        value=orjson.dumps(fwa_outcome(referral_id, "w-36-out", "corr-w-36-1")), key=b"corr-w-36-1")])
    [outcome] = await read_until(gateway, "out", "aler", 1)

    await gateway.consents.withdraw(consent.consent_id, "aler", "aler-test", "r1")
    to_fwa = await read_until(gateway, "out", "fwa", 2)
    to_aler = await read_until(gateway, "out", "aler", 2)
    [fwa_notice] = [orjson.loads(r.value) for r in to_fwa if r.header("message-type") == "consent.restriction-notice"]
    [aler_notice] = [orjson.loads(r.value) for r in to_aler
                     if r.header("message-type") == "consent.restriction-notice"]
    assert fwa_notice["disclosures"] == [referral.header("message-id")]
    assert aler_notice["disclosures"] == [outcome.header("message-id")]
    assert fwa_notice["notice_id"] != aler_notice["notice_id"]
    assert person.cf not in str(fwa_notice) + str(aler_notice)
    notices = [r for r in await audit_records(gateway) if r["action"] == "restriction-notice"]
    assert sorted(r["recipient_org"] for r in notices) == ["aler", "fwa"]


async def test_W08_only_the_recipient_can_acknowledge_its_notice_and_the_acknowledgement_is_audited(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    consent_id, _ = await referred_twice(gateway, 35)
    await gateway.consents.withdraw(consent_id, "aler", "aler-test", "r1")
    records = await read_until(gateway, "out", "fwa", 3)
    [notice] = [orjson.loads(r.value) for r in records if r.header("message-type") == "consent.restriction-notice"]

    aler = await bearer(http, "aler-test")
    assert (await http.post(f"/v1/partners/aler/notices/{notice['notice_id']}/ack", headers=aler)).status_code == 404
    fwa = await bearer(http, "fwa-test")
    assert (await http.post("/v1/partners/fwa/notices/notice-unknown/ack", headers=fwa)).status_code == 404
    ack = await http.post(f"/v1/partners/fwa/notices/{notice['notice_id']}/ack", headers=fwa)
    assert ack.status_code == 204
    acks = [r for r in await audit_records(gateway) if r["action"] == "notice-acknowledged"]
    assert [(r["recipient_org"], r["message_ids"]) for r in acks] == [("fwa", [notice["notice_id"]])]


async def test_W05_past_disclosures_stay_reported_as_lawful_at_the_time(gateway: Gateway) -> None:
    consent_id, cf = await referred_twice(gateway, 33)
    await gateway.consents.withdraw(consent_id, "aler", "aler-test", "r1")
    lines, integrity = await PrivacyOffice(gateway.store, gateway.registry, "test").disclosure_report(
        cf, None, None, Officer("dpo", "gateway-privacy", sees_all=True), "r2")  # the data protection office
    disclosures = [line for line in lines if line.event_type == "disclosure"]
    assert [(d.outcome, d.consent_ref) for d in disclosures] == [("permit", f"{consent_id}@1")] * 2
    assert integrity.verified


async def test_W06_reconsent_creates_a_new_version_that_permits_again(gateway: Gateway) -> None:
    consent_id, cf = await referred_twice(gateway, 34)
    await gateway.consents.withdraw(consent_id, "aler", "aler-test", "r1")
    again = await gateway.consents.reconsent(consent_id, "aler", "aler-test", "r2")
    assert (again.version, again.status, again.withdrawn) == (3, "active", False)
    history = await gateway.consents.history(consent_id, "aler")
    assert [(v.version, v.status) for v in history] == [(1, "active"), (2, "inactive"), (3, "active")]
    await submit_over_bus(gateway, aler_arrears_message(tenant(34), "w-34-3"))
    records = await read_until(gateway, "out", "fwa", 4)  # two referrals, the notice, the new referral
    [new] = [r for r in records if r.header("correlation-id") == "corr-w-34-3"]
    assert orjson.loads(new.value)["riferimento_consenso"] == f"{consent_id}@3"
    assert cf not in str(history)
