"""Issue 10 point 15: the privacy-officer role split into ``audit:verify``, ``privacy:report`` and
``privacy:erase``; reports limited to the officer's own organisation unless the officer belongs to the data
protection office; erasure with four eyes (a request that changes nothing, an approval by another officer
within the window). On both backend pairs."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway
from tests.conftest import bearer
from tests.integration.test_privacy_office import seed

PROBLEM_JSON = "application/problem+json"
REPORT = frozenset({"privacy:report"})


@pytest.fixture(scope="session")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    scopes = frozenset({"messages:submit", "status:read", "inbox:read", "consent:write", "consent:read"})
    every = frozenset({"audit:verify", "privacy:report", "privacy:erase"})
    return (
        PartnerClient("aler-test", secret_hash, "aler", "system", scopes),
        PartnerClient("fwa-test", secret_hash, "fwa", "system", scopes),
        PartnerClient("comune-test", secret_hash, "comune", "system", scopes),
        PartnerClient("dpo-test", secret_hash, "gateway-privacy", "privacy-officer", every),
        PartnerClient("dpo2-test", secret_hash, "gateway-privacy", "privacy-officer", every),
        PartnerClient("aler-witness", secret_hash, "aler", "privacy-officer", frozenset({"audit:verify"})),
        PartnerClient("aler-officer", secret_hash, "aler", "privacy-officer", REPORT),
        PartnerClient("fwa-officer", secret_hash, "fwa", "privacy-officer", REPORT),
        PartnerClient("comune-officer", secret_hash, "comune", "privacy-officer", REPORT),
    )


def refused(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["type"].endswith("/" + slug), response.text


async def report(http: httpx.AsyncClient, client: str, identifier: str) -> list[dict[str, object]]:
    """The disclosure report's events other than privacy officers' own queries."""
    response = await http.post("/v1/privacy/disclosure-report", json={"identifier": identifier},
                               headers=await bearer(http, client))
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if e["event_type"] != "privacy-query"]


async def test_15_a_witness_verifies_the_log_but_reads_nothing_about_anyone(gateway: Gateway,
                                                                             http: httpx.AsyncClient) -> None:
    consenting, _ = await seed(gateway, http)
    await gateway.checkpointer.checkpoint_now()
    witness = await bearer(http, "aler-witness")
    for path in ("/v1/audit/checkpoint", "/v1/audit/keys", "/v1/audit/proof/inclusion?index=0",
                 "/v1/audit/proof/consistency?first=1"):
        assert (await http.get(path, headers=witness)).status_code == 200, path
    for method, path, body in (
        ("POST", "/v1/privacy/disclosure-report", {"identifier": consenting}),
        ("POST", "/v1/privacy/consent-history", {"identifier": consenting}),
        ("GET", "/v1/privacy/records-of-processing", None),
        ("GET", "/v1/privacy/review-queue", None),
        ("GET", "/v1/audit/records/0/fhir", None),
        ("POST", "/v1/privacy/subjects/erasure", {"identifier": consenting}),
        ("POST", "/v1/privacy/subjects/erasure/0/approval", {"identifier": consenting}),
    ):
        refused(await http.request(method, path, json=body, headers=witness), 403, "insufficient-scope")
    # and a report reader is no witness
    refused(await http.get("/v1/audit/checkpoint", headers=await bearer(http, "aler-officer")), 403,
            "insufficient-scope")


async def test_15_a_partner_officer_sees_only_what_its_organisation_sent_received_or_recorded(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    consenting, refused_person = await seed(gateway, http)  # ALER -> FWA referrals; ALER recorded the consent

    everything = await report(http, "dpo-test", consenting)
    disclosures = [e for e in everything if e["event_type"] == "disclosure"]
    assert len(disclosures) == 2
    assert await report(http, "aler-officer", consenting) == everything  # ALER sent all of it
    fwa_view = await report(http, "fwa-officer", consenting)
    assert disclosures[0] in fwa_view and not [e for e in fwa_view if e["event_type"] == "consent-change"]
    assert await report(http, "comune-officer", consenting) == []  # the Comune had no part in it
    assert await report(http, "comune-officer", refused_person) == []

    async def history(client: str) -> list[dict[str, object]]:
        response = await http.post("/v1/privacy/consent-history", json={"identifier": consenting},
                                   headers=await bearer(http, client))
        assert response.status_code == 200, response.text
        return response.json()["versions"]  # type: ignore[no-any-return]

    assert len(await history("dpo-test")) == 1 and len(await history("aler-officer")) == 1
    assert await history("fwa-officer") == [] and await history("comune-officer") == []  # recorded by ALER

    async def flows(client: str) -> set[str]:
        response = await http.get("/v1/privacy/records-of-processing", headers=await bearer(http, client))
        return {r["flow"] for r in response.json()["records"]}

    assert await flows("dpo-test") == {f.id for f in gateway.registry.flows}
    assert await flows("comune-officer") == {f.id for f in gateway.registry.flows
                                             if "comune" in (f.sender, f.recipient)}

    async def queue(client: str) -> list[int]:
        response = await http.get("/v1/privacy/review-queue", headers=await bearer(http, client))
        return [item["log_index"] for item in response.json()["queue"]]

    denials = await queue("dpo-test")
    assert denials and await queue("aler-officer") == denials and await queue("comune-officer") == []

    comune = await bearer(http, "comune-officer")
    index = disclosures[0]["log_index"]
    refused(await http.get(f"/v1/audit/records/{index}/fhir", headers=comune), 404, "not-found")
    assert (await http.get(f"/v1/audit/records/{index}/fhir",
                           headers=await bearer(http, "fwa-officer"))).status_code == 200
    refused(await http.post(f"/v1/privacy/review-queue/{denials[0]}", json={"resolution": "confirmed"},
                            headers=comune), 404, "not-found")
    assert await queue("dpo-test") == denials  # still open
    closed = await http.post(f"/v1/privacy/review-queue/{denials[0]}", json={"resolution": "confirmed"},
                             headers=await bearer(http, "aler-officer"))
    assert closed.status_code == 204, closed.text


async def test_15_erasure_takes_two_different_officers_within_the_window(
    gateway: Gateway, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    person, bystander = await seed(gateway, http)
    dpo, dpo2 = await bearer(http, "dpo-test"), await bearer(http, "dpo2-test")
    refused(await http.post("/v1/privacy/subjects/erasure", json={"identifier": person},
                            headers=await bearer(http, "aler-officer")), 403, "insufficient-scope")
    before = await report(http, "dpo-test", person)

    response = await http.post("/v1/privacy/subjects/erasure", json={"identifier": person}, headers=dpo)
    assert response.status_code == 202, response.text
    request_index = response.json()["request_index"]
    assert response.json()["status"] == "pending-approval"
    after_request = await report(http, "dpo-test", person)  # the request alone changes nothing, and shows
    assert after_request[:-1] == before and after_request[-1]["event_type"] == "erasure"
    approval = f"/v1/privacy/subjects/erasure/{request_index}/approval"

    refused(await http.post(approval, json={"identifier": person}, headers=dpo), 403, "four-eyes")
    refused(await http.post(approval, json={"identifier": bystander}, headers=dpo2), 409, "conflict")
    refused(await http.post(f"/v1/privacy/subjects/erasure/{request_index - 1}/approval",
                            json={"identifier": person}, headers=dpo2), 404, "not-found")
    with monkeypatch.context() as patch:
        patch.setattr(gateway.settings, "erasure_approval_window_seconds", 0)
        refused(await http.post(approval, json={"identifier": person}, headers=dpo2), 409, "conflict")
    assert await report(http, "dpo-test", person) == after_request  # refused approvals changed nothing either

    done = await http.post(approval, json={"identifier": person}, headers=dpo2)
    assert done.status_code == 200, done.text
    assert done.json()["outcome"] == "erased"
    assert await report(http, "dpo-test", person) == []
    assert await report(http, "dpo-test", bystander)
    refused(await http.post(approval, json={"identifier": person}, headers=dpo2), 409, "conflict")  # spent

    async with gateway.store.transaction() as tx:
        requested, erased = await tx.audit_entry(request_index), await tx.audit_entry(done.json()["audit_index"])
    assert requested is not None and erased is not None
    first, second = orjson.loads(requested["record"]), orjson.loads(erased["record"])
    assert (first["event_type"], first["action"], first["client_id"]) == ("erasure", "request-erasure", "dpo-test")
    assert (second["event_type"], second["action"], second["client_id"], second["queried_ref"]) == (
        "erasure", "erase-subject", "dpo2-test", f"erasure-request/{request_index}")
    assert person not in requested["record"] and "subject_ref" not in second
