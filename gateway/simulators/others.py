"""Native messages of ASST (FHIR R4), the Comune and FWA, as their systems would send them."""

from __future__ import annotations

from typing import Any

from adapters.asst_fhir.systems import (
    CARE_NEED_SYSTEM,
    CARE_SERVICE_SYSTEM,
    CORRELATION_SYSTEM,
    DISCHARGE_LOGISTICS_SYSTEM,
    DISCHARGE_PATHWAY_SYSTEM,
    ORGANISATION_SYSTEM,
    PREFERRED_CF_SYSTEM,
    PURPOSE_SYSTEM,
    QUARTIERE_SYSTEM,
)

__all__ = ["asst_discharge", "asst_encounter", "comune_case_event", "comune_emergency", "fwa_outcome"]

_V3_CLASS = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _meta(recipients: tuple[str, ...], version: str = "1") -> dict[str, Any]:
    return {
        "versionId": version,
        "lastUpdated": "2026-11-20T10:15:00+01:00",
        "tag": [{"system": PURPOSE_SYSTEM, "code": "care-coordination"},
                *({"system": ORGANISATION_SYSTEM, "code": r} for r in recipients)],
    }


def asst_encounter(cf: str, encounter_id: str, correlation_id: str, *, service: str = "home-nursing",
                   status: str = "finished") -> dict[str, Any]:
    """A home-nursing (or other service) visit by a community nurse, FHIR R4 Encounter."""
    return {
        "resourceType": "Encounter",
        "id": encounter_id,
        "meta": _meta(("aler",)),
        "identifier": [{"system": CORRELATION_SYSTEM, "value": correlation_id}],
        "status": status,
        "class": {"system": _V3_CLASS, "code": "HH"},
        "serviceType": {"coding": [{"system": CARE_SERVICE_SYSTEM, "code": service}]},
        "subject": {"identifier": {"system": PREFERRED_CF_SYSTEM, "value": cf}},
        "period": {"start": "2026-11-20T09:00:00+01:00", "end": "2026-11-20T09:50:00+01:00"},
        "location": [{"location": {"identifier": {"system": QUARTIERE_SYSTEM, "value": "san-siro"}}}],
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]}],
    }


def asst_discharge(cf: str, encounter_id: str, correlation_id: str) -> dict[str, Any]:
    """A protected hospital discharge: care needs for the Comune, logistics for ALER."""
    return {
        "resourceType": "Encounter",
        "id": encounter_id,
        "meta": _meta(("comune", "aler")),
        "identifier": [{"system": CORRELATION_SYSTEM, "value": correlation_id}],
        "status": "finished",
        "class": {"system": _V3_CLASS, "code": "IMP"},
        "subject": {"identifier": {"system": PREFERRED_CF_SYSTEM, "value": cf}},
        "period": {"start": "2026-11-02T08:00:00+01:00", "end": "2026-11-18T16:30:00+01:00"},
        "hospitalization": {
            "dischargeDisposition": {"coding": [{"system": DISCHARGE_PATHWAY_SYSTEM, "code": "protected-discharge"}]},
            "specialArrangement": [
                {"coding": [{"system": DISCHARGE_LOGISTICS_SYSTEM, "code": "mobility-aid"}]},
                {"coding": [{"system": CARE_NEED_SYSTEM, "code": "home-care"}]},
            ],
        },
    }


def comune_case_event(cf: str, case_id: str, message_id: str, correlation_id: str, *, evento: str = "apertura",
                      stato: str = "in-charge") -> dict[str, Any]:
    """The Comune's ``evento-caso``: a social case opened or changed for a person."""
    return {
        "id_messaggio": message_id,
        "id_correlazione": correlation_id,
        "tipo_messaggio": "evento-caso",
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "social-case-management",
        "destinatari": ["aler"],
        "persona": {"codice_fiscale": cf},
        "caso": {"id_caso": case_id, "evento": evento, "stato": stato, "municipio": 7, "area": "housing",
                 "misure": ["Misura 1"], "grado_disagio": 3, "livello_mandato_tribunale": "assessment-mandate"},
    }


def comune_emergency(cf: str, message_id: str) -> dict[str, Any]:
    """The Comune's ``evento-emergenza`` (F10): a fire in a building, for the emergency social service."""
    return {
        "id_messaggio": message_id,
        "id_correlazione": message_id,
        "tipo_messaggio": "evento-emergenza",
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "emergency-social",
        "destinatari": ["pis"],
        "persona": {"codice_fiscale": cf},
        "evento": {"tipo": "fire", "accaduto_il": "2026-11-20T03:15:00+01:00"},
        "luogo": {"quartiere": "san-siro", "municipio": 7, "id_edificio": "ALER-B-0042"},
        "nucleo": {"persone": 4, "minori": 2, "over_65": 1, "con_disabilita": 0},
    }


def fwa_outcome(referral_id: str, message_id: str, correlation_id: str, esito: str = "approvato",
                amount: str | None = "1500.00") -> dict[str, Any]:
    """FWA's ``esito-segnalazione`` quoting the referral id the gateway minted."""
    message: dict[str, Any] = {
        "id_messaggio": message_id,
        "id_correlazione": correlation_id,
        "tipo_messaggio": "esito-segnalazione",
        "versione": "1.0",
        "id_segnalazione": referral_id,
        "esito": esito,
        "data_decisione": "2026-12-02T11:00:00+01:00",
    }
    if amount is not None:
        message["importo_approvato_euro"] = amount
    return message
