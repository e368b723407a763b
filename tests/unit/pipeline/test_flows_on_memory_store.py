"""The flows' rules over the in-memory store: what crosses to whom under which consent, which fields and tokens a
recipient receives, and how a referral's lifecycle follows its recipients' feedback (F2 -> F3, F4 -> F5,
F1 -> F1-outcome), including the final states that later feedback cannot move.

Each test submits a partner's native message as the inbound consumer does and reads what each recipient received
on its topic, the statuses ALER received and ALER's view by correlation id. The same flows run end to end over
both real backends, with HTTP and the bus, in ``tests/e2e/test_flows.py``.
"""

from __future__ import annotations

import orjson

from gateway.simulators import aler_arrears_message, asst_encounter, comune_case_event, fwa_outcome
from tests.e2e.test_f1_microcredit_referral import tenant
from tests.e2e.test_flows import CF, aler_header, care_request, eviction_milestone, fragility_signal
from tests.pipeline_harness import Pipeline


async def explicit_care_consent(pipeline: Pipeline, cf: str) -> None:
    await pipeline.consent(cf, purposes=("care-coordination",), recipients=("asst",), consent_type="explicit")


async def test_F2_fragility_signal_reaches_the_comune_without_tenancy_ids(pipeline: Pipeline) -> None:
    await pipeline.submit("aler", {
        **aler_header("segnalazione-fragilita", "f2-1", "social-case-management", ["comune"]),
        "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "S. Siro", "municipio": 7},
        "intestatario": {"codice_fiscale": CF},
        "nucleo": {"tipologia": "adult-with-over-65", "componenti": 2, "presenza_minori": False,
                   "presenza_over_65": True, "presenza_disabilita": True},
        "segnali": ["isolation", "degraded-housing"],
    })
    [record] = await pipeline.read("out", "comune")
    body = record.value.decode()
    assert CF in body and "ALER-C-12345678" not in body
    assert "isolation" in body and "san-siro" in body
    assert await pipeline.decisions() == [("F2", "permit", None)]


async def test_F3_case_taken_in_charge_reaches_aler_as_a_token_never_the_case_id(pipeline: Pipeline) -> None:
    await pipeline.submit("comune", comune_case_event(CF, "MI-SST-2026-000123", "f3-1", "corr-f2-1"))
    [record] = await pipeline.read("out", "aler")
    body = orjson.loads(record.value)
    assert body["message_type"] == "social.case-status"
    assert body["payload"]["case_id"].startswith("gwt_")
    assert body["payload"]["status"] == "in-charge"
    raw = record.value.decode()
    for never in ("MI-SST-2026-000123", CF, "assessment-mandate", "court_mandate", "hardship", "measures"):
        assert never not in raw
    assert [i["system"] for i in body["subject"]["identifiers"]] == ["gateway-token"]


async def test_F4_care_request_needs_explicit_consent_and_reaches_asst_as_fhir(pipeline: Pipeline) -> None:
    person = tenant(21)
    request = {**aler_header("richiesta-assistenza", "f4-1", "care-coordination", ["asst"]),
               "id_richiesta": "ALER-R-0001", "assistito": {"codice_fiscale": person.cf},
               "servizio": "telemedicina", "urgenza": "urgente", "finestra": {"dal": "2026-11-23", "al": "2026-11-30"}}
    await pipeline.submit("aler", request)
    [status] = await pipeline.read("status", "aler")
    assert orjson.loads(status.value)["state"] == "denied"

    await pipeline.consent(person.cf, purposes=("care-coordination",), recipients=("asst",))
    await pipeline.submit("aler", {**request, "id_messaggio": "f4-2"})
    assert [orjson.loads(s.value)["state"] for s in await pipeline.read("status", "aler")] == ["denied"] * 2
    await explicit_care_consent(pipeline, person.cf)
    await pipeline.submit("aler", {**request, "id_messaggio": "f4-3"})
    [record] = await pipeline.read("out", "asst")
    resource = orjson.loads(record.value)
    assert resource["resourceType"] == "ServiceRequest"
    assert resource["subject"]["identifier"]["value"] == person.cf
    assert "ALER-R-0001" not in record.value.decode() and person.contract_id not in record.value.decode()
    assert await pipeline.decisions() == [("F4", "deny", "no-applicable-consent"),
                                          ("F4", "deny", "no-applicable-consent"), ("F4", "permit", None)]


async def test_F5_visit_status_reaches_aler_without_reasons_and_psychological_support_never(
    pipeline: Pipeline,
) -> None:
    await pipeline.submit("asst", asst_encounter(CF, "enc-1", "corr-f4-2"), "application/fhir+json")
    await pipeline.submit("asst", asst_encounter(CF, "enc-2", "corr-psy", service="psychological-support"),
                          "application/fhir+json")
    [record] = await pipeline.read("out", "aler")
    body = orjson.loads(record.value)
    assert body["payload"]["status"] == "finished" and body["payload"]["service_type"] == "home-nursing"
    assert body["payload"]["encounter_id"].startswith("gwt_")
    assert not body["payload"].get("reason_codes") and not body["payload"].get("diagnosis_codes")
    assert "38341003" not in record.value.decode()
    assert CF not in record.value.decode()
    assert sorted(await pipeline.decisions()) == [("F5", "deny", "sensitive-label-denied"), ("F5", "permit", None)]


async def test_F9_eviction_milestone_reaches_the_comune_and_fwa_only_with_consent(pipeline: Pipeline) -> None:
    await pipeline.submit("aler", {
        **aler_header("evento-sfratto", "f9-1", "housing-support", ["comune", "fwa"]),
        "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
        "intestatario": {"codice_fiscale": CF},
        "procedura": {"stadio": "eviction-validated", "scadenza": "2027-01-15"},
    })
    [record] = await pipeline.read("out", "comune")
    assert "eviction-validated" in record.value.decode() and "2027-01-15" in record.value.decode()
    assert await pipeline.read("out", "fwa") == []
    assert sorted(await pipeline.decisions()) == [("F9", "permit", None),
                                                  ("F9-fwa", "deny", "no-applicable-consent")]


async def test_referral_lifecycle_follows_the_recipients_feedback(pipeline: Pipeline) -> None:
    person = tenant(23)
    await pipeline.consent(person.cf, recipients=("fwa", "aler"))
    await pipeline.submit("aler", aler_arrears_message(person, "lc-1"))
    [referral] = await pipeline.read("out", "fwa")
    referral_id = orjson.loads(referral.value)["id_segnalazione"]
    await pipeline.submit("fwa", fwa_outcome(referral_id, "lc-out-1", "corr-lc-1", esito="in-istruttoria",
                                             amount=None))
    await pipeline.submit("fwa", fwa_outcome(referral_id, "lc-out-2", "corr-lc-1"))
    await pipeline.submit("fwa", fwa_outcome(referral_id, "lc-out-3", "corr-lc-1", esito="ritirato", amount=None))

    statuses = [orjson.loads(r.value) for r in await pipeline.read("status", "aler")]
    assert [(s["message_id"], s["state"], s["lifecycle"]) for s in statuses] == [
        ("lc-1", "forwarded", None), ("lc-1", "forwarded", "accepted"), ("lc-1", "forwarded", "completed"),
    ]  # the late "withdrawn" after completion changes nothing: completed is final
    async with pipeline.store.transaction() as tx:
        [original] = await tx.messages_by_correlation("aler", "corr-lc-1")
    assert original.lifecycle == "completed"


async def test_a_microcredit_request_the_person_withdraws_ends_withdrawn_not_completed(pipeline: Pipeline) -> None:
    """FWA's ``ritirato``: the tenant gave up the request before it was decided; ALER must not read that as
    dealt with (``completed``), since the arrears may need another route. Withdrawn is final."""
    person = tenant(24)
    await pipeline.consent(person.cf, recipients=("fwa", "aler"))
    await pipeline.submit("aler", aler_arrears_message(person, "lcw-1"))
    [referral] = await pipeline.read("out", "fwa")
    referral_id = orjson.loads(referral.value)["id_segnalazione"]
    await pipeline.submit("fwa", fwa_outcome(referral_id, "lcw-out-1", "corr-lcw-1", esito="in-istruttoria",
                                             amount=None))
    await pipeline.submit("fwa", fwa_outcome(referral_id, "lcw-out-2", "corr-lcw-1", esito="ritirato", amount=None))
    await pipeline.submit("fwa", fwa_outcome(referral_id, "lcw-out-3", "corr-lcw-1"))  # a late approval

    statuses = [orjson.loads(r.value) for r in await pipeline.read("status", "aler")]
    assert [(s["message_id"], s["lifecycle"]) for s in statuses] == [
        ("lcw-1", None), ("lcw-1", "accepted"), ("lcw-1", "withdrawn")]
    async with pipeline.store.transaction() as tx:
        [original] = await tx.messages_by_correlation("aler", "corr-lcw-1")
    assert original.lifecycle == "withdrawn"


async def test_F2_F3_a_signal_the_comune_is_not_competent_for_is_rejected_for_good(pipeline: Pipeline) -> None:
    person = tenant(82)
    await pipeline.submit("aler", fragility_signal(person.cf, "lc2-2"))
    assert len(await pipeline.read("out", "comune")) == 1
    await pipeline.submit("comune", comune_case_event(person.cf, "MI-SST-2026-000802", "lc3-4", "corr-lc2-2",
                                                      evento="chiusura", stato="not-competent"))
    # another office opening a case later on the same correlation does not revive the rejected referral
    await pipeline.submit("comune", comune_case_event(person.cf, "MI-SST-2026-000803", "lc3-5", "corr-lc2-2"))
    back = [orjson.loads(r.value)["payload"]["status"] for r in await pipeline.read("out", "aler")]
    assert back == ["not-competent", "in-charge"]  # both cross (F3); only the lifecycle stays put
    assert await pipeline.status_trail("aler") == [("lc2-2", "forwarded", None), ("lc2-2", "forwarded", "rejected")]
    assert await pipeline.correlation("aler", "corr-lc2-2") == [("lc2-2", "forwarded", "rejected")]


async def test_F4_F5_a_cancelled_visit_rejects_the_care_request_and_a_later_visit_does_not_revive_it(
    pipeline: Pipeline,
) -> None:
    person = tenant(84)
    await explicit_care_consent(pipeline, person.cf)
    await pipeline.submit("aler", care_request(person.cf, "lc4-2"))
    assert len(await pipeline.read("out", "asst")) == 1
    fhir = "application/fhir+json"
    await pipeline.submit("asst", asst_encounter(person.cf, "enc-lc-2", "corr-lc4-2", status="cancelled"), fhir)
    assert len(await pipeline.read("out", "aler")) == 1
    await pipeline.submit("asst", asst_encounter(person.cf, "enc-lc-3", "corr-lc4-2", status="finished"), fhir)
    assert len(await pipeline.read("out", "aler")) == 2
    assert await pipeline.status_trail("aler") == [("lc4-2", "forwarded", None), ("lc4-2", "forwarded", "rejected")]
    assert await pipeline.correlation("aler", "corr-lc4-2") == [("lc4-2", "forwarded", "rejected")]


async def test_feedback_moves_only_the_referrals_its_sender_received_on_a_shared_pathway_correlation(
    pipeline: Pipeline,
) -> None:
    """One correlation id follows a household across services (as in the golden examples): a care request
    denied for want of explicit consent, the same request resent once consent was given, and a fragility
    signal and an eviction milestone to the Comune. ASST's visit concerns only the request ASST received; the
    Comune's case only the signal, not the milestone (another flow and purpose); the denied request, which
    crossed to nobody, never gets a lifecycle."""
    person, pathway = tenant(85), "ALER-K-lc-85"
    await pipeline.submit("aler", care_request(person.cf, "lc5-denied", pathway))
    assert await pipeline.status_trail("aler") == [("lc5-denied", "denied", None)]
    await explicit_care_consent(pipeline, person.cf)
    await pipeline.submit("aler", care_request(person.cf, "lc5-care", pathway))
    await pipeline.submit("aler", fragility_signal(person.cf, "lc5-signal", pathway))
    await pipeline.submit("aler", eviction_milestone(person.cf, "lc5-eviction", ["comune"], pathway))
    assert len(await pipeline.read("out", "asst")) == 1
    assert len(await pipeline.read("out", "comune")) == 2
    assert await pipeline.status_trail("aler") == [
        ("lc5-denied", "denied", None), ("lc5-care", "forwarded", None), ("lc5-signal", "forwarded", None),
        ("lc5-eviction", "forwarded", None)]

    await pipeline.submit("asst", asst_encounter(person.cf, "enc-lc-5", pathway, status="finished"),
                          "application/fhir+json")
    assert len(await pipeline.read("out", "aler")) == 1
    trail = await pipeline.status_trail("aler")
    assert len(trail) == 5 and trail[4:] == [("lc5-care", "forwarded", "completed")]
    assert await pipeline.correlation("aler", pathway) == [
        ("lc5-denied", "denied", None), ("lc5-care", "forwarded", "completed"), ("lc5-signal", "forwarded", None),
        ("lc5-eviction", "forwarded", None)]

    await pipeline.submit("comune", comune_case_event(person.cf, "MI-SST-2026-000805", "lc5-case", pathway,
                                                      evento="chiusura", stato="not-competent"))
    assert len(await pipeline.read("out", "aler")) == 2
    # the case answers the signal (F2, social-case-management), not the eviction milestone (F9, housing-support)
    # the Comune also received under this correlation
    trail = await pipeline.status_trail("aler")
    assert len(trail) == 6 and trail[5:] == [("lc5-signal", "forwarded", "rejected")]
    assert await pipeline.correlation("aler", pathway) == [
        ("lc5-denied", "denied", None), ("lc5-care", "forwarded", "completed"),
        ("lc5-signal", "forwarded", "rejected"), ("lc5-eviction", "forwarded", None)]

