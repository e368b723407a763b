"""FastAPI dependencies as named ``Annotated`` aliases: the gateway, the caller, the partner, the body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Request

from gateway.api.throttle import Throttle
from gateway.auth import Principal
from gateway.bootstrap import Gateway
from gateway.errors import NotAPrivacyOfficer, NotPermitted, PayloadTooLarge, UnknownPartner
from gateway.privacy.officer import Officer

__all__ = ["AUDIT_VERIFY_SCOPE", "INDEX_MAX", "PRIVACY_ERASE_SCOPE", "PRIVACY_REPORT_SCOPE", "AuditVerifierDep",
           "ErasingOfficerDep", "GatewayDep", "IdInPath", "PartnerDep", "PrincipalDep", "RawBodyDep",
           "ReportingOfficerDep", "RequestIdDep"]

INDEX_MAX = 2**63 - 1
"""Largest log index, cursor or size a path or query parameter may carry: the stores' BIGINT. Every integer
parameter is bounded, so no number a client sends can overflow a database driver into a 500."""

IdInPath = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$",
                               description="An identifier: 1-256 characters, no control characters")]
"""A message, correlation, consent or notice id in a path. Bounded, and without control characters: PostgreSQL
text cannot hold a NUL, so a ``%00`` in a path would otherwise reach the driver and come back as a 5xx."""


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


async def _principal(request: Request, gateway: GatewayDep) -> Principal:
    """The caller: a valid bearer token of a client that is still enabled (:meth:`Gateway.authenticate`)."""
    return await gateway.authenticate(request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(_principal)]

AUDIT_VERIFY_SCOPE = "audit:verify"
"""Checkpoints, proofs and verifier keys: what an external witness needs, and nothing about any person."""
PRIVACY_REPORT_SCOPE = "privacy:report"
"""Reports, consent history, records of processing, review queue, audit records: limited to the officer's own
organisation unless the client belongs to the data protection office (``GATEWAY_DATA_PROTECTION_OFFICE``)."""
PRIVACY_ERASE_SCOPE = "privacy:erase"
"""Requesting and approving erasures; two different officers are needed for one."""
PRIVACY_ROLE = "privacy-officer"


def _officer_with(scope: str) -> Callable[[PrincipalDep, GatewayDep], Officer]:
    def officer(principal: PrincipalDep, gateway: GatewayDep) -> Officer:
        principal.require(scope)
        if principal.role != PRIVACY_ROLE:
            raise NotAPrivacyOfficer("the privacy and audit routes need a client with the privacy-officer role")
        return Officer(principal.client_id, principal.organisation, principal.token_id,
                       sees_all=principal.organisation == gateway.settings.data_protection_office)

    officer.__doc__ = f"The caller as a privacy officer: the ``{scope}`` scope and the ``{PRIVACY_ROLE}`` role, both."
    return officer


AuditVerifierDep = Annotated[Officer, Depends(_officer_with(AUDIT_VERIFY_SCOPE))]
ReportingOfficerDep = Annotated[Officer, Depends(_officer_with(PRIVACY_REPORT_SCOPE))]
ErasingOfficerDep = Annotated[Officer, Depends(_officer_with(PRIVACY_ERASE_SCOPE))]


def _partner(partner: str, principal: PrincipalDep, gateway: GatewayDep, request: Request) -> str:
    """The ``{partner}`` of the path: a known partner, and the caller's own organisation, within its quota of
    submissions (POST) or reads (:class:`gateway.api.throttle.Throttle`)."""
    if partner not in gateway.registry.partners:
        raise UnknownPartner("no partner is registered under the name in the path")
    if partner != principal.organisation:
        raise NotPermitted("a partner may submit and read only as itself")
    throttle: Throttle = request.app.state.throttle
    throttle.partner_request(partner, submitting=request.method == "POST")
    return partner


PartnerDep = Annotated[str, Depends(_partner)]


async def _raw_body(request: Request, gateway: GatewayDep) -> bytes:
    """The request body, refused as soon as it exceeds the configured limit (never truncated)."""
    limit = gateway.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


RawBodyDep = Annotated[bytes, Depends(_raw_body)]


def _request_id(request: Request) -> str:
    return str(request.state.request_id)


RequestIdDep = Annotated[str, Depends(_request_id)]
