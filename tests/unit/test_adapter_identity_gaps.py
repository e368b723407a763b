"""Adapters: a gateway token quoted back by ALER, visit logistics of a care request (F4) from ALER to the
trust's FHIR ServiceRequest, and emergencies about a person with no identifier at all (F10)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import adapters.aler
import adapters.comune
from adapters.asst_fhir import decode as decode_fhir
from adapters.asst_fhir import encode_service_request
from adapters.asst_fhir.systems import (
    HOME_ACCESS_NOTE_SYSTEM,
    HOME_ENTRY_SYSTEM,
    LANGUAGE_SYSTEM,
    VISIT_FLOOR_EXTENSION,
)
from adapters.comune import encode_emergency_event
from gateway.identity.crosswalk import Crosswalk
from gateway.policy import load_registry, minimise
from gateway.routing import OutboundLabels
from schemas.codelists import load_codelist
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.errors import DecodeError
from tests.helpers import dumps

CF = "RSSMRA85T10A562S"
TOKEN = "gwt_" + "abcdefghijklmnopqrstuvwx"
LABELS = OutboundLabels("cns-1@1", ("PSEUD",), ("NORDSCLCD",))


def header(kind: str, message_id: str = "m-1") -> dict[str, Any]:
    return {"id_messaggio": message_id, "tipo_messaggio": kind, "versione": "1.0",
            "data_evento": "2026-11-20T09:30:00+01:00"}


def problems_of(document: dict[str, Any], decode: Any = adapters.aler.decode) -> list[dict[str, str]]:
    with pytest.raises(DecodeError) as raised:
        decode(dumps(document))
    return [p.as_dict() for p in raised.value.problems]


# --- a gateway token quoted back ----------------------------------------------------------------------------

def eviction(**extra: Any) -> dict[str, Any]:
    return {**header("evento-sfratto"), **extra,
            "contratto": {"id_contratto": "ALER-C-1", "quartiere": "San Siro", "municipio": 7},
            "intestatario": {"codice_fiscale": CF},
            "procedura": {"stadio": "formal-notice", "scadenza": "2026-12-31"}}


def test_aler_quotes_a_gateway_token_as_a_gateway_token_identifier() -> None:
    [envelope] = adapters.aler.decode(dumps(eviction(riferimento_gateway=TOKEN)))

    assert envelope.subject.first("gateway-token") == TOKEN
    assert envelope.subject.first("cf") == CF


@pytest.mark.parametrize("bad", ["MI-SST-2026-000123", "gwt_short", "GWT_" + "A" * 24, "gwt_" + "1" * 24])
def test_anything_but_a_gateway_token_is_refused_where_one_is_quoted(bad: str) -> None:
    problems = problems_of(eviction(riferimento_gateway=bad))

    assert [p["pointer"] for p in problems] == ["/riferimento_gateway"]
    assert all(bad not in p["message"] for p in problems)


def test_the_s4_disclosure_cannot_be_linked_to_a_case_by_a_token() -> None:
    disclosure = {**header("segnalazione-riservata"), "riferimento_gateway": TOKEN,
                  "persona": {"codice_fiscale": CF}, "canale": "phone", "fascia_oraria": "weekday-morning"}

    assert "/riferimento_gateway" in [p["pointer"] for p in problems_of(disclosure)]


# --- F4 logistics -------------------------------------------------------------------------------------------

def care_request(**logistica: Any) -> dict[str, Any]:
    return {**header("richiesta-assistenza"), "id_richiesta": "ALER-R-1", "assistito": {"codice_fiscale": CF},
            "servizio": "home-nursing-visit", "urgenza": "routine", "finestra": {"dal": "2026-11-23"},
            "logistica": logistica}


def test_aler_logistics_become_coded_logistics_of_the_service_request() -> None:
    [envelope] = adapters.aler.decode(dumps(care_request(
        piano=4, ascensore=False, accesso="Apre il custode", fascia_oraria="mattina", custode_accompagna=True,
        lingua_interprete="arabo", note_accesso=["animali", "telefonare-prima"])))

    assert envelope.payload["logistics"] == {
        "floor": 4, "lift": False, "entry": "porter-lets-in", "time_window": "morning",
        "porter_can_accompany": True, "interpreter_language": "ar",
        "access_notes": ["animals-in-home", "call-before-visit"],
    }


@pytest.mark.parametrize(("field", "value", "pointer"), [
    ("accesso", "Mario Rossi, interno 12", "/logistica/accesso"),
    ("lingua_interprete", "parla solo arabo", "/logistica/lingua_interprete"),
    ("piano", 99, "/logistica/piano"),
    ("note_accesso", ["animali", "animali"], "/logistica/note_accesso"),
    ("nota", "free text", "/logistica/nota"),
])
def test_logistics_are_codes_never_free_text(field: str, value: Any, pointer: str) -> None:
    problems = problems_of(care_request(**{field: value}))

    assert pointer in [p["pointer"] for p in problems]


def test_f4_lets_logistics_reach_the_trust_as_order_details_and_extensions() -> None:
    [envelope] = adapters.aler.decode(dumps(care_request(piano=3, accesso="citofono-interno",
                                                         lingua_interprete="cinese", note_accesso=["no-lift"])))
    flow = next(f for f in load_registry().flows if f.id == "F4")
    envelope = envelope.model_copy(update={"subject": SubjectRef(identifiers=envelope.subject.identifiers,
                                                                 pseudonym="sbj_1")})

    outbound = minimise(envelope, flow, "gw-1", Crosswalk(b"k" * 32).token)
    document = json.loads(encode_service_request(outbound, LABELS))

    details = {(c["coding"][0]["system"], c["coding"][0]["code"]) for c in document["orderDetail"]}
    assert details == {(HOME_ENTRY_SYSTEM, "intercom-flat-number"), (LANGUAGE_SYSTEM, "zh"),
                       (HOME_ACCESS_NOTE_SYSTEM, "no-lift")}
    assert document["extension"] == [{"url": VISIT_FLOOR_EXTENSION, "valueInteger": 3}]
    assert "patientInstruction" not in document and "note" not in document
    [back] = decode_fhir(json.dumps(document).encode(), "application/fhir+json")
    assert back.payload["logistics"] == outbound.payload["logistics"]


def test_an_order_detail_in_free_text_is_refused_by_the_trust_adapter() -> None:
    [envelope] = adapters.aler.decode(dumps(care_request(piano=1)))
    document = json.loads(encode_service_request(envelope, LABELS))
    document["orderDetail"] = [{"text": "citofonare Rossi"}]

    with pytest.raises(DecodeError) as raised:
        decode_fhir(json.dumps(document).encode(), "application/fhir+json")

    assert [(p.pointer, p.rule) for p in raised.value.problems] == [("/orderDetail/0", "coded-only")]


def spellings(codelist: str) -> st.SearchStrategy[tuple[str, str]]:
    """(code, a way ALER may write it: the code, the Italian label or an alias)."""
    codes = load_codelist(codelist)
    return st.sampled_from(sorted([(code, code) for code in codes.labels_it]
                                  + [(code, label) for code, label in codes.labels_it.items()]
                                  + [(code, alias) for alias, code in codes.aliases.items()]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(floor=st.none() | st.integers(-2, 40), lift=st.none() | st.booleans(),
       entry=st.none() | spellings("home_entry_methods"), window=st.none() | spellings("visit_time_windows"),
       porter=st.none() | st.booleans(), language=st.none() | spellings("interpreter_languages"),
       notes=st.lists(spellings("home_access_notes"), max_size=4, unique_by=lambda pair: pair[0]))
def test_any_valid_logistics_reach_the_trust_and_come_back_as_the_same_codes(
    floor: int | None, lift: bool | None, entry: tuple[str, str] | None, window: tuple[str, str] | None,
    porter: bool | None, language: tuple[str, str] | None, notes: list[tuple[str, str]],
) -> None:
    native = {"piano": floor, "ascensore": lift, "accesso": entry and entry[1], "fascia_oraria": window and window[1],
              "custode_accompagna": porter, "lingua_interprete": language and language[1],
              "note_accesso": [written for _, written in notes]}
    [envelope] = adapters.aler.decode(dumps(care_request(**{k: v for k, v in native.items() if v is not None})))

    expected = {"floor": floor, "lift": lift, "entry": entry and entry[0], "time_window": window and window[0],
                "porter_can_accompany": porter, "interpreter_language": language and language[0],
                "access_notes": sorted(code for code, _ in notes)}
    expected = {k: v for k, v in expected.items() if v not in (None, [])}
    assert envelope.payload.get("logistics", {}) == ({**expected, "access_notes": expected.get("access_notes", [])}
                                                     if expected else {})
    [back] = decode_fhir(encode_service_request(envelope, LABELS), "application/fhir+json")
    assert back.payload.get("logistics") == envelope.payload.get("logistics")


# --- F10 for a person with no identifier --------------------------------------------------------------------

def aler_emergency(**extra: Any) -> dict[str, Any]:
    return {**header("evento-emergenza"), **extra,
            "evento": {"tipo": "Incendio", **extra.pop("evento", {})},
            "luogo": {"id_edificio": "ALER-B-7", "quartiere": "lorenteggio", "municipio": 6},
            "nucleo": {"persone": 1, "minori": 1, "over_65": 0, "con_disabilita": 0}}


def test_an_aler_emergency_about_a_person_with_no_identifier_is_known_by_the_incident_reference() -> None:
    [envelope] = adapters.aler.decode(dumps(aler_emergency(evento={"riferimento": "EV-2026-0042"})))

    assert envelope.subject.identifiers == (Identifier(system="unidentified", value="aler:EV-2026-0042"),)


def test_an_aler_emergency_with_no_identifier_and_no_reference_says_what_to_give() -> None:
    [problem] = problems_of(aler_emergency())

    assert problem["pointer"] == "/persona" and "evento.riferimento" in problem["message"]


def comune_emergency(persona: dict[str, Any], evento: dict[str, Any]) -> dict[str, Any]:
    return {**header("evento-emergenza"), "persona": persona,
            "evento": {"tipo": "unaccompanied-minor", "accaduto_il": "2026-11-20T03:15:00+01:00", **evento},
            "luogo": {"quartiere": "San Siro", "municipio": 7},
            "nucleo": {"persone": 1, "minori": 1, "over_65": 0, "con_disabilita": 0}}


def test_a_comune_emergency_with_only_an_incident_reference_reaches_the_emergency_service() -> None:
    [envelope] = adapters.comune.decode(dumps(comune_emergency({}, {"riferimento": "PL-2026-77"})))
    flow = next(f for f in load_registry().flows if f.id == "F10-comune")

    outbound = minimise(envelope.model_copy(update={"subject": SubjectRef(
        identifiers=envelope.subject.identifiers, pseudonym="sbj_1")}), flow, "gw-1")
    referral = json.loads(encode_emergency_event(outbound, LABELS))

    assert envelope.subject.first("unidentified") == "comune:PL-2026-77"
    assert referral["persona"] == {"codice_fiscale": None, "id_caso": None, "riferimento_evento": "comune:PL-2026-77"}


def test_a_comune_emergency_with_no_identifier_and_no_reference_is_refused() -> None:
    problems = problems_of(comune_emergency({}, {}), adapters.comune.decode)

    assert [(p["pointer"], p["rule"]) for p in problems] == [("/persona", "identifier_required")]


def canonical(message_type: str, payload: dict[str, Any], identifier: Identifier, sender: str = "aler") -> Envelope:
    return Envelope(message_id="m-1", correlation_id="c-1", message_type=message_type, sender=sender,
                    subject=SubjectRef(identifiers=(identifier,)), occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
                    payload=payload)


EVICTION_PAYLOAD = {"stage": "formal-notice", "deadline": "2026-12-31", "quartiere": "san-siro", "municipio": 7}
EMERGENCY_PAYLOAD = {"event_type": "fire", "quartiere": "san-siro", "household": {
    "persons": 1, "minors": 0, "over_65": 0, "with_disability": 0}}


def test_only_an_emergency_may_be_about_an_unidentified_person() -> None:
    unidentified = Identifier(system="unidentified", value="aler:EV-1")

    assert canonical("emergency.social-event", EMERGENCY_PAYLOAD, unidentified).subject.first("unidentified")
    with pytest.raises(ValidationError, match="only an emergency"):
        canonical("tenancy.eviction-milestone", EVICTION_PAYLOAD, unidentified)


def test_an_incident_reference_belongs_to_the_sender_that_made_it() -> None:
    with pytest.raises(ValidationError, match="sender's own incident reference"):
        canonical("emergency.social-event", EMERGENCY_PAYLOAD, Identifier(system="unidentified", value="aler:EV-1"),
                  sender="comune")
