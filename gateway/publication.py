"""Published contracts, generated from the code: JSON Schemas of partner-native and canonical messages, the
OpenAPI document of the HTTP API and the AsyncAPI document of the Kafka topics.

Partner formats come from the adapters: pydantic models of the JSON formats (:data:`INBOUND_FORMATS`,
:data:`OUTBOUND_FORMATS`), the FHIR R4 resources of the hospital trust (:data:`FHIR_INBOUND_FORMATS`,
:data:`FHIR_OUTBOUND_FORMATS`, built by :mod:`adapters.asst_fhir.contract` from the ASST adapter's rules) and one
row of ALER's CSV tenancy export (:data:`CSV_ROW_FORMATS`, :mod:`adapters.aler.csv_schema`).

``gateway contracts generate`` writes them under ``contracts/``; a test regenerates them in memory and fails
when the checked-in files drift from the code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import adapters.aler
from adapters.aler import csv_schema
from adapters.asst_fhir import contract as asst_contract
from adapters.comune import (
    ComuneCaseEvent,
    ComuneEmergencyEvent,
    EmergencyReferral,
    EvictionMilestone,
    FragilityReferral,
)
from adapters.fwa import FwaOutcomeMessage, FwaReferral
from gateway.asyncapi import asyncapi_document
from gateway.policy import load_registry
from schemas.envelope import Envelope
from schemas.messages import MESSAGE_TYPES

__all__ = [
    "CSV_ROW_FORMATS",
    "FHIR_INBOUND_FORMATS",
    "FHIR_OUTBOUND_FORMATS",
    "INBOUND_FORMATS",
    "OUTBOUND_FORMATS",
    "generate_contracts",
    "write_contracts",
]

SCHEMA_BASE = "https://gateway.quartieri.example/contracts/"

INBOUND_FORMATS: dict[str, type[BaseModel]] = {
    **{f"aler/{kind}.schema.json": model for kind, model in adapters.aler.NATIVE_MESSAGES.items()},
    "comune/evento-caso.schema.json": ComuneCaseEvent,
    "comune/evento-emergenza.schema.json": ComuneEmergencyEvent,
    "fwa/esito-segnalazione.schema.json": FwaOutcomeMessage,
}
"""Partner-native JSON formats partners send to the gateway (ASST's FHIR R4: :data:`FHIR_INBOUND_FORMATS`)."""

FHIR_INBOUND_FORMATS: dict[str, str] = {
    f"asst/{name}.schema.json": resource for resource, name in asst_contract.INBOUND_RESOURCES.items()
}
"""The FHIR R4 resources the trust sends (path -> resource type): each message resource, the Bundle, and the
Patient a Bundle carries."""

FHIR_OUTBOUND_FORMATS: dict[str, Callable[[], dict[str, Any]]] = {
    "asst/outbound-service-request.schema.json": asst_contract.outbound_service_request_schema,
}
"""The FHIR R4 resources the gateway sends the trust (path -> schema)."""

CSV_ROW_FORMATS: dict[str, Callable[[], dict[str, Any]]] = {
    "aler/esportazione-contratti-riga.schema.json": csv_schema.row_schema,
}
"""CSV exports partners send, by the schema of one row (path -> schema): ALER's tenancy export."""

OUTBOUND_FORMATS: dict[str, type[BaseModel]] = {
    "fwa/segnalazione-microcredito.schema.json": FwaReferral,
    "comune/segnalazione-fragilita.schema.json": FragilityReferral,
    "comune/fase-procedura-sfratto.schema.json": EvictionMilestone,
    "pis/segnalazione-pronto-intervento.schema.json": EmergencyReferral,
}
"""Partner-native formats the gateway sends (recipients without one receive the canonical envelope)."""


def _schema(model: type[BaseModel], path: str, mode: str) -> dict[str, Any]:
    return _published(model.model_json_schema(mode=mode), path)  # type: ignore[arg-type]


def _published(schema: dict[str, Any], path: str) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_BASE + path, **schema}


def generate_contracts(openapi: Callable[[], dict[str, Any]] | None = None) -> dict[str, str]:
    """Relative path -> file text of every published contract."""
    documents: dict[str, Any] = {}
    for path, model in INBOUND_FORMATS.items():
        documents[path] = _schema(model, path, "validation")
    for path, model in OUTBOUND_FORMATS.items():
        documents[path] = _schema(model, path, "serialization")
    for path, resource in FHIR_INBOUND_FORMATS.items():
        documents[path] = _published(asst_contract.inbound_schema(resource), path)
    for path, build in {**FHIR_OUTBOUND_FORMATS, **CSV_ROW_FORMATS}.items():
        documents[path] = _published(build(), path)
    documents["canonical/envelope.schema.json"] = _schema(Envelope, "canonical/envelope.schema.json", "validation")
    for name, model in MESSAGE_TYPES.items():
        path = f"canonical/{name}.schema.json"
        documents[path] = _schema(model, path, "validation")
    if openapi is not None:
        documents["openapi.json"] = openapi()
    documents["asyncapi.json"] = asyncapi_document(load_registry())
    return {path: json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
            for path, doc in sorted(documents.items())}


def write_contracts(directory: Path, openapi: Callable[[], dict[str, Any]] | None = None) -> list[Path]:
    """Write every contract under ``directory``; returns the files written."""
    written = []
    for relative, text in generate_contracts(openapi).items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
