"""The trust's messages on ``in.asst`` as the gateway's AsyncAPI document describes them: one message per FHIR R4
resource it may produce (:data:`INBOUND_MESSAGES`), each with the JSON Schema of :mod:`adapters.asst_fhir.contract`."""

from __future__ import annotations

from typing import Final

from adapters.asst_fhir.formats import INBOUND_RESOURCES
from adapters.asst_fhir.inbound import FHIR_CONTENT_TYPES
from adapters.descriptor import InboundMessage

__all__ = ["FHIR_R4", "INBOUND_MESSAGES", "inbound_messages"]

FHIR_R4: Final = "https://hl7.org/fhir/R4/"

INBOUND_MESSAGES: Final = ("Encounter", "Immunization", "ServiceRequest", "Consent", "Bundle")
"""What ASST may produce to ``in.asst``: the resources its adapter translates, alone or in a Bundle (a Patient
travels only inside a Bundle)."""


def _message(resource: str) -> InboundMessage:
    from adapters.asst_fhir.contract import inbound_schema  # the FHIR models of every schema: only when published

    path = f"asst/{INBOUND_RESOURCES[resource]}.schema.json"
    name = path.removesuffix(".schema.json").replace("/", ".")
    schema = inbound_schema(resource)
    return InboundMessage(
        name=name, title=f"{name} (FHIR R4)",
        summary=f"A FHIR R4 {resource}" + (" of message resources, with the Patients they refer to"
                                           if resource == "Bundle" else ", alone or in a Bundle"),
        description=schema["description"], content_types=FHIR_CONTENT_TYPES, payload=schema, schema_path=path,
        schema_description=f"The published JSON Schema of this format (HL7 FHIR R4: {FHIR_R4})",
    )


def inbound_messages() -> tuple[InboundMessage, ...]:
    """Every message of :data:`INBOUND_MESSAGES`, in that order."""
    return tuple(_message(resource) for resource in INBOUND_MESSAGES)
