"""Rule 12, plan C-18: when the consent store cannot be read the gateway denies and retries later — over HTTP
a 503 problem with Retry-After and nothing written; over Kafka the record is retried until the store answers,
then forwarded exactly once."""

from __future__ import annotations

import httpx
import orjson
import pytest
from sqlalchemy.exc import OperationalError

from gateway.bootstrap import Gateway
from gateway.bus import OutgoingRecord
from gateway.consents.index import ConsentIndex
from gateway.simulators import aler_arrears_message
from gateway.store import StoreTransaction
from tests.conftest import bearer
from tests.e2e.test_f1_microcredit_referral import read_until, record_consent, tenant


def unreadable_consents(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    """The next ``failures`` consent reads of a batch fail as a statement timeout would: the read of the store's
    latest consent version (or, before the process's index has loaded, of the consents themselves)."""
    calls: list[int] = []
    original = ConsentIndex.current  # how the intake reads a batch's consents, inside its transaction

    async def flaky(self: ConsentIndex, tx: StoreTransaction, pseudonyms):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= failures:
            raise OperationalError("select consents", {}, TimeoutError("statement timeout"))
        return await original(self, tx, pseudonyms)

    monkeypatch.setattr(ConsentIndex, "current", flaky)
    return calls


async def test_C18_consent_store_timeout_over_http_is_a_503_and_nothing_is_written(
    gateway: Gateway, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = tenant(41)
    await record_consent(gateway, person.cf)
    aler = await bearer(http, "aler-test")
    async with gateway.store.transaction() as tx:
        before = (await tx.audit_head()).size
    unreadable_consents(monkeypatch, failures=1)
    response = await http.post("/v1/partners/aler/messages", content=orjson.dumps(aler_arrears_message(person, "c18")),
                               headers={**aler, "content-type": "application/json"})
    assert response.status_code == 503
    assert response.headers["retry-after"] and response.json()["type"].endswith("/dependency-unavailable")
    async with gateway.store.transaction() as tx:
        assert (await tx.audit_head()).size == before
        assert await tx.message("aler", "c18") is None  # not even claimed: the retry is not a replay
    retry = await http.post("/v1/partners/aler/messages", content=orjson.dumps(aler_arrears_message(person, "c18")),
                            headers={**aler, "content-type": "application/json"})
    assert retry.status_code == 202 and retry.json()[0]["state"] == "forwarded"


async def test_C18_consent_store_timeout_over_kafka_retries_then_forwards_once(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = tenant(42)
    await record_consent(gateway, person.cf)
    calls = unreadable_consents(monkeypatch, failures=3)
    await gateway.bus.publish([OutgoingRecord(topic=gateway.settings.topics.name("in", "aler"),
                                              value=orjson.dumps(aler_arrears_message(person, "c18-k")))])
    referrals = await read_until(gateway, "out", "fwa", 1, settle_s=1.0)
    assert len(referrals) == 1 and len(calls) >= 4
