"""The partner formats the gateway publishes contracts for, by their path under ``contracts/``.

Partner formats come from the partners' descriptors (:attr:`adapters.descriptor.PartnerDescriptor.formats`):
pydantic models of the JSON formats (:data:`INBOUND_FORMATS`, :data:`OUTBOUND_FORMATS`), the FHIR R4 resources a
partner sends or receives (:data:`FHIR_INBOUND_FORMATS` with their schemas :data:`FHIR_INBOUND_SCHEMAS`,
:data:`FHIR_OUTBOUND_FORMATS`), each built by the adapter from its own rules, and one row of the CSV exports
partners send (:data:`CSV_ROW_FORMATS`).

Both the JSON Schemas (:mod:`gateway.contracts.publication`) and the AsyncAPI document
(:mod:`gateway.contracts.asyncapi`) are generated from these tables; they sit apart from both so that neither
has to import the other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from gateway.partners import PARTNERS

__all__ = [
    "CSV_ROW_FORMATS",
    "FHIR_INBOUND_FORMATS",
    "FHIR_INBOUND_SCHEMAS",
    "FHIR_OUTBOUND_FORMATS",
    "INBOUND_FORMATS",
    "NATIVE_OUTBOUND",
    "OUTBOUND_FORMATS",
    "SCHEMA_BASE",
]

SCHEMA_BASE = "https://gateway.quartieri.example/contracts/"

INBOUND_FORMATS: dict[str, type[BaseModel]] = {k: v for p in PARTNERS for k, v in p.formats.inbound.items()}
"""Partner-native JSON formats partners send to the gateway (ASST's FHIR R4: :data:`FHIR_INBOUND_FORMATS`)."""

FHIR_INBOUND_FORMATS: dict[str, str] = {k: v for p in PARTNERS for k, v in p.formats.fhir_inbound.items()}
"""The FHIR R4 resources partners send (path -> resource type): each message resource, the Bundle, and the
Patient a Bundle carries."""

FHIR_INBOUND_SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    path: functools.partial(p.formats.fhir_inbound_schema, resource)
    for p in PARTNERS if p.formats.fhir_inbound_schema is not None
    for path, resource in p.formats.fhir_inbound.items()
}
"""The JSON Schema of each resource of :data:`FHIR_INBOUND_FORMATS` (path -> the function that builds it)."""

FHIR_OUTBOUND_FORMATS: dict[str, Callable[[], dict[str, Any]]] = {
    k: v for p in PARTNERS for k, v in p.formats.fhir_outbound.items()
}
"""The FHIR R4 resources the gateway sends partners (path -> schema)."""

CSV_ROW_FORMATS: dict[str, Callable[[], dict[str, Any]]] = {
    k: v for p in PARTNERS for k, v in p.formats.csv_rows.items()
}
"""CSV exports partners send, by the schema of one row (path -> schema)."""

OUTBOUND_FORMATS: dict[str, type[BaseModel]] = {k: v for p in PARTNERS for k, v in p.formats.outbound.items()}
"""Partner-native formats the gateway sends (recipients without one receive the canonical envelope)."""

NATIVE_OUTBOUND: dict[tuple[str, str], str] = {k: v for p in PARTNERS for k, v in p.formats.deliveries.items()}
"""What each encoder of :data:`gateway.routing.ENCODERS` writes, by (recipient, outbound message type): a path of
:data:`OUTBOUND_FORMATS` or :data:`FHIR_OUTBOUND_FORMATS`."""
