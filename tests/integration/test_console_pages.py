"""Every console page over HTTP on both pairs of backends (issue 11): the art. 15 answer for a person whose F1
referral crossed in the same test, downloads, consent timeline, review queue closed with a comment, audit log
pages with proof download, records of processing, erasure by two officers, the organisation scoping of the API,
and a ``privacy-query`` audit record for every read. The browser tests (``tests/browser``) drive the same pages
in Chromium."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from gateway.api import create_app
from gateway.bootstrap import Gateway
from tests.console_helpers import f1_referral, officer_account, sign_in, tenant


@pytest.fixture
async def browserless(gateway: Gateway) -> httpx.AsyncClient:
    app = create_app(gateway, manage_lifecycle=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver")


async def _queries(gateway: Gateway) -> list[dict[str, object]]:
    async with gateway.store.transaction() as tx:
        records = [json.loads(e["record"]) for e in await tx.audit_entries(0, 100_000)]
    return [r for r in records if r["event_type"] == "privacy-query"]


async def test_every_page_answers_from_the_privacy_office_and_is_audited(gateway: Gateway,
                                                                         browserless: httpx.AsyncClient) -> None:
    person, denied = tenant(3), tenant(4)
    await f1_referral(gateway, person, "m-console-permit")
    await f1_referral(gateway, denied, "m-console-deny", consent=False)
    totp = await officer_account(gateway, "dpo", "gateway-privacy")
    async with browserless as http:
        token = await sign_in(http, "dpo", totp)
        home = await http.get("/console/")
        assert home.status_code == 200 and "<svg" in home.text and "Decisioni al giorno" in home.text

        answer = await http.post("/console/person", data={"identifier": person.cf, "csrf_token": token})
        assert answer.status_code == 200
        assert gateway.registry.partners["fwa"].name in answer.text
        assert "F1" in answer.text and "microcredit-assessment" in answer.text
        assert str(answer.url).endswith("/console/person")
        csv_file = await http.post("/console/person/export", data={"identifier": person.cf, "format": "csv",
                                                                   "csrf_token": token})
        assert csv_file.headers["content-disposition"].startswith("attachment") and "disclosure" in csv_file.text
        assert person.cf not in csv_file.headers["content-disposition"]
        report = await http.post("/console/person/export", data={"identifier": person.cf, "format": "report",
                                                                 "csrf_token": token})
        assert "Titolare del trattamento" in report.text and gateway.settings.dpo_contact in report.text
        consent_id = re.search(r'name="consent_id" value="([^"]+)"', answer.text)
        assert consent_id
        timeline = await http.post("/console/consent", data={"identifier": person.cf, "csrf_token": token,
                                                             "consent_id": consent_id.group(1)})
        assert timeline.status_code == 200 and "integro" in timeline.text

        queue = await http.get("/console/review", params={"flow": "F1", "kind": "denial"})
        item = re.search(r'href="/console/review/(\d+)"', queue.text)
        assert item, queue.text
        index = item.group(1)
        closed = await http.post(f"/console/review/{index}", data={"resolution": "escalated", "csrf_token": token,
                                                                   "comment": "chiedere ad ALER"})
        assert closed.status_code == 303
        shown = await http.get(f"/console/review/{index}")
        assert "chiedere ad ALER" in shown.text and "escalation" in shown.text

        log = await http.get("/console/audit")
        assert log.status_code == 200 and "/console/audit/" in log.text
        record = await http.get(f"/console/audit/{index}")
        assert record.status_code == 200 and "AuditEvent" in record.text
        checkpoints = await http.get("/console/audit/checkpoints")
        assert checkpoints.status_code == 200
        records = await http.get("/console/records")
        assert records.status_code == 200 and "F1" in records.text
        exported = await http.get("/console/records", params={"format": "csv"})
        assert "F1" in exported.text

    queries = [q["action"] for q in await _queries(gateway)]
    for read in ("disclosure-report", "consent-history", "review-queue", "review-escalated", "daily-activity",
                 "audit-log-page", "read-audit-record", "records-of-processing", "read-checkpoints"):
        assert read in queries, read
    assert person.cf not in json.dumps(await _queries(gateway))


async def test_a_partner_officer_sees_only_their_organisation(gateway: Gateway,
                                                              browserless: httpx.AsyncClient) -> None:
    person = tenant(5)
    await f1_referral(gateway, person, "m-console-scope")
    totp = await officer_account(gateway, "dpo.asst", "asst")
    async with browserless as http:
        token = await sign_in(http, "dpo.asst", totp)
        answer = await http.post("/console/person", data={"identifier": person.cf, "csrf_token": token})
        assert answer.status_code == 200 and "microcredit-assessment" not in answer.text
        records = await http.get("/console/records")
        assert ">F1<" not in records.text
        erasure = await http.get("/console/erasure")
        assert erasure.status_code == 403  # no erasure-officer role


async def test_erasure_takes_two_different_officers_with_a_confirmation(gateway: Gateway,
                                                                        browserless: httpx.AsyncClient) -> None:
    person = tenant(6)
    await f1_referral(gateway, person, "m-console-erase")
    roles = frozenset({"privacy-officer", "erasure-officer"})
    first, second = (await officer_account(gateway, "e1", "gateway-privacy", roles),
                     await officer_account(gateway, "e2", "gateway-privacy", roles))
    async with browserless as http:
        token = await sign_in(http, "e1", first)
        confirm = await http.post("/console/erasure", data={"identifier": person.cf, "step": "request",
                                                            "csrf_token": token})
        assert "chiave della persona" in confirm.text
        done = await http.post("/console/erasure", data={"identifier": person.cf, "step": "request", "confirm": "yes",
                                                         "csrf_token": token})
        index = re.search(r"record (\d+)\)", done.text)
        assert index, done.text
        same = await http.post("/console/erasure", data={"identifier": person.cf, "step": "approve", "confirm": "yes",
                                                         "request_index": index.group(1), "csrf_token": token})
        assert same.status_code == 403
    async with httpx.AsyncClient(transport=browserless._transport, base_url="https://testserver") as other:
        token = await sign_in(other, "e2", second)
        erased = await other.post("/console/erasure", data={"identifier": person.cf, "step": "approve",
                                                            "confirm": "yes", "request_index": index.group(1),
                                                            "csrf_token": token})
        assert erased.status_code == 200 and "Cancellazione eseguita" in erased.text
