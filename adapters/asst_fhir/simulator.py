"""ASST's native messages (FHIR R4), as the trust's systems would send them: for the demo, the tests and the
benchmarks (re-exported by :mod:`gateway.simulators`)."""

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

__all__ = ["asst_discharge", "asst_encounter"]

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
