"""Golden examples of what each partner sends: valid native messages and invalid ones with the problems the
gateway must report for them.

Published under ``contracts/examples/<partner>/{valid,invalid}/``; every invalid ``<name>.json`` (or
``<name>.csv``, ALER's bulk tenancy export) has a ``<name>.expected.json`` listing the ``pointer`` and ``rule``
of each problem, in order (the message texts are left out so their wording can evolve). Everything is
deterministic: fixed ids and dates, and codici fiscali drawn from a seeded generator of synthetic ones. A test
regenerates the examples in memory and fails when the checked-in files drift, and checks each against the
decoders.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.aler.csv_export import COLUMNS, DELIMITER
from adapters.asst_fhir.systems import (
    CARE_REQUEST_CATEGORY_SYSTEM,
    CARE_SERVICE_SYSTEM,
    ORGANISATION_SYSTEM,
    PREFERRED_CF_SYSTEM,
    PURPOSE_SYSTEM,
    QUARTIERE_SYSTEM,
)
from gateway.identity.codice_fiscale import check_character
from gateway.identity.synthetic import generate_tenants, synthetic_codice_fiscale
from gateway.simulators import (
    aler_arrears_message,
    asst_discharge,
    asst_encounter,
    comune_case_event,
    comune_emergency,
    fwa_outcome,
)

__all__ = [
    "CFS",
    "CONTENT_TYPES",
    "INVALID",
    "INVALID_CSV",
    "VALID",
    "VALID_CSV",
    "content_type",
    "golden_examples",
    "write_golden_examples",
]

SEED = 20261120
CONTENT_TYPES: dict[str, str] = {
    "aler": "application/json",
    "asst": "application/fhir+json",
    "comune": "application/json",
    "fwa": "application/json",
}
"""The content type each partner sends its examples with (ALER's ``.csv`` exports: :func:`content_type`)."""
CSV_CONTENT_TYPE = "text/csv"


def content_type(path: str) -> str:
    """The content type the example at ``path`` (``<partner>/...``) is sent with."""
    return CSV_CONTENT_TYPE if path.endswith(".csv") else CONTENT_TYPES[path.split("/", 1)[0]]


_OCCURRED = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
_rng = random.Random(SEED)  # noqa: S311 - synthetic identifiers, reproducible on purpose
CF_ALER = synthetic_codice_fiscale(_rng)
CF_ASST = synthetic_codice_fiscale(_rng)
CF_COMUNE = synthetic_codice_fiscale(_rng)
CF_ALER_EXPORT = synthetic_codice_fiscale(_rng)
CF_FSE = synthetic_codice_fiscale(_rng, birth_year=1946)
CF_FSE_OTHER = synthetic_codice_fiscale(_rng, birth_year=1951)
CFS = (CF_ALER, CF_ASST, CF_COMUNE, CF_ALER_EXPORT, CF_FSE, CF_FSE_OTHER)
"""The synthetic codici fiscali the examples carry."""
del _rng


def _dumps(document: Any) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _wrong_check_character(cf: str) -> str:
    right = check_character(cf[:15])
    return cf[:15] + ("A" if right != "A" else "B")


# --- ALER ----------------------------------------------------------------------------------------------------


def _aler_header(kind: str, message_id: str, purpose: str, recipients: list[str]) -> dict[str, Any]:
    return {
        "id_messaggio": message_id,
        "id_correlazione": "ALER-K-0001",
        "tipo_messaggio": kind,
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": purpose,
        "destinatari": recipients,
    }


def _aler_valid() -> dict[str, dict[str, Any]]:
    tenant = next(t for t in generate_tenants("S", seed=SEED, limit=50) if t.arrears_cents > 0)
    arrears = aler_arrears_message(tenant, "ALER-M-0001", occurred_at=_OCCURRED)
    arrears["intestatario"]["codice_fiscale"] = CF_ALER
    record = {
        **_aler_header("anagrafica-contratto", "ALER-T-0001", "housing-support", ["comune"]),
        "contratto": {"id_contratto": "ALER-C-12345678", "tipo": "SAT", "data_inizio": "2024-03-01",
                      "data_fine": "2029-02-28", "fascia_canone": "accesso", "canone_mensile_euro": "185.50",
                      "canone_oltre_30_reddito": True},
        "unita": {"id_unita": "ALER-U-7654321", "id_edificio": "ALER-B-0042", "via": "Via Esempio",
                  "civico": "12/A", "quartiere": "molise-calvairate", "municipio": 4},
        "intestatario": {"codice_fiscale": CF_ALER},
        "nucleo": {
            "tipologia": "single-mother-minors",
            "componenti": [
                {"relazione": "intestatario", "fascia_eta": "age-25-44", "minore": False, "over_65": False,
                 "disabilita": False},
                {"relazione": "child", "fascia_eta": "age-6-13", "minore": True, "over_65": False,
                 "disabilita": True},
            ],
        },
        "isee": {"fascia": "isee-0-6000"},
        "morosita": {"importo_euro": "1234.50", "mensilita": 7, "dal": "2026-04-01", "tipo": "spese",
                     "stadio": "formal-notice"},
        "segnali_fragilita": ["isolation", "arrears-not-tenant-fault"],
    }
    fragility = {
        **_aler_header("segnalazione-fragilita", "ALER-F-0001", "social-case-management", ["comune"]),
        "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "san-siro", "municipio": 7},
        "intestatario": {"codice_fiscale": CF_ALER},
        "nucleo": {"tipologia": "adult-with-over-65", "componenti": 2, "presenza_minori": False,
                   "presenza_over_65": True, "presenza_disabilita": True},
        "segnali": ["isolation"],
    }
    care = {
        **_aler_header("richiesta-assistenza", "ALER-A-0001", "care-coordination", ["asst"]),
        "id_richiesta": "ALER-R-0001",
        "stato": "attiva",
        "assistito": {"codice_fiscale": CF_ALER},
        "servizio": "telemedicina",
        "urgenza": "urgente",
        "finestra": {"dal": "2026-11-23", "al": "2026-11-30"},
        "logistica": {"piano": 4, "ascensore": False, "accesso": "porter-lets-in", "fascia_oraria": "morning",
                      "custode_accompagna": True, "lingua_interprete": "ar", "note_accesso": ["call-before-visit"]},
    }
    disclosure = {
        **_aler_header("segnalazione-riservata", "ALER-V-0001", "anti-violence-support", ["cav"]),
        "persona": {"codice_fiscale": CF_ALER},
        "contatto": {"canale": "telefono-sicuro", "telefono_sicuro": "+39 333 000-0000",
                     "fascia_oraria": "weekday-morning"},
    }
    del disclosure["id_correlazione"]
    eviction = {
        **_aler_header("evento-sfratto", "ALER-S-0001", "housing-support", ["comune", "fwa"]),
        "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
        "intestatario": {"codice_fiscale": CF_ALER},
        "procedura": {"stadio": "eviction-validated", "scadenza": "2027-01-15"},
    }
    emergency = {
        **_aler_header("evento-emergenza", "ALER-E-0001", "emergency-social", ["pis"]),
        "evento": {"tipo": "fire", "accaduto_il": "2026-11-20T03:15:00+01:00"},
        "luogo": {"id_edificio": "ALER-B-0042", "quartiere": "san-siro", "municipio": 7},
        "nucleo": {"persone": 4, "minori": 2, "over_65": 1, "con_disabilita": 1},
        "persona": {"codice_fiscale": CF_ALER},
        "contratto": {"id_contratto": "ALER-C-12345678"},
    }
    return {
        "segnalazione-morosita": arrears,
        "anagrafica-contratto": record,
        "segnalazione-fragilita": fragility,
        "richiesta-assistenza": care,
        "segnalazione-riservata": disclosure,
        "evento-sfratto": eviction,
        "evento-emergenza": emergency,
    }


# --- ALER's bulk tenancy export (CSV) ------------------------------------------------------------------------


def _aler_csv_rows() -> list[dict[str, str]]:
    """Rows as the gateway writes them (codes, ISO dates, ``.`` decimals): one with arrears, one without."""
    return [
        {"id_contratto": "ALER-C-12345678", "tipo_contratto": "SAT", "data_inizio": "2024-03-01",
         "data_fine": "2029-02-28", "id_unita": "ALER-U-7654321", "id_edificio": "ALER-B-0042", "via": "Via Esempio",
         "civico": "12/A", "quartiere": "molise-calvairate", "municipio": "4", "codice_fiscale_intestatario": CF_ALER,
         "tipologia_nucleo": "single-mother-minors", "componenti": "holder:age-25-44:-|child:age-6-13:MD",
         "fascia_canone": "accesso", "fascia_isee": "isee-0-6000", "canone_mensile_euro": "185.50",
         "canone_oltre_30_reddito": "si", "morosita_euro": "1234.50", "morosita_mensilita": "7",
         "morosita_dal": "2026-04-01", "morosita_tipo": "spese", "morosita_stadio": "formal-notice",
         "segnali_fragilita": "isolation|arrears-not-tenant-fault", "data_aggiornamento": "2026-11-20T09:30:00+01:00"},
        {"id_contratto": "ALER-C-12345679", "tipo_contratto": "SAP", "data_inizio": "1998-07-15", "data_fine": "",
         "id_unita": "ALER-U-7654322", "id_edificio": "ALER-B-0043", "via": "Piazzale Esempio", "civico": "3",
         "quartiere": "san-siro", "municipio": "7", "codice_fiscale_intestatario": CF_ALER_EXPORT,
         "tipologia_nucleo": "adult-with-over-65", "componenti": "holder:age-45-64:-|parent:age-75-84:AD",
         "fascia_canone": "protezione", "fascia_isee": "isee-6000-20000", "canone_mensile_euro": "62.00",
         "canone_oltre_30_reddito": "no", "morosita_euro": "", "morosita_mensilita": "", "morosita_dal": "",
         "morosita_tipo": "", "morosita_stadio": "", "segnali_fragilita": "", "data_aggiornamento":
         "2026-11-20T09:30:00+01:00"},
    ]


def _spreadsheet_rows() -> list[dict[str, str]]:
    """The same rows as an Italian spreadsheet writes them: labels and aliases, decimal comma, dd/mm/yyyy."""
    first, second = _aler_csv_rows()
    first |= {"data_inizio": "01/03/2024", "data_fine": "28/02/2029", "via": 'Via "Esempio"; scala B',
              "quartiere": "Molise Calvaire", "componenti": "intestatario:25-44 anni:-|figlia:6-13 anni:DM",
              "fascia_isee": "ISEE fino a 6.000 €", "canone_mensile_euro": "185,50", "canone_oltre_30_reddito": "Sì",
              "morosita_euro": "1234,5", "morosita_dal": "01/04/2026", "morosita_stadio": "Diffida / messa in mora"}
    second |= {"data_inizio": "15/07/1998", "quartiere": "S. Siro", "tipologia_nucleo": "Adulto con persona over 65",
               "canone_mensile_euro": "62", "canone_oltre_30_reddito": "NO"}
    return [first, second]


_SPREADSHEET_COLUMNS = (*COLUMNS[10:13], *COLUMNS[:10], *COLUMNS[13:])
"""A column order of ALER's own: the holder and the household first."""


def _csv(rows: list[dict[str, str]], *, columns: tuple[str, ...] = COLUMNS, bom: bool = False,
         newline: str = "\r\n", blank_line: bool = False, delimiter: str = DELIMITER) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(columns)
    for k, row in enumerate(rows):
        if blank_line and k:
            buffer.write(newline)
        writer.writerow([row.get(column, "") for column in columns])
    return ("\ufeff" if bom else "").encode("utf-8") + buffer.getvalue().encode("utf-8")


def _with_cells(row: int, **cells: str) -> bytes:
    rows = _aler_csv_rows()
    rows[row] |= cells
    return _csv(rows)


def _short_row() -> bytes:
    lines = _csv(_aler_csv_rows()).decode("utf-8").split("\r\n")
    lines[2] = lines[2].rsplit(DELIMITER, 1)[0]  # the second data row loses its last field
    return "\r\n".join(lines).encode("utf-8")


VALID_CSV: dict[str, Callable[[], bytes]] = {
    "esportazione-contratti": lambda: _csv(_aler_csv_rows()),
    "esportazione-contratti-foglio-di-calcolo": lambda: _csv(
        _spreadsheet_rows(), columns=_SPREADSHEET_COLUMNS, bom=True, newline="\n", blank_line=True),
}
"""ALER's tenancy exports (``text/csv``): as the gateway writes one, and as a spreadsheet does (byte-order mark,
LF, a blank line, another column order, labels and aliases, decimal comma, dd/mm/yyyy, a quoted ``;``)."""

INVALID_CSV: dict[str, tuple[Callable[[], bytes], list[tuple[str, str]]]] = {
    "export-missing-column": (lambda: _csv(_aler_csv_rows(), columns=tuple(c for c in COLUMNS if c != "fascia_isee")),
                              [("/header/fascia_isee", "missing")]),
    "export-unknown-column": (lambda: _csv(_aler_csv_rows(), columns=(*COLUMNS, "nome_intestatario")),
                              [(f"/header/{len(COLUMNS)}", "extra_forbidden")]),
    "export-comma-separated": (lambda: _csv(_aler_csv_rows(), delimiter=","),
                               [("/header/0", "extra_forbidden"), *((f"/header/{c}", "missing") for c in COLUMNS)]),
    "export-bad-check-character": (lambda: _with_cells(1, codice_fiscale_intestatario=_wrong_check_character(
        CF_ALER_EXPORT)), [("/rows/1/codice_fiscale_intestatario", "value_error")]),
    "export-unknown-quartiere": (lambda: _with_cells(0, quartiere="Brera"), [("/rows/0/quartiere", "value_error")]),
    "export-impossible-date": (lambda: _with_cells(1, data_inizio="31/02/1998"),
                               [("/rows/1/data_inizio", "date_from_datetime_parsing")]),
    "export-incomplete-arrears": (lambda: _with_cells(0, morosita_tipo=""), [("/rows/0/morosita_tipo", "missing")]),
    "export-arrears-without-amount": (lambda: _with_cells(1, morosita_mensilita="3"),
                                      [("/rows/1/morosita_euro", "missing")]),
    "export-no-holder": (lambda: _with_cells(0, componenti="spouse-partner:age-25-44:-|child:age-6-13:MD"),
                         [("/rows/0/componenti", "value_error")]),
    "export-flags-disagree-with-age": (lambda: _with_cells(1, componenti="holder:age-45-64:-|parent:age-75-84:D"),
                                       [("/rows/1/componenti", "value_error")]),
    "export-wrong-field-count": (_short_row, [("/rows/1", "field_count")]),
    "export-duplicate-contract": (lambda: _with_cells(1, id_contratto="ALER-C-12345678"),
                                  [("/rows/1/id_contratto", "duplicate")]),
    "export-not-utf8": (lambda: _csv(_spreadsheet_rows()).decode("utf-8").encode("cp1252"), [("", "utf-8")]),
}
"""Invalid exports: name -> (how it is made, the problems the gateway reports for it)."""


# --- ASST (FHIR R4) ------------------------------------------------------------------------------------------


def _text(summary: str) -> dict[str, str]:
    """A FHIR narrative (``text``) as the trust's systems write one: a line of what the record is, no person."""
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{summary}</p></div>'}



def _asst_meta(version: str) -> dict[str, Any]:
    return {"versionId": version, "lastUpdated": "2026-11-20T10:15:00+01:00",
            "tag": [{"system": PURPOSE_SYSTEM, "code": "care-coordination"},
                    {"system": ORGANISATION_SYSTEM, "code": "aler"}]}


def _subject() -> dict[str, Any]:
    return {"identifier": {"system": PREFERRED_CF_SYSTEM, "value": CF_ASST}}


def _asst_valid() -> dict[str, dict[str, Any]]:
    encounter = asst_encounter(CF_ASST, "enc-0001", "ASST-K-0001")
    immunization = {
        "resourceType": "Immunization",
        "id": "imm-0001",
        "meta": _asst_meta("1"),
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J07BB02"}]},
        "patient": _subject(),
        "occurrenceDateTime": "2026-10-21T11:00:00+02:00",
        "location": {"identifier": {"system": QUARTIERE_SYSTEM, "value": "gratosoglio"}},
    }
    service_request = {
        "resourceType": "ServiceRequest",
        "id": "req-0001",
        "meta": _asst_meta("2"),
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "category": [{"coding": [{"system": CARE_REQUEST_CATEGORY_SYSTEM, "code": "nurse-visit"}]}],
        "code": {"coding": [{"system": CARE_SERVICE_SYSTEM, "code": "home-nursing"}]},
        "subject": _subject(),
        "occurrencePeriod": {"start": "2026-12-01", "end": "2026-12-05"},
        "requester": {"identifier": {"system": ORGANISATION_SYSTEM, "value": "aler"}},
        "authoredOn": "2026-11-20T10:00:00+01:00",
    }
    discharge = asst_discharge(CF_ASST, "stay-0001", "ASST-K-0002")
    patient_url = "urn:uuid:6f1c2a4e-8b1d-4c3e-9f00-000000000001"
    bundled_encounter = asst_encounter(CF_ASST, "enc-0002", "ASST-K-0003")
    bundled_encounter["subject"] = {"reference": patient_url}
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": patient_url,
             "resource": {"resourceType": "Patient", "id": "pat-0001",
                          "identifier": [{"system": PREFERRED_CF_SYSTEM, "value": CF_ASST}]},
             "request": {"method": "PUT", "url": "Patient/pat-0001"}},
            {"fullUrl": "urn:uuid:6f1c2a4e-8b1d-4c3e-9f00-000000000002",
             "resource": bundled_encounter, "request": {"method": "PUT", "url": "Encounter/enc-0002"}},
            {"fullUrl": "urn:uuid:6f1c2a4e-8b1d-4c3e-9f00-000000000003",
             "resource": {**copy.deepcopy(immunization), "id": "imm-0002"},
             "request": {"method": "PUT", "url": "Immunization/imm-0002"}},
        ],
    }
    narratives = {"encounter": "Visita infermieristica domiciliare", "immunization": "Vaccinazione antinfluenzale",
                  "service-request": "Richiesta di assistenza infermieristica domiciliare",
                  "discharge": "Dimissione protetta"}
    documents: dict[str, dict[str, Any]] = {"encounter": encounter, "immunization": immunization,
                                            "service-request": service_request, "discharge": discharge}
    for name, summary in narratives.items():
        documents[name] = {"resourceType": documents[name]["resourceType"], "text": _text(summary),
                           **{k: v for k, v in documents[name].items() if k != "resourceType"}}
    entries: list[dict[str, Any]] = bundle["entry"]
    for entry, summary in zip(entries, ["Assistito identificato da codice fiscale",
                                        "Visita infermieristica domiciliare", "Vaccinazione antinfluenzale"],
                              strict=True):
        entry["resource"]["text"] = _text(summary)
    return {**documents, "bundle": bundle, **_fse_valid()}


# --- ASST: the shapes of the HL7 Italia implementation guides (FSE 2.0) -------------------------------------
# Written here, with synthetic people: a vaccination document Bundle (Composition first, then the Patient by
# codice fiscale, the Immunizations, who gave them and where), with relative and with urn:uuid references, and
# Immunizations coded with AIC, ATC, SNOMED CT, CVX and ICD-11 together, as Italian systems send them.

_ATC = "http://www.whocc.no/atc"
_AIC = "https://www.aifa.gov.it/aic"
_SNOMED = "http://snomed.info/sct"
_CVX = "http://hl7.org/fhir/sid/cvx"
_ICD11 = "http://id.who.int/icd/release/11/mms"
_LOINC = "http://loinc.org"


def _covid_vaccine() -> dict[str, Any]:
    return {"coding": [
        {"system": _AIC, "code": "049269018", "display": "Comirnaty"},
        {"system": _ATC, "code": "J07BX03", "display": "Vaccino anti COVID-19"},
        {"system": _SNOMED, "code": "1119349007", "display": "SARS-CoV-2 mRNA vaccine"},
        {"system": _ICD11, "code": "XM0GQ8", "display": "COVID-19 vaccine, RNA based"},
    ], "text": "Vaccino anti COVID-19 a mRNA"}


def _fse_patient(cf: str, patient_id: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id, "text": _text("Assistito identificato da codice fiscale"),
            "identifier": [{"system": PREFERRED_CF_SYSTEM, "value": cf}], "gender": "female"}


def _fse_immunization(immunization_id: str, patient: str, vaccine: dict[str, Any], day: str, lot: str,
                      performer: str, location: str, dose: int) -> dict[str, Any]:
    return {
        "resourceType": "Immunization", "id": immunization_id,
        "text": _text(f"Vaccinazione: {vaccine['text']}, dose {dose}"),
        "status": "completed", "vaccineCode": vaccine, "patient": {"reference": patient},
        "occurrenceDateTime": day, "primarySource": True, "lotNumber": lot, "location": {"reference": location},
        "performer": [{"actor": {"reference": performer}}],
        "protocolApplied": [{"doseNumberPositiveInt": dose}],
    }


def _vaccination_document(cf: str, *, urn: bool) -> dict[str, Any]:
    """A vaccination document as FSE 2.0 sends it; references ``Patient/<id>`` or (``urn``) by full URL."""
    ids = {"Composition": "doc-vacc-1", "Patient": "example-it-1", "Immunization": "imm-it-covid",
           "Immunization2": "imm-it-flu", "Organization": "asst-fbf-sacco", "Practitioner": "inf-0001",
           "Location": "casa-comunita-1"}
    kinds = {"Immunization2": "Immunization"}
    base = "https://fse.example.it/fhir"
    if urn:
        urls = {key: f"urn:uuid:2b9f6d1c-3c4e-4a57-9e3a-00000000000{n}" for n, key in enumerate(ids, 1)}
        refs = urls
    else:
        urls = {key: f"{base}/{kinds.get(key, key)}/{rid}" for key, rid in ids.items()}
        refs = {key: f"{kinds.get(key, key)}/{rid}" for key, rid in ids.items()}
    flu = {"coding": [{"system": _ATC, "code": "J07BB02", "display": "Vaccino influenzale, antigene di superficie"},
                      {"system": _SNOMED, "code": "1181000221105"}], "text": "Vaccino antinfluenzale"}
    resources: dict[str, dict[str, Any]] = {
        "Composition": {
            "resourceType": "Composition", "id": ids["Composition"], "text": _text("Certificato vaccinale"),
            "status": "final", "type": {"coding": [{"system": _LOINC, "code": "82593-5",
                                                    "display": "Immunization summary report"}]},
            "subject": {"reference": refs["Patient"]}, "date": "2026-11-20T10:30:00+01:00",
            "author": [{"reference": refs["Organization"]}], "title": "Certificato vaccinale",
            "custodian": {"reference": refs["Organization"]},
            "section": [{"title": "Vaccinazioni", "code": {"coding": [{"system": _LOINC, "code": "11369-6",
                                                                      "display": "History of Immunization note"}]},
                         "text": _text("Vaccinazioni somministrate"),
                         "entry": [{"reference": refs["Immunization"]}, {"reference": refs["Immunization2"]}]}],
        },
        "Patient": _fse_patient(cf, ids["Patient"]),
        "Immunization": _fse_immunization(ids["Immunization"], refs["Patient"], _covid_vaccine(), "2026-10-14",
                                          "GH1234", refs["Practitioner"], refs["Location"], 5),
        "Immunization2": _fse_immunization(ids["Immunization2"], refs["Patient"], flu, "2026-10-14", "FL2026A",
                                           refs["Practitioner"], refs["Location"], 1),
        "Organization": {"resourceType": "Organization", "id": ids["Organization"],
                         "text": _text("ASST Fatebenefratelli Sacco"), "name": "ASST Fatebenefratelli Sacco"},
        "Practitioner": {"resourceType": "Practitioner", "id": ids["Practitioner"],
                         "text": _text("Infermiere di famiglia e di comunità"),
                         "identifier": [{"system": "https://fse.example.it/sid/operatore", "value": "INF-0001"}]},
        "Location": {"resourceType": "Location", "id": ids["Location"], "text": _text("Casa di Comunità"),
                     "identifier": [{"system": QUARTIERE_SYSTEM, "value": "gratosoglio"}],
                     "name": "Casa di Comunità", "managingOrganization": {"reference": refs["Organization"]}},
    }
    return {
        "resourceType": "Bundle", "id": "fse-vacc-1" + ("-urn" if urn else ""),
        "identifier": {"system": "urn:ietf:rfc:3986",
                       "value": "urn:uuid:7d7c3a52-1f6e-4f0e-8b55-" + ("00000000000b" if urn else "00000000000a")},
        "type": "document", "timestamp": "2026-11-20T10:30:00+01:00",
        "entry": [{"fullUrl": urls[key], "resource": resource} for key, resource in resources.items()],
    }


def _fse_valid() -> dict[str, dict[str, Any]]:
    pneumococcal = {"coding": [{"system": _CVX, "code": "216", "display": "PCV20"},
                               {"system": _ATC, "code": "J07AL02"}], "text": "Vaccino pneumococcico coniugato"}
    zoster = {"coding": [{"system": _AIC, "code": "045373018", "display": "Shingrix"},
                         {"system": _ICD11, "code": "XM7KE3"}], "text": "Vaccino herpes zoster ricombinante"}
    standalone = {
        "resourceType": "Immunization", "id": "imm-it-covid-2", "meta": _asst_meta("1"),
        "text": _text("Vaccinazione anti COVID-19"), "status": "completed", "vaccineCode": _covid_vaccine(),
        "patient": {"identifier": {"system": PREFERRED_CF_SYSTEM, "value": CF_FSE}},
        "occurrenceDateTime": "2026-10-14T09:40:00+02:00", "lotNumber": "GH1234",
        "location": {"identifier": {"system": QUARTIERE_SYSTEM, "value": "San Siro"}},
    }
    return {
        "document-vaccinazioni": _vaccination_document(CF_FSE, urn=False),
        "document-vaccinazioni-urn-uuid": _vaccination_document(CF_FSE, urn=True),
        "immunization-covid-aic-atc-snomed-icd11": standalone,
        "immunization-pneumococcal-cvx": {**copy.deepcopy(standalone), "id": "imm-it-pcv", "vaccineCode": pneumococcal,
                                          "text": _text("Vaccinazione antipneumococcica")},
        "immunization-zoster-aic": {**copy.deepcopy(standalone), "id": "imm-it-rzv", "vaccineCode": zoster,
                                    "text": _text("Vaccinazione anti herpes zoster")},
    }


# --- Comune and FWA ------------------------------------------------------------------------------------------


def _comune_valid() -> dict[str, dict[str, Any]]:
    return {
        "evento-caso": comune_case_event(CF_COMUNE, "COM-CASO-0001", "COM-M-0001", "COM-K-0001"),
        "evento-caso-chiusura": comune_case_event(CF_COMUNE, "COM-CASO-0001", "COM-M-0002", "COM-K-0001",
                                                  evento="chiusura", stato="closed"),
        "evento-emergenza": comune_emergency(CF_COMUNE, "COM-M-0003"),
    }


def _fwa_valid() -> dict[str, dict[str, Any]]:
    return {
        "esito-approvato": fwa_outcome("REF-0001", "FWA-M-0001", "ALER-K-0001"),
        "esito-respinto": fwa_outcome("REF-0002", "FWA-M-0002", "ALER-K-0002", esito="respinto", amount=None),
    }


VALID: dict[str, Callable[[], dict[str, dict[str, Any]]]] = {
    "aler": _aler_valid,
    "asst": _asst_valid,
    "comune": _comune_valid,
    "fwa": _fwa_valid,
}


# --- invalid examples ----------------------------------------------------------------------------------------


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with ``value`` at the slash-separated ``path`` (``...`` deletes the key)."""
    result = copy.deepcopy(document)
    *parents, last = path.split("/")
    target: Any = result
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return result


Mutation = tuple[str, str, Any] | bytes
"""(valid example, path, value or ``...`` to delete) or the raw bytes sent."""

INVALID: dict[str, dict[str, tuple[Mutation, list[tuple[str, str]]]]] = {
    "aler": {
        "arrears-unknown-field": (("segnalazione-morosita", "intestatario/nome", "Mario"),
                                  [("/intestatario/nome", "extra_forbidden")]),
        "arrears-bad-check-character": (("segnalazione-morosita", "intestatario/codice_fiscale",
                                         _wrong_check_character(CF_ALER)),
                                        [("/intestatario/codice_fiscale", "value_error")]),
        "arrears-wrong-type": (("segnalazione-morosita", "morosita/mensilita", "sette"),
                               [("/morosita/mensilita", "int_parsing")]),
        "record-unknown-quartiere": (("anagrafica-contratto", "unita/quartiere", "Brera"),
                                     [("/unita/quartiere", "value_error")]),
        "fragility-missing-field": (("segnalazione-fragilita", "nucleo/presenza_minori", ...),
                                    [("/nucleo/presenza_minori", "missing")]),
        "care-unknown-service": (("richiesta-assistenza", "servizio", "psychological-support"),
                                 [("/servizio", "value_error")]),
        "disclosure-with-contract": (("segnalazione-riservata", "contratto", {"id_contratto": "ALER-C-12345678"}),
                                     [("/contratto", "extra_forbidden")]),
        "eviction-impossible-date": (("evento-sfratto", "procedura/scadenza", "2027-02-30"),
                                     [("/procedura/scadenza", "date_from_datetime_parsing")]),
        "emergency-unknown-event": (("evento-emergenza", "evento/tipo", "terremoto"),
                                    [("/evento/tipo", "value_error")]),
        "unknown-tipo-messaggio": (("segnalazione-morosita", "tipo_messaggio", "segnalazione-sfratto"),
                                   [("/tipo_messaggio", "literal_error")]),
        "malformed-json": (b'{"id_messaggio": "ALER-M-0009", "tipo_messaggio": "segnalazione-morosita",',
                           [("", "json")]),
    },
    "asst": {
        "encounter-bad-check-character": (("encounter", "subject/identifier/value", _wrong_check_character(CF_ASST)),
                                          [("/subject/identifier/value", "person-identifier")]),
        "encounter-unknown-service": (("encounter", "serviceType/coding/0/code", "acupuncture"),
                                      [("/serviceType/coding/0/code", "binding")]),
        "encounter-wrong-type": (("encounter", "status", 7), [("/status", "string_type")]),
        "service-request-missing-subject": (("service-request", "subject", ...), [("/subject", "missing")]),
        "immunization-unknown-field": (("immunization", "nome", "Mario"), [("/nome", "extra_forbidden")]),
        "unsupported-resource": (("encounter", "resourceType", "Observation"), [("/resourceType", "resource-type")]),
        "malformed-json": (b'{"resourceType": "Encounter", "id": ', [("", "json")]),
        "immunization-literal-patient-reference": (
            ("immunization-covid-aic-atc-snomed-icd11", "patient", {"reference": "Patient/example-it-1"}),
            [("/patient", "person-identifier")]),
        "immunization-unknown-aic-only": (
            ("immunization-covid-aic-atc-snomed-icd11", "vaccineCode",
             {"coding": [{"system": _AIC, "code": "000000000"}]}),
            [("/vaccineCode/coding/0/code", "binding")]),
        "immunization-icd11-only": (
            ("immunization-covid-aic-atc-snomed-icd11", "vaccineCode",
             {"coding": [{"system": _ICD11, "code": "XM0GQ8"}]}),
            [("/vaccineCode", "binding")]),
        "document-composition-not-first": (
            ("document-vaccinazioni", "entry/0/resource", {"resourceType": "Basic", "id": "not-a-composition",
                                                           "code": {"text": "altro"}}),
            [("/entry/0/resource/resourceType", "document")]),
        "document-without-identifier": (("document-vaccinazioni", "identifier", ...), [("/identifier", "required")]),
        "document-another-persons-immunization": (
            ("document-vaccinazioni", "entry/3/resource/patient",
             {"identifier": {"system": PREFERRED_CF_SYSTEM, "value": CF_FSE_OTHER}}),
            [("/entry/3/resource/patient", "document-subject")]),
        "patient-alone": (_dumps(_fse_patient(CF_FSE, "example-it-1")), [("/resourceType", "resource-type")]),
    },
    "comune": {
        "case-unknown-field": (("evento-caso", "persona/nome", "Mario"), [("/persona/nome", "extra_forbidden")]),
        "case-bad-check-character": (("evento-caso", "persona/codice_fiscale", _wrong_check_character(CF_COMUNE)),
                                     [("/persona/codice_fiscale", "value_error")]),
        "case-missing-field": (("evento-caso", "caso/id_caso", ...), [("/caso/id_caso", "missing")]),
        "case-wrong-type": (("evento-caso", "caso/municipio", "sette"), [("/caso/municipio", "int_type")]),
        "case-unknown-code": (("evento-caso", "caso/area", "astrologia"), [("/caso/area", "value_error")]),
        "emergency-unknown-event": (("evento-emergenza", "evento/tipo", "terremoto"),
                                    [("/evento/tipo", "value_error")]),
        "unknown-tipo-messaggio": (("evento-caso", "tipo_messaggio", "evento-casa"),
                                   [("/tipo_messaggio", "union_tag_invalid")]),
        "malformed-json": (b"\xff\xfe{}", [("", "utf-8")]),
    },
    "fwa": {
        "outcome-unknown-code": (("esito-approvato", "esito", "forse"), [("/esito", "literal_error")]),
        "outcome-missing-field": (("esito-approvato", "id_segnalazione", ...), [("/id_segnalazione", "missing")]),
        "outcome-wrong-type": (("esito-approvato", "importo_approvato_euro", [1500]),
                               [("/importo_approvato_euro", "decimal_type")]),
        "outcome-unknown-field": (("esito-respinto", "codice_fiscale", CF_ALER),
                                  [("/codice_fiscale", "extra_forbidden")]),
        "missing-tipo-messaggio": (("esito-approvato", "tipo_messaggio", ...),
                                   [("/tipo_messaggio", "union_tag_not_found")]),
        "malformed-json": (b'{"tipo_messaggio": "esito-segnalazione"}}', [("", "json")]),
    },
}
"""Per partner, invalid example name -> (how it is made from a valid one, the problems it must produce)."""


def golden_examples() -> dict[str, bytes]:
    """Relative path under ``contracts/examples/`` -> file content, for every golden example."""
    files: dict[str, bytes] = {}
    for partner, build in VALID.items():
        valid = build()
        for name, document in valid.items():
            files[f"{partner}/valid/{name}.json"] = _dumps(document)
        for name, (mutation, expected) in INVALID[partner].items():
            if isinstance(mutation, bytes):
                body = mutation
            else:
                source, path, value = mutation
                body = _dumps(_set(valid[source], path, value))
            files[f"{partner}/invalid/{name}.json"] = body
            files[f"{partner}/invalid/{name}.expected.json"] = _dumps(
                [{"pointer": pointer, "rule": rule} for pointer, rule in expected])
    for name, export in VALID_CSV.items():
        files[f"aler/valid/{name}.csv"] = export()
    for name, (make, expected) in INVALID_CSV.items():
        files[f"aler/invalid/{name}.csv"] = make()
        files[f"aler/invalid/{name}.expected.json"] = _dumps(
            [{"pointer": pointer, "rule": rule} for pointer, rule in expected])
    return dict(sorted(files.items()))


def write_golden_examples(directory: Path) -> list[Path]:
    """Write every golden example under ``directory``; returns the files written."""
    written = []
    for relative, content in golden_examples().items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(target)
    return written
