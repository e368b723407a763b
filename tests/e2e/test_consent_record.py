"""The consent record through the pipeline, on both backend pairs: a subject matched through any identifier
(C-09), an objection to a public-task flow (W-07), no switch of legal basis after consent is lost (rule 14)."""

from __future__ import annotations

from dataclasses import replace

import orjson

from gateway.bootstrap import Gateway
from gateway.consents.fhir import STP_ENI_SYSTEM
from gateway.pipeline.intake import Submission
from gateway.simulators import aler_arrears_message, asst_encounter, comune_emergency, fhir_consent
from tests.e2e import test_f1_microcredit_referral
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until, tenant
from tests.e2e.test_flows import aler_header, decisions, submit

STP = "STP0303080000001"
idle_gateway = test_f1_microcredit_referral.idle_gateway
"""A gateway whose relay runs only when a test drains it."""


def encounter_naming_both(cf: str, stp: str) -> dict[str, object]:
    """An ASST visit whose Patient lists the codice fiscale the person was given and the STP code they had."""
    encounter = asst_encounter(cf, "enc-c09", "corr-c09")
    encounter["contained"] = [{"resourceType": "Patient", "id": "p", "identifier": [
        {"system": "http://hl7.it/sid/codiceFiscale", "value": cf}, {"system": STP_ENI_SYSTEM, "value": stp}]}]
    encounter["subject"] = {"reference": "#p"}
    return encounter


async def test_C09_a_consent_given_under_an_stp_code_applies_to_messages_naming_the_codice_fiscale(
    gateway: Gateway,
) -> None:
    person = tenant(31)
    consent = await gateway.consents.record(fhir_consent(STP, cf_system=STP_ENI_SYSTEM), "aler", "aler-test", "r")
    await submit(gateway, "asst", encounter_naming_both(person.cf, STP), "application/fhir+json")
    await read_until(gateway, "out", "aler", 1)

    await submit(gateway, "aler", aler_arrears_message(person, "c09-1"))
    [referral] = await read_until(gateway, "out", "fwa", 1, settle_s=0.3)
    assert person.cf in referral.value.decode()
    f1 = [d for d in await decisions(gateway) if d[0] == "F1"]
    assert f1 == [("F1", "permit", None)]
    [record] = [r for r in await _audit(gateway) if r.get("flow_id") == "F1" and r["event_type"] == "decision"]
    assert record["consent_ref"] == consent.ref


async def test_C09_another_person_is_never_matched_through_the_linked_identifier(gateway: Gateway) -> None:
    await gateway.consents.record(fhir_consent(STP, cf_system=STP_ENI_SYSTEM), "aler", "aler-test", "r")
    await submit(gateway, "aler", aler_arrears_message(tenant(32), "c09-2"))
    [status] = await read_until(gateway, "status", "aler", 1)
    assert orjson.loads(status.value)["state"] == "denied"


async def test_W07_an_objection_stops_a_public_task_flow_but_never_an_emergency(gateway: Gateway) -> None:
    person = tenant(33)
    signal = {**aler_header("segnalazione-fragilita", "w07-1", "social-case-management", ["comune"]),
              "contratto": {"id_contratto": person.contract_id, "quartiere": "S. Siro", "municipio": 7},
              "intestatario": {"codice_fiscale": person.cf},
              "nucleo": {"tipologia": "elderly-single", "componenti": 1, "presenza_minori": False,
                         "presenza_over_65": True, "presenza_disabilita": False},
              "segnali": ["isolation"]}
    objection = fhir_consent(person.cf, purposes=("social-case-management",), recipients=("comune",),
                             decision="deny", consent_type="opt-out")
    recorded = await gateway.consents.record(objection, "aler", "aler-test", "r")
    await submit(gateway, "aler", signal)
    await submit(gateway, "comune", comune_emergency(person.cf, "w07-2"))
    await read_until(gateway, "out", "pis", 1)
    [status] = await read_until(gateway, "status", "aler", 1)
    assert (orjson.loads(status.value)["state"], orjson.loads(status.value)["reason_class"]) == \
        ("denied", "not-authorised")
    assert sorted(await decisions(gateway)) == [("F10-comune", "permit", None), ("F2", "deny", "objection-upheld")]

    await gateway.consents.withdraw(recorded.consent_id, "aler", "aler-test", "r")
    await submit(gateway, "aler", {**signal, "id_messaggio": "w07-3"})
    await read_until(gateway, "out", "comune", 1)


async def test_rule14_a_referral_that_lost_its_consent_is_not_sent_on_another_basis(gateway: Gateway) -> None:
    """F1 rests on consent; F9-fwa, to the same recipient, on consent too, and F9 (to the Comune) on public task.
    Once the person withdraws, asking for the same referral under the public-task purpose finds no flow to FWA:
    the basis declared for a flow beforehand is the only one it can rest on."""
    person = tenant(34)
    consent = await gateway.consents.record(fhir_consent(person.cf), "aler", "aler-test", "r")
    await gateway.consents.withdraw(consent.consent_id, "aler", "aler-test", "r")
    await submit(gateway, "aler", aler_arrears_message(person, "r14-1"))
    await submit(gateway, "aler", aler_arrears_message(person, "r14-2", purpose="housing-support"))
    statuses = await read_until(gateway, "status", "aler", 2)
    assert {orjson.loads(s.value)["state"] for s in statuses} == {"denied"}
    assert sorted(d[2] or "" for d in await decisions(gateway)) == ["consent-withdrawn", "recipient-not-permitted"]


async def _audit(gateway: Gateway) -> list[dict[str, object]]:
    return await audit_records(gateway)


async def test_C23_a_referral_queued_before_its_notice_was_retired_is_dropped_at_delivery(
    idle_gateway: Gateway,
) -> None:
    gateway = idle_gateway
    person = tenant(35)
    consent = await gateway.consents.record(fhir_consent(person.cf), "aler", "aler-test", "r")
    [status] = await gateway.intake.submit(Submission(
        sender="aler", sender_role="system", raw=orjson.dumps(aler_arrears_message(person, "c23-queued")),
        content_type="application/json", request_id="req-c23"))
    assert status.state == "forwarded"
    assert consent.notice is not None and gateway.relay.registry is not None
    key = (consent.notice.uri, consent.notice.version)
    retired = gateway.relay.registry.notices[key].model_copy(update={"status": "retired"})
    gateway.relay.registry = replace(gateway.relay.registry, notices={**gateway.relay.registry.notices, key: retired})

    await gateway.relay.drain()
    assert await read_until(gateway, "out", "fwa", 0, settle_s=0.5) == []
    [dropped] = [r for r in await audit_records(gateway) if r["event_type"] == "delivery-dropped"]
    assert (dropped["reason"], dropped["consent_ref"]) == ("no-applicable-consent", consent.ref)
