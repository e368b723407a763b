"""Consent over HTTP: record a FHIR Consent (R4, or R5 with ``fhirVersion=5.0``), read its versions (also as
FHIR R4), withdraw it with the evidence of who withdrew, consent again."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import GatewayDep, IdInPath, PrincipalDep, RawBodyDep, RequestIdDep
from gateway.api.models import ConsentOut
from gateway.consents.fhir import FhirVersion, to_fhir_r4
from gateway.consents.service import WithdrawalRequest
from gateway.errors import ContractViolation, MalformedMessage, NotFound
from gateway.policy.consent import GrantorRole
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


def fhir_version(content_type: str) -> FhirVersion:
    """FHIR's MIME parameter (``application/fhir+json; fhirVersion=5.0``); R4 when absent."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "fhirversion":
            version = value.strip().strip('"')
            if version.startswith("5."):
                return "5.0"
            if not version.startswith("4."):
                raise ContractViolation("unsupported FHIR version",
                                        [FieldProblem("", "fhir-version", "send fhirVersion=4.0 or fhirVersion=5.0")])
    return "4.0"


class WithdrawalIn(BaseModel):
    """Optional evidence of a withdrawal (art. 7(3)); without a body the person withdrew in person."""

    model_config = ConfigDict(extra="forbid")

    by: GrantorRole = "subject"
    channel: str | None = Field(default=None, max_length=64, description="e.g. casa-centre, phone, portal")
    evidence: str | None = Field(default=None, max_length=128, description="reference of the signed form")


@router.post("", status_code=201, response_model=ConsentOut,
             summary="Record a consent (FHIR R4 Consent; R5 with Content-Type fhirVersion=5.0)")
async def record(body: RawBodyDep, principal: PrincipalDep, gateway: GatewayDep, request_id: RequestIdDep,
                 content_type: Annotated[str, Header()] = "application/fhir+json") -> ConsentOut:
    principal.require("consent:write")
    record = await gateway.consents.record(_json_object(body), principal.organisation, principal.client_id,
                                           request_id, fhir_version(content_type))
    return ConsentOut.of(record)


@router.post("/{consent_id}/withdraw", response_model=ConsentOut, summary="Withdraw a consent (new version)")
async def withdraw(consent_id: IdInPath, principal: PrincipalDep, gateway: GatewayDep, request_id: RequestIdDep,
                   evidence: WithdrawalIn | None = None) -> ConsentOut:
    principal.require("consent:write")
    how = WithdrawalRequest(**evidence.model_dump()) if evidence else None
    return ConsentOut.of(
        await gateway.consents.withdraw(consent_id, principal.organisation, principal.client_id, request_id, how)
    )


@router.post("/{consent_id}/reconsent", response_model=ConsentOut, summary="Consent again (new active version)")
async def reconsent(consent_id: IdInPath, principal: PrincipalDep, gateway: GatewayDep,
                    request_id: RequestIdDep) -> ConsentOut:
    principal.require("consent:write")
    return ConsentOut.of(
        await gateway.consents.reconsent(consent_id, principal.organisation, principal.client_id, request_id)
    )


@router.get("/{consent_id}", response_model=list[ConsentOut], summary="Every version of a consent")
async def history(consent_id: IdInPath, principal: PrincipalDep, gateway: GatewayDep) -> list[ConsentOut]:
    principal.require("consent:read")
    return [ConsentOut.of(r) for r in await gateway.consents.history(consent_id, principal.organisation)]


@router.get("/{consent_id}/fhir", summary="A version of a consent as a FHIR R4 Consent (the latest by default)",
            response_class=Response, responses={200: {"content": {"application/fhir+json": {}}}})
async def as_fhir(consent_id: IdInPath, principal: PrincipalDep, gateway: GatewayDep,
                  version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> Response:
    principal.require("consent:read")
    versions = await gateway.consents.history(consent_id, principal.organisation)
    chosen = versions[-1] if version is None else next((v for v in versions if v.version == version), None)
    if chosen is None:
        raise NotFound("this consent has no such version")
    return Response(orjson.dumps(to_fhir_r4(chosen)), media_type="application/fhir+json; fhirVersion=4.0")
