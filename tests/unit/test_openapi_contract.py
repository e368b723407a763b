"""Issue 10 point 17: the published OpenAPI document declares the OAuth 2 client-credentials scheme with the scope
each operation needs, the request bodies the routes read raw (partner formats, FHIR Consent, the token form),
every error status as problem+json, and CSV where it is served; and every ``$ref`` in it resolves."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api import openapi_document
from gateway.api.openapi import SECURITY_SCHEME
from gateway.contracts.publication import FHIR_INBOUND_FORMATS, INBOUND_FORMATS

PUBLIC = {"/oauth/token", "/.well-known/jwks.json", "/health", "/health/ready"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, o) for p, ops in document["paths"].items() for m, o in ops.items()]


def test_17_the_client_credentials_scheme_and_a_scope_on_every_protected_operation(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    flow = scheme["flows"]["clientCredentials"]
    assert scheme["type"] == "oauth2" and flow["tokenUrl"] == "/oauth/token"
    for method, path, operation in operations(document):
        if path in PUBLIC:
            assert "security" not in operation, path
            continue
        [[name, scopes]] = [next(iter(r.items())) for r in operation["security"]]
        assert name == SECURITY_SCHEME and len(scopes) == 1 and scopes[0] in flow["scopes"], (method, path)
    scope = {(m, p): o["security"][0][SECURITY_SCHEME][0] for m, p, o in operations(document) if p not in PUBLIC}
    assert scope["post", "/v1/partners/{partner}/messages"] == "messages:submit"
    assert scope["get", "/v1/partners/{partner}/inbox"] == "inbox:read"
    assert scope["post", "/v1/consents"] == "consent:write" and scope["get", "/v1/consents/{consent_id}"] == (
        "consent:read")
    assert scope["get", "/v1/audit/checkpoint"] == "audit:verify"
    assert scope["post", "/v1/privacy/disclosure-report"] == "privacy:report"
    assert scope["post", "/v1/privacy/subjects/erasure/{request_index}/approval"] == "privacy:erase"


def test_17_request_bodies_of_submission_dry_run_consents_and_the_token_form(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path in ("/v1/partners/{partner}/messages", "/v1/partners/{partner}/messages/dry-run"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/fhir+json", "text/csv"}
        refs = {r["$ref"] for r in content["application/json"]["schema"]["oneOf"]}
        assert len(refs) == len(INBOUND_FORMATS)
        assert len(content["application/fhir+json"]["schema"]["oneOf"]) == len(FHIR_INBOUND_FORMATS) - 1  # Consent
    consent = paths["/v1/consents"]["post"]["requestBody"]["content"]["application/fhir+json"]["schema"]
    assert resolve(document, consent["$ref"])["title"] and "FhirConsent_Consent" in document["components"]["schemas"]
    form = paths["/oauth/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["grant_type"]["enum"] == ["client_credentials"]


def test_17_every_error_answer_is_problem_json_and_csv_is_declared(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        responses = operation["responses"]
        if path not in PUBLIC:
            assert {"400", "401", "403", "404", "422", "429", "503"} <= set(responses), (method, path)
            if "requestBody" in operation:
                assert {"413", "415"} <= set(responses), (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")) and path not in ("/oauth/token", "/health/ready"):
                assert set(response["content"]) == {"application/problem+json"}, (method, path, status)
                assert response["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"}
    assert "text/csv" in document["paths"]["/v1/privacy/disclosure-report"]["post"]["responses"]["200"]["content"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def test_17_every_reference_resolves_inside_the_document(document: dict[str, Any]) -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs and all(ref.startswith("#/components/") for ref in refs), [r for r in refs if "#/comp" not in r]
    for ref in refs:
        resolve(document, ref)
