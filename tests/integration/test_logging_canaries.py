"""No personal data reaches the logs of a whole gateway: canary values submitted over HTTP, decided, delivered and
refused, at INFO and at DEBUG (SQL parameters, pseudonyms, withdrawal text), on both pairs of backends."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import replace
from typing import Any

import httpx

from gateway.identity.synthetic import generate_tenants
from gateway.simulators.partners import aler_arrears_message, fhir_consent
from tests.conftest import bearer
from tests.log_capture import CANARY_CF, CANARY_NAME, CANARY_SURNAME, assert_no_canary, json_lines, log_output

__all__ = ["log_output"]  # the fixture, used by name


async def delivered_inbox(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """The text of FWA's inbox once it holds a message (the relay publishes asynchronously)."""
    async with asyncio.timeout(30):
        while True:
            response = await http.get("/v1/partners/fwa/inbox", headers=headers)
            assert response.status_code == 200, response.text
            if response.json()["messages"]:
                return response.text
            await asyncio.sleep(0.05)


async def test_full_submission_over_http_logs_no_canary(log_output: io.StringIO, http: httpx.AsyncClient) -> None:
    tenant = replace(next(generate_tenants("S", 7, 1)), cf=CANARY_CF, given_name=CANARY_NAME,
                     family_name=CANARY_SURNAME)
    aler = await bearer(http, "aler-test")

    consent = await http.post("/v1/consents", json=fhir_consent(tenant.cf), headers=aler)
    assert consent.status_code == 201, consent.text
    message = aler_arrears_message(tenant, "canary-0001")
    accepted = await http.post("/v1/partners/aler/messages", json=message, headers=aler)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()[0]["state"] == "forwarded"
    replayed = await http.post("/v1/partners/aler/messages", json=message, headers=aler)
    assert replayed.status_code == 202, replayed.text
    # The canary really crossed the gateway: FWA receives it once the relay has published the message.
    fwa = await bearer(http, "fwa-test")
    inbox = await delivered_inbox(http, fwa)
    assert CANARY_CF in inbox

    bad = aler_arrears_message(tenant, "canary-0002")
    bad["nome"] = CANARY_NAME
    bad["contratto"]["quartiere"] = CANARY_SURNAME
    bad["nucleo"]["tipologia"] = f"{CANARY_SURNAME} {CANARY_CF}"
    refused = await http.post("/v1/partners/aler/messages", json=bad, headers=aler)
    assert refused.status_code == 422, refused.text
    assert_no_canary(refused.text, CANARY_CF, CANARY_NAME, CANARY_SURNAME)

    bad_consent = fhir_consent(CANARY_CF[:15] + ("A" if CANARY_CF[15] != "A" else "B"))
    refused_consent = await http.post("/v1/consents", json=bad_consent, headers=aler)
    assert refused_consent.status_code == 422, refused_consent.text
    assert_no_canary(refused_consent.text, CANARY_CF[:15])

    output = log_output.getvalue()
    assert_no_canary(output, CANARY_CF, CANARY_CF[:15], CANARY_NAME, CANARY_SURNAME)
    entries = json_lines(log_output)
    events = {e["event"] for e in entries}
    assert {"batch-decided", "message-decided", "replay-ignored", "request-refused"} <= events


async def test_at_debug_no_sql_parameter_pseudonym_or_withdrawal_text_reaches_the_logs(
    log_output: io.StringIO, http: httpx.AsyncClient, gateway: Any
) -> None:
    """Issue 10 point 9: the root logger at DEBUG (``log_output``), a consent recorded, a message forwarded
    and the consent withdrawn with free text holding a name and a street address: the drivers' and the ORM's
    debug lines (SQL with its parameters) stay out, so no canary, pseudonym or text comes out."""
    from sqlalchemy import select

    from gateway.logging import PINNED_LOGGERS
    from gateway.store.tables import subjects

    street = "VIA CANARINO 12"
    tenant = replace(next(generate_tenants("S", 9, 1)), cf=CANARY_CF, given_name=CANARY_NAME)
    aler = await bearer(http, "aler-test")
    consent = await http.post("/v1/consents", json=fhir_consent(tenant.cf), headers=aler)
    assert consent.status_code == 201, consent.text
    accepted = await http.post("/v1/partners/aler/messages", json=aler_arrears_message(tenant, "debug-1"),
                               headers=aler)
    assert accepted.status_code == 202, accepted.text
    withdrawn = await http.post(f"/v1/consents/{consent.json()['consent_id']}/withdraw", headers=aler,
                                json={"by": "subject", "channel": "phone", "evidence": f"{CANARY_NAME}, {street}"})
    assert withdrawn.status_code == 200, withdrawn.text
    async with gateway.store.transaction() as tx:
        pseudonyms = [row[0] for row in (await tx.conn.execute(select(subjects.c.pseudonym))).all()]
    assert pseudonyms
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    assert all(logging.getLogger(name).getEffectiveLevel() >= logging.WARNING for name in PINNED_LOGGERS)
    output = log_output.getvalue()
    assert_no_canary(output, CANARY_CF, CANARY_NAME, street, *pseudonyms)
    driver_lines = [e for e in json_lines(log_output)
                    if e.get("logger", "").split(".")[0] in {"sqlalchemy", "aiosqlite", "asyncpg"}
                    and e["level"] in ("debug", "info")]
    assert driver_lines == []
