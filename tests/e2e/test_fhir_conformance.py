"""Everything FHIR the gateway emits, checked by HAPI FHIR's official R4 validator (a real JVM): 0 errors.

One scenario on each backend pair drives the gateway through its FHIR outputs: the ServiceRequest it sends the
hospital trust (F4), the Consent it returns (recorded, then withdrawn), and its audit log exported as AuditEvents
of every event type (decision, disclosure, delivery-dropped, consent-change, privacy-query, erasure,
retention; the F10 emergency decision among them). All of them go to the validator at once. The gateway emits
no Bundle of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from gateway.api import create_app
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.pipeline import Submission
from gateway.retention import RetentionJob
from gateway.simulators import aler_arrears_message, comune_emergency, fhir_consent
from tests.conftest import Backends, bearer
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until, tenant
from tests.hapi_validator import HapiValidator, errors_of

EVENT_TYPES = {"decision", "disclosure", "delivery-dropped", "consent-change", "privacy-query", "erasure", "retention"}


@pytest.fixture(scope="session")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    scopes = frozenset({"messages:submit", "status:read", "inbox:read", "consent:write", "consent:read"})
    return (
        PartnerClient("aler-test", secret_hash, "aler", "system", scopes),
        PartnerClient("comune-test", secret_hash, "comune", "system", scopes),
        PartnerClient("dpo-test", secret_hash, "gateway-privacy", "privacy-officer",
                      frozenset({"privacy:report", "privacy:erase"})),
        PartnerClient("dpo2-test", secret_hash, "gateway-privacy", "privacy-officer", frozenset({"privacy:erase"})),
    )


@pytest.fixture
async def idle(backends: Backends, settings_for: Callable[[Backends], object],
               clients: tuple[PartnerClient, ...]) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A gateway whose relay the test moves itself (so a consent can be withdrawn before delivery), and its API."""
    gw = build(await settings_for(backends), clients=clients)  # type: ignore[misc]
    await gw.start(workers=False)
    app = create_app(gw, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
            yield gw, client
    finally:
        await gw.stop()


async def _post(http: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str],
                content_type: str = "application/json") -> httpx.Response:
    response = await http.post(path, content=orjson.dumps(body), headers={**headers, "content-type": content_type})
    assert response.status_code in (200, 201, 202), response.text
    return response


async def test_every_fhir_resource_the_gateway_emits_passes_hapi(
        idle: tuple[Gateway, httpx.AsyncClient], hapi_validator: HapiValidator) -> None:
    gateway, http = idle
    aler, comune, dpo = [await bearer(http, c) for c in ("aler-test", "comune-test", "dpo-test")]
    cared_for, referred, withdrawing = tenant(41), tenant(42), tenant(43)

    # F4: an explicit consent, then a care request the trust receives as a ServiceRequest
    care_consent = (await _post(http, "/v1/consents", fhir_consent(
        cared_for.cf, purposes=("care-coordination",), recipients=("asst",), consent_type="explicit"), aler)).json()
    await _post(http, "/v1/partners/aler/messages", {
        "id_messaggio": "fc-f4", "id_correlazione": "fc-k-f4", "tipo_messaggio": "richiesta-assistenza",
        "versione": "1.0", "data_evento": "2026-11-20T09:30:00+01:00", "finalita": "care-coordination",
        "destinatari": ["asst"], "id_richiesta": "ALER-R-0009", "assistito": {"codice_fiscale": cared_for.cf},
        "servizio": "telemedicina", "urgenza": "urgente", "finestra": {"dal": "2026-11-23", "al": "2026-11-30"}},
        aler)
    # F1 with and without consent (permit and deny), F10 emergency (no consent, EMERGENCY label)
    await _post(http, "/v1/consents", fhir_consent(referred.cf), aler)
    await _post(http, "/v1/partners/aler/messages", aler_arrears_message(referred, "fc-f1"), aler)
    await _post(http, "/v1/partners/aler/messages", aler_arrears_message(cared_for, "fc-f1-denied"), aler)
    await _post(http, "/v1/partners/comune/messages", comune_emergency(referred.cf, "fc-f10"), comune)
    # a referral queued, then its consent withdrawn before delivery: dropped at the relay
    withdrawn = await gateway.consents.record(fhir_consent(withdrawing.cf), "aler", "aler-test", "fc-consent")
    [status] = await gateway.intake.submit(Submission(
        sender="aler", sender_role="system", raw=orjson.dumps(aler_arrears_message(withdrawing, "fc-queued")),
        content_type="application/json", request_id="fc-queued"))
    assert status.state == "forwarded"
    await _post(http, f"/v1/consents/{withdrawn.consent_id}/withdraw", {}, aler)
    await gateway.relay.drain()
    # the privacy officer's query, an erasure and a retention run
    await _post(http, "/v1/privacy/disclosure-report", {"identifier": referred.cf}, dpo)
    request = await _post(http, "/v1/privacy/subjects/erasure", {"identifier": withdrawing.cf}, dpo)
    await _post(http, f"/v1/privacy/subjects/erasure/{request.json()['request_index']}/approval",
                {"identifier": withdrawing.cf}, await bearer(http, "dpo2-test"))
    await RetentionJob(gateway.store, gateway.registry, "fc-retention").run_once(
        datetime.now(UTC) + timedelta(days=4000))

    emitted: dict[str, dict[str, Any]] = {}
    [request] = await read_until(gateway, "out", "asst", 1)
    emitted["ServiceRequest to asst"] = orjson.loads(request.value)
    for consent_id in (care_consent["consent_id"], withdrawn.consent_id):
        for version in (1, 2) if consent_id == withdrawn.consent_id else (1,):
            response = await http.get(f"/v1/consents/{consent_id}/fhir", params={"version": version}, headers=aler)
            assert response.status_code == 200, response.text
            emitted[f"Consent {consent_id} v{version}"] = response.json()
    records = await audit_records(gateway)
    assert {r["event_type"] for r in records} >= EVENT_TYPES
    assert any("EMERGENCY" in (r.get("labels") or ()) for r in records)
    for index, record in enumerate(records):
        response = await http.get(f"/v1/audit/records/{index}/fhir", headers=dpo)
        assert response.status_code == 200, response.text
        emitted[f"AuditEvent {index} ({record['event_type']})"] = response.json()

    results = hapi_validator.validate(emitted.values())
    errors = [f"{name}: {e}" for name, issues in zip(emitted, results, strict=True) for e in errors_of(issues)]
    assert errors == [], "\n".join(errors)
    assert len(emitted) >= 20
