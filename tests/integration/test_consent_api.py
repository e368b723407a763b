"""The consent API on both backend pairs: record in R4 or R5, read every version (also as FHIR R4), withdraw
with evidence, refuse a bad consent with problem+json and nothing written."""

from __future__ import annotations

import httpx
import orjson
from fhir.resources.R4B.consent import Consent as ConsentR4
from sqlalchemy import func, select

from gateway.bootstrap import Gateway
from gateway.consents.fhir import PSEUDONYM_SYSTEM
from gateway.identity.synthetic import generate_tenants
from gateway.simulators import fhir_consent
from gateway.simulators.partners import notice_extension
from gateway.store.tables import consents
from tests.conftest import bearer
from tests.unit.test_consent_record import as_r5

PERSON = next(generate_tenants("S", seed=41, limit=1))


async def consent_rows(gateway: Gateway) -> int:
    async with gateway.store.transaction() as tx:
        return int((await tx.conn.execute(select(func.count()).select_from(consents))).scalar_one())


async def test_an_r5_consent_is_recorded_like_its_r4_form(gateway: Gateway, http: httpx.AsyncClient) -> None:
    aler = await bearer(http, "aler-test")
    document = fhir_consent(PERSON.cf)
    r4 = await http.post("/v1/consents", json=document, headers=aler)
    r5 = await http.post("/v1/consents", content=orjson.dumps(as_r5(document)),
                         headers={**aler, "content-type": "application/fhir+json; fhirVersion=5.0"})
    assert (r4.status_code, r5.status_code) == (201, 201), r5.text
    one, other = r4.json()["record"], r5.json()["record"]
    assert one["subject"] == other["subject"]
    for field in ("decision", "consentType", "provision", "notice", "capture", "grantor", "period"):
        assert one[field] == other[field], field
    assert PERSON.cf not in r4.text


async def test_a_consent_reads_back_as_fhir_r4_naming_the_person_by_pseudonym_only(
    gateway: Gateway, http: httpx.AsyncClient,
) -> None:
    aler = await bearer(http, "aler-test")
    created = (await http.post("/v1/consents", json=fhir_consent(PERSON.cf), headers=aler)).json()
    response = await http.get(f"/v1/consents/{created['consent_id']}/fhir", headers=aler)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    resource = ConsentR4.model_validate(response.json())
    assert resource.patient is not None and resource.patient.identifier is not None
    assert resource.patient.identifier.system == PSEUDONYM_SYSTEM
    assert PERSON.cf not in response.text
    assert (await http.get(f"/v1/consents/{created['consent_id']}/fhir?version=9", headers=aler)).status_code == 404


async def test_a_withdrawal_keeps_who_withdrew_through_which_channel_and_the_evidence(
    gateway: Gateway, http: httpx.AsyncClient,
) -> None:
    aler = await bearer(http, "aler-test")
    created = (await http.post("/v1/consents", json=fhir_consent(PERSON.cf), headers=aler)).json()
    withdrawn = await http.post(f"/v1/consents/{created['consent_id']}/withdraw", headers=aler,
                                json={"by": "support-administrator", "channel": "casa-centre",
                                      "evidence": "MOD-REV-0042"})
    assert withdrawn.status_code == 200, withdrawn.text
    history = (await http.get(f"/v1/consents/{created['consent_id']}", headers=aler)).json()
    assert [v["version"] for v in history] == [1, 2]
    assert history[0]["record"]["withdrawal"] is None
    withdrawal = history[1]["record"]["withdrawal"]
    assert (withdrawal["by"], withdrawal["channel"], withdrawal["evidence"]) == ("support-administrator",
                                                                                 "casa-centre", "MOD-REV-0042")
    assert history[0]["record_hash"] != history[1]["record_hash"]
    fhir = (await http.get(f"/v1/consents/{created['consent_id']}/fhir", headers=aler)).json()
    assert fhir["status"] == "inactive" and any(e["url"].endswith("/withdrawal") for e in fhir["extension"])


async def test_a_consent_on_a_retired_notice_is_refused_with_a_pointer_and_nothing_is_written(
    gateway: Gateway, http: httpx.AsyncClient,
) -> None:
    aler = await bearer(http, "aler-test")
    before = await consent_rows(gateway)
    old = fhir_consent(PERSON.cf, notice=notice_extension("https://gateway.quartieri.example/notices/microcredito",
                                                          "2025.1"))
    refused = await http.post("/v1/consents", json=old, headers=aler)
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert [(p["pointer"], p["rule"]) for p in refused.json()["problems"]] == [("/extension", "notice-retired")]
    unknown_version = await http.post("/v1/consents", json=fhir_consent(PERSON.cf), headers={
        **aler, "content-type": "application/fhir+json; fhirVersion=3.0"})
    assert unknown_version.status_code == 422
    assert await consent_rows(gateway) == before


async def test_C15_no_consent_a_deny_consent_another_purpose_and_no_data_answer_alike(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    """Rule 13 over HTTP: for a consent-based flow the sender's answer, and its status by correlation id, are
    the same whether the person refused, consented to something else, has no consent or is unknown to the
    gateway altogether; only the audit log tells them apart."""
    from gateway.simulators import aler_arrears_message

    refused, elsewhere, unconsented, unknown = [t for t in generate_tenants("S", seed=61, limit=60)
                                                if t.arrears_cents > 0][:4]
    aler = await bearer(http, "aler-test")
    for consent in (fhir_consent(refused.cf, decision="deny"),
                    fhir_consent(elsewhere.cf, purposes=("housing-support",), recipients=("comune",))):
        assert (await http.post("/v1/consents", json=consent, headers=aler)).status_code == 201
    # the third person is known to the gateway (an earlier referral) but has no consent; the fourth is not
    earlier = await http.post("/v1/partners/aler/messages",
                              content=orjson.dumps(aler_arrears_message(unconsented, "c15-earlier")),
                              headers={**aler, "content-type": "application/json"})
    assert earlier.status_code == 202
    answers = {}
    for name, person in (("refused", refused), ("elsewhere", elsewhere), ("unconsented", unconsented),
                         ("unknown", unknown)):
        response = await http.post("/v1/partners/aler/messages",
                                   content=orjson.dumps(aler_arrears_message(person, f"c15-{name}")),
                                   headers={**aler, "content-type": "application/json"})
        followed = await http.get(f"/v1/partners/aler/correlations/corr-c15-{name}", headers=aler)
        answers[name] = (response.status_code, _without_ids(response.json()), followed.status_code,
                         _without_ids(followed.json()))
    assert len({orjson.dumps(a) for a in answers.values()}) == 1, answers
    assert answers["unknown"][1][0]["reason_class"] == "not-authorised"


def _without_ids(body: object) -> object:
    """A status answer without what differs by construction (ids and times)."""
    if isinstance(body, list):
        return [_without_ids(b) for b in body]
    if isinstance(body, dict):
        return {k: _without_ids(v) for k, v in body.items()
                if k not in ("message_id", "correlation_id", "received_at", "lifecycle_at")}
    return body
