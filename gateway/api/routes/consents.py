"""Consent over HTTP: record a FHIR R4 Consent, read its versions, withdraw it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter

from gateway.api.deps import GatewayDep, PrincipalDep, RawBodyDep, RequestIdDep
from gateway.api.models import ConsentOut
from gateway.errors import ContractViolation, MalformedMessage
from schemas.errors import FieldProblem

router = APIRouter(prefix="/v1/consents", tags=["consents"])


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedMessage("body is not valid JSON", [FieldProblem("", "json", "send a JSON object")]) from None
    if not isinstance(document, dict):
        raise ContractViolation("body must be a FHIR Consent object", [FieldProblem("", "type", "send an object")])
    return document


@router.post("", status_code=201, response_model=ConsentOut, summary="Record a consent (FHIR R4 Consent)")
async def record(body: RawBodyDep, principal: PrincipalDep, gateway: GatewayDep,
                 request_id: RequestIdDep) -> ConsentOut:
    principal.require("consent:write")
    record = await gateway.consents.record(_json_object(body), principal.organisation, principal.client_id,
                                           request_id)
    return ConsentOut.of(record)


@router.post("/{consent_id}/withdraw", response_model=ConsentOut, summary="Withdraw a consent (new version)")
async def withdraw(consent_id: str, principal: PrincipalDep, gateway: GatewayDep,
                   request_id: RequestIdDep) -> ConsentOut:
    principal.require("consent:write")
    return ConsentOut.of(
        await gateway.consents.withdraw(consent_id, principal.organisation, principal.client_id, request_id)
    )


@router.post("/{consent_id}/reconsent", response_model=ConsentOut, summary="Consent again (new active version)")
async def reconsent(consent_id: str, principal: PrincipalDep, gateway: GatewayDep,
                    request_id: RequestIdDep) -> ConsentOut:
    principal.require("consent:write")
    return ConsentOut.of(
        await gateway.consents.reconsent(consent_id, principal.organisation, principal.client_id, request_id)
    )


@router.get("/{consent_id}", response_model=list[ConsentOut], summary="Every version of a consent")
async def history(consent_id: str, principal: PrincipalDep, gateway: GatewayDep) -> list[ConsentOut]:
    principal.require("consent:read")
    return [ConsentOut.of(r) for r in await gateway.consents.history(consent_id, principal.organisation)]
