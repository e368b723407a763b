"""Canonical ``care.service-request`` -> the FHIR R4 ServiceRequest the hospital trust receives (flow F4).

The envelope has already been minimised for the trust; the encoder only translates. What it writes:

* ``identifier`` = the request id (``CARE_REQUEST_SYSTEM``: the requester's id or the crosswalk token standing
  for it, which is not a FHIR id, so no ``id`` is set: the trust's server assigns its own), the gateway message
  id (``MESSAGE_SYSTEM``) and the correlation id (``CORRELATION_SYSTEM``), so the trust quotes them back and
  its updates decode to the same ids.
* ``subject`` = ``Reference.identifier`` with the codice fiscale (``http://hl7.it/sid/codiceFiscale``) or, for
  people without one, the STP/ENI code (``STP_ENI_SYSTEM``): never a gateway pseudonym or another partner's id.
* ``meta.security`` = the record's HL7 sensitivity labels, plus the obligations (``v3-ObligationPolicy``) and
  refrains (``v3-RefrainPolicy``) the recipient must honour (privacy.md rule 8); ``meta.tag`` = the purpose;
  ``supportingInfo`` = the consent reference, when the disclosure rests on one.
* Codes in the gateway's code systems, with their Italian label as display; no free text.
* ``orderDetail`` and extensions = the visit logistics the community manager gave (:mod:`adapters.asst_fhir.logistics`).

The result is validated by constructing the ``fhir.resources`` R4B model before it is serialised. Data masked
at source never reaches this point (rule 15); if it does, the encoder refuses it rather than send it.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from fhir.resources.R4B.servicerequest import ServiceRequest

from adapters.asst_fhir.logistics import logistics_to_fhir
from adapters.asst_fhir.systems import (
    ACT_CODE_SYSTEM,
    CARE_REQUEST_CATEGORY_SYSTEM,
    CARE_REQUEST_SYSTEM,
    CARE_SERVICE_SYSTEM,
    CONFIDENTIALITY_SYSTEM,
    CONSENT_SYSTEM,
    CORRELATION_SYSTEM,
    MESSAGE_SYSTEM,
    OBLIGATION_SYSTEM,
    ORGANISATION_SYSTEM,
    PREFERRED_CF_SYSTEM,
    PURPOSE_SYSTEM,
    REFRAIN_SYSTEM,
    STP_ENI_SYSTEM,
)
from adapters.fhir_narrative import generated_narrative
from schemas.codelists import load_codelist
from schemas.envelope import Envelope
from schemas.health import CareServiceRequest

__all__ = ["DisclosureLabels", "encode_service_request"]

_CONFIDENTIALITY = frozenset({"N", "R", "V"})


class DisclosureLabels(Protocol):
    """What travels with a disclosure besides the payload; :class:`gateway.routing.OutboundLabels` is one."""

    @property
    def consent_ref(self) -> str | None: ...

    @property
    def obligations(self) -> tuple[str, ...]: ...

    @property
    def refrains(self) -> tuple[str, ...]: ...


def _coding(system: str, code: str, codelist: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": load_codelist(codelist).labels_it[code]}


def _subject(envelope: Envelope) -> dict[str, Any]:
    for system, uri in (("cf", PREFERRED_CF_SYSTEM), ("stp", STP_ENI_SYSTEM), ("eni", STP_ENI_SYSTEM)):
        value = envelope.subject.first(system)
        if value is not None:
            return {"type": "Patient", "identifier": {"system": uri, "value": value}}
    raise ValueError("a service request for the trust needs the person's codice fiscale, STP or ENI code")


def _occurrence(start: date | None, end: date | None) -> dict[str, Any]:
    if start is not None and end is None:
        return {"occurrenceDateTime": start.isoformat()}
    if start is None and end is None:
        return {}
    period = {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None}
    return {"occurrencePeriod": {k: v for k, v in period.items() if v is not None}}


def encode_service_request(envelope: Envelope, labels: DisclosureLabels) -> bytes:
    """A minimised ``care.service-request`` envelope -> FHIR R4 ServiceRequest JSON bytes."""
    if envelope.message_type != "care.service-request":
        raise ValueError("encode_service_request encodes care.service-request envelopes only")
    request = envelope.payload_as(CareServiceRequest)
    if request.masked_at_source:
        raise ValueError("data masked at source is never forwarded (privacy.md rule 15)")
    security = [
        {"system": CONFIDENTIALITY_SYSTEM if label in _CONFIDENTIALITY else ACT_CODE_SYSTEM, "code": label}
        for label in request.security_labels
    ]
    security += [{"system": OBLIGATION_SYSTEM, "code": code} for code in labels.obligations]
    security += [{"system": REFRAIN_SYSTEM, "code": code} for code in labels.refrains]
    meta: dict[str, Any] = {"security": security} if security else {}
    if envelope.occurred_at.tzinfo is not None:
        meta["lastUpdated"] = envelope.occurred_at.isoformat()
    if envelope.purpose:
        meta["tag"] = [{"system": PURPOSE_SYSTEM, "code": envelope.purpose}]
    document: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "meta": meta,
        "text": generated_narrative("Richiesta di assistenza (ServiceRequest)", [
            ("categoria", load_codelist("care_request_categories").labels_it[request.category]),
            ("servizio", load_codelist("care_services").labels_it[request.service]),
            ("stato", request.status),
            ("priorità", request.priority),
        ]),
        "identifier": [
            {"system": CARE_REQUEST_SYSTEM, "value": request.request_id},
            {"system": MESSAGE_SYSTEM, "value": envelope.message_id},
            {"system": CORRELATION_SYSTEM, "value": envelope.correlation_id},
        ],
        "status": request.status,
        "intent": request.intent,
        "category": [{"coding": [_coding(CARE_REQUEST_CATEGORY_SYSTEM, request.category, "care_request_categories")]}],
        "code": {"coding": [_coding(CARE_SERVICE_SYSTEM, request.service, "care_services")]},
        "subject": _subject(envelope),
        **_occurrence(request.requested_from, request.requested_until),
        "requester": {"type": "Organization", "identifier": {"system": ORGANISATION_SYSTEM,
                                                             "value": request.requester}},
        **logistics_to_fhir(request.logistics),
    }
    if request.priority:
        document["priority"] = request.priority
    if request.authored_on:
        document["authoredOn"] = request.authored_on.isoformat()
    if labels.consent_ref:
        document["supportingInfo"] = [
            {"type": "Consent", "identifier": {"system": CONSENT_SYSTEM, "value": labels.consent_ref}}
        ]
    resource = ServiceRequest.model_validate(document)
    return str(resource.model_dump_json()).encode("utf-8")
