"""D-08 retention: stored payloads go once their flow's retention has run out; the audit log stays, and grows by
one record per run saying what was purged. On SQLite and on PostgreSQL, with a fake "now".

The gateway here runs no workers: the tests relay by hand, so that one message can be left undelivered, and
no background job signs or purges on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from sqlalchemy import and_, exists, func, select

from gateway.audit.fhir_export import to_fhir_audit_event
from gateway.audit.offline import verify_stored_log
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.identity.synthetic import generate_tenants
from gateway.retention import RetentionJob, RetentionPolicy
from gateway.settings import GatewaySettings
from gateway.simulators import aler_arrears_message, asst_encounter, comune_case_event
from gateway.store.tables import messages, outbox, outbox_queue
from tests.conftest import Backends, bearer


@pytest.fixture
async def gateway(backends: Backends, settings_for: Callable[[Backends], object],
                  clients: tuple[PartnerClient, ...]) -> AsyncIterator[Gateway]:
    settings: GatewaySettings = await settings_for(backends)  # type: ignore[misc]
    gw = build(settings, clients=clients)
    await gw.start(workers=False)
    try:
        yield gw
    finally:
        await gw.stop()


async def seed(gateway: Gateway, http: httpx.AsyncClient) -> None:
    """F5 (ASST -> ALER, kept 365 days), F3 (Comune -> ALER, 1825 days), an F1 referral denied for want of
    consent (730 days), each with a status back to its sender; all relayed."""
    person = next(t for t in generate_tenants("S", seed=5, limit=20) if t.arrears_cents > 0)
    for partner, content_type, body in (
        ("asst", "application/fhir+json", asst_encounter(person.cf, "enc-1", "corr-enc-1")),
        ("comune", "application/json", comune_case_event(person.cf, "MI-SST-9", "case-9", "corr-case-9")),
        ("aler", "application/json", aler_arrears_message(person, "arrears-9")),
    ):
        headers = {**await bearer(http, f"{partner}-test"), "content-type": content_type}
        response = await http.post(f"/v1/partners/{partner}/messages", content=orjson.dumps(body), headers=headers)
        assert response.status_code == 202, response.text
    await gateway.relay.drain()


async def stored(gateway: Gateway) -> tuple[dict[str, bytes], int, list[dict[str, object]]]:
    """Payloads by message type, recipient and whether relayed; the number of message statuses; the audit log."""
    async with gateway.store.transaction() as tx:
        rows = await tx.conn.execute(select(outbox.c.recipient, outbox.c.headers, outbox.c.value,
                                            and_(outbox.c.dropped_reason.is_(None),
                                                 ~exists().where(outbox_queue.c.id == outbox.c.id))))
        payloads = {f"{dict(h)['message-type']}->{r}{'' if at else ' (queued)'}": bytes(v) for r, h, v, at in rows}
        statuses = (await tx.conn.execute(select(func.count()).select_from(messages))).scalar_one()
        entries = await tx.audit_entries(0, 10_000)
    return payloads, statuses, entries


def test_D08_every_stored_row_maps_to_a_retention_from_the_flow_registry(gateway: Gateway) -> None:
    policy = RetentionPolicy(gateway.registry)
    f5 = next(f for f in gateway.registry.flows if f.id == "F5")
    assert policy.outgoing("aler", {"message-type": f5.outbound_message_type, "purpose": f5.purpose}) == (
        "F5", f5.retention_days)
    assert policy.status("asst", "care.encounter") == ("F5", f5.retention_days)
    # a sender's message that two flows carry is kept as long as the longer of them
    label, days = policy.status("aler", "tenancy.eviction-milestone")
    assert label == "F9|F9-fwa" and days == max(f.retention_days for f in gateway.registry.flows
                                               if f.id in ("F9", "F9-fwa"))
    # rows of no flow follow the partner's longest flow; an organisation with no flow, the registry's longest
    assert policy.outgoing("asst", {"message-type": "referral.status"}) == (
        "referral.status", max(f.retention_days for f in gateway.registry.flows if "asst" in (f.sender, f.recipient)))
    assert policy.outgoing("no-such-partner", {"message-type": "consent.withdrawn"}) == (
        "consent.withdrawn", max(f.retention_days for f in gateway.registry.flows))


async def test_D08_retention_purges_payloads_per_flow_and_keeps_the_audit_log(gateway: Gateway,
                                                                              http: httpx.AsyncClient) -> None:
    start = datetime.now(UTC)
    await seed(gateway, http)
    late = asst_encounter(next(iter(generate_tenants("S", seed=6, limit=1))).cf, "enc-2", "corr-enc-2")
    response = await http.post("/v1/partners/asst/messages", content=orjson.dumps(late),
                               headers={**await bearer(http, "asst-test"), "content-type": "application/fhir+json"})
    assert response.status_code == 202  # queued, never relayed: not the job's to purge
    payloads, statuses, audit_before = await stored(gateway)
    assert all(payloads.values()) and statuses == 4
    job = RetentionJob(gateway.store, gateway.registry, "retention-test")

    nothing = await job.run_once(start + timedelta(days=300))  # within every flow's retention
    assert nothing.counts == {}
    assert (await stored(gateway))[0] == payloads

    report = await job.run_once(start + timedelta(days=400))  # past F5's 365 days, within F3's and F1's
    assert report.counts == {"F5/message-statuses": 2, "F5/outbox-payloads": 1}, report
    payloads, statuses, _ = await stored(gateway)
    assert payloads["care.encounter->aler"] == b""
    assert payloads["social.case-status->aler"] and payloads["referral.status->asst"]
    assert statuses == 2  # the Comune's case event and ALER's referral remain

    final = await job.run_once(start + timedelta(days=4000))  # past every retention
    assert final.counts["F3/outbox-payloads"] == 1 and final.counts["F3/message-statuses"] == 1
    assert final.counts["F1/message-statuses"] == 1 and final.counts["referral.status/outbox-payloads"] == 3
    payloads, statuses, audit_after = await stored(gateway)
    assert statuses == 0
    assert sorted(k for k, v in payloads.items() if v) == [  # the undelivered ones, untouched
        "care.encounter->aler (queued)", "referral.status->asst (queued)"]
    async with gateway.store.transaction() as tx:
        pending = await tx.pending_outbox(10)
    assert [r.message_id for r in pending] and all(r.value for r in pending)

    # the audit log only grew: every earlier record byte for byte, plus one record per run
    assert audit_after[:len(audit_before)] == audit_before
    runs = [orjson.loads(e["record"]) for e in audit_after[len(audit_before):]]  # type: ignore[arg-type]
    assert [(r["event_type"], r["action"], r.get("counts")) for r in runs] == [
        ("retention", "purge-expired", None),
        ("retention", "purge-expired", report.counts),
        ("retention", "purge-expired", final.counts),
    ]
    assert all("subject_ref" not in r for r in runs)
    for run in runs:
        to_fhir_audit_event(run)
    assert (await verify_stored_log(gateway.store, gateway.settings.audit_origin)).ok

    inbox = await http.get("/v1/partners/aler/inbox", headers=await bearer(http, "aler-test"))
    assert inbox.status_code == 200 and inbox.json()["messages"] == []  # purged payloads are no longer served

    again = await job.run_once(start + timedelta(days=4000))
    assert again.counts == {}  # idempotent
