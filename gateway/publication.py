"""Published contracts, generated from the code: JSON Schemas of partner-native and canonical messages, the
OpenAPI document of the HTTP API and the AsyncAPI document of the Kafka topics.

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

__all__ = ["INBOUND_FORMATS", "OUTBOUND_FORMATS", "generate_contracts", "write_contracts"]

SCHEMA_BASE = "https://gateway.quartieri.example/contracts/"

INBOUND_FORMATS: dict[str, type[BaseModel]] = {
    **{f"aler/{kind}.schema.json": model for kind, model in adapters.aler.NATIVE_MESSAGES.items()},
    "comune/evento-caso.schema.json": ComuneCaseEvent,
    "comune/evento-emergenza.schema.json": ComuneEmergencyEvent,
    "fwa/esito-segnalazione.schema.json": FwaOutcomeMessage,
}
"""Partner-native formats partners send to the gateway (ASST sends FHIR R4: see hl7.org/fhir/R4)."""

OUTBOUND_FORMATS: dict[str, type[BaseModel]] = {
    "fwa/segnalazione-microcredito.schema.json": FwaReferral,
    "comune/segnalazione-fragilita.schema.json": FragilityReferral,
    "comune/fase-procedura-sfratto.schema.json": EvictionMilestone,
    "pis/segnalazione-pronto-intervento.schema.json": EmergencyReferral,
}
"""Partner-native formats the gateway sends (recipients without one receive the canonical envelope)."""


def _schema(model: type[BaseModel], path: str, mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_BASE + path, **schema}


def generate_contracts(openapi: Callable[[], dict[str, Any]] | None = None) -> dict[str, str]:
    """Relative path -> file text of every published contract."""
    documents: dict[str, Any] = {}
    for path, model in INBOUND_FORMATS.items():
        documents[path] = _schema(model, path, "validation")
    for path, model in OUTBOUND_FORMATS.items():
        documents[path] = _schema(model, path, "serialization")
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
