"""Tests for :mod:`adapters.comune`: case and emergency events in, fragility referrals, eviction milestones and
emergency referrals out.

Field-by-field mapping, code-list labels and aliases (and the "custodi" that is not "custodi sociali"), one
rejection per contract rule with the JSON pointer and rule the sender sees, exact encoder output, F3
minimisation to a case token, and property tests: valid generated messages decode deterministically, emergency
events survive the round trip, and the court-mandate level of a minor's case never appears in anything an
encoder writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from adapters.comune import (
    EmergencyReferral,
    EvictionMilestone,
    FragilityReferral,
    decode,
    encode_case_referral,
    encode_emergency_event,
    encode_eviction_milestone,
)
from gateway.identity.codice_fiscale import omocodic_variant
from gateway.identity.crosswalk import Crosswalk
from gateway.identity.synthetic import generate_tenants
from gateway.policy.minimise import minimise
from gateway.policy.registry import Flow
from gateway.routing import OutboundLabels
from schemas.codelists import load_codelist
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from schemas.messages import MESSAGE_TYPES, validate_payload
from schemas.social import NEVER_CROSSES, SOCIAL_MESSAGE_TYPES, SocialCaseEvent, case_event_sensitivity
from schemas.tenancy import TENANCY_MESSAGE_TYPES
from tests.adapter_checks import decoded_one, header_of, refusal
from tests.helpers import dumps, leaves, raw, with_value

CF = "RSSMRA85T10A562S"
CF_OMOCODIC = omocodic_variant(CF, 2)
LABELS = OutboundLabels(consent_ref="cns-7", obligations=("PSEUD",), refrains=("NORDSCLCD", "NOREUSE"))
NO_LABELS = OutboundLabels(consent_ref=None, obligations=(), refrains=())

REGISTERED: dict[str, type[BaseModel]] = {
    "tenancy.fragility-signal": TENANCY_MESSAGE_TYPES["tenancy.fragility-signal"],
    "tenancy.eviction-milestone": TENANCY_MESSAGE_TYPES["tenancy.eviction-milestone"],
    **SOCIAL_MESSAGE_TYPES,
}
"""What the lead merges into ``MESSAGE_TYPES``; registered here for the tests until then."""


@pytest.fixture(autouse=True, scope="module")
def _registered_message_types() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, model in REGISTERED.items():
            patch.setitem(MESSAGE_TYPES, name, model)
        yield


# --- helpers ------------------------------------------------------------------------------------------------


def decode_one(document: Any, content_type: str = "application/json") -> Envelope:
    return decoded_one(decode, document, content_type)


def rejection(body: bytes, content_type: str = "application/json") -> DecodeError:
    return refusal(decode, body, content_type)


def case_event() -> dict[str, Any]:
    """A valid ``evento-caso`` in which every field has a value distinct from the defaults."""
    return {
        "id_messaggio": "COM-M-0001",
        "id_correlazione": "ALER-K-0001",
        "tipo_messaggio": "evento-caso",
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "social-case-management",
        "destinatari": ["aler"],
        "persona": {"codice_fiscale": CF.lower()},
        "caso": {
            "id_caso": "MI-SST-2026-000123",
            "evento": "apertura",
            "stato": "Preso in carico",
            "municipio": 4,
            "area": "Welfare abitativo",
            "misure": ["Misura 1", "custodi sociali"],
            "grado_disagio": 3,
            "livello_mandato_tribunale": "assessment-mandate",
        },
    }


def emergency_event() -> dict[str, Any]:
    """A valid ``evento-emergenza`` in which every field has a value distinct from the defaults."""
    return {
        "id_messaggio": "COM-E-0001",
        "id_correlazione": "COM-K-0009",
        "tipo_messaggio": "evento-emergenza",
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "emergency-social",
        "destinatari": ["pis"],
        "persona": {"codice_fiscale": CF, "id_caso": "MI-PIS-2026-000042"},
        "evento": {"tipo": "Incendio", "accaduto_il": "2026-11-20T03:15:00+01:00"},
        "luogo": {"quartiere": "S. Siro", "municipio": 7, "id_edificio": "ALER-B-0042"},
        "nucleo": {"persone": 4, "minori": 2, "over_65": 1, "con_disabilita": 1},
    }


# --- evento-caso -> social.case-event -----------------------------------------------------------------------


def test_case_event_decodes_to_the_expected_envelope_field_by_field() -> None:
    envelope = decode_one(case_event())

    assert header_of(envelope) == {
        "message_id": "COM-M-0001", "correlation_id": "ALER-K-0001", "message_type": "social.case-event",
        "schema_version": "1.0", "sender": "comune", "recipients": ("aler",),
        "subject": {"identifiers": ({"system": "cf", "value": CF},
                                    {"system": "comune-case", "value": "MI-SST-2026-000123"}), "pseudonym": None},
        "purpose": "social-case-management",
        "sensitivity": ("S2", "S3"),  # housing is S2; a judicial mandate on a minor adds S3
        "occurred_at": datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
    }
    assert envelope.payload == {
        "case_id": "MI-SST-2026-000123",
        "event": "opened",
        "status": "in-charge",
        "municipio": 4,
        "service_area": "housing",
        "measures": ["income-support-1", "social-custodians"],
        "hardship_grade": 3,
        "court_mandate_level": "assessment-mandate",
    }


def test_case_event_optional_fields_may_be_left_out() -> None:
    document = case_event()
    for path in ("id_correlazione", "finalita", "destinatari", "caso/misure", "caso/grado_disagio",
                 "caso/livello_mandato_tribunale"):
        document = with_value(document, path, ...)
    envelope = decode_one(document)
    assert envelope.correlation_id == envelope.message_id == "COM-M-0001"
    assert envelope.purpose is None
    assert envelope.recipients == ()
    assert envelope.sensitivity == ("S2",)
    assert envelope.payload["measures"] == []
    assert "hardship_grade" not in envelope.payload
    assert "court_mandate_level" not in envelope.payload


CASE_FIELD_MAP: list[tuple[str, Any, str, Any]] = [
    ("id_messaggio", "COM-M-0002", "message_id", "COM-M-0002"),
    ("id_correlazione", "ALER-K-0002", "correlation_id", "ALER-K-0002"),
    ("data_evento", "2026-11-21T10:00:00+00:00", "occurred_at", "2026-11-21T10:00:00Z"),
    ("finalita", "housing-support", "purpose", "housing-support"),
    ("destinatari", ["aler", "fwa"], "recipients", ["aler", "fwa"]),
    ("persona/codice_fiscale", "MRTMTT25D09F205Z", "subject/identifiers", [
        {"system": "cf", "value": "MRTMTT25D09F205Z"}, {"system": "comune-case", "value": "MI-SST-2026-000123"}]),
    ("caso/evento", "cambio-stato", "payload/event", "status"),
    ("caso/stato", "assessing", "payload/status", "assessing"),
    ("caso/municipio", 9, "payload/municipio", 9),
    ("caso/misure", ["SAD"], "payload/measures", ["home-care-sad"]),
    ("caso/grado_disagio", 1, "payload/hardship_grade", 1),
    ("caso/livello_mandato_tribunale", "supervision-mandate", "payload/court_mandate_level", "supervision-mandate"),
]
CASE_CONSTANT_NATIVE = {"tipo_messaggio", "versione"}
CASE_CONSTANT_CANONICAL = {"message_type", "schema_version", "sender", "sensitivity", "subject/pseudonym"}
CASE_TWO_PLACES = {"caso/id_caso": {"payload/case_id", "subject/identifiers"},
                   "caso/area": {"payload/service_area", "sensitivity"}}
"""Native fields that land in two canonical places."""


def test_case_field_map_covers_every_native_and_every_canonical_field() -> None:
    native_paths = set(leaves(case_event()))
    assert {n for n, _, _, _ in CASE_FIELD_MAP} | CASE_CONSTANT_NATIVE | set(CASE_TWO_PLACES) == native_paths
    canonical_paths = set(leaves(decode_one(case_event()).model_dump(mode="json")))
    assert ({c for _, _, c, _ in CASE_FIELD_MAP} | CASE_CONSTANT_CANONICAL | set().union(*CASE_TWO_PLACES.values())
            == canonical_paths)


@pytest.mark.parametrize(("native_path", "value", "canonical_path", "expected"), CASE_FIELD_MAP,
                         ids=[n for n, _, _, _ in CASE_FIELD_MAP])
def test_each_case_field_comes_from_its_native_field(native_path: str, value: Any, canonical_path: str,
                                                      expected: Any) -> None:
    before = leaves(decode_one(case_event()).model_dump(mode="json"))
    after = leaves(decode_one(with_value(case_event(), native_path, value)).model_dump(mode="json"))
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    assert changed == {canonical_path}
    assert after[canonical_path] == expected


def test_case_id_is_both_the_payload_case_id_and_a_subject_identifier() -> None:
    envelope = decode_one(with_value(case_event(), "caso/id_caso", "MI-X-1"))
    assert envelope.payload["case_id"] == "MI-X-1"
    assert envelope.subject.first("comune-case") == "MI-X-1"


@pytest.mark.parametrize(("evento", "stato", "event", "status"), [
    ("apertura", "reported", "opened", "reported"),
    ("apertura", "Segnalato", "opened", "reported"),
    ("cambio-stato", "In valutazione", "status", "assessing"),
    ("cambio-stato", "presa in carico", "status", "in-charge"),
    ("chiusura", "Chiuso", "closed", "closed"),
    ("chiusura", "archiviato", "closed", "closed"),
    ("chiusura", "Non di competenza", "closed", "not-competent"),
])
def test_events_and_statuses_are_translated(evento: str, stato: str, event: str, status: str) -> None:
    document = with_value(with_value(case_event(), "caso/evento", evento), "caso/stato", stato)
    payload = decode_one(document).payload
    assert (payload["event"], payload["status"]) == (event, status)


@pytest.mark.parametrize(("evento", "stato"), [
    ("apertura", "closed"), ("apertura", "not-competent"), ("cambio-stato", "Chiuso"),
    ("cambio-stato", "not-competent"), ("chiusura", "in-charge"), ("chiusura", "reported"),
])
def test_a_closing_status_needs_a_closing_event_and_vice_versa(evento: str, stato: str) -> None:
    document = with_value(with_value(case_event(), "caso/evento", evento), "caso/stato", stato)
    error = rejection(dumps(document))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [("/caso/stato", "status_event_mismatch")]


@pytest.mark.parametrize(("given_as", "code"), [
    ("housing", "housing"),
    ("Welfare abitativo", "housing"),
    ("Promuovere il welfare abitativo", "housing"),
    ("welfare  ABITATIVO", "housing"),
    ("Tutela minori", "child-protection"),
    ("Milanesi si diventa", "migration"),
    ("Dal carcere al territorio", "prison-to-community"),
    ("Contrastare la grave marginalità", "severe-marginality"),
    ("Integrazione socio-sanitaria", "socio-health-integration"),
])
def test_service_area_codes_labels_and_plan_titles_resolve_to_the_code(given_as: str, code: str) -> None:
    assert decode_one(with_value(case_event(), "caso/area", given_as)).payload["service_area"] == code


@pytest.mark.parametrize(("given_as", "codes"), [
    (["Misura 1", "Misura 2", "Misura 3", "Misura 4", "Misura 5"],
     ["income-support-1", "income-support-2", "income-support-3", "income-support-4", "income-support-5"]),
    (["Misura B2", "SAD", "Teleassistenza", "Pasti a domicilio"],
     ["b2-home-support", "home-care-sad", "teleassistance", "home-meals"]),
    (["Custodi sociali", "Emergenza abitativa"], ["social-custodians", "emergency-housing"]),
    (["SAD", "home-care-sad", "Servizio di assistenza domiciliare (SAD)"], ["home-care-sad"]),
    ([], []),
])
def test_measures_resolve_to_codes_once_each_in_the_order_given(given_as: list[str], codes: list[str]) -> None:
    assert decode_one(with_value(case_event(), "caso/misure", given_as)).payload["measures"] == codes


@pytest.mark.parametrize("word", ["custodi", "Custodi", "custode", "portineria"])
def test_alers_porters_are_not_the_comunes_custodi_sociali(word: str) -> None:
    """Same words, different things: ALER's "custodi" (porters) is not a Comune measure."""
    assert load_codelist("social_measures").resolve(word) is None
    [problem] = rejection(dumps(with_value(case_event(), "caso/misure", [word]))).problems
    assert (problem.pointer, problem.rule) == ("/caso/misure/0", "value_error")


@pytest.mark.parametrize(("area", "mandate", "labels"), [
    ("housing", None, ("S2",)),
    ("poverty", "none", ("S2",)),
    ("child-protection", None, ("S2", "S3")),
    ("child-protection", "out-of-home-placement", ("S2", "S3")),
    ("minors-families", "reported-to-prosecutor", ("S2", "S3")),
    ("disability", None, ("S2", "S3")),
    ("prison-to-community", None, ("S2", "S3")),
    ("violence", None, ("S4", "SDV")),
    ("violence", "supervision-mandate", ("S4", "SDV", "S3")),
])
def test_sensitivity_follows_the_service_area_and_the_court_mandate(area: str, mandate: str | None,
                                                                     labels: tuple[str, ...]) -> None:
    document = with_value(case_event(), "caso/area", area)
    document = with_value(document, "caso/livello_mandato_tribunale", ... if mandate is None else mandate)
    assert decode_one(document).sensitivity == labels
    assert case_event_sensitivity(area, mandate) == labels


def test_every_service_area_has_a_sensitivity() -> None:
    for area in load_codelist("service_areas").labels_it:
        assert case_event_sensitivity(area, None)


def test_hardship_grade_is_carried_as_given_and_never_inferred() -> None:
    """GDPR art. 22: no grade appears unless a social worker set one, whatever else the case says."""
    document = with_value(case_event(), "caso/grado_disagio", ...)
    for area, measures in [("housing", ["Emergenza abitativa"]), ("severe-marginality", ["Misura 5"])]:
        payload = decode_one(with_value(with_value(document, "caso/area", area), "caso/misure", measures)).payload
        assert "hardship_grade" not in payload
    for grade in (1, 2, 3, 4):
        assert decode_one(with_value(case_event(), "caso/grado_disagio", grade)).payload["hardship_grade"] == grade
    assert SocialCaseEvent.model_fields["hardship_grade"].default is None


@pytest.mark.parametrize("given_as", [CF, CF.lower(), f"  {CF.lower()} "])
def test_codice_fiscale_is_normalised_to_upper_case(given_as: str) -> None:
    envelope = decode_one(with_value(case_event(), "persona/codice_fiscale", given_as))
    assert envelope.subject.identifiers[0].model_dump() == {"system": "cf", "value": CF}


def test_omocodic_codice_fiscale_is_kept_as_issued() -> None:
    envelope = decode_one(with_value(case_event(), "persona/codice_fiscale", CF_OMOCODIC.lower()))
    assert envelope.subject.identifiers[0].model_dump() == {"system": "cf", "value": CF_OMOCODIC}


@pytest.mark.parametrize(("given_as", "system", "value"), [
    ("STP0303080000001", "stp", "STP0303080000001"),
    ("eni0303080000002", "eni", "ENI0303080000002"),
])
def test_stp_and_eni_codes_are_accepted_in_their_own_system(given_as: str, system: str, value: str) -> None:
    envelope = decode_one(with_value(case_event(), "persona/codice_fiscale", given_as))
    assert envelope.subject.identifiers[0].model_dump() == {"system": system, "value": value}


CASE_REJECTIONS: list[tuple[str, str, Any, str, str]] = [
    # (case id, native path, value or ... to delete, pointer, rule)
    ("missing caso", "caso", ..., "/caso", "missing"),
    ("missing persona", "persona", ..., "/persona", "missing"),
    ("missing case id", "caso/id_caso", ..., "/caso/id_caso", "missing"),
    ("missing codice fiscale", "persona/codice_fiscale", ..., "/persona/codice_fiscale", "missing"),
    ("missing stato", "caso/stato", ..., "/caso/stato", "missing"),
    ("missing area", "caso/area", ..., "/caso/area", "missing"),
    ("missing data_evento", "data_evento", ..., "/data_evento", "missing"),
    ("extra top-level field", "nome", "Mario", "/nome", "extra_forbidden"),
    ("extra nested field", "caso/note", "free text", "/caso/note", "extra_forbidden"),
    ("free-text diagnosis", "caso/diagnosi", "x", "/caso/diagnosi", "extra_forbidden"),
    ("unknown evento", "caso/evento", "riapertura", "/caso/evento", "literal_error"),
    ("canonical evento", "caso/evento", "opened", "/caso/evento", "literal_error"),
    ("unknown stato", "caso/stato", "sospeso", "/caso/stato", "value_error"),
    ("unknown area", "caso/area", "Cultura", "/caso/area", "value_error"),
    ("unknown measure", "caso/misure", ["Misura 1", "Misura 6"], "/caso/misure/1", "value_error"),
    ("string for measures", "caso/misure", "Misura 1", "/caso/misure", "tuple_type"),
    ("21 measures", "caso/misure", ["SAD"] * 21, "/caso/misure", "too_long"),
    ("unknown mandate level", "caso/livello_mandato_tribunale", "adozione", "/caso/livello_mandato_tribunale",
     "value_error"),
    ("empty stato", "caso/stato", "", "/caso/stato", "string_too_short"),
    ("municipio 0", "caso/municipio", 0, "/caso/municipio", "greater_than_equal"),
    ("municipio 10", "caso/municipio", 10, "/caso/municipio", "less_than_equal"),
    ("municipio as string", "caso/municipio", "4", "/caso/municipio", "int_type"),
    ("municipio as boolean", "caso/municipio", True, "/caso/municipio", "int_type"),
    ("municipio with a fraction", "caso/municipio", raw("4.0"), "/caso/municipio", "int_type"),
    ("grade 0", "caso/grado_disagio", 0, "/caso/grado_disagio", "greater_than_equal"),
    ("grade 5", "caso/grado_disagio", 5, "/caso/grado_disagio", "less_than_equal"),
    ("grade as label", "caso/grado_disagio", "Grado 3", "/caso/grado_disagio", "int_type"),
    ("case id with a space", "caso/id_caso", "MI 1", "/caso/id_caso", "string_pattern_mismatch"),
    ("case id too long", "caso/id_caso", "x" * 65, "/caso/id_caso", "string_too_long"),
    ("wrong check character", "persona/codice_fiscale", "RSSMRA85T10A562T", "/persona/codice_fiscale",
     "value_error"),
    ("short codice fiscale", "persona/codice_fiscale", CF[:15], "/persona/codice_fiscale", "string_too_short"),
    ("bad STP code", "persona/codice_fiscale", "STP030308000000X", "/persona/codice_fiscale", "value_error"),
    ("wrong versione", "versione", "2.0", "/versione", "literal_error"),
    ("timestamp without offset", "data_evento", "2026-11-20T09:30:00", "/data_evento", "timezone_aware"),
    ("not a timestamp", "data_evento", "ieri", "/data_evento", "datetime_from_date_parsing"),
    ("bad recipient id", "destinatari", ["aler", "a l e r"], "/destinatari/1", "string_pattern_mismatch"),
    ("purpose too long", "finalita", "x" * 65, "/finalita", "string_too_long"),
]


@pytest.mark.parametrize(("path", "value", "pointer", "rule"), [c[1:] for c in CASE_REJECTIONS],
                         ids=[c[0] for c in CASE_REJECTIONS])
def test_case_contract_rejections_name_the_field_and_the_rule(path: str, value: Any, pointer: str,
                                                               rule: str) -> None:
    error = rejection(dumps(with_value(case_event(), path, value)))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [(pointer, rule)]


def test_a_body_is_judged_by_the_contract_its_tipo_messaggio_names() -> None:
    error = rejection(dumps(with_value(case_event(), "tipo_messaggio", "evento-emergenza")))
    assert {(p.pointer, p.rule) for p in error.problems} == {
        ("/caso", "extra_forbidden"), ("/evento", "missing"), ("/luogo", "missing"), ("/nucleo", "missing")}


def test_every_case_problem_is_reported_not_just_the_first() -> None:
    document = with_value(with_value(case_event(), "caso/municipio", 10), "caso/area", "Cultura")
    document = with_value(document, "extra", 1)
    assert {(p.pointer, p.rule) for p in rejection(dumps(document)).problems} == {
        ("/caso/municipio", "less_than_equal"), ("/caso/area", "value_error"), ("/extra", "extra_forbidden")}


def test_code_list_rejection_names_the_list_and_its_codes() -> None:
    [problem] = rejection(dumps(with_value(case_event(), "caso/stato", "sospeso"))).problems
    assert "case-statuses" in problem.message
    for code in load_codelist("case_statuses").labels_it:
        assert code in problem.message


# --- evento-emergenza -> emergency.social-event -------------------------------------------------------------


def test_emergency_event_decodes_to_the_expected_envelope_field_by_field() -> None:
    envelope = decode_one(emergency_event())

    assert header_of(envelope) == {
        "message_id": "COM-E-0001", "correlation_id": "COM-K-0009", "message_type": "emergency.social-event",
        "schema_version": "1.0", "sender": "comune", "recipients": ("pis",),
        "subject": {"identifiers": ({"system": "cf", "value": CF},
                                    {"system": "comune-case", "value": "MI-PIS-2026-000042"}), "pseudonym": None},
        "purpose": "emergency-social", "sensitivity": ("S2",), "occurred_at": datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
    }
    assert envelope.payload == {
        "event_type": "fire",
        "quartiere": "san-siro",
        "municipio": 7,
        "building_id": "ALER-B-0042",
        "household": {"persons": 4, "minors": 2, "over_65": 1, "with_disability": 1},
        "occurred_at": "2026-11-20T03:15:00+01:00",
    }


def test_emergency_optional_fields_may_be_left_out() -> None:
    document = emergency_event()
    for path in ("id_correlazione", "finalita", "destinatari", "persona/codice_fiscale", "luogo/municipio",
                 "luogo/id_edificio"):
        document = with_value(document, path, ...)
    envelope = decode_one(document)
    assert envelope.correlation_id == "COM-E-0001"
    assert [i.model_dump() for i in envelope.subject.identifiers] == [
        {"system": "comune-case", "value": "MI-PIS-2026-000042"}]
    assert "municipio" not in envelope.payload
    assert "building_id" not in envelope.payload


def test_a_person_with_a_codice_fiscale_and_no_case_is_identified_by_it() -> None:
    envelope = decode_one(with_value(emergency_event(), "persona/id_caso", ...))
    assert [i.model_dump() for i in envelope.subject.identifiers] == [{"system": "cf", "value": CF}]


@pytest.mark.parametrize(("given_as", "code"), [
    ("Incendio", "fire"),
    ("Incendio abitazione", "fire"),
    ("allagamento", "flood"),
    ("Sfratto esecutivo", "executive-eviction"),
    ("no-water-arrears", "no-water-arrears"),
    ("Assenza di acqua nell'abitazione per morosità", "no-water-arrears"),
    ("Senza fissa dimora", "homeless"),
    ("Persona sola allontanata da ospitante", "put-out-by-host"),
    ("MSNA", "unaccompanied-minor"),
    ("Minori stranieri non accompagnati", "unaccompanied-minor"),
])
def test_emergency_event_types_resolve_to_the_code(given_as: str, code: str) -> None:
    assert decode_one(with_value(emergency_event(), "evento/tipo", given_as)).payload["event_type"] == code


def test_an_unaccompanied_minor_without_any_code_is_identified_by_the_comune_case() -> None:
    document = with_value(emergency_event(), "persona", {"id_caso": "MI-PIS-1"})
    document = with_value(document, "evento/tipo", "MSNA")
    document = with_value(document, "nucleo", {"persone": 1, "minori": 1, "over_65": 0, "con_disabilita": 0})
    envelope = decode_one(document)
    assert envelope.subject.first("comune-case") == "MI-PIS-1"
    assert envelope.payload["household"] == {"persons": 1, "minors": 1, "over_65": 0, "with_disability": 0}


EMERGENCY_REJECTIONS: list[tuple[str, str, Any, str, str]] = [
    ("no identifier at all", "persona", {}, "/persona", "identifier_required"),
    ("null identifiers", "persona", {"codice_fiscale": None, "id_caso": None}, "/persona", "identifier_required"),
    ("minors and over 65 exceed persons", "nucleo", {"persone": 2, "minori": 2, "over_65": 1, "con_disabilita": 0},
     "/nucleo", "counts_exceed_persons"),
    ("disability exceeds persons", "nucleo/con_disabilita", 5, "/nucleo/con_disabilita", "counts_exceed_persons"),
    ("nobody involved", "nucleo/persone", 0, "/nucleo/persone", "greater_than_equal"),
    ("21 persons", "nucleo/persone", 21, "/nucleo/persone", "less_than_equal"),
    ("negative minors", "nucleo/minori", -1, "/nucleo/minori", "greater_than_equal"),
    ("count as string", "nucleo/over_65", "1", "/nucleo/over_65", "int_type"),
    ("missing household", "nucleo", ..., "/nucleo", "missing"),
    ("missing event type", "evento/tipo", ..., "/evento/tipo", "missing"),
    ("unknown event type", "evento/tipo", "Terremoto", "/evento/tipo", "value_error"),
    ("violence is not an emergency type", "evento/tipo", "violenza", "/evento/tipo", "value_error"),
    ("time without offset", "evento/accaduto_il", "2026-11-20T03:15:00", "/evento/accaduto_il", "timezone_aware"),
    ("street address", "luogo/indirizzo", "Via Esempio 1", "/luogo/indirizzo", "extra_forbidden"),
    ("unknown quartiere", "luogo/quartiere", "Brera", "/luogo/quartiere", "value_error"),
    ("municipio 10", "luogo/municipio", 10, "/luogo/municipio", "less_than_equal"),
    ("building id with a space", "luogo/id_edificio", "B 1", "/luogo/id_edificio", "string_pattern_mismatch"),
    ("bad codice fiscale", "persona/codice_fiscale", "RSSMRA85T10A562T", "/persona/codice_fiscale", "value_error"),
    ("court mandate on an emergency", "livello_mandato_tribunale", "none", "/livello_mandato_tribunale",
     "extra_forbidden"),
]


@pytest.mark.parametrize(("path", "value", "pointer", "rule"), [c[1:] for c in EMERGENCY_REJECTIONS],
                         ids=[c[0] for c in EMERGENCY_REJECTIONS])
def test_emergency_contract_rejections_name_the_field_and_the_rule(path: str, value: Any, pointer: str,
                                                                    rule: str) -> None:
    error = rejection(dumps(with_value(emergency_event(), path, value)))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [(pointer, rule)]


def test_household_problems_are_reported_together() -> None:
    document = with_value(emergency_event(), "nucleo", {"persone": 1, "minori": 1, "over_65": 1,
                                                        "con_disabilita": 2})
    document = with_value(document, "persona", {})
    assert {(p.pointer, p.rule) for p in rejection(dumps(document)).problems} == {
        ("/persona", "identifier_required"), ("/nucleo", "counts_exceed_persons"),
        ("/nucleo/con_disabilita", "counts_exceed_persons")}


# --- dispatch, malformed bodies, no echo --------------------------------------------------------------------


@pytest.mark.parametrize(("document", "rule"), [
    (with_value(case_event(), "tipo_messaggio", ...), "union_tag_not_found"),
    (with_value(case_event(), "tipo_messaggio", "segnalazione-morosita"), "union_tag_invalid"),
    (with_value(case_event(), "tipo_messaggio", 7), "union_tag_invalid"),
    (with_value(case_event(), "tipo_messaggio", None), "union_tag_invalid"),
    (with_value(case_event(), "tipo_messaggio", ["evento-caso"]), "union_tag_invalid"),
])
def test_unknown_or_missing_message_kind_is_a_contract_rejection(document: dict[str, Any], rule: str) -> None:
    error = rejection(dumps(document))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [("/tipo_messaggio", rule)]
    assert "evento-caso" in error.problems[0].message and "evento-emergenza" in error.problems[0].message


def test_an_unknown_kind_is_not_echoed() -> None:
    error = rejection(dumps(with_value(case_event(), "tipo_messaggio", CF)))
    assert CF not in error.detail + " ".join(p.message for p in error.problems)


@pytest.mark.parametrize("document", [
    with_value(case_event(), "persona/codice_fiscale", "RSSMRA85T10A562T"),
    with_value(case_event(), "persona/codice_fiscale", "RSSMRA85T10A562"),
    with_value(case_event(), "persona/nota", CF),
    with_value(case_event(), "caso/area", CF),
    with_value(case_event(), "caso/misure", [CF]),
    with_value(case_event(), "caso/id_caso", CF + " x"),
    with_value(emergency_event(), "persona/codice_fiscale", "RSSMRA85T10A562T"),
    with_value(emergency_event(), "evento/tipo", CF),
], ids=["check char", "short", "extra field", "cf as area", "cf as measure", "cf in case id", "emergency cf",
        "cf as event type"])
def test_no_problem_echoes_the_submitted_codice_fiscale(document: dict[str, Any]) -> None:
    error = rejection(dumps(document))
    said = " ".join([error.detail, str(error), *(p.message for p in error.problems)])
    assert CF[:11] not in said
    assert CF.lower()[:11] not in said


# --- encoders -----------------------------------------------------------------------------------------------

OCCURRED = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


def envelope_of(message_type: str, payload: dict[str, Any],
                identifiers: tuple[dict[str, str], ...] = ({"system": "cf", "value": CF},),
                purpose: str | None = "social-case-management") -> Envelope:
    return Envelope.model_validate({
        "message_id": "gw-0001",
        "correlation_id": "ALER-K-0001",
        "message_type": message_type,
        "sender": "aler",
        "recipients": ["comune"],
        "subject": {"identifiers": identifiers},
        "purpose": purpose,
        "sensitivity": ["S2"],
        "occurred_at": OCCURRED,
        "payload": payload,
    })


def referral_payload() -> dict[str, Any]:
    return {
        "signals": ["isolation", "arrears-not-tenant-fault"],
        "quartiere": "gratosoglio",
        "municipio": 5,
        "household": {"type": "elderly-single", "size": 1, "minors": False, "over_65": True, "disability": True},
    }


def milestone_payload() -> dict[str, Any]:
    return {"stage": "eviction-validated", "deadline": "2027-01-15", "quartiere": "mazzini", "municipio": 4}


def emergency_payload() -> dict[str, Any]:
    return {"event_type": "flood", "quartiere": "lorenteggio", "municipio": 6, "building_id": "ALER-B-7",
            "household": {"persons": 3, "minors": 1, "over_65": 0, "with_disability": 0}}


HEADER = {
    "versione": "1.0",
    "id_messaggio": "gw-0001",
    "id_correlazione": "ALER-K-0001",
    "ente_inviante": "aler",
    "riferimento_consenso": "cns-7",
    "etichette": {"obblighi": ["PSEUD"], "divieti": ["NORDSCLCD", "NOREUSE"]},
    "data_evento": "2026-11-20T08:30:00Z",
}


def as_json(body: bytes) -> dict[str, Any]:
    assert isinstance(body, bytes)
    document: dict[str, Any] = json.loads(body.decode("utf-8"))
    return document


@pytest.mark.parametrize("message_type", ["social.case-referral", "tenancy.fragility-signal"])
def test_case_referral_is_written_as_segnalazione_fragilita(message_type: str) -> None:
    body = encode_case_referral(envelope_of(message_type, referral_payload()), LABELS)
    assert as_json(body) == {
        **HEADER,
        "tipo_messaggio": "segnalazione-fragilita",
        "finalita_trattamento": "social-case-management",
        "persona": {"codice_fiscale": CF},
        "segnali": ["isolation", "arrears-not-tenant-fault"],
        "quartiere": "gratosoglio",
        "municipio": 5,
        "nucleo": {"tipologia": "elderly-single", "componenti": 1, "presenza_minori": False,
                   "presenza_over_65": True, "presenza_disabilita": True},
    }
    assert FragilityReferral.model_validate_json(body).model_dump(mode="json") == as_json(body)


def test_eviction_milestone_is_written_as_fase_procedura_sfratto() -> None:
    body = encode_eviction_milestone(envelope_of("tenancy.eviction-milestone", milestone_payload(),
                                                 purpose="housing-support"), LABELS)
    assert as_json(body) == {
        **HEADER,
        "tipo_messaggio": "fase-procedura-sfratto",
        "finalita_trattamento": "housing-support",
        "persona": {"codice_fiscale": CF},
        "fase": "eviction-validated",
        "data_scadenza": "2027-01-15",
        "quartiere": "mazzini",
        "municipio": 4,
        "id_caso": None,
    }
    assert EvictionMilestone.model_validate_json(body).model_dump(mode="json") == as_json(body)


def test_emergency_event_is_written_as_segnalazione_pronto_intervento() -> None:
    body = encode_emergency_event(envelope_of("emergency.social-event", emergency_payload(),
                                              purpose="emergency-social"), NO_LABELS)
    assert as_json(body) == {
        **HEADER,
        "riferimento_consenso": None,
        "etichette": {"obblighi": [], "divieti": []},
        "tipo_messaggio": "segnalazione-pronto-intervento",
        "finalita_trattamento": "emergency-social",
        "persona": {"codice_fiscale": CF, "id_caso": None, "riferimento_evento": None},
        "evento": {"tipo": "flood", "accaduto_il": None},
        "luogo": {"quartiere": "lorenteggio", "municipio": 6, "id_edificio": "ALER-B-7"},
        "nucleo": {"persone": 3, "minori": 1, "over_65": 0, "con_disabilita": 0},
    }
    assert EmergencyReferral.model_validate_json(body).model_dump(mode="json") == as_json(body)


def test_a_comune_emergency_event_survives_decode_and_encode() -> None:
    body = encode_emergency_event(decode_one(emergency_event()), NO_LABELS)
    document = as_json(body)
    assert document["persona"] == {"codice_fiscale": CF, "id_caso": "MI-PIS-2026-000042",
                                   "riferimento_evento": None}
    assert document["evento"] == {"tipo": "fire", "accaduto_il": "2026-11-20T03:15:00+01:00"}
    assert document["luogo"] == {"quartiere": "san-siro", "municipio": 7, "id_edificio": "ALER-B-0042"}
    assert document["nucleo"] == {"persone": 4, "minori": 2, "over_65": 1, "con_disabilita": 1}
    assert document["ente_inviante"] == "comune"
    assert document["finalita_trattamento"] == "emergency-social"


@pytest.mark.parametrize(("system", "value"), [("stp", "STP0303080000001"), ("eni", "ENI0303080000002")])
def test_people_without_a_codice_fiscale_are_referred_by_stp_or_eni(system: str, value: str) -> None:
    identifiers = ({"system": "aler-contract", "value": "ALER-C-1"}, {"system": system, "value": value})
    for encoder, message_type, payload in ENCODERS:
        document = as_json(encoder(envelope_of(message_type, payload(), identifiers), NO_LABELS))
        assert document["persona"]["codice_fiscale"] == value


ENCODERS: list[tuple[Callable[[Envelope, OutboundLabels], bytes], str, Callable[[], dict[str, Any]]]] = [
    (encode_case_referral, "social.case-referral", referral_payload),
    (encode_eviction_milestone, "tenancy.eviction-milestone", milestone_payload),
    (encode_emergency_event, "emergency.social-event", emergency_payload),
]


@pytest.mark.parametrize(("encoder", "message_type", "payload"), ENCODERS, ids=[e[1] for e in ENCODERS])
def test_encoders_need_a_person_identifier(encoder: Callable[[Envelope, OutboundLabels], bytes],
                                           message_type: str, payload: Callable[[], dict[str, Any]]) -> None:
    envelope = envelope_of(message_type, payload(), ({"system": "aler-contract", "value": "ALER-C-1"},))
    with pytest.raises(ValueError, match=r"codice fiscale, STP or ENI code"):
        encoder(envelope, NO_LABELS)


@pytest.mark.parametrize(("encoder", "message_type", "payload"), ENCODERS, ids=[e[1] for e in ENCODERS])
def test_encoders_refuse_other_message_types(encoder: Callable[[Envelope, OutboundLabels], bytes],
                                             message_type: str, payload: Callable[[], dict[str, Any]]) -> None:
    other = next(e for e in ENCODERS if e[1] != message_type)
    with pytest.raises(ValueError, match=r"this encoder writes"):
        encoder(envelope_of(other[1], other[2]()), NO_LABELS)


@pytest.mark.parametrize(("encoder", "message_type", "payload"), ENCODERS, ids=[e[1] for e in ENCODERS])
def test_encoding_is_deterministic(encoder: Callable[[Envelope, OutboundLabels], bytes], message_type: str,
                                   payload: Callable[[], dict[str, Any]]) -> None:
    envelope = envelope_of(message_type, payload())
    assert encoder(envelope, LABELS) == encoder(envelope, LABELS)


def test_the_emergency_service_may_get_a_case_id_instead_of_a_person_code() -> None:
    envelope = envelope_of("emergency.social-event", emergency_payload(),
                           ({"system": "comune-case", "value": "MI-PIS-9"},))
    assert as_json(encode_emergency_event(envelope, NO_LABELS))["persona"] == {"codice_fiscale": None,
                                                                               "id_caso": "MI-PIS-9",
                                                                               "riferimento_evento": None}


def test_encoders_are_registered_as_routing_encoders() -> None:
    """The routing table's encoder type is (Envelope, OutboundLabels) -> bytes: these fit it as they are."""
    for encoder, message_type, payload in ENCODERS:
        assert encoder(envelope_of(message_type, payload()), LABELS)


@pytest.mark.parametrize(("message_type", "payload", "extra"), [
    ("social.case-referral", referral_payload, {"court_mandate_level": "none"}),
    ("social.case-referral", referral_payload, {"service_area": "housing"}),
    ("tenancy.eviction-milestone", milestone_payload, {"court_mandate_level": "none"}),
    ("emergency.social-event", emergency_payload, {"court_mandate_level": "none"}),
    ("emergency.social-event", emergency_payload, {"address": "Via Esempio 1"}),
    ("social.case-status", lambda: {"case_id": "gwt_x", "event": "opened", "status": "reported"},
     {"court_mandate_level": "none"}),
])
def test_outbound_payloads_cannot_carry_extra_fields(message_type: str, payload: Callable[[], dict[str, Any]],
                                                     extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload(message_type, {**payload(), **extra})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [((next(iter(extra)),), "extra_forbidden")]


# --- F3: what ALER may learn of a case ----------------------------------------------------------------------

F3 = Flow.model_validate({
    "id": "F3", "title": "Referral taken in charge", "sender": "comune", "recipient": "aler",
    "message_type": "social.case-event", "outbound_message_type": "social.case-status",
    "purpose": "social-case-management", "legal_basis": "GDPR 6(1)(e) public task",
    "consent": {"required": False, "explicit": False}, "sensitivity": "S2", "retention_days": 730,
    "allowed_fields": ["subject.token", "case_id as token", "event", "status"],
})
"""The flow the lead adds for F3 (test copy): status and an opaque case token, nothing else."""
CROSSWALK = Crosswalk(b"test-key-not-for-production-0123")


def test_f3_gives_aler_a_case_token_and_the_status_only() -> None:
    envelope = decode_one(case_event()).model_copy(update={"subject": decode_one(case_event()).subject.model_copy(
        update={"pseudonym": "psn-1"})})
    outbound = minimise(envelope, F3, "gw-0002", CROSSWALK.token)
    assert outbound.message_type == "social.case-status"
    assert set(outbound.payload) == {"case_id", "event", "status"}
    assert outbound.payload["case_id"].startswith("gwt_")
    assert outbound.payload["case_id"] == CROSSWALK.token("aler", "case_id", "MI-SST-2026-000123")
    text = outbound.model_dump_json()
    for hidden in ("MI-SST-2026-000123", CF, "housing", "assessment-mandate", "income-support-1"):
        assert hidden not in text
    assert [i.system for i in outbound.subject.identifiers] == ["gateway-token"]


# --- the court-mandate level never leaves -------------------------------------------------------------------

MANDATE_LEVELS = load_codelist("court_mandate_levels")
OUTBOUND_MODELS: list[type[BaseModel]] = [FragilityReferral, EvictionMilestone, EmergencyReferral]


def test_never_crosses_names_the_court_mandate_level_and_only_case_events_have_it() -> None:
    assert NEVER_CROSSES == {"social.case-event": ("court_mandate_level",)}
    for name, model in REGISTERED.items():
        has_it = "court_mandate_level" in json.dumps(model.model_json_schema())
        assert has_it == (name == "social.case-event"), name


def test_no_native_output_format_has_a_field_for_the_court_mandate() -> None:
    for model in OUTBOUND_MODELS:
        schema = json.dumps(model.model_json_schema(mode="serialization")).casefold()
        for word in ("mandato", "mandate", "tribunale", "court", "giudiziaria"):
            assert word not in schema, (model.__name__, word)


_TENANTS = tuple(generate_tenants("S", seed=2031, limit=200))
ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]
ids = st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True)


def spelling_pairs(list_name: str) -> list[tuple[str, str]]:
    """(as the Comune may write it: code, Italian label or alias; the code it stands for)."""
    codes = load_codelist(list_name)
    pairs = [(code, code) for code in codes.labels_it] + [(label, code) for code, label in codes.labels_it.items()]
    pairs += [(alias, code) for alias, code in codes.aliases.items()]
    return sorted(set(pairs))


def spellings(list_name: str) -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(spelling_pairs(list_name))


@st.composite
def person_codes(draw: st.DrawFn) -> tuple[str, str, str]:
    """(as sent, expected system, expected value)."""
    kind = draw(st.sampled_from(["cf", "cf", "omocodic", "stp"]))
    if kind == "stp":
        prefix = draw(st.sampled_from(["STP", "ENI"]))
        code = f"{prefix}{draw(st.integers(0, 10**13 - 1)):013d}"
        return draw(st.sampled_from([code, code.lower()])), prefix.lower(), code
    cf = draw(st.sampled_from(_TENANTS)).cf
    if kind == "omocodic":
        cf = omocodic_variant(cf, draw(st.integers(1, 3)))
    return draw(st.sampled_from([cf, cf.lower(), f" {cf} "])), "cf", cf


_EVENTS = {"apertura": "opened", "cambio-stato": "status", "chiusura": "closed"}
CLOSING_STATUSES = [p for p in spelling_pairs("case_statuses") if p[1] in {"closed", "not-competent"}]
OPEN_STATUSES = [p for p in spelling_pairs("case_statuses") if p[1] not in {"closed", "not-competent"}]


@st.composite
def case_events(draw: st.DrawFn, mandate: bool | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid generated ``evento-caso`` and what its decoding must contain."""
    sent, system, code = draw(person_codes())
    evento = draw(st.sampled_from(sorted(_EVENTS)))
    stato = draw(st.sampled_from(CLOSING_STATUSES if evento == "chiusura" else OPEN_STATUSES))
    area = draw(spellings("service_areas"))
    measures = draw(st.lists(spellings("social_measures"), max_size=6))
    occurred = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                                 timezones=st.sampled_from(ZONES)))
    caso: dict[str, Any] = {
        "id_caso": draw(ids), "evento": evento, "stato": stato[0], "municipio": draw(st.integers(1, 9)),
        "area": area[0], "misure": [m[0] for m in measures],
    }
    grade = draw(st.none() | st.integers(1, 4))
    if grade is not None:
        caso["grado_disagio"] = grade
    level = draw(spellings("court_mandate_levels")) if (mandate or (mandate is None and draw(st.booleans()))) \
        else None
    if level is not None:
        caso["livello_mandato_tribunale"] = level[0]
    message: dict[str, Any] = {
        "id_messaggio": draw(ids), "tipo_messaggio": "evento-caso", "versione": "1.0",
        "data_evento": occurred.isoformat(), "persona": {"codice_fiscale": sent}, "caso": caso,
    }
    if draw(st.booleans()):
        message["id_correlazione"] = draw(ids)
    if draw(st.booleans()):
        message["finalita"] = draw(st.sampled_from(["social-case-management", "housing-support"]))
    if draw(st.booleans()):
        message["destinatari"] = draw(st.lists(st.sampled_from(["aler", "fwa", "asst"]), max_size=3))
    expected = {
        "identifiers": [{"system": system, "value": code}, {"system": "comune-case", "value": caso["id_caso"]}],
        "event": _EVENTS[evento], "status": stato[1], "service_area": area[1],
        "measures": list(dict.fromkeys(m[1] for m in measures)), "grade": grade,
        "mandate": None if level is None else level[1], "occurred_at": occurred,
    }
    return message, expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case_events())
def test_valid_case_events_decode_deterministically(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    message, expected = case
    body = dumps(message)
    [envelope] = decode(body)
    assert decode(body) == [envelope]
    payload = envelope.payload
    assert [i.model_dump() for i in envelope.subject.identifiers] == expected["identifiers"]
    assert envelope.message_id == message["id_messaggio"]
    assert envelope.correlation_id == message.get("id_correlazione", message["id_messaggio"])
    assert envelope.occurred_at == expected["occurred_at"]
    assert (payload["event"], payload["status"]) == (expected["event"], expected["status"])
    assert payload["service_area"] == expected["service_area"]
    assert payload["measures"] == expected["measures"]
    assert payload["municipio"] == message["caso"]["municipio"]
    assert payload.get("hardship_grade") == expected["grade"]
    assert payload.get("court_mandate_level") == expected["mandate"]
    assert envelope.sensitivity == case_event_sensitivity(expected["service_area"], expected["mandate"])


@st.composite
def emergency_events(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid generated ``evento-emergenza`` and what its decoding must contain."""
    persona: dict[str, Any] = {}
    identifiers = []
    who = draw(st.sampled_from(["code", "case", "both"]))
    if who in ("code", "both"):
        sent, system, code = draw(person_codes())
        persona["codice_fiscale"] = sent
        identifiers.append({"system": system, "value": code})
    if who in ("case", "both"):
        persona["id_caso"] = draw(ids)
        identifiers.append({"system": "comune-case", "value": persona["id_caso"]})
    persons = draw(st.integers(1, 20))
    minors = draw(st.integers(0, persons))
    over_65 = draw(st.integers(0, persons - minors))
    disabled = draw(st.integers(0, persons))
    kind, quartiere = draw(spellings("emergency_event_types")), draw(spellings("quartieri"))
    happened = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                                 timezones=st.sampled_from(ZONES)))
    luogo: dict[str, Any] = {"quartiere": quartiere[0]}
    if draw(st.booleans()):
        luogo["municipio"] = draw(st.integers(1, 9))
    if draw(st.booleans()):
        luogo["id_edificio"] = draw(ids)
    message = {
        "id_messaggio": draw(ids), "tipo_messaggio": "evento-emergenza", "versione": "1.0",
        "data_evento": happened.isoformat(), "persona": persona,
        "evento": {"tipo": kind[0], "accaduto_il": happened.isoformat()}, "luogo": luogo,
        "nucleo": {"persone": persons, "minori": minors, "over_65": over_65, "con_disabilita": disabled},
    }
    expected = {"identifiers": identifiers, "event_type": kind[1], "quartiere": quartiere[1], "happened": happened}
    return message, expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(emergency_events())
def test_valid_emergency_events_decode_deterministically_and_survive_encoding(
        case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    message, expected = case
    body = dumps(message)
    [envelope] = decode(body)
    assert decode(body) == [envelope]
    assert [i.model_dump() for i in envelope.subject.identifiers] == expected["identifiers"]
    assert envelope.payload["event_type"] == expected["event_type"]
    assert envelope.payload["quartiere"] == expected["quartiere"]

    referral = orjson.loads(encode_emergency_event(envelope, NO_LABELS))
    nucleo = message["nucleo"]
    assert referral["nucleo"] == nucleo
    assert referral["evento"]["tipo"] == expected["event_type"]
    assert datetime.fromisoformat(referral["evento"]["accaduto_il"]) == expected["happened"]
    assert referral["luogo"] == {"quartiere": expected["quartiere"], "municipio": message["luogo"].get("municipio"),
                                 "id_edificio": message["luogo"].get("id_edificio")}
    codes = {i["system"]: i["value"] for i in expected["identifiers"]}
    assert referral["persona"] == {"codice_fiscale": codes.get("cf") or codes.get("stp") or codes.get("eni"),
                                   "id_caso": codes.get("comune-case"), "riferimento_evento": None}


ALL_ENCODERS: list[tuple[Callable[[Envelope, OutboundLabels], bytes], str]] = [
    (encode_case_referral, "social.case-referral"),
    (encode_case_referral, "tenancy.fragility-signal"),
    (encode_eviction_milestone, "tenancy.eviction-milestone"),
    (encode_emergency_event, "emergency.social-event"),
]


def _mandate_words(level: str) -> list[bytes]:
    return [level.encode(), MANDATE_LEVELS.labels_it[level].encode(), b"mandato", b"mandate", b"tribunale"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case_events(mandate=True), st.sampled_from(["as decoded", "retyped"]))
def test_the_court_mandate_level_is_never_in_any_encoder_output(case: tuple[dict[str, Any], dict[str, Any]],
                                                               how: str) -> None:
    message, expected = case
    [envelope] = decode(dumps(message))
    level = expected["mandate"]
    assert envelope.payload["court_mandate_level"] == level
    for encoder, message_type in ALL_ENCODERS:
        attempt = envelope if how == "as decoded" else envelope.model_copy(update={"message_type": message_type})
        try:
            body = encoder(attempt, LABELS)
        except (ValueError, ValidationError):
            continue  # refusing is the expected outcome; writing it would fail below
        for word in _mandate_words(level):
            assert word.lower() not in body.lower()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case_events(mandate=True))
def test_f3_minimisation_never_carries_the_court_mandate_level(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    message, _ = case
    [envelope] = decode(dumps(message))
    envelope = envelope.model_copy(update={"subject": envelope.subject.model_copy(update={"pseudonym": "psn-1"})})
    outbound = minimise(envelope, F3, "gw-1", CROSSWALK.token)
    assert "court_mandate_level" not in outbound.payload
    assert "court_mandate_level" not in outbound.model_dump_json()
    assert outbound.payload["case_id"] != message["caso"]["id_caso"]


# --- code lists ---------------------------------------------------------------------------------------------

OWN_CODE_LISTS = ("service_areas", "case_statuses", "social_measures", "hardship_grades", "court_mandate_levels",
                  "emergency_event_types", "fragility_signals")


@pytest.mark.parametrize("name", OWN_CODE_LISTS)
def test_code_lists_are_versioned_with_italian_labels_and_unambiguous_aliases(name: str) -> None:
    """The loader keeps the last code an alias names, so an alias naming two codes would silently pick one."""
    codes = load_codelist(name)
    assert re.fullmatch(r"\d{4}\.\d+", codes.version)
    assert codes.labels_it and all(label.strip() for label in codes.labels_it.values())
    text = (Path(__file__).resolve().parents[2] / "schemas" / "codelists" / f"{name}.yaml").read_text("utf-8")
    seen: dict[str, str] = {}
    for entry in yaml.safe_load(text)["codes"]:
        code = str(entry["code"])
        for spelling in [code, entry["label_it"], *entry.get("aliases", [])]:
            key = " ".join(str(spelling).replace(".", ". ").split()).casefold()
            assert seen.setdefault(key, code) == code, (name, spelling)


def test_hardship_grades_are_one_to_four_as_in_the_model() -> None:
    assert list(load_codelist("hardship_grades").labels_it) == ["1", "2", "3", "4"]
    for grade, valid in ((0, False), (1, True), (4, True), (5, False)):
        payload = {"case_id": "c", "event": "opened", "status": "reported", "municipio": 1,
                   "service_area": "housing", "hardship_grade": grade}
        try:
            SocialCaseEvent.model_validate(payload)
        except ValidationError:
            assert not valid
        else:
            assert valid


def test_service_areas_are_the_twelve_areas_of_the_plans_chapter_5() -> None:
    text = (Path(__file__).resolve().parents[2] / "schemas" / "codelists" / "service_areas.yaml").read_text("utf-8")
    sections = [entry["plan_section"] for entry in yaml.safe_load(text)["codes"]]
    assert sections == [f"5.{n}" for n in range(1, 13)]
