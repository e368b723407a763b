"""What FastAPI's generated OpenAPI document leaves out, added so that gateways and integrators that validate
against it (GovWay does) read the real answers right (issue 10 point 17):

* the OAuth 2 client-credentials security scheme, with the scope each operation needs;
* the request bodies the routes read raw: partner messages (the partners' published JSON Schemas, FHIR R4
  for ASST, CSV for ALER's export), dry runs, consents (FHIR R4 Consent), the token request form;
* every error status an operation can answer, each as ``application/problem+json`` with the RFC 7807
  schema (FastAPI documents 422 as ``application/json``); the token endpoint's RFC 6749 errors as JSON;
* ``text/csv`` where the privacy reports serve it.

A pure function of the generated document; the partners' schemas come from :mod:`gateway.contracts.publication`, with
their ``$defs`` moved under ``components/schemas`` so that every ``$ref`` resolves inside this document.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["SECURITY_SCHEME", "TOKEN_ENDPOINT_AUTH_METHODS", "enrich_openapi", "scope_of"]

SECURITY_SCHEME = "partnerClientCredentials"
PROBLEM = "#/components/schemas/Problem"
_PUBLIC = frozenset({"/oauth/token", "/.well-known/jwks.json", "/health", "/health/ready"})
_SCOPES = {
    "messages:submit": "Submit messages and dry runs as the client's own organisation",
    "status:read": "Read the status of the organisation's messages",
    "inbox:read": "Read the organisation's inbox and acknowledge restriction notices",
    "consent:write": "Record, withdraw and renew consents",
    "consent:read": "Read consents",
    "audit:verify": "Privacy officers and witnesses: signed checkpoints, proofs, verifier keys",
    "privacy:report": "Privacy officers: reports, consent history, records of processing, review queue",
    "privacy:erase": "Privacy officers: request and approve erasures (two officers)",
    "admin:dlq": "Operators: list, read and replay dead-lettered messages",
}
_ERRORS = {
    "400": "Malformed request (not JSON, nested too deep, a repeated member)",
    "401": "No valid access token (missing, expired, forged, or its client disabled)",
    "403": "The token lacks the scope or role, or names another organisation",
    "404": "Not found, or not the caller's to see",
    "409": "The request conflicts with the gateway's state",
    "413": "Body larger than GATEWAY_MAX_BODY_BYTES",
    "415": "Unsupported media type",
    "422": "The request does not satisfy the contract",
    "429": "Rate limit or lockout; see Retry-After",
    "503": "A dependency (database, bus) is unavailable; retry later",
}
_BODY_ERRORS = ("413", "415")
_CSV_ROUTES = frozenset({"/v1/privacy/disclosure-report", "/v1/privacy/records-of-processing",
                         "/v1/privacy/review-queue", "/v1/privacy/consent-history"})
_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 7807 problem details",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "Stable URI of the error class"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The route template, never the path as sent"},
        "request_id": {"type": "string"},
        "problems": {"type": "array", "items": {
            "type": "object", "required": ["pointer", "rule", "message"],
            "properties": {"pointer": {"type": "string"}, "rule": {"type": "string"}, "message": {"type": "string"}},
        }},
    },
}
_OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "title": "OAuthError",
    "description": "RFC 6749 §5.2 error response",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
_TOKEN_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "scope": {"type": "string", "description": "Space-separated scopes (default: all the client holds)"},
        "client_id": {"type": "string", "description": (
            "With client_secret_post; optional with private_key_jwt (then the assertion's sub)")},
        "client_secret": {"type": "string", "description": "With client_secret_post"},
        "client_assertion_type": {"type": "string", "enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
                                  "description": "With private_key_jwt (RFC 7523 §2.2)"},
        "client_assertion": {"type": "string", "description": (
            "With private_key_jwt: a JWT signed with the client's registered key (ES256, Ed25519/EdDSA, RS256 or "
            "PS256); iss and sub the client id, aud the token endpoint URL, exp at most "
            "GATEWAY_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS ahead, a jti never used before")},
    },
}
TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
"""How clients authenticate at the token endpoint; each client is registered for a secret or for keys."""
_TOKEN_DESCRIPTION = (
    "Client credentials grant. Client authentication (token_endpoint_auth_methods_supported): "
    + ", ".join(TOKEN_ENDPOINT_AUTH_METHODS) + ". A client registered with a secret sends it with HTTP Basic "
    "(client_secret_basic) or in the form (client_secret_post); a client registered with public keys sends a "
    "client assertion (private_key_jwt, RFC 7523) and never a secret. Every failed authentication is the same "
    "401 invalid_client."
)


def scope_of(method: str, path: str) -> str | None:
    """The scope an operation needs; None for the public ones. Raises for an operation nobody classified, so a
    new route cannot be published without its scope (deny by default)."""
    if path in _PUBLIC:
        return None
    if path.startswith("/v1/partners/{partner}/"):
        rest = path.removeprefix("/v1/partners/{partner}/")
        if rest in ("messages", "messages/dry-run"):
            return "messages:submit"
        if rest.startswith(("messages/", "correlations/")):
            return "status:read"
        if rest == "inbox" or rest.startswith("notices/"):
            return "inbox:read"
    if path.startswith("/v1/consents"):
        return "consent:read" if method == "get" else "consent:write"
    if path.startswith("/v1/privacy/subjects/erasure"):
        return "privacy:erase"
    if path.startswith("/v1/privacy/") or path == "/v1/audit/records/{index}/fhir":
        return "privacy:report"
    if path.startswith("/v1/audit/"):
        return "audit:verify"
    if path.startswith("/v1/admin/dlq"):
        return "admin:dlq"
    raise ValueError(f"no scope declared for {method.upper()} {path}")


def _lifted(schema: dict[str, Any], prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` moved to ``components`` under ``prefix`` and its refs rewritten."""
    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", {})
    for key in ("$schema", "$id"):
        schema.pop(key, None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (f"#/components/schemas/{prefix}{v.removeprefix('#/$defs/')}"
                        if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/") else rewrite(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    for name, definition in defs.items():
        components[prefix + name] = rewrite(definition)
    lifted: dict[str, Any] = rewrite(schema)
    return lifted


def _partner_bodies(components: dict[str, Any]) -> dict[str, Any]:
    """The request body of message submission and dry runs: every partner format, by media type."""
    from gateway.contracts.publication import CSV_ROW_FORMATS, FHIR_INBOUND_FORMATS, INBOUND_FORMATS, generate_contracts

    documents = generate_contracts()
    json_refs: list[dict[str, str]] = []
    fhir_refs: list[dict[str, str]] = []
    for path in sorted({*INBOUND_FORMATS, *FHIR_INBOUND_FORMATS}):
        if FHIR_INBOUND_FORMATS.get(path) == "Consent":  # recorded through /v1/consents, not sent as a message
            continue
        name = "".join(part.capitalize() for part in path.removesuffix(".schema.json").replace("/", "-").split("-"))
        components[name] = _lifted(json.loads(documents[path]), name + "_", components)
        (fhir_refs if path in FHIR_INBOUND_FORMATS else json_refs).append({"$ref": f"#/components/schemas/{name}"})
    csv_description = "ALER's tenancy export; one row per " + ", ".join(sorted(CSV_ROW_FORMATS))
    return {
        "required": True,
        "description": "A message in the sending partner's own format (the path names the partner)",
        "content": {
            "application/json": {"schema": {"oneOf": json_refs}},
            "application/fhir+json": {"schema": {"oneOf": fhir_refs}},
            "text/csv": {"schema": {"type": "string", "description": csv_description}},
        },
    }


def _consent_body(components: dict[str, Any]) -> dict[str, Any]:
    from gateway.contracts.publication import FHIR_INBOUND_FORMATS, generate_contracts

    [path] = [path for path, resource in FHIR_INBOUND_FORMATS.items() if resource == "Consent"]
    schema = json.loads(generate_contracts()[path])
    components["FhirConsent"] = _lifted(schema, "FhirConsent_", components)
    ref = {"$ref": "#/components/schemas/FhirConsent"}
    return {"required": True, "description": "A FHIR R4 Consent (R5 with fhirVersion=5.0 in the media type)",
            "content": {"application/fhir+json": {"schema": ref}, "application/json": {"schema": ref}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": {"$ref": PROBLEM}}}}


def enrich_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document with security, request bodies and error answers declared (module docs)."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    schemas["OAuthError"] = _OAUTH_ERROR_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {SECURITY_SCHEME: {
        "type": "oauth2", "description": "OAuth 2 client credentials (RFC 6749 §4.4); RFC 9068 JWT access tokens. "
                                         "Client authentication: " + ", ".join(TOKEN_ENDPOINT_AUTH_METHODS),
        "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": _SCOPES}},
    }}
    partner_body = _partner_bodies(schemas)
    consent_body = _consent_body(schemas)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            scope = scope_of(method, path)
            if path == "/oauth/token":
                operation["requestBody"] = {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": _TOKEN_FORM}}}
                operation["description"] = _TOKEN_DESCRIPTION
                operation["x-token-endpoint-auth-methods-supported"] = list(TOKEN_ENDPOINT_AUTH_METHODS)
                oauth = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}}
                responses["400"] = {"description": "invalid_request, invalid_scope, unsupported_grant_type", **oauth}
                responses["401"] = {"description": "invalid_client", **oauth}
                responses["429"] = _problem(_ERRORS["429"])
                responses["503"] = _problem(_ERRORS["503"])
                continue
            if scope is None:
                continue
            operation["security"] = [{SECURITY_SCHEME: [scope]}]
            if path in ("/v1/partners/{partner}/messages", "/v1/partners/{partner}/messages/dry-run"):
                operation["requestBody"] = partner_body
            elif path == "/v1/consents" and method == "post":
                operation["requestBody"] = consent_body
            has_body = "requestBody" in operation
            for status, description in _ERRORS.items():
                if status in _BODY_ERRORS and not has_body:
                    continue
                if status == "409" and not path.endswith("/approval"):
                    continue
                responses[status] = _problem(description)
            if path in _CSV_ROUTES and "200" in responses:
                responses["200"].setdefault("content", {})["text/csv"] = {
                    "schema": {"type": "string", "description": "CSV; the integrity status in leading # lines"}}
    return document
