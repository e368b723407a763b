"""F1's denials over the in-memory store: without consent nothing reaches FWA, and a withdrawn consent denies
exactly as no consent does (rule 13: the sender cannot tell them apart). F1 runs end to end over both real
backends (permit, replay, dead letters, withdrawal at delivery) in ``tests/e2e/test_f1_microcredit_referral.py``."""

from __future__ import annotations

import orjson

from gateway.simulators import aler_arrears_message
from tests.e2e.test_f1_microcredit_referral import tenant
from tests.pipeline_harness import Pipeline


async def test_f1_without_consent_nothing_reaches_fwa(pipeline: Pipeline) -> None:
    person = tenant(2)
    await pipeline.submit("aler", aler_arrears_message(person, "m-deny"))

    [status] = await pipeline.read("status", "aler")
    assert orjson.loads(status.value)["state"] == "denied"
    assert orjson.loads(status.value)["reason_class"] == "not-authorised"
    assert await pipeline.read("out", "fwa") == []
    records = await pipeline.audit()
    [decision] = [r for r in records if r["event_type"] == "decision"]
    assert (decision["outcome"], decision["reason"]) == ("deny", "no-applicable-consent")
    assert not [r for r in records if r["event_type"] == "disclosure"]


async def test_f1_withdrawn_consent_denies_and_looks_like_no_consent(pipeline: Pipeline) -> None:
    withdrawn_person, never_person = tenant(3), tenant(4)
    consent = await pipeline.consent(withdrawn_person.cf)
    await pipeline.consents.withdraw(consent.consent_id, "aler", "aler-test", "req-withdraw")
    await pipeline.submit("aler", aler_arrears_message(withdrawn_person, "m-withdrawn"))
    await pipeline.submit("aler", aler_arrears_message(never_person, "m-never"))

    records = await pipeline.read("status", "aler")
    assert len(records) == 2
    statuses = {orjson.loads(r.value)["message_id"]: orjson.loads(r.value) for r in records}
    assert statuses["m-withdrawn"]["state"] == statuses["m-never"]["state"] == "denied"
    # Rule 13: the sender cannot tell a withdrawn consent from no consent at all.
    assert {k: v for k, v in statuses["m-withdrawn"].items() if k not in ("message_id", "correlation_id", "at")} == {
        k: v for k, v in statuses["m-never"].items() if k not in ("message_id", "correlation_id", "at")}
    assert await pipeline.read("out", "fwa") == []
    reasons = {r["reason"] for r in await pipeline.audit() if r["event_type"] == "decision"}
    assert reasons == {"consent-withdrawn", "no-applicable-consent"}
