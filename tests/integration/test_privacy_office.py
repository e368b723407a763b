"""The privacy-officer API (plan D-01..D-08) on both backend pairs."""

from __future__ import annotations

import base64
import csv
import io
from datetime import datetime, timedelta, timezone

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from gateway.audit.fhir_export import to_fhir_audit_event
from gateway.audit.offline import verify_stored_log
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway
from gateway.identity.synthetic import generate_tenants
from gateway.simulators import aler_arrears_message, comune_case_event, comune_emergency, fhir_consent
from gateway.store.tables import audit_checkpoints, consents, outbox
from tests.conftest import bearer
from tests.e2e.test_f1_microcredit_referral import audit_records

OFFICER_SCOPES = frozenset({"audit:verify", "privacy:report", "privacy:erase"})


@pytest.fixture(scope="session")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    scopes = frozenset({"messages:submit", "status:read", "inbox:read", "consent:write", "consent:read"})
    return (
        PartnerClient("aler-test", secret_hash, "aler", "system", scopes),
        PartnerClient("fwa-test", secret_hash, "fwa", "system", scopes),
        PartnerClient("comune-test", secret_hash, "comune", "system", scopes),
        PartnerClient("dpo-test", secret_hash, "gateway-privacy", "privacy-officer", OFFICER_SCOPES),
        PartnerClient("dpo2-test", secret_hash, "gateway-privacy", "privacy-officer", OFFICER_SCOPES),
        PartnerClient("auditor-test", secret_hash, "comune", "system", OFFICER_SCOPES),
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

    async def report(**period: str) -> list[int]:
        """Log indexes reported, leaving out the records of this test's own earlier queries."""
        body = {"identifier": consenting, **period}
        response = await http.post("/v1/privacy/disclosure-report", json=body, headers=dpo)
        return [e["log_index"] for e in response.json()["events"] if e["event_type"] != "privacy-query"]

    everything = await report()
    audit = {r["log_index"]: r for r in await audit_records(gateway)}
    times = sorted({audit[i]["occurred_at"] for i in everything})
    assert len(times) >= 2  # the seed's two referrals and the consent happened at different moments
    middle = datetime.fromisoformat(times[len(times) // 2])
    later = [i for i in everything if datetime.fromisoformat(audit[i]["occurred_at"]) >= middle]
    earlier = [i for i in everything if i not in later]
    assert later and earlier
    assert await report(since=middle.isoformat()) == later
    assert await report(until=middle.isoformat()) == earlier
    # the same instant written with another UTC offset selects the same records
    assert await report(since=middle.astimezone(timezone(timedelta(hours=5))).isoformat()) == later


async def test_D03_every_privacy_officer_query_is_audited(gateway: Gateway, http: httpx.AsyncClient) -> None:
    consenting, _ = await seed(gateway, http)
    dpo = await bearer(http, "dpo-test")
    async with gateway.store.transaction() as tx:
        before = (await tx.audit_head()).size
    await http.post("/v1/privacy/disclosure-report", json={"identifier": consenting}, headers=dpo)
    await http.get("/v1/privacy/records-of-processing", headers=dpo)
    await http.get("/v1/privacy/review-queue", headers=dpo)
    assert (await http.get("/v1/audit/keys", headers=dpo)).status_code == 200
    proof = await http.get("/v1/audit/proof/inclusion", params={"index": 0, "tree_size": before}, headers=dpo)
    assert proof.status_code == 200
    async with gateway.store.transaction() as tx:
        entries = await tx.audit_entries(before, 10)
    queries = [orjson.loads(e["record"]) for e in entries]
    assert [(q["event_type"], q["action"], q["client_id"], q["requesting_org"]) for q in queries] == [
        ("privacy-query", "disclosure-report", "dpo-test", "gateway-privacy"),
        ("privacy-query", "records-of-processing", "dpo-test", "gateway-privacy"),
        ("privacy-query", "review-queue", "dpo-test", "gateway-privacy"),
        ("privacy-query", "read-keys", "dpo-test", "gateway-privacy"),
        ("privacy-query", "inclusion-proof", "dpo-test", "gateway-privacy"),
    ]
    assert len({q["token_id"] for q in queries}) == 1 and queries[0]["token_id"]  # the token that asked
    assert queries[0]["subject_ref"]  # the report is attributed to the person it was about
    assert queries[4]["queried_ref"] == f"audit-log/0@{before}"


async def test_D03_a_client_with_the_scope_but_not_the_role_reads_nothing(gateway: Gateway,
                                                                          http: httpx.AsyncClient) -> None:
    consenting, _ = await seed(gateway, http)
    auditor = await bearer(http, "auditor-test")  # the privacy scopes, system role
    async with gateway.store.transaction() as tx:
        before = (await tx.audit_head()).size
    for method, path, body in (
        ("POST", "/v1/privacy/disclosure-report", {"identifier": consenting}),
        ("POST", "/v1/privacy/consent-history", {"identifier": consenting}),
        ("GET", "/v1/privacy/records-of-processing", None),
        ("GET", "/v1/privacy/review-queue", None),
        ("GET", "/v1/audit/keys", None),
        ("GET", "/v1/audit/checkpoint", None),
        ("GET", "/v1/audit/proof/inclusion?index=0", None),
        ("GET", "/v1/audit/records/0/fhir", None),
    ):
        response = await http.request(method, path, json=body, headers=auditor)
        assert response.status_code == 403 and response.json()["type"].endswith("/insufficient-role"), path
    async with gateway.store.transaction() as tx:
        assert (await tx.audit_head()).size == before  # nothing was read, so nothing was recorded


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
    assert [(q["kind"], q["reason"], q["recipient_org"]) for q in queue] == [
        ("denial", "no-applicable-consent", "fwa")]


async def test_D05_an_emergency_override_is_an_alert_queued_until_a_privacy_officer_closes_it(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    [person] = [t for t in generate_tenants("S", seed=12, limit=1)]
    comune = await bearer(http, "comune-test")
    response = await http.post("/v1/partners/comune/messages", content=orjson.dumps(comune_emergency(person.cf, "e-1")),
                               headers={**comune, "content-type": "application/json"})
    assert response.status_code == 202 and response.json()[0]["state"] == "forwarded", response.text
    decision = next(r for r in await audit_records(gateway) if r["event_type"] == "decision")
    assert (decision["flow_id"], decision["outcome"], decision.get("alert")) == ("F10-comune", "permit", True)

    dpo = await bearer(http, "dpo-test")
    [item] = (await http.get("/v1/privacy/review-queue", headers=dpo)).json()["queue"]
    assert (item["kind"], item["alert"], item["flow_id"]) == ("emergency", True, "F10-comune")
    assert item["reviewed_at"] is None
    closed = await http.post(f"/v1/privacy/review-queue/{item['log_index']}", json={"resolution": "confirmed"},
                             headers=dpo)
    assert closed.status_code == 204, closed.text
    assert (await http.get("/v1/privacy/review-queue", headers=dpo)).json()["queue"] == []
    [done] = (await http.get("/v1/privacy/review-queue?status=reviewed", headers=dpo)).json()["queue"]
    assert (done["log_index"], done["reviewed_by"], done["resolution"]) == (item["log_index"], "dpo-test", "confirmed")
    again = await http.post(f"/v1/privacy/review-queue/{item['log_index']}", json={"resolution": "escalated"},
                            headers=dpo)
    assert again.status_code == 404
    bad = await http.post(f"/v1/privacy/review-queue/{item['log_index']}", json={"resolution": "ok"}, headers=dpo)
    assert bad.status_code == 422
    reviews = [r for r in await audit_records(gateway) if r["action"] == "review-confirmed"]
    assert [(r["client_id"], r["queried_ref"]) for r in reviews] == [("dpo-test", f"audit-log/{item['log_index']}")]


async def test_D06_consent_history_shows_every_version_with_the_notice_text_shown(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    consenting, refused = await seed(gateway, http)
    aler = await bearer(http, "aler-test")
    dpo = await bearer(http, "dpo-test")
    first = (await http.post("/v1/privacy/consent-history", json={"identifier": consenting}, headers=dpo)).json()
    [version] = first["versions"]
    await http.post(f"/v1/consents/{version['consent_ref'].split('@')[0]}/withdraw", headers=aler,
                    json={"channel": "casa-centre", "evidence": "MOD-REV-0001"})
    history = (await http.post("/v1/privacy/consent-history", json={"identifier": consenting}, headers=dpo)).json()
    versions = history["versions"]
    assert [(v["consent_ref"][-2:], v["status"], v["withdrawn"]) for v in versions] == [
        ("@1", "active", False), ("@2", "inactive", True)]
    notice = gateway.registry.notice(versions[0]["notice_uri"], versions[0]["notice_version"])
    assert notice is not None and versions[0]["notice_text"] == notice.text and "Fondazione" in notice.text
    assert versions[1]["record"]["withdrawal"]["evidence"] == "MOD-REV-0001"
    assert consenting not in str(history)
    assert history["integrity"]["verified"] is True
    none = (await http.post("/v1/privacy/consent-history", json={"identifier": refused}, headers=dpo)).json()
    assert none["versions"] == []
    queries = [r["action"] for r in await audit_records(gateway) if r["event_type"] == "privacy-query"]
    assert queries.count("consent-history") == 3
    assert [v["matches_audit_log"] for v in versions] == [True, True]


async def test_D06_a_consent_altered_in_the_database_no_longer_matches_the_audit_log(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    consenting, _ = await seed(gateway, http)
    dpo = await bearer(http, "dpo-test")
    [version] = (await http.post("/v1/privacy/consent-history", json={"identifier": consenting},
                                 headers=dpo)).json()["versions"]
    consent_id = version["consent_ref"].split("@")[0]
    async with gateway.store.transaction() as tx:
        document = (await tx.conn.execute(select(consents.c.document).where(consents.c.consent_id == consent_id))
                    ).scalar_one()
        widened = {**document, "provision": {**document["provision"], "actor": []}}  # any recipient now
        await tx.conn.execute(update(consents).where(consents.c.consent_id == consent_id).values(document=widened))
    [altered] = (await http.post("/v1/privacy/consent-history", json={"identifier": consenting},
                                 headers=dpo)).json()["versions"]
    assert altered["recipients"] == [] and altered["matches_audit_log"] is False


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


# --- erasure (T-09 over HTTP) ------------------------------------------------------------------------------------


async def erase(http: httpx.AsyncClient, identifier: str) -> dict[str, object]:
    """Erase with four eyes: dpo-test requests, dpo2-test approves."""
    request = await http.post("/v1/privacy/subjects/erasure", json={"identifier": identifier},
                              headers=await bearer(http, "dpo-test"))
    assert request.status_code == 202, request.text
    response = await http.post(f"/v1/privacy/subjects/erasure/{request.json()['request_index']}/approval",
                               json={"identifier": identifier}, headers=await bearer(http, "dpo2-test"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def seed_without_consent(gateway: Gateway, http: httpx.AsyncClient) -> tuple[str, str]:
    """A person the Comune takes in charge (F3, public task: a disclosure to ALER) and whom ALER refers without
    consent (a denial); and a bystander referred the same way."""
    person, bystander = [t for t in generate_tenants("S", seed=11, limit=20) if t.arrears_cents > 0][:2]
    comune, aler = await bearer(http, "comune-test"), await bearer(http, "aler-test")
    response = await http.post("/v1/partners/comune/messages", headers=comune,
                               json=comune_case_event(person.cf, "MI-SST-1", "case-1", "corr-case-1"))
    assert response.status_code == 202, response.text
    for tenant, message_id in ((person, "arrears-1"), (bystander, "arrears-2")):
        response = await http.post("/v1/partners/aler/messages", headers=aler,
                                   json=aler_arrears_message(tenant, message_id))
        assert response.status_code == 202, response.text
    await gateway.relay.drain()
    return person.cf, bystander.cf


async def test_T09_erasure_over_http_unlinks_the_person_keeps_the_log_verifying_and_is_audited(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    person, bystander = await seed_without_consent(gateway, http)
    dpo = await bearer(http, "dpo-test")

    async def report(cf: str) -> dict[str, object]:
        response = await http.post("/v1/privacy/disclosure-report", json={"identifier": cf}, headers=dpo)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    before = await report(person)
    assert {e["event_type"] for e in before["events"]} == {"decision", "disclosure"}  # type: ignore[union-attr,index]
    await gateway.checkpointer.checkpoint_now()

    erased = await erase(http, person)
    assert erased["outcome"] == "erased" and erased["payloads_purged"] >= 1, erased

    after = await report(person)
    assert after["events"] == []
    assert after["integrity"]["verified"] is True  # type: ignore[index]
    assert len((await report(bystander))["events"]) == 1  # type: ignore[arg-type]  # nobody else is affected
    verified = await verify_stored_log(gateway.store, gateway.settings.audit_origin)
    assert verified.ok and verified.checkpoints >= 1, verified

    async with gateway.store.transaction() as tx:
        entry = await tx.audit_entry(erased["audit_index"])
        payloads = [bytes(r.value) for r in await tx.conn.execute(select(outbox.c.value).where(
            outbox.c.recipient == "aler", outbox.c.topic.like("%out.aler%")))]
    assert entry is not None
    record = orjson.loads(entry["record"])
    assert (record["event_type"], record["action"], record["outcome"], record["client_id"]) == (
        "erasure", "erase-subject", "success", "dpo2-test")
    assert "subject_ref" not in record and entry["subject_ref"] is None  # no link to the erased person
    assert record["counts"] == {"outbox-payloads": erased["payloads_purged"],
                                "undelivered-dropped": erased["undelivered_dropped"]}
    assert person not in entry["record"]
    to_fhir_audit_event(record)  # a valid R4 AuditEvent
    assert payloads == [b""]  # the disclosed payload is gone; the row's ids stay for art. 19 notices
    inbox = await http.get("/v1/partners/aler/inbox", headers=await bearer(http, "aler-test"))
    assert inbox.status_code == 200 and all(m["topic"].split(".")[-2] != "out" for m in inbox.json()["messages"])

    again = await erase(http, person)
    assert again["outcome"] == "no-subject" and again["audit_index"] > erased["audit_index"]
    async with gateway.store.transaction() as tx:
        repeat = await tx.audit_entry(again["audit_index"])
    assert repeat is not None and orjson.loads(repeat["record"])["reason"] == "no-subject"


async def test_erasure_needs_a_privacy_officer_and_a_valid_identifier(gateway: Gateway,
                                                                      http: httpx.AsyncClient) -> None:
    person, _ = await seed_without_consent(gateway, http)
    for client, slug in (("aler-test", "insufficient-scope"), ("auditor-test", "insufficient-role")):
        response = await http.post("/v1/privacy/subjects/erasure", json={"identifier": person},
                                   headers=await bearer(http, client))
        assert response.status_code == 403 and response.json()["type"].endswith("/" + slug), response.text
    dpo = await bearer(http, "dpo-test")
    response = await http.post("/v1/privacy/subjects/erasure", json={"identifier": "RSSMRA85T10A562X"}, headers=dpo)
    assert response.status_code == 422 and "RSSMRA85T10A562X" not in response.text
    report = (await http.post("/v1/privacy/disclosure-report", json={"identifier": person}, headers=dpo)).json()
    assert report["events"]  # refused requests erased nothing


# --- D-07: integrity status with the signed checkpoints ---------------------------------------------------------


async def test_D07_integrity_status_verifies_the_signed_checkpoints_and_reports_a_tampered_one(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    await seed_without_consent(gateway, http)
    dpo = await bearer(http, "dpo-test")
    signed = await gateway.checkpointer.checkpoint_now()
    [key] = gateway.checkpointer.signing_keys()
    integrity = (await http.get("/v1/privacy/records-of-processing", headers=dpo)).json()["integrity"]
    assert (integrity["verified"], integrity["chain"], integrity["checkpoints"]) == (True, "ok", "ok"), integrity
    assert integrity["trusted_keys"] == "configured"
    latest = integrity["latest_checkpoint"]
    assert latest["tree_size"] >= signed.tree_size and latest["signed_by"] == [f"{key.name}+{key.key_id.hex()}"]
    assert integrity["checkpoints_verified"] >= 1

    # someone with write access to the database "re-roots" the checkpoint: the signature no longer matches
    forged_root = bytes(32)
    lines = signed.note.split("\n")
    lines[2] = base64.b64encode(forged_root).decode()
    async with gateway.store.transaction() as tx:
        await tx.conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.id == signed.id)
                              .values(note="\n".join(lines), root_hash=forged_root))
    response = await http.get("/v1/privacy/review-queue?format=csv", headers=dpo)
    comments = dict(line[2:].split(": ", 1) for line in response.text.splitlines() if line.startswith("# "))
    assert comments["audit_verified"] == "False" and comments["audit_checkpoints"] == "broken", comments
    assert comments["audit_chain"] == "ok"  # the records themselves are intact
    assert "invalid signature" in comments["audit_problem"]
