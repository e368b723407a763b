"""The partner formats the gateway publishes contracts for, by their path under ``contracts/``.

Partner formats come from the adapters: pydantic models of the JSON formats (:data:`INBOUND_FORMATS`,
:data:`OUTBOUND_FORMATS`), the FHIR R4 resources of the hospital trust (:data:`FHIR_INBOUND_FORMATS`,
:data:`FHIR_OUTBOUND_FORMATS`, built by :mod:`adapters.asst_fhir.contract` from the ASST adapter's rules) and one
row of ALER's CSV tenancy export (:data:`CSV_ROW_FORMATS`, :mod:`adapters.aler.csv_schema`).

Both the JSON Schemas (:mod:`gateway.publication`) and the AsyncAPI document (:mod:`gateway.asyncapi`) are
generated from these tables; they sit apart from both so that neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Callable
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

__all__ = [
    "CSV_ROW_FORMATS",
    "FHIR_INBOUND_FORMATS",
    "FHIR_OUTBOUND_FORMATS",
    "INBOUND_FORMATS",
    "OUTBOUND_FORMATS",
    "SCHEMA_BASE",
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
