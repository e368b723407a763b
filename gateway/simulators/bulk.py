"""Synthetic bulk exports for onboarding backfills (``gateway backfill``, ``bench/backfill.py``, the tests):
ALER's tenancy CSV export and an ASST FHIR Bulk Data ``$export`` (NDJSON: one Patient, Encounter or Immunization
per line, Encounters and Immunizations referring to their Patient as ``Patient/<id>``).

Every value is derived from the synthetic tenant (:mod:`gateway.identity.synthetic`), so an export is the same
on every run.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from adapters.aler.csv_export import COLUMNS
from adapters.asst_fhir.systems import CARE_SERVICE_SYSTEM, ORGANISATION_SYSTEM, PREFERRED_CF_SYSTEM, PURPOSE_SYSTEM
from gateway.identity.synthetic import SyntheticTenant

__all__ = ["aler_tenancy_export", "asst_bulk_export"]

_HOUSEHOLDS: dict[str, str] = {
    "couple-several-minors": "holder:age-25-44:-|spouse-partner:age-25-44:-|child:age-6-13:M|child:age-0-5:M",
    "single-mother-minors": "holder:age-25-44:-|child:age-14-17:M",
    "single-adult": "holder:age-45-64:-",
    "mother-newly-adult-child": "holder:age-45-64:-|child:age-18-24:-",
    "adult-with-over-65": "holder:age-45-64:-|parent:age-75-84:A",
    "couple-minors-over-65": "holder:age-25-44:-|spouse-partner:age-25-44:-|child:age-0-5:M|grandparent:age-65-74:A",
    "elderly-single": "holder:age-85-plus:A",
}
_STAGES = ("late", "repayment-plan", "formal-notice")
_SERVICES = ("home-nursing", "chronic-follow-up", "physiotherapy", "specialist-telemedicine")
_CLASS = {"home-nursing": "HH", "chronic-follow-up": "AMB", "physiotherapy": "AMB", "specialist-telemedicine": "VR"}


def _tenancy_row(tenant: SyntheticTenant) -> dict[str, str]:
    rng = random.Random(tenant.contract_id)
    start = date(1985, 1, 1) + timedelta(days=rng.randrange(14_000))
    rent = rng.randint(4_000, 60_000)
    row = {
        "id_contratto": tenant.contract_id, "tipo_contratto": "SAP", "data_inizio": start.isoformat(),
        "id_unita": tenant.unit_id, "id_edificio": f"ALER-B-{tenant.unit_id[-4:]}", "via": "Via Civitavecchia",
        "civico": str(rng.randint(1, 240)), "quartiere": tenant.quartiere, "municipio": str(rng.randint(1, 9)),
        "codice_fiscale_intestatario": tenant.cf, "tipologia_nucleo": tenant.household_type,
        "componenti": _HOUSEHOLDS[tenant.household_type], "fascia_canone": tenant.rent_band,
        "fascia_isee": tenant.isee_band, "canone_mensile_euro": f"{rent // 100}.{rent % 100:02d}",
        "canone_oltre_30_reddito": rng.choice(["si", "no"]),
        "data_aggiornamento": datetime(2026, 11, 1, 6, 0, tzinfo=UTC).isoformat(),
    }
    if tenant.arrears_cents:
        row |= {"morosita_euro": f"{tenant.arrears_cents // 100}.{tenant.arrears_cents % 100:02d}",
                "morosita_mensilita": str(tenant.arrears_months), "morosita_tipo": "canone",
                "morosita_stadio": rng.choice(_STAGES)}
    return row


def aler_tenancy_export(tenants: Iterable[SyntheticTenant]) -> bytes:
    """ALER's CSV export (``;``-separated, header row) with one row per tenant."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([row.get(column, "") for column in COLUMNS] for row in map(_tenancy_row, tenants))
    return buffer.getvalue().encode("utf-8")


def _meta(version: str = "1") -> dict[str, Any]:
    return {"versionId": version, "lastUpdated": "2026-11-20T10:15:00+01:00",
            "tag": [{"system": PURPOSE_SYSTEM, "code": "care-coordination"},
                    {"system": ORGANISATION_SYSTEM, "code": "aler"}]}


def _patient(tenant: SyntheticTenant, patient_id: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id,
            "identifier": [{"system": PREFERRED_CF_SYSTEM, "value": tenant.cf}]}


def _encounter(patient_id: str, encounter_id: str, day: int, service: str) -> dict[str, Any]:
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC) + timedelta(days=day)
    return {
        "resourceType": "Encounter", "id": encounter_id, "meta": _meta(), "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": _CLASS[service]},
        "serviceType": {"coding": [{"system": CARE_SERVICE_SYSTEM, "code": service}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": start.isoformat(), "end": (start + timedelta(minutes=45)).isoformat()},
    }


def _immunization(patient_id: str, immunization_id: str, day: int) -> dict[str, Any]:
    when = datetime(2026, 10, 1, 11, 0, tzinfo=UTC) + timedelta(days=day)
    return {
        "resourceType": "Immunization", "id": immunization_id, "meta": _meta(), "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J07BB02"}]},
        "patient": {"reference": f"Patient/{patient_id}"}, "occurrenceDateTime": when.isoformat(),
    }


def asst_bulk_export(tenants: Sequence[SyntheticTenant], encounters: int, immunizations: int = 0
                     ) -> dict[str, bytes]:
    """``Patient.ndjson`` (one per tenant), ``Encounter.ndjson`` (``encounters`` in all, spread over the
    patients) and, when asked, ``Immunization.ndjson`` (flu vaccinations), as a FHIR Bulk Data export names its
    files."""
    patients = [(f"pat-{index:07d}", tenant) for index, tenant in enumerate(tenants)]
    lines = [orjson.dumps(_patient(tenant, pid)) for pid, tenant in patients]
    visits = [orjson.dumps(_encounter(patients[n % len(patients)][0], f"enc-{n:08d}", n % 300,
                                      _SERVICES[n % len(_SERVICES)]))
              for n in range(encounters)]
    files = {"Patient.ndjson": b"\n".join(lines) + b"\n", "Encounter.ndjson": b"\n".join(visits) + b"\n"}
    if immunizations:
        files["Immunization.ndjson"] = b"\n".join(
            orjson.dumps(_immunization(patients[n % len(patients)][0], f"imm-{n:08d}", n % 60))
            for n in range(immunizations)) + b"\n"
    return files
