"""Published contracts, generated from the code: JSON Schemas of partner-native and canonical messages and
the OpenAPI document of the HTTP API.

``gateway contracts generate`` writes them under ``contracts/``; a test regenerates them in memory and fails
when the checked-in files drift from the code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from adapters.aler.arrears import AlerArrearsMessage
from adapters.fwa.referral import FwaReferral
from schemas.envelope import Envelope
from schemas.messages import MESSAGE_TYPES

__all__ = ["generate_contracts", "write_contracts"]

SCHEMA_BASE = "https://gateway.quartieri.example/contracts/"

NATIVE_FORMATS: dict[str, type[BaseModel]] = {
    "aler/segnalazione-morosita.schema.json": AlerArrearsMessage,
    "fwa/segnalazione-microcredito.schema.json": FwaReferral,
}
"""Partner-native message formats: what partners send (ALER) and receive (FWA)."""


def _schema(model: type[BaseModel], path: str, mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_BASE + path, **schema}


def generate_contracts(openapi: Callable[[], dict[str, Any]] | None = None) -> dict[str, str]:
    """Relative path -> file text of every published contract."""
    documents: dict[str, Any] = {}
    for path, model in NATIVE_FORMATS.items():
        documents[path] = _schema(model, path, "validation" if path.startswith("aler/") else "serialization")
    documents["canonical/envelope.schema.json"] = _schema(Envelope, "canonical/envelope.schema.json", "validation")
    for name, model in MESSAGE_TYPES.items():
        path = f"canonical/{name}.schema.json"
        documents[path] = _schema(model, path, "validation")
    if openapi is not None:
        documents["openapi.json"] = openapi()
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
