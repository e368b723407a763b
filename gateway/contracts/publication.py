"""Published contracts, generated from the code: JSON Schemas of partner-native and canonical messages, the
OpenAPI document of the HTTP API and the AsyncAPI document of the Kafka topics.

Partner formats come from the adapters, listed in :mod:`gateway.contracts.formats` (re-exported here).

``gateway contracts generate`` writes them under ``contracts/``; a test regenerates them in memory and fails
when the checked-in files drift from the code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.contracts.asyncapi import asyncapi_document
from gateway.contracts.formats import (
    CSV_ROW_FORMATS,
    FHIR_INBOUND_FORMATS,
    FHIR_INBOUND_SCHEMAS,
    FHIR_OUTBOUND_FORMATS,
    INBOUND_FORMATS,
    OUTBOUND_FORMATS,
    SCHEMA_BASE,
)
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
    for path, build in {**FHIR_INBOUND_SCHEMAS, **FHIR_OUTBOUND_FORMATS, **CSV_ROW_FORMATS}.items():
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
