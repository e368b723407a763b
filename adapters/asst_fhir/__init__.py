"""ASST Fatebenefratelli-Sacco adapter (FHIR R4, read with the ``fhir.resources`` R4B models).

Inbound (:mod:`adapters.asst_fhir.inbound`): Encounter, Immunization, ServiceRequest and Consent resources, alone,
in a transaction / batch / collection Bundle with their Patients, or in an FSE 2.0 document Bundle, become
``care.encounter``, ``care.discharge-notice``, ``care.immunization``, ``care.service-request`` and
``consent.record`` envelopes (flows F4-F6, F11 and the consent registry). Outbound
(:mod:`adapters.asst_fhir.outbound`): a ``care.service-request`` becomes the FHIR ServiceRequest the trust receives
(F4). The FHIR conventions the trust follows (identifier and code systems, purpose tag, masking) are in
:mod:`adapters.asst_fhir.systems`; :data:`DESCRIPTOR` is what the core knows of the trust."""

from typing import Any, Final

from adapters.asst_fhir import bulk, messages
from adapters.asst_fhir.examples import EXAMPLES
from adapters.asst_fhir.formats import INBOUND_RESOURCES
from adapters.asst_fhir.inbound import FHIR_CONTENT_TYPES, decode
from adapters.asst_fhir.outbound import DisclosureLabels, encode_service_request
from adapters.descriptor import ContractFormats, PartnerDescriptor

__all__ = ["DESCRIPTOR", "FHIR_CONTENT_TYPES", "DisclosureLabels", "decode", "encode_service_request"]

def _inbound_schema(resource: str) -> dict[str, Any]:
    from adapters.asst_fhir.contract import inbound_schema  # the schemas' FHIR models: only when published

    return inbound_schema(resource)


def _outbound_service_request_schema() -> dict[str, Any]:
    from adapters.asst_fhir.contract import outbound_service_request_schema

    return outbound_service_request_schema()


DESCRIPTOR: Final = PartnerDescriptor(
    organisation="asst", decode=decode, encoders={"care.service-request": encode_service_request},
    content_type="application/fhir+json", examples=EXAMPLES,
    formats=ContractFormats(
        fhir_inbound={f"asst/{name}.schema.json": resource for resource, name in INBOUND_RESOURCES.items()},
        fhir_inbound_schema=_inbound_schema,
        fhir_outbound={"asst/outbound-service-request.schema.json": _outbound_service_request_schema},
        deliveries={("asst", "care.service-request"): "asst/outbound-service-request.schema.json"},
        messages=messages.inbound_messages,
    ),
    bulk_export=bulk.BULK_EXPORT,
)
"""ASST as the core sees it: FHIR R4 in, a FHIR ServiceRequest out (F4)."""
