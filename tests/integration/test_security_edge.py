"""Issue 10, the HTTP edge (points 3-8 and 12), on SQLite + embedded bus and PostgreSQL + Kafka: problem
instances that never echo a path, bounded integers, body limits and authentication before any body is read,
media types and duplicate JSON members, security headers, transport security of the token endpoint judged
from the connection, and the audit record of every issued token."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from ipaddress import ip_network
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.exc import OperationalError

from gateway.api import create_app
from gateway.api.deps import INDEX_MAX
from gateway.api.edge import API_CSP
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway
from gateway.bus import OutgoingRecord
from gateway.identity.synthetic import generate_tenants
from gateway.simulators import aler_arrears_message, fhir_consent
from gateway.store import StoreTransaction
from tests.conftest import ALL_SCOPES, SECRET, bearer
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until
from tests.log_capture import log_output  # noqa: F401 - the fixture

PROBLEM_JSON = "application/problem+json"
BIG = str(2**63)
PERSON = next(t for t in generate_tenants("S", seed=21, limit=50) if t.arrears_cents > 0)


@pytest.fixture(scope="session")
def clients(secret_hash: str) -> tuple[PartnerClient, ...]:
    made = [PartnerClient(f"{org}-test", secret_hash, org, "system", frozenset(ALL_SCOPES))
            for org in ("aler", "asst", "comune", "fwa")]
    made.append(PartnerClient("dpo-test", secret_hash, "gateway-privacy", "privacy-officer",
                              frozenset({"audit:verify", "privacy:report", "privacy:erase"})))
    return tuple(made)


def problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


# --- point 3: problem instance -------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "template"), [
    ("/v1/consents/{cf}/fhir", "/v1/consents/{consent_id}/fhir"),
    ("/v1/consents/{cf}", "/v1/consents/{consent_id}"),
    ("/v1/partners/aler/messages/{cf}", "/v1/partners/{partner}/messages/{message_id}"),
    ("/v1/partners/aler/correlations/{cf}", "/v1/partners/{partner}/correlations/{correlation_id}"),
    ("/v1/partners/{cf}/inbox", "/v1/partners/{partner}/inbox"),
    ("/nothing/here/{cf}", None),
])
async def test_problem_instance_is_the_route_template_never_the_path_sent(
    http: httpx.AsyncClient, path: str, template: str | None
) -> None:
    aler = await bearer(http, "aler-test")
    response = await http.get(path.format(cf=PERSON.cf), headers=aler)
    assert 400 <= response.status_code < 500
    body = problem(response, response.status_code)
    assert PERSON.cf not in response.text and PERSON.cf.lower() not in response.text.lower()
    assert body.get("instance") == template


# --- point 4: integers beyond 64 bits --------------------------------------------------------------------------

BEYOND = [
    ("GET", "/v1/partners/aler/inbox?after={n}", "aler-test"),
    ("GET", "/v1/audit/records/{n}/fhir", "dpo-test"),
    ("POST", "/v1/privacy/review-queue/{n}", "dpo-test"),
    ("GET", "/v1/audit/proof/inclusion?index={n}", "dpo-test"),
    ("GET", "/v1/audit/proof/inclusion?index=0&tree_size={n}", "dpo-test"),
    ("GET", "/v1/audit/proof/consistency?first={n}", "dpo-test"),
    ("GET", "/v1/audit/proof/consistency?first=0&second={n}", "dpo-test"),
    ("GET", "/v1/consents/c-1/fhir?version={n}", "aler-test"),
]


@pytest.mark.parametrize(("method", "path", "client"), BEYOND)
async def test_integers_above_64_bits_are_a_422_problem_and_the_largest_allowed_no_server_error(
    http: httpx.AsyncClient, method: str, path: str, client: str
) -> None:
    headers = await bearer(http, client)
    body = {"resolution": "confirmed"} if method == "POST" else None
    for value in (BIG, "99999999999999999999999999", "-" + BIG):
        refused = await http.request(method, path.format(n=value), headers=headers, json=body)
        problem(refused, 422, "request-invalid")
    at_bound = await http.request(method, path.format(n=INDEX_MAX), headers=headers, json=body)
    assert at_bound.status_code < 500, at_bound.text


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/partners/aler/messages/a%00b"),
    ("GET", "/v1/partners/aler/correlations/a%1Fb"),
    ("GET", "/v1/consents/a%00b"),
    ("GET", "/v1/consents/a%00b/fhir"),
    ("POST", "/v1/consents/a%00b/withdraw"),
    ("POST", "/v1/consents/a%7Fb/reconsent"),
    ("POST", "/v1/partners/aler/notices/a%00b/ack"),
    ("GET", "/v1/consents/" + "x" * 257),
])
async def test_ids_in_a_path_with_control_characters_or_overlong_are_a_422_never_a_server_error(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    """PostgreSQL text cannot hold a NUL: unbounded, ``%00`` reached the driver and came back as a 503."""
    aler = await bearer(http, "aler-test")
    problem(await http.request(method, path, headers=aler), 422, "request-invalid")


async def test_nul_characters_inside_json_bodies_are_refused_never_a_server_error(http: httpx.AsyncClient) -> None:
    aler = await bearer(http, "aler-test")
    consent = fhir_consent(PERSON.cf)
    consent["id"] = "x\u0000y"
    message = aler_arrears_message(PERSON, "nul-field")
    message["contratto"]["id_contratto"] = "C\u0000"
    for path, body, media in [("/v1/consents", consent, "application/fhir+json"),
                              ("/v1/partners/aler/messages", message, "application/json"),
                              ("/v1/partners/aler/messages", aler_arrears_message(PERSON, "nul\u0000id"),
                               "application/json")]:
        response = await http.post(path, content=orjson.dumps(body), headers={**aler, "content-type": media})
        assert 400 <= response.status_code < 500, response.text


def test_the_bounds_are_published_in_the_openapi_document() -> None:
    from gateway.api import openapi_document

    document = openapi_document()
    for path, method, name in [("/v1/partners/{partner}/inbox", "get", "after"),
                               ("/v1/audit/records/{index}/fhir", "get", "index"),
                               ("/v1/privacy/review-queue/{audit_index}", "post", "audit_index")]:
        [parameter] = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
        assert parameter["schema"]["maximum"] == INDEX_MAX


# --- point 5: body size, authentication before parsing, nesting ------------------------------------------------


class CountingBody:
    """A request body that counts how much of it the gateway pulled."""

    def __init__(self, size: int, chunk: int = 64 * 1024) -> None:
        self.size, self.chunk, self.pulled = size, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while sent < self.size:
            piece = b" " * min(self.chunk, self.size - sent)
            sent += len(piece)
            self.pulled += len(piece)
            yield piece


async def test_an_unauthenticated_chunked_body_is_refused_401_before_a_byte_is_read(
    http: httpx.AsyncClient
) -> None:
    body = CountingBody(32 * 1024 * 1024)
    response = await http.post("/v1/privacy/disclosure-report", content=body,
                               headers={"content-type": "application/json"})
    problem(response, 401, "missing-token")
    assert body.pulled <= body.chunk  # at most what the transport pre-reads, never the 32 MiB


async def test_a_declared_oversized_body_is_refused_413_without_reading_it(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    officer = await bearer(http, "dpo-test")
    limit = gateway.settings.max_body_bytes
    response = await http.post("/v1/privacy/disclosure-report", content=b"{" + b" " * limit + b"}",
                               headers={**officer, "content-type": "application/json"})
    problem(response, 413, "payload-too-large")


async def test_an_oversized_chunked_body_is_refused_413_once_it_passes_the_limit(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    officer = await bearer(http, "dpo-test")
    body = CountingBody(8 * gateway.settings.max_body_bytes)
    response = await http.post("/v1/consents", content=body,
                               headers={**officer, "content-type": "application/fhir+json"})
    problem(response, 413, "payload-too-large")
    assert body.pulled <= gateway.settings.max_body_bytes + 2 * body.chunk


@pytest.mark.parametrize("path", ["/v1/privacy/disclosure-report", "/v1/consents", "/v1/partners/aler/messages"])
async def test_a_deeply_nested_body_without_a_token_is_401_and_with_one_400_max_depth(
    http: httpx.AsyncClient, path: str
) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    problem(await http.post(path, content=deep, headers={"content-type": "application/json"}), 401)
    headers = await bearer(http, "dpo-test" if "privacy" in path else "aler-test")
    refused = problem(await http.post(path, content=deep, headers={**headers, "content-type": "application/json"}),
                      400, "malformed-message")
    assert [p["rule"] for p in refused["problems"]] == ["max-depth"]


# --- point 6: media types and duplicate members -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text/plain", "form", "multipart", "none"])
async def test_a_consent_in_another_media_type_is_refused_415(http: httpx.AsyncClient, kind: str) -> None:
    aler = await bearer(http, "aler-test")
    document = orjson.dumps(fhir_consent(PERSON.cf))
    if kind == "form":
        response = await http.post("/v1/consents", data={"consent": document.decode()}, headers=aler)
    elif kind == "multipart":
        response = await http.post("/v1/consents", files={"consent": ("c.json", document)}, headers=aler)
    elif kind == "none":
        response = await http.post("/v1/consents", content=document, headers=aler)
        assert "content-type" not in response.request.headers
    else:
        response = await http.post("/v1/consents", content=document, headers={**aler, "content-type": kind})
    problem(response, 415, "unsupported-media-type")
    assert PERSON.cf not in response.text


def with_duplicate(document: dict[str, Any], member: str, value: Any) -> bytes:
    """``document`` as JSON with ``member`` written a second time (last) at the top level."""
    return orjson.dumps(document)[:-1] + b"," + orjson.dumps(member) + b":" + orjson.dumps(value) + b"}"


async def test_duplicate_json_members_are_refused_with_their_pointer_on_every_http_entry(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    aler = await bearer(http, "aler-test")
    officer = await bearer(http, "dpo-test")
    json_type = {"content-type": "application/json"}
    consent = with_duplicate(fhir_consent(PERSON.cf), "status", "rejected")
    message = orjson.dumps(aler_arrears_message(PERSON, "dup-1")).replace(
        b'"codice_fiscale":', b'"codice_fiscale":"RSSMRA85T10A562S","codice_fiscale":', 1)
    report = with_duplicate({"identifier": PERSON.cf}, "identifier", "RSSMRA85T10A562S")
    cases = [
        ("/v1/consents", consent, aler, {"content-type": "application/fhir+json"}, "/status"),
        ("/v1/partners/aler/messages", message, aler, json_type, "/intestatario/codice_fiscale"),
        ("/v1/partners/aler/messages/dry-run", message, aler, json_type, "/intestatario/codice_fiscale"),
        ("/v1/privacy/disclosure-report", report, officer, json_type, "/identifier"),
    ]
    for path, raw, token, content_type, pointer in cases:
        body = problem(await http.post(path, content=raw, headers={**token, **content_type}), 400,
                       "malformed-message")
        assert [(p["pointer"], p["rule"]) for p in body["problems"]] == [(pointer, "duplicate-key")], path
    async with gateway.store.transaction() as tx:
        assert await tx.message("aler", "dup-1") is None


async def test_duplicate_json_members_on_kafka_are_dead_lettered_with_their_pointer(gateway: Gateway) -> None:
    message = orjson.dumps(aler_arrears_message(PERSON, "dup-k")).replace(
        b'"id_messaggio":', b'"id_messaggio":"dup-k-first","id_messaggio":', 1)
    await gateway.bus.publish([OutgoingRecord(topic=gateway.settings.topics.name("in", "aler"), value=message)])
    [dead] = await read_until(gateway, "dlq", "aler", 1)
    entry = json.loads(dead.value)
    assert entry["reason"] == "malformed-message"
    assert [(p["pointer"], p["rule"]) for p in entry["problems"]] == [("/id_messaggio", "duplicate-key")]


# --- point 7: headers --------------------------------------------------------------------------------------------


async def test_every_answer_carries_no_store_nosniff_and_a_csp_that_forbids_framing(http: httpx.AsyncClient) -> None:
    aler = await bearer(http, "aler-test")
    officer = await bearer(http, "dpo-test")
    answers = [
        await http.get("/v1/partners/aler/inbox", headers=aler),
        await http.get("/v1/privacy/records-of-processing?format=csv", headers=officer),
        await http.get("/v1/privacy/review-queue", headers=officer),
        await http.post("/v1/privacy/consent-history", json={"identifier": PERSON.cf}, headers=officer),
        await http.get("/v1/consents/unknown", headers=aler),
        await http.get("/health"),
        await http.get("/v1/partners/aler/inbox"),
    ]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == API_CSP
        assert "frame-ancestors 'none'" in API_CSP
        assert "server" not in answer.headers


def test_the_documentation_pages_are_not_served_in_production(gateway: Gateway) -> None:
    production = SimpleNamespace(settings=gateway.settings.model_copy(update={"environment": "production"}),
                                 registry=gateway.registry)
    paths = {getattr(r, "path", None) for r in create_app(production, manage_lifecycle=False).routes}  # type: ignore[arg-type]
    assert "/openapi.json" in paths
    assert not {"/docs", "/redoc"} & paths


# --- point 8: the token endpoint judges transport from the connection -------------------------------------------


async def token_via(gateway: Gateway, base_url: str, peer: str,
                    headers: dict[str, str] | None = None) -> httpx.Response:
    app = create_app(gateway, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        return await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=("aler-test", SECRET), headers=headers or {})


async def test_plain_http_with_a_localhost_host_header_from_afar_gets_no_token(gateway: Gateway) -> None:
    refused = await token_via(gateway, "http://localhost", "203.0.113.9")
    assert refused.status_code == 400 and refused.json()["error"] == "insecure_transport"
    assert "access_token" not in refused.text
    spoofed = await token_via(gateway, "http://localhost", "203.0.113.9", {"x-forwarded-proto": "https",
                                                                           "x-forwarded-for": "127.0.0.1"})
    assert spoofed.status_code == 400, "forwarded headers from an untrusted peer must be ignored"
    assert (await token_via(gateway, "http://gateway.example", "127.0.0.1")).status_code == 200
    assert (await token_via(gateway, "https://gateway.example", "203.0.113.9")).status_code == 200


async def test_forwarded_headers_count_only_from_a_configured_proxy(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway, "settings",
                        gateway.settings.model_copy(update={"trusted_proxies": [ip_network("10.0.0.0/8")]}))
    behind_tls = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}
    assert (await token_via(gateway, "http://gateway.example", "10.1.2.3", behind_tls)).status_code == 200
    plain = {"x-forwarded-proto": "http", "x-forwarded-for": "203.0.113.9"}
    assert (await token_via(gateway, "http://gateway.example", "10.1.2.3", plain)).status_code == 400
    assert (await token_via(gateway, "http://gateway.example", "192.0.2.1", behind_tls)).status_code == 400


# --- point 12: every token issued is audited, and issuance fails closed ------------------------------------------


def claims(token: str) -> dict[str, Any]:
    import base64

    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


async def test_every_issued_token_is_audited_with_client_organisation_scopes_jti_and_expiry(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    response = await http.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "inbox:read"},
                               auth=("fwa-test", SECRET))
    assert response.status_code == 200, response.text
    issued = claims(response.json()["access_token"])
    [record] = [r for r in await audit_records(gateway)
                if r["event_type"] == "token-issued" and r["token_id"] == issued["jti"]]
    assert (record["client_id"], record["requesting_org"], record["scopes"]) == ("fwa-test", "fwa", ["inbox:read"])
    assert record["outcome"] == "success" and record["action"] == "issue-token"
    from datetime import datetime

    assert datetime.fromisoformat(record["expires_at"]).timestamp() == issued["exp"]
    assert "subject_ref" not in record


async def test_no_token_is_handed_out_when_its_audit_record_cannot_be_written(
    http: httpx.AsyncClient, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: StoreTransaction, records: Any) -> None:
        raise OperationalError("insert audit", {}, TimeoutError("statement timeout"))

    monkeypatch.setattr(StoreTransaction, "append_audit", broken)
    response = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("aler-test", SECRET))
    assert response.status_code == 503
    assert "access_token" not in response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_failed_client_authentication_is_logged_at_warning_with_the_peer_address(
    gateway: Gateway, log_output: io.StringIO  # noqa: F811
) -> None:
    app = create_app(gateway, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://gw") as client:
        refused = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                    auth=("aler-test", "wrong"))
    assert refused.status_code == 401
    [line] = [json.loads(x) for x in log_output.getvalue().splitlines() if "token_request_rejected" in x]
    assert (line["level"], line["host"], line["client_id"]) == ("warning", "198.51.100.7", "aler-test")

