"""The privacy-officer API (plan D-01..D-08) on both backend pairs."""

from __future__ import annotations

import csv
import io

import httpx
import orjson
import pytest

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway
from gateway.identity.synthetic import generate_tenants
from gateway.simulators import aler_arrears_message, fhir_consent
from tests.conftest import bearer


@pytest.fixture(scope="session")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    scopes = frozenset({"messages:submit", "status:read", "inbox:read", "consent:write", "consent:read"})
    return (
        PartnerClient("aler-test", secret_hash, "aler", "system", scopes),
        PartnerClient("fwa-test", secret_hash, "fwa", "system", scopes),
        PartnerClient("dpo-test", secret_hash, "gateway-privacy", "privacy-officer", frozenset({"privacy:audit"})),
    )


async def seed(gateway: Gateway, http: httpx.AsyncClient) -> list[str]:
    """Two tenants: the first consents and is referred twice, the second is referred without consent."""
    people = [t for t in generate_tenants("S", seed=11, limit=20) if t.arrears_cents > 0][:2]
    aler = await bearer(http, "aler-test")
    assert (await http.post("/v1/consents", json=fhir_consent(people[0].cf), headers=aler)).status_code == 201
    for i, (person, n) in enumerate([(people[0], 2), (people[1], 1)]):
        for j in range(n):
            body = orjson.dumps(aler_arrears_message(person, f"d-{i}-{j}"))
            response = await http.post("/v1/partners/aler/messages", content=body,
                                       headers={**aler, "content-type": "application/json"})
            assert response.status_code == 202
    await gateway.relay.drain()
    return [p.cf for p in people]


async def test_D01_art15_report_lists_each_disclosure_with_recipient_purpose_and_consent(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    consenting, refused = await seed(gateway, http)
    dpo = await bearer(http, "dpo-test")
    report = (await http.post("/v1/privacy/disclosure-report", json={"identifier": consenting}, headers=dpo)).json()
    disclosures = [e for e in report["events"] if e["event_type"] == "disclosure"]
    assert len(disclosures) == 2
    for event in disclosures:
        assert event["recipient"] == "fwa"
        assert event["recipient_name"] == "Fondazione Welfare Ambrosiano"
        assert event["purpose"] == "microcredit-assessment"
        assert event["consent_ref"].endswith("@1")
        assert event["legal_basis"] == "GDPR 6(1)(a) consent"
        assert "isee_band" in event["data_categories"]
    assert report["integrity"]["verified"] is True

    other = (await http.post("/v1/privacy/disclosure-report", json={"identifier": refused}, headers=dpo)).json()
    assert [e["event_type"] for e in other["events"]] == ["decision"]
    assert other["events"][0]["outcome"] == "deny"
    assert consenting not in str(report) and refused not in str(other)


async def test_D02_who_accessed_my_data_is_limited_to_the_period(gateway: Gateway, http: httpx.AsyncClient) -> None:
    consenting, _ = await seed(gateway, http)
    dpo = await bearer(http, "dpo-test")
    future = (await http.post("/v1/privacy/disclosure-report",
                              json={"identifier": consenting, "since": "2099-01-01T00:00:00Z"}, headers=dpo)).json()
    assert future["events"] == []


async def test_D03_every_privacy_officer_query_is_audited(gateway: Gateway, http: httpx.AsyncClient) -> None:
    consenting, _ = await seed(gateway, http)
    dpo = await bearer(http, "dpo-test")
    async with gateway.store.transaction() as tx:
        before = (await tx.audit_head()).size
    await http.post("/v1/privacy/disclosure-report", json={"identifier": consenting}, headers=dpo)
    await http.get("/v1/privacy/records-of-processing", headers=dpo)
    await http.get("/v1/privacy/review-queue", headers=dpo)
    async with gateway.store.transaction() as tx:
        entries = await tx.audit_entries(before, 10)
    queries = [orjson.loads(e["record"]) for e in entries]
    assert [(q["event_type"], q["action"], q["client_id"]) for q in queries] == [
        ("privacy-query", "disclosure-report", "dpo-test"),
        ("privacy-query", "records-of-processing", "dpo-test"),
        ("privacy-query", "review-queue", "dpo-test"),
    ]
    assert queries[0]["subject_ref"]  # the report is attributed to the person it was about


async def test_D04_records_of_processing_come_from_the_flow_registry(gateway: Gateway,
                                                                     http: httpx.AsyncClient) -> None:
    dpo = await bearer(http, "dpo-test")
    records = (await http.get("/v1/privacy/records-of-processing", headers=dpo)).json()["records"]
    assert {r["flow"] for r in records} == {f.id for f in gateway.registry.flows}
    f1 = next(r for r in records if r["flow"] == "F1")
    assert (f1["controller"], f1["recipient"]) == ("ALER Milano", "Fondazione Welfare Ambrosiano")
    assert f1["consent_required"] is True and f1["retention_days"] > 0


async def test_D05_review_queue_lists_denials(gateway: Gateway, http: httpx.AsyncClient) -> None:
    await seed(gateway, http)
    dpo = await bearer(http, "dpo-test")
    queue = (await http.get("/v1/privacy/review-queue", headers=dpo)).json()["queue"]
    assert [(q["reason"], q["recipient_org"]) for q in queue] == [("no-applicable-consent", "fwa")]


async def test_D07_exports_carry_the_integrity_status_in_json_and_csv(gateway: Gateway,
                                                                      http: httpx.AsyncClient) -> None:
    consenting, _ = await seed(gateway, http)
    dpo = await bearer(http, "dpo-test")
    response = await http.post("/v1/privacy/disclosure-report?format=csv", json={"identifier": consenting},
                               headers=dpo)
    assert response.headers["content-type"].startswith("text/csv")
    comments = [line for line in response.text.splitlines() if line.startswith("#")]
    assert "# audit_verified: True" in comments
    rows = list(csv.DictReader(io.StringIO("\n".join(x for x in response.text.splitlines() if not x.startswith("#")))))
    assert len([r for r in rows if r["event_type"] == "disclosure"]) == 2


async def test_privacy_routes_need_the_privacy_scope(gateway: Gateway, http: httpx.AsyncClient) -> None:
    aler = await bearer(http, "aler-test")
    response = await http.get("/v1/privacy/review-queue", headers=aler)
    assert response.status_code == 403
    assert response.json()["type"].endswith("/insufficient-scope")


async def test_invalid_identifier_is_a_clear_error_that_does_not_echo_it(gateway: Gateway,
                                                                         http: httpx.AsyncClient) -> None:
    dpo = await bearer(http, "dpo-test")
    response = await http.post("/v1/privacy/disclosure-report", json={"identifier": "RSSMRA85T10A562X"},
                               headers=dpo)
    assert response.status_code == 422
    assert "RSSMRA85T10A562X" not in response.text
