"""Prometheus metrics (issue 9, point 9) on a real Kafka broker and PostgreSQL, read the way Prometheus reads
them: an HTTP scrape of the gateway's own metrics port.

Messages go through the whole pipeline — a permitted F1 referral, a denied one, a replay, a malformed record
carrying a canary codice fiscale and name, a token issued and one refused — and the scrape must count each
where it belongs, show the outbox drained and the consumer caught up, and name no person, no message id and
no canary anywhere (privacy.md: no personal data outside the store; the metrics are read by people who may
not see it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.api import create_app
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.bus import OutgoingRecord
from gateway.simulators import aler_arrears_message
from tests.conftest import REAL, SECRET, Backends
from tests.e2e.test_f1_microcredit_referral import record_consent, tenant

DEADLINE_S = 60.0
CANARY_NAME = "CANARYGIULIA"


@pytest.fixture
async def metered(settings_for: Callable[[Backends], Any], clients: tuple[PartnerClient, ...]) -> AsyncIterator[
        Gateway]:
    """A started gateway on the real backends serving its metrics on a free port, sampling every 0.3 s."""
    settings = (await settings_for(REAL)).model_copy(update={"metrics_port": 0, "metrics_sample_seconds": 0.3})
    gateway = build(settings, clients=clients)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(gateway: Gateway) -> str:
    assert gateway.metrics_server is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{gateway.metrics_server.port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def scrape_until(gateway: Gateway, ready: Callable[[dict[tuple[str, tuple[tuple[str, str], ...]], float]],
                                                             bool]) -> tuple[str, dict[Any, float]]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        text = await scrape(gateway)
        found = samples(text)
        if ready(found):
            return text, found
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.3)


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_scrape_counts_the_pipeline_and_names_no_person(metered: Gateway) -> None:
    gateway = metered
    permitted, refused = tenant(21), tenant(22)
    await record_consent(gateway, permitted.cf)
    topic = gateway.settings.topics.name("in", "aler")
    malformed = orjson.dumps({"id_messaggio": "m-canary", "codice_fiscale": permitted.cf, "nome": CANARY_NAME})[:-3]
    await gateway.bus.publish([
        OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(permitted, "m-metrics-permit"))),
        OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(refused, "m-metrics-deny"))),
        OutgoingRecord(topic=topic, value=malformed),
    ])
    in_topic = gateway.settings.topics.name("in", "aler")

    def decided(found: dict[Any, float]) -> bool:
        return (value(found, "gateway_messages_total", partner="aler", outcome="forwarded") == 1
                and value(found, "gateway_messages_total", partner="aler", outcome="denied") == 1
                and value(found, "gateway_dead_letters_total", partner="aler", reason="malformed-message") == 1)

    await scrape_until(gateway, decided)
    # the same permitted message again: a replay, decided nothing
    await gateway.bus.publish([OutgoingRecord(
        topic=topic, value=orjson.dumps(aler_arrears_message(permitted, "m-metrics-permit")))])

    app = create_app(gateway, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as http:
        issued = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("aler-test", SECRET))
        refused_token = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                        auth=("aler-test", "not-the-secret"))
    assert (issued.status_code, refused_token.status_code) == (200, 401)

    def settled(found: dict[Any, float]) -> bool:
        return (value(found, "gateway_messages_total", partner="aler", outcome="replayed") == 1
                and value(found, "gateway_relay_deliveries_total", recipient="fwa") == 1
                and value(found, "gateway_outbox_backlog_messages") == 0
                and value(found, "gateway_consumer_lag_messages", topic=in_topic) == 0
                and value(found, "gateway_consumer_group_member") == 1
                and value(found, "gateway_audit_records") > 0)

    text, found = await scrape_until(gateway, settled)

    assert value(found, "gateway_messages_total", partner="aler", outcome="dead_lettered") == 1
    assert value(found, "gateway_decisions_total", flow="F1", outcome="permit", reason="permitted") == 1
    assert sum(v for (name, labels), v in found.items()
               if name == "gateway_decisions_total" and ("outcome", "deny") in labels) >= 1
    assert value(found, "gateway_message_commit_seconds_count") == 3  # two decided, one replayed
    # delivered: the referral to FWA and the three statuses back to ALER (forwarded, denied, and none for the
    # replay), each timed from the intake
    assert value(found, "gateway_message_delivery_seconds_count", kind="out") == 1
    assert value(found, "gateway_message_delivery_seconds_count", kind="status") == 2
    assert value(found, "gateway_relay_deliveries_total", recipient="aler") == 2
    assert value(found, "gateway_outbox_oldest_undelivered_age_seconds") == 0
    assert value(found, "gateway_consent_records") == 1
    assert 0 <= value(found, "gateway_audit_checkpoint_age_seconds") < 600
    assert value(found, "gateway_tokens_issued_total", organisation="aler") == 1
    assert value(found, "gateway_token_failures_total", error="invalid_client") == 1

    # no person, no message id, no canary: not in a label, not anywhere in the scrape
    for secret in (permitted.cf, refused.cf, permitted.family_name, permitted.given_name, refused.family_name,
                   CANARY_NAME, "m-metrics-permit", "m-metrics-deny", "m-canary"):
        assert secret not in text
    label_names = {name for (_, labels) in found for name, _ in labels}
    assert label_names <= {"partner", "outcome", "flow", "reason", "recipient", "kind", "topic", "organisation",
                           "error", "le"}


async def test_the_metrics_port_is_closed_when_the_gateway_stops(settings_for: Callable[[Backends], Any],
                                                                 clients: tuple[PartnerClient, ...]) -> None:
    """No endpoint unless configured; the configured one goes away with the gateway."""
    from tests.conftest import EMBEDDED

    plain = build(await settings_for(EMBEDDED), clients=clients)
    await plain.start(workers=False)
    try:
        assert plain.metrics_server is None
    finally:
        await plain.stop()
    metered = build((await settings_for(EMBEDDED)).model_copy(update={"metrics_port": 0}), clients=clients)
    await metered.start(workers=False)
    assert metered.metrics_server is not None
    port = metered.metrics_server.port
    assert "gateway_outbox_backlog_messages" in await scrape(metered)
    await metered.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
