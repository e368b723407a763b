"""The HTTP API refuses bad input with a clear problem+json answer and writes nothing half-way.

Every refused request is checked twice: the response (status, RFC 7807 body, stable ``type`` slug, the
field that is wrong) and the store (audit log size and the messages, outbox and subjects row counts are
exactly what they were before the request). Runs on both backends through the ``http`` fixture; the
PostgreSQL+Kafka cases need ``scripts/realinfra.py``.

The module's ``gateway`` fixture replaces the shared one only to sign tokens with a key the tests know,
so that an expired token can be minted with the gateway's own key.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.auth import PartnerClient, TokenIssuer, generate_signing_key
from gateway.bootstrap import Gateway, build
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.simulators.partners import aler_arrears_message, fhir_consent
from gateway.store.tables import messages, outbox, subjects
from tests.conftest import SECRET, Backends, bearer

PROBLEM_JSON = "application/problem+json"
ALER_MESSAGES = "/v1/partners/aler/messages"
CANARY_NAME = "CANARYGIULIA"
CANARY_VALUE = "CANARYROSSI"


# --- fixtures and helpers -------------------------------------------------------------------------------------


@pytest.fixture
def signing_key() -> OKPKey:
    return generate_signing_key()


@pytest.fixture
async def gateway(backends: Backends, settings_for: Callable[[Backends], object],
                  clients: tuple[PartnerClient, ...], signing_key: OKPKey) -> AsyncIterator[Gateway]:
    """The shared gateway fixture, with a signing key the tests hold."""
    settings = await settings_for(backends)  # type: ignore[misc]
    gw = build(settings, clients=clients, signing_key=signing_key)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@pytest.fixture
async def aler(http: httpx.AsyncClient) -> dict[str, str]:
    return await bearer(http, "aler-test")


@pytest.fixture
def tenant() -> SyntheticTenant:
    return next(generate_tenants("S", 20260601, 1))


@pytest.fixture
def message(tenant: SyntheticTenant) -> dict[str, Any]:
    return aler_arrears_message(tenant, "aler-msg-0001")


@dataclass(frozen=True)
class Snapshot:
    """What the store holds: a refused request must leave every number unchanged."""

    audit_size: int
    messages: int
    outbox: int
    subjects: int


async def snapshot(gateway: Gateway) -> Snapshot:
    async with gateway.store.transaction() as tx:
        audit_size = (await tx.audit_head()).size

        async def count(table: Any) -> int:
            return int((await tx.conn.execute(select(func.count()).select_from(table))).scalar_one())

        return Snapshot(audit_size, await count(messages), await count(outbox), await count(subjects))


async def outbox_rows_for(gateway: Gateway, recipient: str) -> int:
    async with gateway.store.transaction() as tx:
        query = select(func.count()).select_from(outbox).where(outbox.c.recipient == recipient)
        return int((await tx.conn.execute(query)).scalar_one())


def _template_of(path: str) -> str:
    """A pattern matching ``path`` and the route templates that ``path`` fills in (``{name}`` for a segment)."""
    return "/".join(f"(?:{re.escape(segment)}|\\{{[a-z_]+\\}})" for segment in path.split("/"))


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """An RFC 7807 body with the gateway's fields; returns it for further checks."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    # the route's template, which a caller's values never fill in (issue 10 point 3)
    assert re.fullmatch(_template_of(response.request.url.path), body.get("instance", response.request.url.path))
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def pointers(body: dict[str, Any]) -> dict[str, str]:
    """``pointer -> rule`` of the problem's field problems."""
    problems = body["problems"]
    assert all(p["rule"] and isinstance(p["message"], str) for p in problems), problems
    return {p["pointer"]: p["rule"] for p in problems}


def with_field(message: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``message`` with ``value`` at the slash-separated ``path``."""
    copy = json.loads(json.dumps(message))
    *parents, leaf = path.split("/")
    node = copy
    for part in parents:
        node = node[part]
    node[leaf] = value
    return copy


def other_check_character(cf: str) -> str:
    """The same codice fiscale with a wrong check character."""
    return cf[:15] + ("A" if cf[15] != "A" else "B")


async def expired_bearer(gateway: Gateway, signing_key: OKPKey, clients: tuple[PartnerClient, ...],
                         client_id: str) -> dict[str, str]:
    """A token signed with the gateway's key by an issuer whose clock runs an hour behind (TTL one minute)."""
    past = TokenIssuer(clients, signing_key, gateway.settings.token_issuer, gateway.settings.token_audience,
                       ttl_seconds=60, clock=lambda: time.time() - 3600)
    app = Starlette(routes=[Route("/oauth/token", past.token_response, methods=["POST"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://issuer.test") as client:
        response = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                     auth=(client_id, SECRET))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# --- malformed and invalid messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b'{"id_messaggio": "m-1", ', "json"),
        (b"", "json"),
        (b'{"importo": NaN}', "json"),
        (b"\xff\xfe{}", "utf-8"),
        (b'["not", "an", "object"]', "type"),
        (b"[" * 100_000 + b"]" * 100_000, "max-depth"),  # refused at the edge, before any parser
    ],
    ids=["truncated", "empty", "nan", "not-utf8", "array", "too-deeply-nested"],
)
async def test_malformed_body_is_refused_with_400_malformed_message_and_nothing_is_written(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], raw: bytes, rule: str
) -> None:
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, content=raw, headers={**aler, "Content-Type": "application/json"})
    body = assert_problem(response, 400, "malformed-message")
    assert pointers(body) == {"": rule}
    assert await snapshot(gateway) == before


async def test_wrong_content_type_is_refused_with_400_and_nothing_is_written(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any]
) -> None:
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, content=json.dumps(message).encode(),
                               headers={**aler, "Content-Type": "text/plain"})
    body = assert_problem(response, 400, "malformed-message")
    assert pointers(body) == {"": "content-type"}
    assert await snapshot(gateway) == before


async def test_wrong_field_types_are_refused_with_422_naming_each_field(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any]
) -> None:
    bad = with_field(with_field(message, "morosita/importo_euro", "abc"), "contratto/municipio", "x")
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=bad, headers=aler)
    body = assert_problem(response, 422, "contract-violation")
    found = pointers(body)
    assert set(found) == {"/morosita/importo_euro", "/contratto/municipio"}
    assert found["/contratto/municipio"] == "int_parsing"
    assert found["/morosita/importo_euro"] == "decimal_parsing"
    assert await snapshot(gateway) == before


@pytest.mark.parametrize("path", ["nome", "contratto/nome", "intestatario/nome"])
async def test_unknown_field_is_refused_with_422_extra_forbidden(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any], path: str
) -> None:
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=with_field(message, path, CANARY_NAME), headers=aler)
    body = assert_problem(response, 422, "contract-violation")
    assert pointers(body) == {"/" + path: "extra_forbidden"}
    assert CANARY_NAME not in response.text
    assert await snapshot(gateway) == before


async def test_unknown_quartiere_is_refused_with_422_pointing_at_the_quartiere(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any]
) -> None:
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=with_field(message, "contratto/quartiere", "Atlantide"),
                               headers=aler)
    body = assert_problem(response, 422, "contract-violation")
    assert list(pointers(body)) == ["/contratto/quartiere"]
    assert "Atlantide" not in response.text
    assert await snapshot(gateway) == before


async def test_codice_fiscale_with_bad_check_character_is_refused_without_echoing_it(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any],
    tenant: SyntheticTenant
) -> None:
    wrong = other_check_character(tenant.cf)
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=with_field(message, "intestatario/codice_fiscale", wrong),
                               headers=aler)
    body = assert_problem(response, 422, "contract-violation")
    assert list(pointers(body)) == ["/intestatario/codice_fiscale"]
    assert wrong not in response.text
    assert wrong[:15] not in response.text
    assert tenant.cf not in response.text
    assert await snapshot(gateway) == before


@pytest.mark.parametrize(
    "path",
    ["contratto/tipo", "contratto/id_unita", "nucleo/tipologia", "isee/fascia", "morosita/stadio",
     "morosita/importo_euro", "contratto/municipio", "intestatario/codice_fiscale", "data_evento"],
)
async def test_invalid_value_is_never_echoed_in_the_problem(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any],
    tenant: SyntheticTenant, path: str
) -> None:
    bad = with_field(message, path, f"{CANARY_VALUE} {tenant.cf}")
    bad["nome"] = CANARY_NAME
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=bad, headers=aler)
    body = assert_problem(response, 422, "contract-violation")
    assert "/" + path in pointers(body)
    for secret in (CANARY_VALUE, CANARY_NAME, tenant.cf):
        assert secret not in response.text
    assert await snapshot(gateway) == before


# --- size limits ----------------------------------------------------------------------------------------------


def oversized(limit: int) -> bytes:
    return b'{"padding": "' + b"x" * limit + b'"}'


async def test_oversized_body_with_truthful_content_length_is_refused_with_413(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str]
) -> None:
    raw = oversized(gateway.settings.max_body_bytes)
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, content=raw, headers={**aler, "Content-Type": "application/json"})
    assert response.request.headers["content-length"] == str(len(raw))
    assert_problem(response, 413, "payload-too-large")
    assert await snapshot(gateway) == before


async def test_oversized_body_with_understated_content_length_is_refused_with_413(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str]
) -> None:
    raw = oversized(gateway.settings.max_body_bytes)
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, content=raw,
                               headers={**aler, "Content-Type": "application/json", "Content-Length": "100"})
    assert response.request.headers["content-length"] == "100"
    assert_problem(response, 413, "payload-too-large")
    assert await snapshot(gateway) == before


async def test_oversized_chunked_body_without_content_length_is_refused_with_413(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str]
) -> None:
    limit = gateway.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"padding": "'
        sent = 0
        while sent <= limit:
            yield b"x" * 16384
            sent += 16384
        yield b'"}'

    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, content=chunks(),
                               headers={**aler, "Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "payload-too-large")
    assert await snapshot(gateway) == before


async def test_body_exactly_at_the_limit_is_not_refused_as_too_large(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str]
) -> None:
    limit = gateway.settings.max_body_bytes
    raw = b'{"padding": "' + b"x" * (limit - len(b'{"padding": ""}')) + b'"}'
    assert len(raw) == limit
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, content=raw, headers={**aler, "Content-Type": "application/json"})
    assert_problem(response, 422, "contract-violation")
    assert await snapshot(gateway) == before


# --- partners and permissions ---------------------------------------------------------------------------------


async def test_unknown_partner_path_is_refused_with_404_unknown_partner(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any]
) -> None:
    before = await snapshot(gateway)
    response = await http.post("/v1/partners/atlantis/messages", json=message, headers=aler)
    assert_problem(response, 404, "unknown-partner")
    assert await snapshot(gateway) == before


async def test_aler_token_posting_as_fwa_is_refused_with_403_sender_mismatch(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any]
) -> None:
    before = await snapshot(gateway)
    response = await http.post("/v1/partners/fwa/messages", json=message, headers=aler)
    assert_problem(response, 403, "sender-mismatch")
    assert await snapshot(gateway) == before


@pytest.mark.parametrize(
    "path",
    ["/v1/partners/fwa/messages/aler-msg-0001", "/v1/partners/fwa/correlations/corr-aler-msg-0001",
     "/v1/partners/fwa/inbox"],
    ids=["status", "correlation", "inbox"],
)
async def test_reading_another_partners_status_or_inbox_is_refused_with_403(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], path: str
) -> None:
    before = await snapshot(gateway)
    response = await http.get(path, headers=aler)
    assert_problem(response, 403, "sender-mismatch")
    assert await snapshot(gateway) == before


async def test_client_lacking_the_submit_scope_is_refused_with_403_insufficient_scope(
    http: httpx.AsyncClient, gateway: Gateway, message: dict[str, Any]
) -> None:
    readonly = await bearer(http, "aler-readonly")
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=message, headers=readonly)
    assert_problem(response, 403, "insufficient-scope")
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert await snapshot(gateway) == before


async def test_status_of_a_message_never_sent_is_404_not_found(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str]
) -> None:
    response = await http.get(f"{ALER_MESSAGES}/never-sent", headers=aler)
    assert_problem(response, 404, "not-found")


# --- authentication -------------------------------------------------------------------------------------------


async def test_missing_token_is_refused_with_401_missing_token(
    http: httpx.AsyncClient, gateway: Gateway, message: dict[str, Any]
) -> None:
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=message)
    assert_problem(response, 401, "missing-token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await snapshot(gateway) == before


async def test_tampered_token_is_refused_with_401_invalid_token(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any]
) -> None:
    header, payload, signature = aler["Authorization"].removeprefix("Bearer ").split(".")
    middle = len(payload) // 2
    flipped = payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1:]
    tampered = {"Authorization": f"Bearer {header}.{flipped}.{signature}"}
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=message, headers=tampered)
    assert_problem(response, 401, "invalid-token")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert await snapshot(gateway) == before


async def test_expired_token_is_refused_with_401_expired_token(
    http: httpx.AsyncClient, gateway: Gateway, signing_key: OKPKey, clients: tuple[PartnerClient, ...],
    message: dict[str, Any]
) -> None:
    expired = await expired_bearer(gateway, signing_key, clients, "aler-test")
    before = await snapshot(gateway)
    response = await http.post(ALER_MESSAGES, json=message, headers=expired)
    assert_problem(response, 401, "expired-token")
    assert await snapshot(gateway) == before


async def test_token_endpoint_with_wrong_secret_answers_401_invalid_client(http: httpx.AsyncClient) -> None:
    response = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                               auth=("aler-test", "not-the-secret"))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


# --- routes that need no token, and routes that do not exist ------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
async def test_health_endpoints_answer_200_without_a_token(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("ok", "ready")


async def test_unknown_route_is_404_problem_json(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/no-such-thing")
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", ALER_MESSAGES, "POST"), ("DELETE", "/health", "GET"), ("GET", "/oauth/token", "POST")],
)
async def test_wrong_method_is_405_problem_json_naming_the_allowed_methods(
    http: httpx.AsyncClient, gateway: Gateway, method: str, path: str, allowed: str
) -> None:
    before = await snapshot(gateway)
    response = await http.request(method, path)
    assert_problem(response, 405, "method-not-allowed")
    assert allowed in response.headers["allow"]
    assert await snapshot(gateway) == before


async def test_problem_carries_the_request_id_the_caller_sent(
    http: httpx.AsyncClient, aler: dict[str, str]
) -> None:
    response = await http.post(ALER_MESSAGES, content=b"{", headers={
        **aler, "Content-Type": "application/json", "X-Request-ID": "caller-req-42"})
    body = assert_problem(response, 400, "malformed-message")
    assert body["request_id"] == "caller-req-42"


async def test_unusable_caller_request_id_is_replaced_by_a_minted_one(
    http: httpx.AsyncClient, aler: dict[str, str]
) -> None:
    given = "not a usable id " + "x" * 80
    response = await http.post(ALER_MESSAGES, content=b"{", headers={
        **aler, "Content-Type": "application/json", "X-Request-ID": given})
    body = assert_problem(response, 400, "malformed-message")
    assert body["request_id"] != given
    assert given not in response.text


# --- the happy path and replays -------------------------------------------------------------------------------


def same_status(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Equal statuses; ``received_at`` compared as instants, whatever the store's timestamp rendering."""
    return {**left, "received_at": datetime.fromisoformat(left["received_at"])} == {
        **right, "received_at": datetime.fromisoformat(right["received_at"])}


async def test_valid_submission_is_accepted_readable_and_a_replay_forwards_nothing_more(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any],
    tenant: SyntheticTenant
) -> None:
    consent = await http.post("/v1/consents", json=fhir_consent(tenant.cf), headers=aler)
    assert consent.status_code == 201, consent.text

    response = await http.post(ALER_MESSAGES, json=message, headers=aler)
    assert response.status_code == 202, response.text
    statuses = response.json()
    assert isinstance(statuses, list) and len(statuses) == 1
    status = statuses[0]
    assert status["message_id"] == message["id_messaggio"]
    assert status["correlation_id"] == message["id_correlazione"]
    assert status["state"] == "forwarded"
    assert status["recipients"] == ["fwa"]
    assert status["reason_class"] is None

    read = await http.get(f"{ALER_MESSAGES}/{message['id_messaggio']}", headers=aler)
    assert read.status_code == 200, read.text
    assert same_status(read.json(), status)

    by_correlation = await http.get(f"/v1/partners/aler/correlations/{message['id_correlazione']}", headers=aler)
    assert by_correlation.status_code == 200, by_correlation.text
    assert [s["message_id"] for s in by_correlation.json()] == [message["id_messaggio"]]

    before = await snapshot(gateway)
    to_fwa = await outbox_rows_for(gateway, "fwa")
    assert to_fwa == 1
    replay = await http.post(ALER_MESSAGES, json=message, headers=aler)
    assert replay.status_code == 202, replay.text
    assert len(replay.json()) == 1
    assert same_status(replay.json()[0], status)
    assert await outbox_rows_for(gateway, "fwa") == to_fwa
    assert await snapshot(gateway) == before


async def test_valid_submission_without_consent_is_accepted_and_denied(
    http: httpx.AsyncClient, gateway: Gateway, aler: dict[str, str], message: dict[str, Any]
) -> None:
    response = await http.post(ALER_MESSAGES, json=message, headers=aler)
    assert response.status_code == 202, response.text
    [status] = response.json()
    assert status["state"] == "denied"
    assert status["recipients"] == []
    assert status["reason_class"]
    assert await outbox_rows_for(gateway, "fwa") == 0
