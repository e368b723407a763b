"""The FHIR system URIs the ASST adapter reads and writes: the conventions partners must follow.

Identifier systems (``Identifier.system``)
    ``CF_SYSTEMS``            codice fiscale, under either URI seen in Italian guides; both give ``cf``.
    ``STP_ENI_SYSTEM``        STP and ENI codes of people without a codice fiscale; the value says which
                              (``STP...`` or ``ENI...``). A value under either system is classified by its
                              content, so a code filed under the wrong one of these systems still resolves.
    ``ASST_PATIENT_SYSTEM``   the trust's own patient id (opaque); becomes identifier system ``asst-patient``.
    ``CORRELATION_SYSTEM``    on a resource's ``identifier``: the correlation id tying it to a referral.
    ``MESSAGE_SYSTEM``        on a resource's ``identifier``: the message id, when the sender sets one.
    ``CARE_REQUEST_SYSTEM``   on ``ServiceRequest.identifier``: the care request id the gateway sends (the
                              requester's id, or the crosswalk token standing for it); the trust keeps it on
                              every update of the request.
    ``ORGANISATION_SYSTEM``   partner organisation codes (``aler``, ``comune``...), in ``meta.tag`` (recipients),
                              ``ServiceRequest.requester.identifier`` and ``Consent.provision.actor``.
    ``QUARTIERE_SYSTEM``      on ``Encounter.location.location.identifier`` and
                              ``Immunization.location.identifier``: the neighbourhood (code list ``quartieri``;
                              Italian names and aliases accepted).
    ``CONSENT_SYSTEM``        the gateway's consent reference, sent in ``ServiceRequest.supportingInfo``.

Code systems (``Coding.system``)
    ``PURPOSE_SYSTEM``        purpose of use (privacy.md vocabulary), in ``meta.tag``: FHIR R4 has no purpose
                              element on Encounter, Immunization or ServiceRequest. One purpose per resource.
    ``CARE_SERVICE_SYSTEM``   code list ``care_services``: ``Encounter.serviceType``, ``ServiceRequest.code``.
    ``CARE_REQUEST_CATEGORY_SYSTEM``  code list ``care_request_categories``: ``ServiceRequest.category``.
    ``DISCHARGE_PATHWAY_SYSTEM``  ``protected-discharge`` in ``Encounter.hospitalization.dischargeDisposition``
                              turns a finished inpatient Encounter into a discharge notice (F11).
    ``CARE_NEED_SYSTEM``, ``DISCHARGE_LOGISTICS_SYSTEM``  code lists ``care_needs`` and
                              ``discharge_logistics`` in ``Encounter.hospitalization.specialArrangement``.
    ``HOME_ENTRY_SYSTEM``, ``VISIT_TIME_WINDOW_SYSTEM``, ``HOME_ACCESS_NOTE_SYSTEM``, ``LANGUAGE_SYSTEM``
                              visit logistics of a care request (F4) in ``ServiceRequest.orderDetail``: code
                              lists ``home_entry_methods``, ``visit_time_windows``, ``home_access_notes`` and
                              ``interpreter_languages`` (BCP 47, the interpreter's language). The floor
                              (``VISIT_FLOOR_EXTENSION``, valueInteger), a working lift (``VISIT_LIFT_EXTENSION``)
                              and whether the porter can accompany (``PORTER_ACCOMPANIES_EXTENSION``, valueBoolean)
                              are ServiceRequest extensions.
    HL7 ``meta.security``     ``CONFIDENTIALITY_SYSTEM`` (N, R, V) and ``ACT_CODE_SYSTEM`` (PSY, MH, SDV, HIV,
                              ETH) become sensitivity labels; ``OBLIGATION_SYSTEM`` / ``REFRAIN_SYSTEM`` carry
                              what the recipient must or must not do.
    Masked at source          ``meta.security`` ``MASKED`` in ``OBSERVATION_VALUE_SYSTEM`` (HL7 security
                              integrity label "masked"), or the Italian ``oscurato`` in
                              ``GATEWAY_SECURITY_SYSTEM``: the record is flagged ``masked_at_source`` and the
                              policy never forwards it (privacy.md rule 15).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACT_CODE_SYSTEM",
    "ASST_PATIENT_SYSTEM",
    "CARE_NEED_SYSTEM",
    "CARE_REQUEST_CATEGORY_SYSTEM",
    "CARE_REQUEST_SYSTEM",
    "CARE_SERVICE_SYSTEM",
    "CF_SYSTEMS",
    "CONFIDENTIALITY_SYSTEM",
    "CONSENT_SYSTEM",
    "CORRELATION_SYSTEM",
    "DISCHARGE_LOGISTICS_SYSTEM",
    "DISCHARGE_PATHWAY_SYSTEM",
    "GATEWAY_SECURITY_SYSTEM",
    "HOME_ACCESS_NOTE_SYSTEM",
    "HOME_ENTRY_SYSTEM",
    "LANGUAGE_SYSTEM",
    "MASKED_CODES",
    "MESSAGE_SYSTEM",
    "OBLIGATION_SYSTEM",
    "OBSERVATION_VALUE_SYSTEM",
    "ORGANISATION_SYSTEM",
    "PORTER_ACCOMPANIES_EXTENSION",
    "PREFERRED_CF_SYSTEM",
    "PURPOSE_SYSTEM",
    "QUARTIERE_SYSTEM",
    "REFRAIN_SYSTEM",
    "STP_ENI_SYSTEM",
    "UCUM_SYSTEM",
    "VISIT_FLOOR_EXTENSION",
    "VISIT_LIFT_EXTENSION",
    "VISIT_TIME_WINDOW_SYSTEM",
]

_GATEWAY: Final = "https://gateway.quartieri.example/fhir"

PREFERRED_CF_SYSTEM: Final = "http://hl7.it/sid/codiceFiscale"
"""The codice fiscale system the adapter writes (HL7 Italia)."""
CF_SYSTEMS: Final = frozenset({PREFERRED_CF_SYSTEM, "urn:oid:2.16.840.1.113883.2.9.4.3.2"})
STP_ENI_SYSTEM: Final = f"{_GATEWAY}/sid/stp-eni"
ASST_PATIENT_SYSTEM: Final = f"{_GATEWAY}/sid/asst-patient"
CORRELATION_SYSTEM: Final = f"{_GATEWAY}/sid/correlation"
MESSAGE_SYSTEM: Final = f"{_GATEWAY}/sid/message"
CARE_REQUEST_SYSTEM: Final = f"{_GATEWAY}/sid/care-request"
ORGANISATION_SYSTEM: Final = f"{_GATEWAY}/sid/organisation"
QUARTIERE_SYSTEM: Final = f"{_GATEWAY}/sid/quartiere"
CONSENT_SYSTEM: Final = f"{_GATEWAY}/sid/consent"

PURPOSE_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/purpose"
CARE_SERVICE_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/care-service"
CARE_REQUEST_CATEGORY_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/care-request-category"
DISCHARGE_PATHWAY_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/discharge-pathway"
CARE_NEED_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/care-need"
DISCHARGE_LOGISTICS_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/discharge-logistics"
GATEWAY_SECURITY_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/security"
HOME_ENTRY_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/home-entry-method"
VISIT_TIME_WINDOW_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/visit-time-window"
HOME_ACCESS_NOTE_SYSTEM: Final = f"{_GATEWAY}/CodeSystem/home-access-note"
LANGUAGE_SYSTEM: Final = "urn:ietf:bcp:47"
VISIT_FLOOR_EXTENSION: Final = f"{_GATEWAY}/StructureDefinition/visit-floor"
VISIT_LIFT_EXTENSION: Final = f"{_GATEWAY}/StructureDefinition/visit-lift"
PORTER_ACCOMPANIES_EXTENSION: Final = f"{_GATEWAY}/StructureDefinition/visit-porter-accompanies"

ACT_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
OBLIGATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ObligationPolicy"
REFRAIN_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-RefrainPolicy"
OBSERVATION_VALUE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
UCUM_SYSTEM: Final = "http://unitsofmeasure.org"

MASKED_CODES: Final = frozenset({(OBSERVATION_VALUE_SYSTEM, "MASKED"), (GATEWAY_SECURITY_SYSTEM, "oscurato")})
"""``meta.security`` codings that mean the source masked the record ("oscurato")."""
