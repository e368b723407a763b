"""Tests for :mod:`adapters.fwa.outcome`: FWA's ``esito-segnalazione`` decoded into a
``referral.microcredit-outcome`` envelope.

Field-by-field mapping, every ``esito`` word, euro -> exact cents, the amount required if and only if the
request was approved, one rejection per contract rule with the JSON pointer and rule FWA sees, the
``tipo_messaggio`` dispatcher, the referral id as the only subject identifier, and property tests over
generated outcomes: decoding is deterministic and amounts are exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import adapters.fwa
from adapters.fwa import decode, decode_outcome
from adapters.fwa.outcome import ESITO_STATES
from schemas.codelists import load_codelist
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from schemas.messages import MESSAGE_TYPES, validate_payload
from schemas.microcredit import MICROCREDIT_MESSAGE_TYPES, MicrocreditOutcome
from tests.adapter_checks import decoded_one, header_of, refusal
from tests.helpers import dumps, native_euro, raw, with_value

DECODERS = [decode, decode_outcome]


@pytest.fixture(autouse=True, scope="module")
def _registered_message_types() -> Iterator[None]:
    """What the lead merges into ``MESSAGE_TYPES``; registered here for the tests until then."""
    with pytest.MonkeyPatch.context() as patch:
        for name, model in MICROCREDIT_MESSAGE_TYPES.items():
            patch.setitem(MESSAGE_TYPES, name, model)
        yield


def native() -> dict[str, Any]:
    """A valid approval in which every field has a value distinct from the defaults."""
    return {
        "id_messaggio": "FWA-M-0001",
        "id_correlazione": "ALER-K-0001",
        "tipo_messaggio": "esito-segnalazione",
        "versione": "1.0",
        "id_segnalazione": "gw-3f6c2a10-5a57-4d3c-9d42-0b8e7f1c2d3e",
        "esito": "approvato",
        "importo_approvato_euro": "1500.50",
        "data_decisione": "2026-12-02T11:00:00+01:00",
    }


def rejected() -> dict[str, Any]:
    return {**with_value(native(), "importo_approvato_euro", ...), "esito": "respinto",
            "motivo": "insufficient-repayment-capacity"}


def decode_one(document: Any) -> Envelope:
    envelope = decoded_one(decode, document, "application/json")
    assert decode_outcome(dumps(document)) == [envelope]
    return envelope


def rejection(body: bytes, content_type: str = "application/json") -> DecodeError:
    """The refusal of both FWA decoders (the dispatcher's and the outcome's own): the dispatcher's is returned."""
    errors = [refusal(decoder, body, content_type) for decoder in DECODERS]
    return errors[0]


# --- decoding -----------------------------------------------------------------------------------------------


def test_approval_decodes_to_the_expected_envelope_field_by_field() -> None:
    envelope = decode_one(native())

    assert header_of(envelope) == {
        "message_id": "FWA-M-0001", "correlation_id": "ALER-K-0001", "message_type": "referral.microcredit-outcome",
        "schema_version": "1.0", "sender": "fwa", "recipients": ("aler",),
        "subject": {"identifiers": ({"system": "fwa-referral", "value": "gw-3f6c2a10-5a57-4d3c-9d42-0b8e7f1c2d3e"},),
                    "pseudonym": None},
        "purpose": "microcredit-assessment", "sensitivity": ("S2",),
        "occurred_at": datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
    }
    assert envelope.payload == {
        "referral_id": "gw-3f6c2a10-5a57-4d3c-9d42-0b8e7f1c2d3e",
        "state": "approved",
        "approved_amount_cents": 150050,
        "decided_at": "2026-12-02T11:00:00+01:00",
    }


def test_rejection_with_a_reason_decodes() -> None:
    payload = decode_one(rejected()).payload
    assert payload == {
        "referral_id": "gw-3f6c2a10-5a57-4d3c-9d42-0b8e7f1c2d3e",
        "state": "rejected",
        "rejection_reason": "insufficient-repayment-capacity",
        "decided_at": "2026-12-02T11:00:00+01:00",
    }


def test_rejection_reason_is_optional() -> None:
    assert "rejection_reason" not in decode_one(with_value(rejected(), "motivo", ...)).payload


@pytest.mark.parametrize(("esito", "state"), sorted(ESITO_STATES.items()))
def test_every_esito_word_becomes_its_state(esito: str, state: str) -> None:
    document = {**native(), "esito": esito}
    if esito != "approvato":
        del document["importo_approvato_euro"]
    payload = decode_one(document).payload
    assert payload["state"] == state
    assert ("approved_amount_cents" in payload) == (state == "approved")


def test_esito_words_and_outcome_states_agree_with_the_code_list() -> None:
    states = load_codelist("fwa_outcome_states")
    assert set(ESITO_STATES.values()) == set(states.labels_it)
    for word, state in ESITO_STATES.items():
        assert states.resolve(word) == state
    assert set(states.labels_it) == {"assessing", "approved", "rejected", "withdrawn", "counselling-started"}


def test_the_subject_is_the_referral_never_a_person_code() -> None:
    envelope = decode_one(native())
    assert {i.system for i in envelope.subject.identifiers} == {"fwa-referral"}
    for system in ("cf", "stp", "eni"):
        assert envelope.subject.first(system) is None


def test_fwa_cannot_resend_the_codice_fiscale() -> None:
    error = rejection(dumps(with_value(native(), "codice_fiscale", "RSSMRA85T10A562S")))
    assert [(p.pointer, p.rule) for p in error.problems] == [("/codice_fiscale", "extra_forbidden")]
    assert "RSSMRA85" not in " ".join([error.detail, *(p.message for p in error.problems)])


def test_an_outcome_answers_the_referral_the_gateway_sent() -> None:
    """The referral encoder's ``id_segnalazione`` and ``id_correlazione`` come back as subject and correlation."""
    sent = Envelope.model_validate({
        "message_id": "gw-0042", "correlation_id": "ALER-K-0042", "message_type": "referral.microcredit",
        "sender": "aler", "recipients": ["fwa"], "subject": {"identifiers": [{"system": "cf",
                                                                             "value": "RSSMRA85T10A562S"}]},
        "purpose": "microcredit-assessment", "sensitivity": ["S2"], "occurred_at": datetime(2026, 11, 20, tzinfo=UTC),
        "payload": {"eligibility": {"resides_in_metro_area": True, "works_in_metro_area": False},
                    "household": {"type": "single-adult"}, "isee_band": "isee-0-6000",
                    "arrears": {"amount_cents": 100000, "months": 3},
                    "request": {"type": "microcredit", "amount_cents": 150000}},
    })
    referral = json.loads(adapters.fwa.encode(sent))
    answer = {**native(), "id_segnalazione": referral["id_segnalazione"],
              "id_correlazione": referral["id_correlazione"]}
    envelope = decode_one(answer)
    assert envelope.subject.first("fwa-referral") == "gw-0042"
    assert envelope.payload["referral_id"] == "gw-0042"
    assert envelope.correlation_id == "ALER-K-0042"


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("1500.50", 150050),
        ("1500.5", 150050),
        (raw("1500.5"), 150050),
        (raw("1500.50"), 150050),
        ("0.01", 1),
        (raw("0.1"), 10),
        (750, 75000),
        ("12.300", 1230),
        (raw("1E+3"), 100000),
        ("10000000.00", 1_000_000_000),
        (raw("19.99"), 1999),  # 19.99 * 100 is 1998.9999999999998 in binary floating point
        (raw("0.29"), 29),
        ("  250.00 ", 25000),
    ],
)
def test_approved_amounts_become_exact_cents(amount: Any, cents: int) -> None:
    payload = decode_one(with_value(native(), "importo_approvato_euro", amount)).payload
    assert payload["approved_amount_cents"] == cents
    assert type(payload["approved_amount_cents"]) is int


# --- rejections ---------------------------------------------------------------------------------------------


def test_approved_without_an_amount_is_rejected() -> None:
    for document in (with_value(native(), "importo_approvato_euro", ...),
                     with_value(native(), "importo_approvato_euro", None)):
        error = rejection(dumps(document))
        assert error.kind == "contract"
        assert [(p.pointer, p.rule) for p in error.problems] == [("/importo_approvato_euro", "missing")]
        assert "approvato" in error.problems[0].message


@pytest.mark.parametrize("esito", ["in-istruttoria", "respinto", "ritirato", "consulenza-avviata"])
def test_an_amount_is_refused_unless_approved(esito: str) -> None:
    error = rejection(dumps({**native(), "esito": esito}))
    assert [(p.pointer, p.rule) for p in error.problems] == [("/importo_approvato_euro", "forbidden_for_esito")]


@pytest.mark.parametrize("esito", ["in-istruttoria", "ritirato", "consulenza-avviata"])
def test_a_rejection_reason_is_refused_unless_rejected(esito: str) -> None:
    document = {**rejected(), "esito": esito}
    error = rejection(dumps(document))
    assert [(p.pointer, p.rule) for p in error.problems] == [("/motivo", "forbidden_for_esito")]


def test_an_approval_with_a_reason_reports_the_reason() -> None:
    error = rejection(dumps({**native(), "motivo": "other"}))
    assert [(p.pointer, p.rule) for p in error.problems] == [("/motivo", "forbidden_for_esito")]


CONTRACT_REJECTIONS: list[tuple[str, str, Any, str, str]] = [
    # (case id, field, value or ... to delete, pointer, rule)
    ("missing id_messaggio", "id_messaggio", ..., "/id_messaggio", "missing"),
    ("missing id_correlazione", "id_correlazione", ..., "/id_correlazione", "missing"),
    ("missing id_segnalazione", "id_segnalazione", ..., "/id_segnalazione", "missing"),
    ("missing esito", "esito", ..., "/esito", "missing"),
    ("missing data_decisione", "data_decisione", ..., "/data_decisione", "missing"),
    ("missing versione", "versione", ..., "/versione", "missing"),
    ("extra field", "note", "free text", "/note", "extra_forbidden"),
    ("applicant name", "nome", "Mario", "/nome", "extra_forbidden"),
    ("unknown esito", "esito", "sospeso", "/esito", "literal_error"),
    ("canonical state for esito", "esito", "approved", "/esito", "literal_error"),
    ("Italian label for esito", "esito", "Approvata", "/esito", "literal_error"),
    ("unknown reason", "motivo", "bad-luck", "/motivo", "value_error"),
    ("zero amount", "importo_approvato_euro", "0.00", "/importo_approvato_euro", "greater_than"),
    ("negative amount", "importo_approvato_euro", raw("-1"), "/importo_approvato_euro", "greater_than"),
    ("3 decimal places", "importo_approvato_euro", "12.345", "/importo_approvato_euro", "decimal_max_places"),
    ("amount over the cap", "importo_approvato_euro", "10000000.01", "/importo_approvato_euro", "less_than_equal"),
    ("too many digits", "importo_approvato_euro", "1234567890123", "/importo_approvato_euro", "decimal_max_digits"),
    ("decimal comma", "importo_approvato_euro", "12,30", "/importo_approvato_euro", "decimal_parsing"),
    ("word for amount", "importo_approvato_euro", "mille", "/importo_approvato_euro", "decimal_parsing"),
    ("boolean for amount", "importo_approvato_euro", True, "/importo_approvato_euro", "decimal_type"),
    ("NaN as string", "importo_approvato_euro", "NaN", "/importo_approvato_euro", "finite_number"),
    ("id with a space", "id_segnalazione", "gw 1", "/id_segnalazione", "string_pattern_mismatch"),
    ("id too long", "id_messaggio", "x" * 65, "/id_messaggio", "string_too_long"),
    ("number for id", "id_correlazione", 12, "/id_correlazione", "string_type"),
    ("wrong versione", "versione", "2.0", "/versione", "literal_error"),
    ("date without time", "data_decisione", "2026-12-02", "/data_decisione", "timezone_aware"),
    ("time without offset", "data_decisione", "2026-12-02T11:00:00", "/data_decisione", "timezone_aware"),
    ("not a timestamp", "data_decisione", "ieri", "/data_decisione", "datetime_from_date_parsing"),
]


@pytest.mark.parametrize(("field", "value", "pointer", "rule"), [c[1:] for c in CONTRACT_REJECTIONS],
                         ids=[c[0] for c in CONTRACT_REJECTIONS])
def test_contract_rejections_name_the_field_and_the_rule(field: str, value: Any, pointer: str, rule: str) -> None:
    base = rejected() if field == "motivo" else native()
    error = rejection(dumps(with_value(base, field, value)))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [(pointer, rule)]


def test_every_problem_is_reported_not_just_the_first() -> None:
    document = with_value(with_value(native(), "esito", "sospeso"), "data_decisione", "ieri")
    document = with_value(document, "extra", 1)
    assert {(p.pointer, p.rule) for p in rejection(dumps(document)).problems} == {
        ("/esito", "literal_error"), ("/data_decisione", "datetime_from_date_parsing"), ("/extra", "extra_forbidden")}


def test_unknown_reason_lists_the_allowed_codes() -> None:
    [problem] = rejection(dumps(with_value(rejected(), "motivo", "bad-luck"))).problems
    assert "fwa-rejection-reasons" in problem.message
    for code in load_codelist("fwa_rejection_reasons").labels_it:
        assert code in problem.message


@pytest.mark.parametrize(("document", "rule"), [
    (with_value(native(), "tipo_messaggio", ...), "union_tag_not_found"),
    (with_value(native(), "tipo_messaggio", "segnalazione-microcredito"), "union_tag_invalid"),
    (with_value(native(), "tipo_messaggio", 1), "union_tag_invalid"),
])
def test_the_dispatcher_needs_a_known_tipo_messaggio(document: dict[str, Any], rule: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(dumps(document))
    assert info.value.kind == "contract"
    assert [(p.pointer, p.rule) for p in info.value.problems] == [("/tipo_messaggio", rule)]
    assert "esito-segnalazione" in info.value.problems[0].message


def test_the_outcome_decoder_alone_names_the_wrong_kind_as_a_literal_error() -> None:
    with pytest.raises(DecodeError) as info:
        decode_outcome(dumps(with_value(native(), "tipo_messaggio", "segnalazione-microcredito")))
    assert [(p.pointer, p.rule) for p in info.value.problems] == [("/tipo_messaggio", "literal_error")]


# --- the canonical model ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "message"), [
    ({"state": "approved"}, "required when state is approved"),
    ({"state": "rejected", "approved_amount_cents": 100}, "required when state is approved, and only then"),
    ({"state": "withdrawn", "rejection_reason": "other"}, "only when state is rejected"),
    ({"state": "approved", "approved_amount_cents": 0}, "greater than or equal to 1"),
    ({"state": "granted"}, "not a code of list fwa-outcome-states"),
])
def test_canonical_outcome_enforces_the_same_rules(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_payload("referral.microcredit-outcome",
                         {"referral_id": "gw-1", "decided_at": "2026-12-02T10:00:00Z", **payload})


def test_canonical_outcome_carries_no_person_data() -> None:
    assert set(MicrocreditOutcome.model_fields) == {
        "referral_id", "state", "approved_amount_cents", "rejection_reason", "decided_at"}


def test_request_purposes_list_the_four_uses_of_a_microcredit() -> None:
    purposes = load_codelist("fwa_request_purposes")
    assert set(purposes.labels_it) == {"rent-arrears", "condominium-charges", "utilities", "unexpected-expenses"}
    assert purposes.version


# --- properties ---------------------------------------------------------------------------------------------

ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-3))]
ids = st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True)


@st.composite
def euro(draw: st.DrawFn) -> tuple[Any, int]:
    """An amount as FWA may write it (string or JSON number, two decimals or fewer) and its value in cents."""
    cents = draw(st.one_of(st.integers(1, 1_000_000_000), st.sampled_from([1, 10, 99, 100, 1999, 150050])))
    exact = Decimal(cents).scaleb(-2)
    text = draw(st.sampled_from([f"{exact:.2f}", str(exact.normalize()), f"{exact:f}"]))
    if cents % 100 == 0 and draw(st.booleans()):
        text = str(cents // 100)
    return (raw(text) if draw(st.booleans()) else text), cents


@st.composite
def outcomes(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    esito = draw(st.sampled_from(sorted(ESITO_STATES)))
    decided = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                                timezones=st.sampled_from(ZONES)))
    message: dict[str, Any] = {
        "id_messaggio": draw(ids), "id_correlazione": draw(ids), "tipo_messaggio": "esito-segnalazione",
        "versione": "1.0", "id_segnalazione": draw(ids), "esito": esito, "data_decisione": decided.isoformat(),
    }
    cents = None
    if esito == "approvato":
        message["importo_approvato_euro"], cents = draw(euro())
    reason = None
    if esito == "respinto" and draw(st.booleans()):
        reason = draw(st.sampled_from(sorted(load_codelist("fwa_rejection_reasons").labels_it)))
        message["motivo"] = reason
    return message, {"cents": cents, "reason": reason, "decided": decided, "state": ESITO_STATES[esito]}



@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes())
def test_valid_outcomes_decode_deterministically_with_exact_amounts(
        case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    message, expected = case
    body = dumps(message)
    [envelope] = decode(body)
    assert decode(body) == [envelope]
    assert decode_outcome(body) == [envelope]

    payload = envelope.payload
    assert envelope.message_id == message["id_messaggio"]
    assert envelope.correlation_id == message["id_correlazione"]
    assert envelope.subject.identifiers[0].model_dump() == {"system": "fwa-referral",
                                                            "value": message["id_segnalazione"]}
    assert payload["referral_id"] == message["id_segnalazione"]
    assert payload["state"] == expected["state"]
    assert envelope.occurred_at == expected["decided"]
    assert payload.get("rejection_reason") == expected["reason"]
    assert payload.get("approved_amount_cents") == expected["cents"]
    if expected["cents"] is not None:
        value = native_euro(message["importo_approvato_euro"])
        assert payload["approved_amount_cents"] == round(value * 100)
        assert Decimal(payload["approved_amount_cents"]) / 100 == value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes(), st.sampled_from(["drop amount", "add amount"]))
def test_the_amount_is_present_if_and_only_if_approved(case: tuple[dict[str, Any], dict[str, Any]],
                                                       change: str) -> None:
    message, expected = case
    assume((expected["state"] == "approved") == (change == "drop amount"))
    if change == "drop amount":
        message = with_value(message, "importo_approvato_euro", ...)
        rule = "missing"
    else:
        message = with_value(message, "importo_approvato_euro", "100.00")
        rule = "forbidden_for_esito"
    error = rejection(dumps(message))
    assert [(p.pointer, p.rule) for p in error.problems] == [("/importo_approvato_euro", rule)]
