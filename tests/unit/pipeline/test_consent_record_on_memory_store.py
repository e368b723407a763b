"""The consent record in the pipeline's decisions, over the in-memory store: a subject matched through any
identifier (C-09), an objection to a public-task flow (W-07), no switch of legal basis after consent is lost
(rule 14), and a referral dropped at delivery once the notice its consent was given under is retired (C-23).
Consents and their withdrawal run end to end over both real backends in ``tests/e2e/test_withdrawal.py`` and
``tests/e2e/test_f1_microcredit_referral.py``."""

from __future__ import annotations

from dataclasses import replace

import orjson

from gateway.consents.fhir import STP_ENI_SYSTEM
from gateway.simulators import aler_arrears_message, asst_encounter, comune_emergency
from tests.e2e.test_f1_microcredit_referral import tenant
from tests.e2e.test_flows import aler_header
from tests.pipeline_harness import Pipeline

STP = "STP0303080000001"


def encounter_naming_both(cf: str, stp: str) -> dict[str, object]:
    """An ASST visit whose Patient lists the codice fiscale the person was given and the STP code they had."""
    encounter = asst_encounter(cf, "enc-c09", "corr-c09")
    encounter["contained"] = [{"resourceType": "Patient", "id": "p", "identifier": [
        {"system": "http://hl7.it/sid/codiceFiscale", "value": cf}, {"system": STP_ENI_SYSTEM, "value": stp}]}]
    encounter["subject"] = {"reference": "#p"}
    return encounter


async def test_C09_a_consent_given_under_an_stp_code_applies_to_messages_naming_the_codice_fiscale(
    pipeline: Pipeline,
) -> None:
    person = tenant(31)
    consent = await pipeline.consent(STP, cf_system=STP_ENI_SYSTEM)
    await pipeline.submit("asst", encounter_naming_both(person.cf, STP), "application/fhir+json")
    assert len(await pipeline.read("out", "aler")) == 1

    await pipeline.submit("aler", aler_arrears_message(person, "c09-1"))
    [referral] = await pipeline.read("out", "fwa")
    assert person.cf in referral.value.decode()
    f1 = [d for d in await pipeline.decisions() if d[0] == "F1"]
    assert f1 == [("F1", "permit", None)]
    [record] = [r for r in await pipeline.audit() if r.get("flow_id") == "F1" and r["event_type"] == "decision"]
    assert record["consent_ref"] == consent.ref


async def test_C09_another_person_is_never_matched_through_the_linked_identifier(pipeline: Pipeline) -> None:
    await pipeline.consent(STP, cf_system=STP_ENI_SYSTEM)
    await pipeline.submit("aler", aler_arrears_message(tenant(32), "c09-2"))
    [status] = await pipeline.read("status", "aler")
    assert orjson.loads(status.value)["state"] == "denied"


async def test_W07_an_objection_stops_a_public_task_flow_but_never_an_emergency(pipeline: Pipeline) -> None:
    person = tenant(33)
    signal = {**aler_header("segnalazione-fragilita", "w07-1", "social-case-management", ["comune"]),
              "contratto": {"id_contratto": person.contract_id, "quartiere": "S. Siro", "municipio": 7},
              "intestatario": {"codice_fiscale": person.cf},
              "nucleo": {"tipologia": "elderly-single", "componenti": 1, "presenza_minori": False,
                         "presenza_over_65": True, "presenza_disabilita": False},
              "segnali": ["isolation"]}
    recorded = await pipeline.consent(person.cf, purposes=("social-case-management",), recipients=("comune",),
                                      decision="deny", consent_type="opt-out")
    await pipeline.submit("aler", signal)
    await pipeline.submit("comune", comune_emergency(person.cf, "w07-2"))
    assert len(await pipeline.read("out", "pis")) == 1
    [status] = await pipeline.read("status", "aler")
    assert (orjson.loads(status.value)["state"], orjson.loads(status.value)["reason_class"]) == \
        ("denied", "not-authorised")
    assert sorted(await pipeline.decisions()) == [("F10-comune", "permit", None),
                                                  ("F2", "deny", "objection-upheld")]

    await pipeline.consents.withdraw(recorded.consent_id, "aler", "aler-test", "r")
    await pipeline.submit("aler", {**signal, "id_messaggio": "w07-3"})
    assert len(await pipeline.read("out", "comune")) == 1


async def test_rule14_a_referral_that_lost_its_consent_is_not_sent_on_another_basis(pipeline: Pipeline) -> None:
    """F1 rests on consent; F9-fwa, to the same recipient, on consent too, and F9 (to the Comune) on public task.
    Once the person withdraws, asking for the same referral under the public-task purpose finds no flow to FWA:
    the basis declared for a flow beforehand is the only one it can rest on."""
    person = tenant(34)
    consent = await pipeline.consent(person.cf)
    await pipeline.consents.withdraw(consent.consent_id, "aler", "aler-test", "r")
    await pipeline.submit("aler", aler_arrears_message(person, "r14-1"))
    await pipeline.submit("aler", aler_arrears_message(person, "r14-2", purpose="housing-support"))
    statuses = await pipeline.read("status", "aler")
    assert len(statuses) == 2
    assert {orjson.loads(s.value)["state"] for s in statuses} == {"denied"}
    assert sorted(d[2] or "" for d in await pipeline.decisions()) == ["consent-withdrawn", "recipient-not-permitted"]


async def test_C23_a_referral_queued_before_its_notice_was_retired_is_dropped_at_delivery(
    pipeline: Pipeline,
) -> None:
    person = tenant(35)
    consent = await pipeline.consent(person.cf)
    [status] = await pipeline.submit("aler", aler_arrears_message(person, "c23-queued"), deliver=False,
                                     request_id="req-c23")
    assert status.state == "forwarded"
    assert consent.notice is not None and pipeline.relay.registry is not None
    key = (consent.notice.uri, consent.notice.version)
    retired = pipeline.relay.registry.notices[key].model_copy(update={"status": "retired"})
    pipeline.relay.registry = replace(pipeline.relay.registry,
                                      notices={**pipeline.relay.registry.notices, key: retired})

    await pipeline.relay.drain()
    assert await pipeline.read("out", "fwa") == []
    [dropped] = await pipeline.dropped()
    assert (dropped["reason"], dropped["consent_ref"]) == ("no-applicable-consent", consent.ref)
