"""Tests for ALER's native messages besides the arrears referral, and for the ALER dispatcher.

``anagrafica-contratto`` -> ``tenancy.record``, ``segnalazione-fragilita`` -> ``tenancy.fragility-signal`` (F2),
``richiesta-assistenza`` -> ``care.service-request`` (F4), ``segnalazione-riservata`` -> ``safety.disclosure``
(F7), ``evento-sfratto`` -> ``tenancy.eviction-milestone`` (F9), ``evento-emergenza`` ->
``emergency.social-event`` (F10): field-by-field mapping, lossless round trips back to the native form, one
rejection per contract rule with the JSON pointer and rule the sender sees, routing by ``tipo_messaggio``, the
new code lists, and property tests over synthetic tenants: decoding is deterministic, a disclosure never carries
a tenancy id, and the street address appears in no payload but the tenancy record.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adapters.aler
from adapters.aler import NATIVE_MESSAGES, decode
from adapters.aler.care_request import SERVICES
from gateway.identity.codice_fiscale import omocodic_variant
from gateway.identity.crosswalk import Crosswalk
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.policy.minimise import minimise
from gateway.policy.registry import Flow, load_registry
from schemas.codelists import load_codelist
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from schemas.messages import MESSAGE_TYPES
from schemas.tenancy import (
    MINOR_AGE_BANDS,
    NEVER_CROSSES,
    OVER_65_AGE_BANDS,
    TENANCY_MESSAGE_TYPES,
    SafetyDisclosure,
    TenancyRecord,
)
from tests.adapter_checks import decoded_one, header_of, refusal
from tests.helpers import dumps, with_value
from tests.unit.test_adapter_aler_csv import HOUSEHOLDS

CF = "RSSMRA85T10A562S"
CF_OMOCODIC = omocodic_variant(CF, 2)
PHONE = "+393331234567"

# --- helpers ------------------------------------------------------------------------------------------------


def decode_one(document: Any, content_type: str = "application/json") -> Envelope:
    return decoded_one(decode, document, content_type)


def rejection(body: bytes, content_type: str = "application/json") -> DecodeError:
    return refusal(decode, body, content_type)


def header(kind: str, message_id: str) -> dict[str, Any]:
    return {
        "id_messaggio": message_id,
        "id_correlazione": "ALER-K-0001",
        "tipo_messaggio": kind,
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "housing-support",
        "destinatari": ["comune"],
    }


def tenancy_record() -> dict[str, Any]:
    """A valid ``anagrafica-contratto`` in which every field has a value distinct from the defaults."""
    return {
        **header("anagrafica-contratto", "ALER-T-0001"),
        "contratto": {
            "id_contratto": "ALER-C-12345678",
            "tipo": "SAT",
            "data_inizio": "2024-03-01",
            "data_fine": "2029-02-28",
            "fascia_canone": "accesso",
            "canone_mensile_euro": "185.50",
            "canone_oltre_30_reddito": True,
        },
        "unita": {
            "id_unita": "ALER-U-7654321",
            "id_edificio": "ALER-B-0042",
            "via": "Via Civitavecchia",
            "civico": "12/A",
            "quartiere": "Molise Calvaire",
            "municipio": 4,
        },
        "intestatario": {"codice_fiscale": CF.lower()},
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
        "morosita": {
            "importo_euro": "1234.50",
            "mensilita": 7,
            "dal": "2026-04-01",
            "tipo": "spese",
            "stadio": "formal-notice",
        },
        "segnali_fragilita": ["Isolamento", "arrears-not-tenant-fault"],
    }


def fragility_referral() -> dict[str, Any]:
    """A valid ``segnalazione-fragilita``."""
    return {
        **header("segnalazione-fragilita", "ALER-F-0001"),
        "finalita": "social-case-management",
        "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "S. Siro", "municipio": 7},
        "intestatario": {"codice_fiscale": CF},
        "nucleo": {"tipologia": "adult-with-over-65", "componenti": 2, "presenza_minori": False,
                   "presenza_over_65": True, "presenza_disabilita": True},
        "segnali": ["isolation", "Alloggio degradato"],
    }


def care_request() -> dict[str, Any]:
    """A valid ``richiesta-assistenza``."""
    return {
        **header("richiesta-assistenza", "ALER-A-0001"),
        "finalita": "care-coordination",
        "destinatari": ["asst"],
        "id_richiesta": "ALER-R-0001",
        "stato": "annullata",
        "assistito": {"codice_fiscale": CF_OMOCODIC},
        "servizio": "telemedicina",
        "urgenza": "urgente",
        "finestra": {"dal": "2026-11-23", "al": "2026-11-30"},
    }


def eviction_milestone() -> dict[str, Any]:
    """A valid ``evento-sfratto``."""
    return {
        **header("evento-sfratto", "ALER-S-0001"),
        "destinatari": ["comune", "fwa"],
        "contratto": {"id_contratto": "ALER-C-12345678", "quartiere": "gratosoglio", "municipio": 5},
        "intestatario": {"codice_fiscale": CF},
        "procedura": {"stadio": "eviction-validated", "scadenza": "2027-01-15"},
    }


def emergency_event() -> dict[str, Any]:
    """A valid ``evento-emergenza``."""
    return {
        **header("evento-emergenza", "ALER-E-0001"),
        "finalita": "emergency-social",
        "destinatari": ["pis"],
        "evento": {"tipo": "Incendio", "accaduto_il": "2026-11-20T03:15:00+01:00"},
        "luogo": {"id_edificio": "ALER-B-0042", "quartiere": "SAN SIRO", "municipio": 7},
        "nucleo": {"persone": 4, "minori": 2, "over_65": 1, "con_disabilita": 1},
        "persona": {"codice_fiscale": "STP0303080000001"},
        "contratto": {"id_contratto": "ALER-C-12345678"},
    }


def disclosure() -> dict[str, Any]:
    """A valid ``segnalazione-riservata`` (no ``id_correlazione``: it is refused)."""
    document = {
        **header("segnalazione-riservata", "ALER-V-0001"),
        "finalita": "anti-violence-support",
        "destinatari": ["cav"],
        "persona": {"codice_fiscale": CF},
        "contatto": {"canale": "telefono-sicuro", "telefono_sicuro": "+39 333 123-4567",
                     "fascia_oraria": "weekday-morning"},
    }
    del document["id_correlazione"]
    return document


NATIVE: dict[str, Callable[[], dict[str, Any]]] = {
    "anagrafica-contratto": tenancy_record,
    "segnalazione-fragilita": fragility_referral,
    "richiesta-assistenza": care_request,
    "segnalazione-riservata": disclosure,
    "evento-sfratto": eviction_milestone,
    "evento-emergenza": emergency_event,
}
CANONICAL_TYPE = {
    "segnalazione-morosita": "tenancy.arrears-referral",
    "anagrafica-contratto": "tenancy.record",
    "segnalazione-fragilita": "tenancy.fragility-signal",
    "richiesta-assistenza": "care.service-request",
    "segnalazione-riservata": "safety.disclosure",
    "evento-sfratto": "tenancy.eviction-milestone",
    "evento-emergenza": "emergency.social-event",
}


# --- field by field -----------------------------------------------------------------------------------------

EVENT_AT = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


def test_tenancy_record_decodes_field_by_field() -> None:
    envelope = decode_one(tenancy_record())
    assert header_of(envelope) == {
        "message_id": "ALER-T-0001", "correlation_id": "ALER-K-0001", "message_type": "tenancy.record",
        "schema_version": "1.0", "sender": "aler", "recipients": ("comune",),
        "subject": {"identifiers": ({"system": "cf", "value": CF},
                                    {"system": "aler-contract", "value": "ALER-C-12345678"}), "pseudonym": None},
        "purpose": "housing-support", "sensitivity": ("S2", "S3"), "occurred_at": EVENT_AT,
    }
    assert envelope.payload == {
        "contract_id": "ALER-C-12345678",
        "contract_type": "SAT",
        "start_date": "2024-03-01",
        "end_date": "2029-02-28",
        "unit_id": "ALER-U-7654321",
        "building_id": "ALER-B-0042",
        "address": {"street": "Via Civitavecchia", "house_number": "12/A"},
        "quartiere": "molise-calvairate",
        "municipio": 4,
        "household_type": "single-mother-minors",
        "members": [
            {"relation": "holder", "age_band": "age-25-44", "minor": False, "over_65": False, "disability": False},
            {"relation": "child", "age_band": "age-6-13", "minor": True, "over_65": False, "disability": True},
        ],
        "rent_band": "accesso",
        "isee_band": "isee-0-6000",
        "monthly_rent_cents": 18550,
        "rent_over_30_percent_of_income": True,
        "arrears": {"amount_cents": 123450, "months": 7, "since": "2026-04-01", "kind": "charges",
                    "stage": "formal-notice"},
        "fragility_signals": ["isolation", "arrears-not-tenant-fault"],
    }


def test_tenancy_record_optional_parts_may_be_left_out() -> None:
    document = tenancy_record()
    for path in ("id_correlazione", "finalita", "destinatari", "contratto/data_fine", "morosita",
                 "segnali_fragilita"):
        document = with_value(document, path, ...)
    envelope = decode_one(document)
    assert envelope.correlation_id == envelope.message_id
    assert (envelope.purpose, envelope.recipients) == (None, ())
    assert "end_date" not in envelope.payload
    assert "arrears" not in envelope.payload
    assert envelope.payload["fragility_signals"] == []


def test_fragility_referral_decodes_field_by_field() -> None:
    envelope = decode_one(fragility_referral())
    assert envelope.message_type == "tenancy.fragility-signal"
    assert envelope.sensitivity == ("S2", "S3")
    assert envelope.purpose == "social-case-management"
    assert [i.model_dump() for i in envelope.subject.identifiers] == [
        {"system": "cf", "value": CF}, {"system": "aler-contract", "value": "ALER-C-12345678"}]
    assert envelope.payload == {
        "signals": ["isolation", "degraded-housing"],
        "quartiere": "san-siro",
        "municipio": 7,
        "household": {"type": "adult-with-over-65", "size": 2, "minors": False, "over_65": True, "disability": True},
    }


def test_care_request_decodes_to_a_service_request_field_by_field() -> None:
    envelope = decode_one(care_request())
    assert envelope.message_type == "care.service-request"
    assert envelope.sensitivity == ("S3",)
    assert envelope.recipients == ("asst",)
    assert [i.model_dump() for i in envelope.subject.identifiers] == [{"system": "cf", "value": CF_OMOCODIC}]
    assert envelope.payload == {
        "request_id": "ALER-R-0001",
        "status": "revoked",
        "intent": "proposal",
        "priority": "urgent",
        "category": "telemedicine",
        "service": "specialist-telemedicine",
        "requested_from": "2026-11-23",
        "requested_until": "2026-11-30",
        "requester": "aler",
        "authored_on": "2026-11-20T09:30:00+01:00",
        "security_labels": [],
        "masked_at_source": False,
    }


def test_care_request_defaults_to_an_active_request_with_an_open_window() -> None:
    document = with_value(with_value(care_request(), "stato", ...), "finestra/al", ...)
    payload = decode_one(document).payload
    assert payload["status"] == "active"
    assert "requested_until" not in payload


@pytest.mark.parametrize(("servizio", "category", "service"), [
    ("home-nursing-visit", "nurse-visit", "home-nursing"),
    ("Visita infermieristica a domicilio", "nurse-visit", "home-nursing"),
    ("telemedicine", "telemedicine", "specialist-telemedicine"),
    ("flu-vaccination", "vaccination", "vaccination"),
    ("vaccinazione-antinfluenzale", "vaccination", "vaccination"),
])
def test_requested_services_map_to_asst_categories_and_services(servizio: str, category: str, service: str) -> None:
    payload = decode_one(with_value(care_request(), "servizio", servizio)).payload
    assert (payload["category"], payload["service"]) == (category, service)


@pytest.mark.parametrize(("urgenza", "priority"), [("routine", "routine"), ("ordinaria", "routine"),
                                                    ("urgente", "urgent"), ("asap", "asap"),
                                                    ("prima-possibile", "asap")])
def test_urgency_becomes_the_fhir_priority(urgenza: str, priority: str) -> None:
    assert decode_one(with_value(care_request(), "urgenza", urgenza)).payload["priority"] == priority


def test_eviction_milestone_decodes_field_by_field() -> None:
    envelope = decode_one(eviction_milestone())
    assert envelope.message_type == "tenancy.eviction-milestone"
    assert envelope.sensitivity == ("S2",)
    assert envelope.recipients == ("comune", "fwa")
    assert envelope.subject.first("aler-contract") == "ALER-C-12345678"
    assert envelope.payload == {"stage": "eviction-validated", "deadline": "2027-01-15", "quartiere": "gratosoglio",
                                "municipio": 5}


def test_emergency_event_decodes_field_by_field() -> None:
    envelope = decode_one(emergency_event())
    assert envelope.message_type == "emergency.social-event"
    assert envelope.sensitivity == ("S2",)
    assert envelope.purpose == "emergency-social"
    assert [i.model_dump() for i in envelope.subject.identifiers] == [
        {"system": "stp", "value": "STP0303080000001"}, {"system": "aler-contract", "value": "ALER-C-12345678"}]
    assert envelope.payload == {
        "event_type": "fire",
        "quartiere": "san-siro",
        "municipio": 7,
        "building_id": "ALER-B-0042",
        "household": {"persons": 4, "minors": 2, "over_65": 1, "with_disability": 1},
        "occurred_at": "2026-11-20T03:15:00+01:00",
    }


@pytest.mark.parametrize(("leave_out", "systems"), [("persona", ["aler-contract"]), ("contratto", ["stp"])])
def test_emergency_event_needs_only_one_of_person_and_contract(leave_out: str, systems: list[str]) -> None:
    envelope = decode_one(with_value(emergency_event(), leave_out, ...))
    assert [i.system for i in envelope.subject.identifiers] == systems


def test_emergency_event_without_person_or_contract_is_rejected_at_persona() -> None:
    document = with_value(with_value(emergency_event(), "persona", ...), "contratto", ...)
    error = rejection(dumps(document))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [("/persona", "missing")]


def test_disclosure_decodes_to_a_safe_contact_channel_only() -> None:
    envelope = decode_one(disclosure())
    assert envelope.message_type == "safety.disclosure"
    assert envelope.sensitivity == ("S4", "SDV", "R")
    assert envelope.purpose == "anti-violence-support"
    assert envelope.correlation_id == envelope.message_id == "ALER-V-0001"
    assert [i.model_dump() for i in envelope.subject.identifiers] == [{"system": "cf", "value": CF}]
    assert envelope.payload == {"channel": "phone-safe-number", "safe_phone": PHONE, "time_window": "weekday-morning"}


@pytest.mark.parametrize("channel", ["in-person-at-casa-centre", "tramite-assistente-sociale"])
def test_disclosure_without_a_phone_for_other_channels(channel: str) -> None:
    document = with_value(with_value(disclosure(), "contatto/canale", channel), "contatto/telefono_sicuro", ...)
    payload = decode_one(document).payload
    assert set(payload) == {"channel", "time_window"}


# --- round trips: every native field lands somewhere, and comes back ----------------------------------------

_ARREARS_NATIVE = {"rent": "canone", "charges": "spese", "utilities": "utenze"}
_STATUS_NATIVE = {"active": "attiva", "revoked": "annullata"}
_SERVICE_NATIVE = {pair: code for code, pair in SERVICES.items()}


def _person(envelope: Envelope) -> str:
    return next(i.value for i in envelope.subject.identifiers if i.system in ("cf", "stp", "eni"))


def _header_back(envelope: Envelope, kind: str) -> dict[str, Any]:
    back: dict[str, Any] = {"id_messaggio": envelope.message_id, "tipo_messaggio": kind, "versione": "1.0",
                            "data_evento": envelope.occurred_at.isoformat()}
    if envelope.correlation_id != envelope.message_id:
        back["id_correlazione"] = envelope.correlation_id
    if envelope.purpose is not None:
        back["finalita"] = envelope.purpose
    if envelope.recipients:
        back["destinatari"] = list(envelope.recipients)
    return back


def to_native(envelope: Envelope) -> dict[str, Any]:
    """The native message an envelope came from, with codes instead of labels and aliases."""
    p = envelope.payload
    kind = {v: k for k, v in CANONICAL_TYPE.items()}[envelope.message_type]
    back = _header_back(envelope, kind)
    contract = envelope.subject.first("aler-contract")
    if kind == "anagrafica-contratto":
        contratto = {"id_contratto": p["contract_id"], "tipo": p["contract_type"], "data_inizio": p["start_date"],
                     "data_fine": p.get("end_date"), "fascia_canone": p["rent_band"],
                     "canone_mensile_euro": f"{p['monthly_rent_cents'] / 100:.2f}",
                     "canone_oltre_30_reddito": p["rent_over_30_percent_of_income"]}
        back |= {
            "contratto": {k: v for k, v in contratto.items() if v is not None},
            "unita": {"id_unita": p["unit_id"], "id_edificio": p["building_id"], "via": p["address"]["street"],
                      "civico": p["address"]["house_number"], "quartiere": p["quartiere"], "municipio": p["municipio"]},
            "intestatario": {"codice_fiscale": _person(envelope)},
            "nucleo": {"tipologia": p["household_type"], "componenti": [
                {"relazione": m["relation"], "fascia_eta": m["age_band"], "minore": m["minor"],
                 "over_65": m["over_65"], "disabilita": m["disability"]} for m in p["members"]]},
            "isee": {"fascia": p["isee_band"]},
            "segnali_fragilita": p["fragility_signals"],
        }
        if "arrears" in p:
            a = p["arrears"]
            morosita = {"importo_euro": f"{a['amount_cents'] / 100:.2f}", "mensilita": a["months"],
                        "dal": a.get("since"), "tipo": _ARREARS_NATIVE[a["kind"]], "stadio": a["stage"]}
            back["morosita"] = {k: v for k, v in morosita.items() if v is not None}
    elif kind == "segnalazione-fragilita":
        h = p["household"]
        back |= {"contratto": {"id_contratto": contract, "quartiere": p["quartiere"], "municipio": p["municipio"]},
                 "intestatario": {"codice_fiscale": _person(envelope)},
                 "nucleo": {"tipologia": h["type"], "componenti": h["size"], "presenza_minori": h["minors"],
                            "presenza_over_65": h["over_65"], "presenza_disabilita": h["disability"]},
                 "segnali": p["signals"]}
    elif kind == "richiesta-assistenza":
        window = {"dal": p["requested_from"], "al": p.get("requested_until")}
        back |= {"id_richiesta": p["request_id"], "stato": _STATUS_NATIVE[p["status"]],
                 "assistito": {"codice_fiscale": _person(envelope)},
                 "servizio": _SERVICE_NATIVE[(p["category"], p["service"])], "urgenza": p["priority"],
                 "finestra": {k: v for k, v in window.items() if v is not None}}
    elif kind == "evento-sfratto":
        back |= {"contratto": {"id_contratto": contract, "quartiere": p["quartiere"], "municipio": p["municipio"]},
                 "intestatario": {"codice_fiscale": _person(envelope)},
                 "procedura": {"stadio": p["stage"], "scadenza": p["deadline"]}}
    elif kind == "evento-emergenza":
        h = p["household"]
        evento = {"tipo": p["event_type"], "accaduto_il": p.get("occurred_at")}
        back |= {"evento": {k: v for k, v in evento.items() if v is not None},
                 "luogo": {"id_edificio": p["building_id"], "quartiere": p["quartiere"], "municipio": p["municipio"]},
                 "nucleo": {"persone": h["persons"], "minori": h["minors"], "over_65": h["over_65"],
                            "con_disabilita": h["with_disability"]}}
        person = next((i.value for i in envelope.subject.identifiers if i.system != "aler-contract"), None)
        if person is not None:
            back["persona"] = {"codice_fiscale": person}
        if contract is not None:
            back["contratto"] = {"id_contratto": contract}
    else:  # segnalazione-riservata
        contatto = {"canale": p["channel"], "telefono_sicuro": p.get("safe_phone"), "fascia_oraria": p["time_window"]}
        back |= {"persona": {"codice_fiscale": _person(envelope)},
                 "contatto": {k: v for k, v in contatto.items() if v is not None}}
    return back


@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_round_trip_through_the_canonical_form_is_lossless(kind: str) -> None:
    envelope = decode_one(NATIVE[kind]())
    rebuilt = to_native(envelope)
    assert decode_one(rebuilt) == envelope
    assert to_native(decode_one(rebuilt)) == rebuilt


# --- rejections ---------------------------------------------------------------------------------------------

TWO_HOLDERS = [
    {"relazione": "holder", "fascia_eta": "age-25-44", "minore": False, "over_65": False, "disabilita": False},
    {"relazione": "holder", "fascia_eta": "age-45-64", "minore": False, "over_65": False, "disabilita": False},
]

REJECTIONS: list[tuple[str, str, str, Any, str, str]] = [
    # (case id, kind, native path, value or ... to delete, pointer, rule)
    ("record: unknown contract type", "anagrafica-contratto", "contratto/tipo", "ERP", "/contratto/tipo",
     "literal_error"),
    ("record: ends before it starts", "anagrafica-contratto", "contratto/data_fine", "2024-02-29",
     "/contratto/data_fine", "value_error"),
    ("record: rent with 3 decimals", "anagrafica-contratto", "contratto/canone_mensile_euro", "12.345",
     "/contratto/canone_mensile_euro", "decimal_max_places"),
    ("record: rent-to-income flag missing", "anagrafica-contratto", "contratto/canone_oltre_30_reddito", ...,
     "/contratto/canone_oltre_30_reddito", "missing"),
    ("record: municipio 10", "anagrafica-contratto", "unita/municipio", 10, "/unita/municipio", "less_than_equal"),
    ("record: unknown quartiere", "anagrafica-contratto", "unita/quartiere", "Brera", "/unita/quartiere",
     "value_error"),
    ("record: house number with ;", "anagrafica-contratto", "unita/civico", "12;A", "/unita/civico",
     "string_pattern_mismatch"),
    ("record: building id missing", "anagrafica-contratto", "unita/id_edificio", ..., "/unita/id_edificio",
     "missing"),
    ("record: no members", "anagrafica-contratto", "nucleo/componenti", [], "/nucleo/componenti", "too_short"),
    ("record: two holders", "anagrafica-contratto", "nucleo/componenti", TWO_HOLDERS, "/nucleo/componenti",
     "value_error"),
    ("record: adult flagged minor", "anagrafica-contratto", "nucleo/componenti/0/minore", True,
     "/nucleo/componenti/0", "value_error"),
    ("record: child not flagged minor", "anagrafica-contratto", "nucleo/componenti/1/minore", False,
     "/nucleo/componenti/1", "value_error"),
    ("record: unknown relation", "anagrafica-contratto", "nucleo/componenti/1/relazione", "cugino-di-terzo-grado",
     "/nucleo/componenti/1/relazione", "value_error"),
    ("record: unknown age band", "anagrafica-contratto", "nucleo/componenti/1/fascia_eta", "age-6-12",
     "/nucleo/componenti/1/fascia_eta", "value_error"),
    ("record: member name", "anagrafica-contratto", "nucleo/componenti/1/nome", "Giulia",
     "/nucleo/componenti/1/nome", "extra_forbidden"),
    ("record: member birth date", "anagrafica-contratto", "nucleo/componenti/1/data_nascita", "2015-05-01",
     "/nucleo/componenti/1/data_nascita", "extra_forbidden"),
    ("record: ISEE value", "anagrafica-contratto", "isee/valore_euro", "5400.00", "/isee/valore_euro",
     "extra_forbidden"),
    ("record: nothing owed", "anagrafica-contratto", "morosita/importo_euro", "0", "/morosita/importo_euro",
     "greater_than"),
    ("record: arrears stage none", "anagrafica-contratto", "morosita/stadio", "none", "/morosita/stadio",
     "value_error"),
    ("record: arrears kind in English", "anagrafica-contratto", "morosita/tipo", "rent", "/morosita/tipo",
     "literal_error"),
    ("record: signal twice", "anagrafica-contratto", "segnali_fragilita", ["isolation", "Isolamento"],
     "/segnali_fragilita", "value_error"),
    ("record: free-text signal", "anagrafica-contratto", "segnali_fragilita", ["vive solo e non esce mai"],
     "/segnali_fragilita/0", "value_error"),
    ("record: violence is not a fragility signal", "anagrafica-contratto", "segnali_fragilita", ["violenza"],
     "/segnali_fragilita/0", "value_error"),
    ("record: health note", "anagrafica-contratto", "nucleo/diagnosi", "x", "/nucleo/diagnosi", "extra_forbidden"),
    ("record: bad check character", "anagrafica-contratto", "intestatario/codice_fiscale", "RSSMRA85T10A562T",
     "/intestatario/codice_fiscale", "value_error"),
    ("record: timestamp without offset", "anagrafica-contratto", "data_evento", "2026-11-20T09:30:00",
     "/data_evento", "timezone_aware"),
    ("record: versione 2.0", "anagrafica-contratto", "versione", "2.0", "/versione", "literal_error"),
    ("fragility: no signals", "segnalazione-fragilita", "segnali", [], "/segnali", "too_short"),
    ("fragility: unknown signal", "segnalazione-fragilita", "segnali", ["isolation", "rumore"], "/segnali/1",
     "value_error"),
    ("fragility: household of 0", "segnalazione-fragilita", "nucleo/componenti", 0, "/nucleo/componenti",
     "greater_than_equal"),
    ("fragility: address", "segnalazione-fragilita", "contratto/via", "Via Civitavecchia", "/contratto/via",
     "extra_forbidden"),
    ("fragility: free-text note", "segnalazione-fragilita", "nota", "x", "/nota", "extra_forbidden"),
    ("fragility: minors flag missing", "segnalazione-fragilita", "nucleo/presenza_minori", ...,
     "/nucleo/presenza_minori", "missing"),
    ("care: psychological support", "richiesta-assistenza", "servizio", "psychological-support", "/servizio",
     "value_error"),
    ("care: stat priority", "richiesta-assistenza", "urgenza", "stat", "/urgenza", "value_error"),
    ("care: window backwards", "richiesta-assistenza", "finestra/al", "2026-11-22", "/finestra/al", "value_error"),
    ("care: request id not a FHIR id", "richiesta-assistenza", "id_richiesta", "ALER_R_1", "/id_richiesta",
     "string_pattern_mismatch"),
    ("care: unknown state", "richiesta-assistenza", "stato", "chiusa", "/stato", "literal_error"),
    ("care: ALER contract id", "richiesta-assistenza", "contratto", {"id_contratto": "ALER-C-12345678"},
     "/contratto", "extra_forbidden"),
    ("care: free-text note", "richiesta-assistenza", "note", "diabetico", "/note", "extra_forbidden"),
    ("care: patient missing", "richiesta-assistenza", "assistito", ..., "/assistito", "missing"),
    ("eviction: stage none", "evento-sfratto", "procedura/stadio", "none", "/procedura/stadio", "value_error"),
    ("eviction: deadline missing", "evento-sfratto", "procedura/scadenza", ..., "/procedura/scadenza", "missing"),
    ("eviction: impossible deadline", "evento-sfratto", "procedura/scadenza", "2027-02-30", "/procedura/scadenza",
     "date_from_datetime_parsing"),
    ("emergency: unknown event", "evento-emergenza", "evento/tipo", "terremoto", "/evento/tipo", "value_error"),
    ("emergency: more minors and elderly than people", "evento-emergenza", "nucleo/minori", 4, "/nucleo",
     "value_error"),
    ("emergency: nobody", "evento-emergenza", "nucleo/persone", 0, "/nucleo/persone", "greater_than_equal"),
    ("emergency: street address", "evento-emergenza", "luogo/via", "Via Civitavecchia", "/luogo/via",
     "extra_forbidden"),
    ("emergency: time without offset", "evento-emergenza", "evento/accaduto_il", "2026-11-20T03:15:00",
     "/evento/accaduto_il", "timezone_aware"),
    ("disclosure: correlation id", "segnalazione-riservata", "id_correlazione", "ALER-C-12345678",
     "/id_correlazione", "extra_forbidden"),
    ("disclosure: contract", "segnalazione-riservata", "contratto", {"id_contratto": "ALER-C-12345678"},
     "/contratto", "extra_forbidden"),
    ("disclosure: unit id", "segnalazione-riservata", "id_unita", "ALER-U-7654321", "/id_unita", "extra_forbidden"),
    ("disclosure: quartiere", "segnalazione-riservata", "persona/quartiere", "san-siro", "/persona/quartiere",
     "extra_forbidden"),
    ("disclosure: about the abuser", "segnalazione-riservata", "autore", {"relazione": "spouse-partner"}, "/autore",
     "extra_forbidden"),
    ("disclosure: free-text note", "segnalazione-riservata", "contatto/note", "x", "/contatto/note",
     "extra_forbidden"),
    ("disclosure: phone channel without phone", "segnalazione-riservata", "contatto/telefono_sicuro", ...,
     "/contatto/telefono_sicuro", "value_error"),
    ("disclosure: phone with in-person channel", "segnalazione-riservata", "contatto/canale",
     "in-person-at-casa-centre", "/contatto/telefono_sicuro", "value_error"),
    ("disclosure: phone with letters", "segnalazione-riservata", "contatto/telefono_sicuro", "333-CALLME",
     "/contatto/telefono_sicuro", "string_pattern_mismatch"),
    ("disclosure: unknown channel", "segnalazione-riservata", "contatto/canale", "email", "/contatto/canale",
     "value_error"),
    ("disclosure: unknown time window", "segnalazione-riservata", "contatto/fascia_oraria", "sempre",
     "/contatto/fascia_oraria", "value_error"),
]


@pytest.mark.parametrize(("kind", "path", "value", "pointer", "rule"), [c[1:] for c in REJECTIONS],
                         ids=[c[0] for c in REJECTIONS])
def test_contract_rejections_name_the_field_and_the_rule(kind: str, path: str, value: Any, pointer: str,
                                                         rule: str) -> None:
    error = rejection(dumps(with_value(NATIVE[kind](), path, value)))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [(pointer, rule)]


def test_every_problem_is_reported_not_just_the_first() -> None:
    document = with_value(tenancy_record(), "unita/municipio", 0)
    document = with_value(document, "nucleo/componenti/1/fascia_eta", "age-6-12")
    document = with_value(document, "contratto/nome_intestatario", "Mario")
    assert {(p.pointer, p.rule) for p in rejection(dumps(document)).problems} == {
        ("/unita/municipio", "greater_than_equal"),
        ("/nucleo/componenti/1/fascia_eta", "value_error"),
        ("/contratto/nome_intestatario", "extra_forbidden"),
    }


def test_code_list_rejection_lists_the_allowed_codes() -> None:
    [problem] = rejection(dumps(with_value(fragility_referral(), "segnali", ["rumore"]))).problems
    assert "fragility-signals" in problem.message
    for code in load_codelist("fragility_signals").labels_it:
        assert code in problem.message


SECRET_INPUTS: list[tuple[str, str, Any]] = [
    ("anagrafica-contratto", "intestatario/codice_fiscale", "RSSMRA85T10A562T"),
    ("anagrafica-contratto", "unita/via", CF * 8),
    ("anagrafica-contratto", "unita/civico", CF + ";"),
    ("anagrafica-contratto", "nucleo/componenti/1/relazione", CF),
    ("segnalazione-fragilita", "segnali", [CF]),
    ("richiesta-assistenza", "id_richiesta", CF + "_"),
    ("segnalazione-riservata", "contatto/telefono_sicuro", "+39 333 123456789012"),
    ("segnalazione-riservata", "contatto/telefono_sicuro", "+39 333 1234567 int"),
    ("segnalazione-riservata", "contatto/canale", PHONE + "x"),
    ("segnalazione-riservata", "contatto/fascia_oraria", PHONE),
]


@pytest.mark.parametrize(("kind", "path", "value"), SECRET_INPUTS, ids=[f"{k}:{p}" for k, p, _ in SECRET_INPUTS])
def test_no_problem_echoes_a_submitted_value(kind: str, path: str, value: Any) -> None:
    error = rejection(dumps(with_value(NATIVE[kind](), path, value)))
    said = " ".join([error.detail, str(error), *(p.message for p in error.problems),
                     *(p.pointer for p in error.problems)])
    for fragment in (CF, CF[:11], "3331234567", "123456789012", PHONE):
        assert fragment not in said


# --- the dispatcher -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(NATIVE))
def test_dispatcher_routes_by_tipo_messaggio(kind: str) -> None:
    assert decode_one(NATIVE[kind]()).message_type == CANONICAL_TYPE[kind]


def test_dispatcher_still_routes_the_arrears_referral() -> None:
    from gateway.simulators import aler_arrears_message

    tenant = next(generate_tenants("S", seed=5, limit=1))
    assert decode_one(aler_arrears_message(tenant, "m-1")).message_type == "tenancy.arrears-referral"


def test_native_messages_name_every_routed_type_and_pin_their_tipo() -> None:
    assert set(NATIVE_MESSAGES) == set(CANONICAL_TYPE)
    for kind, model in NATIVE_MESSAGES.items():
        schema = model.model_json_schema()
        assert schema["properties"]["tipo_messaggio"]["const"] == kind
        assert schema["additionalProperties"] is False


@pytest.mark.parametrize(("value", "rule"), [(..., "missing"), ("segnalazione-sfratto", "literal_error"),
                                             ("", "literal_error"), (7, "literal_error"), (None, "literal_error"),
                                             (["anagrafica-contratto"], "literal_error"),
                                             ("ANAGRAFICA-CONTRATTO", "literal_error")])
def test_missing_or_unknown_tipo_messaggio_lists_the_accepted_values(value: Any, rule: str) -> None:
    error = rejection(dumps(with_value(tenancy_record(), "tipo_messaggio", value)))
    assert error.kind == "contract"
    [problem] = error.problems
    assert (problem.pointer, problem.rule) == ("/tipo_messaggio", rule)
    for kind in CANONICAL_TYPE:
        assert kind in problem.message


def test_a_body_sent_under_another_tipo_is_judged_by_that_contract() -> None:
    error = rejection(dumps(with_value(tenancy_record(), "tipo_messaggio", "segnalazione-riservata")))
    pointers = {p.pointer for p in error.problems}
    assert {"/contratto", "/unita", "/persona", "/contatto", "/id_correlazione"} <= pointers
    assert "riservata" in error.detail


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "", "text/csvx", "application/jsonx"])
def test_dispatcher_rejects_other_content_types_naming_both_accepted(content_type: str) -> None:
    error = rejection(dumps(tenancy_record()), content_type)
    assert error.kind == "malformed"
    assert [(p.pointer, p.rule) for p in error.problems] == [("", "content-type")]
    assert "application/json" in error.detail and "text/csv" in error.detail


def test_dispatcher_sends_csv_to_the_bulk_export_decoder() -> None:
    body = adapters.aler.encode_csv([decode_one(tenancy_record())])
    [envelope] = decode(body, "text/csv; charset=utf-8")
    assert envelope.payload == decode_one(tenancy_record()).payload


@pytest.mark.parametrize("body", [b"", b"[]", b"{", b'"anagrafica-contratto"', b"\xff"])
def test_dispatcher_reports_malformed_json_before_routing(body: bytes) -> None:
    assert rejection(body).kind == "malformed"


# --- code lists and canonical models ------------------------------------------------------------------------

NEW_LISTS = ("age_bands", "household_relations", "requested_care_services", "care_urgency", "mobility_levels",
             "home_access_notes", "safe_contact_channels", "safe_time_windows")


@pytest.mark.parametrize("name", NEW_LISTS)
def test_new_code_lists_load_with_unambiguous_aliases(name: str) -> None:
    codes = load_codelist(name)
    assert codes.name == name.replace("_", "-")
    assert codes.labels_it and all(codes.labels_it.values())
    for code, label in codes.labels_it.items():
        assert codes.resolve(code) == code
        assert codes.resolve(label) == code


def test_age_bands_decide_the_minor_and_over_65_flags() -> None:
    bands = set(load_codelist("age_bands").labels_it)
    assert bands >= MINOR_AGE_BANDS and bands >= OVER_65_AGE_BANDS
    assert not MINOR_AGE_BANDS & OVER_65_AGE_BANDS
    assert {"age-0-5", "age-6-13", "age-14-17"} == MINOR_AGE_BANDS


def test_requested_services_map_onto_valid_asst_codes() -> None:
    assert set(SERVICES) == set(load_codelist("requested_care_services").labels_it)
    for category, service in SERVICES.values():
        assert category in load_codelist("care_request_categories")
        assert service in load_codelist("care_services")
    assert set(load_codelist("care_urgency").labels_it) <= {"routine", "urgent", "asap", "stat"}


@pytest.mark.parametrize("name", ["fragility_signals", "emergency_event_types", "household_relations"])
def test_no_code_list_a_tenancy_message_uses_can_say_violence(name: str) -> None:
    codes = load_codelist(name)
    text = " ".join([*codes.labels_it, *codes.labels_it.values(), *codes.aliases]).casefold()
    for word in ("violen", "abus", "maltratt"):
        assert word not in text


def test_tenancy_message_types_are_frozen_closed_and_documented() -> None:
    assert set(TENANCY_MESSAGE_TYPES) == {"tenancy.record", "tenancy.fragility-signal", "tenancy.eviction-milestone",
                                          "safety.disclosure"}
    for model in TENANCY_MESSAGE_TYPES.values():
        assert model.model_config.get("frozen") is True
        assert model.model_config.get("extra") == "forbid"
        assert model.__doc__
        model.model_json_schema()


def test_every_type_aler_produces_is_registered() -> None:
    for message_type in CANONICAL_TYPE.values():
        assert message_type in MESSAGE_TYPES
    for message_type, model in TENANCY_MESSAGE_TYPES.items():
        assert MESSAGE_TYPES[message_type] is model


def test_never_crosses_names_real_paths_of_the_tenancy_record() -> None:
    for path in NEVER_CROSSES["tenancy.record"]:
        model: Any = TenancyRecord
        for key in path.split("."):
            assert key in model.model_fields
            model = model.model_fields[key].annotation


def test_safety_disclosure_has_nothing_but_a_contact_channel() -> None:
    assert set(SafetyDisclosure.model_fields) == {"channel", "safe_phone", "time_window"}


# --- the declared flows accept what the adapter produces --------------------------------------------------

ALER_FLOWS: list[Flow] = [f for f in load_registry().flows
                          if f.sender == "aler" and f.message_type != "tenancy.arrears-referral"]
NATIVE_OF = {canonical: kind for kind, canonical in CANONICAL_TYPE.items()}


@pytest.mark.parametrize("flow", ALER_FLOWS, ids=[f.id for f in ALER_FLOWS])
def test_each_aler_flow_minimises_the_decoded_message_to_a_valid_outbound(flow: Flow) -> None:
    envelope = decode_one(NATIVE[NATIVE_OF[flow.message_type]]())
    outbound = minimise(envelope, flow, "gw-00000001", Crosswalk(b"test-key-not-for-production-0123").token)
    assert outbound.message_type == flow.outbound_message_type
    assert [i.system for i in outbound.subject.identifiers] == [
        i.system for i in envelope.subject.identifiers if i.system in ("cf", "stp", "eni")]
    text = outbound.model_dump_json()
    for aler_internal in ("ALER-C-12345678", "ALER-U-7654321", "Civitavecchia", "aler-contract"):
        assert aler_internal not in text


def test_every_routed_message_has_a_flow_except_the_tenancy_record_which_never_crosses() -> None:
    flowing = {f.message_type for f in load_registry().flows}
    assert set(CANONICAL_TYPE.values()) - flowing == {"tenancy.record"}
    for flow in load_registry().flows:
        for path in NEVER_CROSSES.get(flow.message_type, ()):
            assert path not in flow.allowed_fields


# --- properties over synthetic tenants ----------------------------------------------------------------------

TENANTS: tuple[SyntheticTenant, ...] = tuple(generate_tenants("S", seed=2027, limit=300))
STREETS = ("Via Civitavecchia", "Via Dei Cinquecento", "Piazzale Selinunte", "Via Salomone", "Via Lorenteggio",
           "Via Gratosoglio", "Viale Molise", "Via Mompiani")
ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
ids = st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True)


def codes(name: str) -> st.SearchStrategy[str]:
    """A code of list ``name``, or one of the spellings the native format accepts for it."""
    listed = load_codelist(name)
    return st.sampled_from(sorted({*listed.labels_it, *listed.labels_it.values()}))


def address(tenant: SyntheticTenant) -> tuple[str, str]:
    """A street and house number derived from the tenant, so every message about it can be searched for it."""
    rng = random.Random(tenant.unit_id)
    return f"{rng.choice(STREETS)} {tenant.unit_id[-3:]}", f"{rng.randint(1, 240)}/{rng.choice('ABCD')}"


def members(tenant: SyntheticTenant, disabled: int) -> list[dict[str, Any]]:
    return [{"relazione": relation, "fascia_eta": band, "minore": band in MINOR_AGE_BANDS,
             "over_65": band in OVER_65_AGE_BANDS, "disabilita": index == disabled}
            for index, (relation, band) in enumerate(HOUSEHOLDS[tenant.household_type])]


@st.composite
def headers(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    occurred = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                                 timezones=st.sampled_from(ZONES)))
    result: dict[str, Any] = {"id_messaggio": draw(ids), "tipo_messaggio": kind, "versione": "1.0",
                              "data_evento": occurred.isoformat()}
    if kind != "segnalazione-riservata" and draw(st.booleans()):
        result["id_correlazione"] = draw(ids)
    if draw(st.booleans()):
        result["finalita"] = draw(st.sampled_from(["housing-support", "social-case-management", "care-coordination",
                                                   "emergency-social", "anti-violence-support"]))
    if draw(st.booleans()):
        result["destinatari"] = draw(st.lists(st.sampled_from(["comune", "asst", "fwa", "pis", "cav"]), max_size=3))
    return result


@st.composite
def native_messages(draw: st.DrawFn, tenant: SyntheticTenant, kind: str) -> dict[str, Any]:
    """A valid native message of ``kind`` about ``tenant``."""
    message = draw(headers(kind))
    quartiere = draw(st.sampled_from([tenant.quartiere, load_codelist("quartieri").labels_it[tenant.quartiere]]))
    municipio = draw(st.integers(1, 9))
    cf = draw(st.sampled_from([tenant.cf, tenant.cf.lower(), f" {tenant.cf} "]))
    street, number = address(tenant)
    household = members(tenant, draw(st.integers(-1, 3)))
    if kind == "anagrafica-contratto":
        start = draw(st.dates(date(1970, 1, 1), date(2026, 1, 1)))
        message |= {
            "contratto": {"id_contratto": tenant.contract_id, "tipo": draw(st.sampled_from(["SAP", "SAT"])),
                          "data_inizio": start.isoformat(), "fascia_canone": tenant.rent_band,
                          "canone_mensile_euro": f"{draw(st.integers(0, 150_000)) / 100:.2f}",
                          "canone_oltre_30_reddito": draw(st.booleans())},
            "unita": {"id_unita": tenant.unit_id, "id_edificio": f"ALER-B-{tenant.unit_id[-4:]}", "via": street,
                      "civico": number, "quartiere": quartiere, "municipio": municipio},
            "intestatario": {"codice_fiscale": cf},
            "nucleo": {"tipologia": tenant.household_type, "componenti": household},
            "isee": {"fascia": tenant.isee_band},
            "segnali_fragilita": draw(st.lists(codes("fragility_signals"), max_size=3,
                                               unique_by=load_codelist("fragility_signals").resolve)),
        }
        if draw(st.booleans()):
            message["contratto"]["data_fine"] = (start + timedelta(days=draw(st.integers(0, 3650)))).isoformat()
        if tenant.arrears_cents:
            message["morosita"] = {"importo_euro": f"{tenant.arrears_cents / 100:.2f}",
                                   "mensilita": tenant.arrears_months, "tipo": draw(st.sampled_from(
                                       ["canone", "spese", "utenze"])),
                                   "stadio": draw(st.sampled_from(["late", "repayment-plan", "formal-notice"]))}
    elif kind == "segnalazione-fragilita":
        message |= {
            "contratto": {"id_contratto": tenant.contract_id, "quartiere": quartiere, "municipio": municipio},
            "intestatario": {"codice_fiscale": cf},
            "nucleo": {"tipologia": tenant.household_type, "componenti": len(household),
                       "presenza_minori": any(m["minore"] for m in household),
                       "presenza_over_65": any(m["over_65"] for m in household),
                       "presenza_disabilita": any(m["disabilita"] for m in household)},
            "segnali": draw(st.lists(codes("fragility_signals"), min_size=1, max_size=4,
                                     unique_by=load_codelist("fragility_signals").resolve)),
        }
    elif kind == "richiesta-assistenza":
        start = draw(st.dates(date(2026, 1, 1), date(2030, 1, 1)))
        message |= {"id_richiesta": draw(st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)),
                    "assistito": {"codice_fiscale": cf}, "servizio": draw(codes("requested_care_services")),
                    "urgenza": draw(codes("care_urgency")), "finestra": {"dal": start.isoformat()}}
        if draw(st.booleans()):
            message["finestra"]["al"] = (start + timedelta(days=draw(st.integers(0, 60)))).isoformat()
    elif kind == "evento-sfratto":
        message |= {"contratto": {"id_contratto": tenant.contract_id, "quartiere": quartiere, "municipio": municipio},
                    "intestatario": {"codice_fiscale": cf},
                    "procedura": {"stadio": draw(st.sampled_from(["formal-notice", "forfeiture-started",
                                                                  "eviction-validated", "executive-eviction"])),
                                  "scadenza": draw(st.dates(date(2026, 1, 1), date(2030, 1, 1))).isoformat()}}
    elif kind == "evento-emergenza":
        minors = sum(m["minore"] for m in household)
        message |= {"evento": {"tipo": draw(codes("emergency_event_types"))},
                    "luogo": {"id_edificio": f"ALER-B-{tenant.unit_id[-4:]}", "quartiere": quartiere,
                              "municipio": municipio},
                    "nucleo": {"persone": len(household), "minori": minors,
                               "over_65": sum(m["over_65"] for m in household),
                               "con_disabilita": sum(m["disabilita"] for m in household)},
                    "persona": {"codice_fiscale": cf}, "contratto": {"id_contratto": tenant.contract_id}}
        for optional in draw(st.sampled_from([(), ("persona",), ("contratto",)])):
            del message[optional]
    else:
        channel = draw(st.sampled_from(["phone-safe-number", "in-person-at-casa-centre", "via-social-worker"]))
        contact: dict[str, Any] = {"canale": channel, "fascia_oraria": draw(codes("safe_time_windows"))}
        if channel == "phone-safe-number":
            contact["telefono_sicuro"] = draw(st.from_regex(r"\+39 ?3[0-9]{2} ?[0-9]{6,7}", fullmatch=True))
        message |= {"persona": {"codice_fiscale": cf}, "contatto": contact}
    return message


@st.composite
def any_message(draw: st.DrawFn) -> tuple[SyntheticTenant, str, dict[str, Any]]:
    tenant = draw(st.sampled_from(TENANTS))
    kind = draw(st.sampled_from(sorted(NATIVE)))
    return tenant, kind, draw(native_messages(tenant, kind))


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(any_message())
def test_valid_generated_messages_decode_deterministically(case: tuple[SyntheticTenant, str, dict[str, Any]]) -> None:
    tenant, kind, message = case
    body = dumps(message)
    [envelope] = decode(body)
    assert decode(body) == [envelope]
    assert envelope.message_type == CANONICAL_TYPE[kind]
    assert envelope.message_id == message["id_messaggio"]
    assert MESSAGE_TYPES[envelope.message_type].model_validate(envelope.payload)
    assert to_native(decode_one(to_native(envelope))) == to_native(envelope)
    persons = [i.value for i in envelope.subject.identifiers if i.system != "aler-contract"]
    assert persons in ([], [tenant.cf])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TENANTS).flatmap(lambda t: native_messages(t, "segnalazione-riservata").map(lambda m: (t, m))))
def test_a_disclosure_never_carries_a_tenancy_id(case: tuple[SyntheticTenant, dict[str, Any]]) -> None:
    tenant, message = case
    [envelope] = decode(dumps(message))
    assert set(envelope.payload) <= {"channel", "safe_phone", "time_window"}
    assert [i.system for i in envelope.subject.identifiers] == ["cf"]
    assert envelope.correlation_id == envelope.message_id
    text = envelope.model_dump_json()
    street, _ = address(tenant)
    for tenancy_value in (tenant.contract_id, tenant.unit_id, f"ALER-B-{tenant.unit_id[-4:]}", street, "aler-contract",
                          tenant.quartiere, tenant.household_type, tenant.rent_band):
        assert tenancy_value not in text
    for tenancy_field in ("contratto", "unita", "id_edificio", "quartiere", "nucleo"):
        bad = with_value(message, tenancy_field, {"id_contratto": tenant.contract_id})
        assert {(p.pointer, p.rule) for p in rejection(dumps(bad)).problems} == {(f"/{tenancy_field}",
                                                                                 "extra_forbidden")}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TENANTS).flatmap(
    lambda t: st.tuples(*(native_messages(t, kind) for kind in sorted(NATIVE))).map(lambda ms: (t, ms))))
def test_the_address_is_in_no_payload_but_the_tenancy_record(
        case: tuple[SyntheticTenant, tuple[dict[str, Any], ...]]) -> None:
    tenant, messages = case
    street, number = address(tenant)
    for message in messages:
        [envelope] = decode(dumps(message))
        payload = json.dumps(envelope.payload)
        if envelope.message_type == "tenancy.record":
            assert envelope.payload["address"] == {"street": street, "house_number": number}
        else:
            assert "address" not in envelope.payload
            assert street not in payload
            assert number not in payload
            assert street not in envelope.model_dump_json()
