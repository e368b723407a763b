"""Tests for :mod:`adapters.fwa`: a minimised ``referral.microcredit`` envelope -> FWA's native referral JSON.

The encoder only renames and formats; what it may carry is fixed by the input model, so the ISEE value and
the ALER tenancy cannot reach FWA even if a caller forgets to minimise.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.fwa import FwaReferral, encode
from schemas.envelope import Envelope
from schemas.messages import MicrocreditReferral, validate_payload

CF = "RSSMRA85T10A562S"
OCCURRED = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


def referral_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "eligibility": {"resides_in_metro_area": True, "works_in_metro_area": False},
        "household": {"type": "single-mother-minors"},
        "isee_band": "isee-0-6000",
        "arrears": {"amount_cents": 123450, "months": 7},
        "request": {"type": "microcredit", "amount_cents": 150000},
    }
    payload.update(changes)
    return payload


def envelope(payload: dict[str, Any] | None = None, identifiers: tuple[dict[str, str], ...] | None = None,
             message_type: str = "referral.microcredit", purpose: str | None = "microcredit-assessment") -> Envelope:
    return Envelope.model_validate({
        "message_id": "gw-0001",
        "correlation_id": "ALER-K-0001",
        "message_type": message_type,
        "sender": "aler",
        "recipients": ["fwa"],
        "subject": {"identifiers": identifiers or ({"system": "cf", "value": CF},)},
        "purpose": purpose,
        "sensitivity": ["S2"],
        "occurred_at": OCCURRED,
        "payload": referral_payload() if payload is None else payload,
    })


def encoded(env: Envelope, **labels: Any) -> dict[str, Any]:
    body = encode(env, **labels)
    assert isinstance(body, bytes)
    document: dict[str, Any] = json.loads(body.decode("utf-8"))  # valid UTF-8 JSON, not just orjson's reading
    return document


def test_encode_produces_json_with_exactly_the_expected_keys_and_values() -> None:
    document = encoded(envelope(), consent_ref="cns-42", obligations=("PSEUD",), refrains=("NORDSCLCD", "NOREUSE"))
    assert document == {
        "tipo_messaggio": "segnalazione-microcredito",
        "versione": "1.0",
        "id_segnalazione": "gw-0001",
        "id_correlazione": "ALER-K-0001",
        "ente_inviante": "aler",
        "finalita_trattamento": "microcredit-assessment",
        "riferimento_consenso": "cns-42",
        "richiedente": {"codice_fiscale": CF},
        "requisiti": {"residenza_citta_metropolitana": True, "lavoro_citta_metropolitana": False},
        "nucleo": {"tipologia": "single-mother-minors"},
        "fascia_isee": "isee-0-6000",
        "morosita": {"importo_euro": "1234.50", "mensilita": 7},
        "richiesta": {"tipo": "microcredit", "importo_euro": "1500.00"},
        "etichette": {"obblighi": ["PSEUD"], "divieti": ["NORDSCLCD", "NOREUSE"]},
        "inviato_il": "2026-11-20T08:30:00Z",
    }


def test_labels_default_to_empty_and_consent_reference_to_null() -> None:
    document = encoded(envelope(purpose=None))
    assert document["riferimento_consenso"] is None
    assert document["etichette"] == {"obblighi": [], "divieti": []}
    assert document["finalita_trattamento"] == ""


def test_output_validates_against_the_native_model() -> None:
    body = encode(envelope(), consent_ref="cns-42")
    referral = FwaReferral.model_validate_json(body)
    assert referral.richiedente.codice_fiscale == CF
    assert FwaReferral.model_validate(json.loads(body)).model_dump(mode="json") == json.loads(body)


def test_encoding_is_deterministic() -> None:
    assert encode(envelope(), consent_ref="c") == encode(envelope(), consent_ref="c")


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (10, "0.10"),
        (99, "0.99"),
        (100, "1.00"),
        (101, "1.01"),
        (123456, "1234.56"),
        (1_000_000_000, "10000000.00"),
    ],
)
def test_cents_are_written_as_euro_with_two_decimals(cents: int, text: str) -> None:
    payload = referral_payload(arrears={"amount_cents": cents, "months": 0},
                               request={"type": "debt-counselling", "amount_cents": cents})
    document = encoded(envelope(payload))
    assert document["morosita"]["importo_euro"] == text
    assert document["richiesta"]["importo_euro"] == text


@pytest.mark.parametrize(("system", "value"), [("cf", CF), ("stp", "STP0303080000001"), ("eni", "ENI0303080000002")])
def test_the_applicant_is_identified_by_cf_stp_or_eni(system: str, value: str) -> None:
    document = encoded(envelope(identifiers=({"system": "aler-contract", "value": "ALER-C-1"},
                                             {"system": system, "value": value})))
    assert document["richiedente"] == {"codice_fiscale": value}


def test_codice_fiscale_is_preferred_over_stp() -> None:
    document = encoded(envelope(identifiers=({"system": "stp", "value": "STP0303080000001"},
                                             {"system": "cf", "value": CF})))
    assert document["richiedente"] == {"codice_fiscale": CF}


def test_missing_person_identifier_is_a_clear_value_error() -> None:
    env = envelope(identifiers=({"system": "aler-contract", "value": "ALER-C-12345678"},))
    with pytest.raises(ValueError, match=r"needs the applicant's codice fiscale, STP or ENI code"):
        encode(env)


FORBIDDEN_EXTRAS: list[tuple[str, dict[str, Any], str]] = [
    ("ISEE value", referral_payload(isee_value_cents=540000), "isee_value_cents"),
    ("tenancy", referral_payload(tenancy={
        "contract_id": "ALER-C-12345678", "contract_type": "SAP", "unit_id": "ALER-U-7654321",
        "quartiere": "san-siro", "municipio": 7, "rent_band": "protezione"}), "tenancy"),
    ("household size", referral_payload(household={"type": "single-adult", "size": 1}), "household.size"),
    ("arrears since", referral_payload(arrears={"amount_cents": 1, "months": 1, "since": "2026-01-01"}),
     "arrears.since"),
    ("arrears stage", referral_payload(arrears={"amount_cents": 1, "months": 1, "stage": "late"}), "arrears.stage"),
]


@pytest.mark.parametrize(("payload", "field"), [c[1:] for c in FORBIDDEN_EXTRAS], ids=[c[0] for c in FORBIDDEN_EXTRAS])
def test_input_model_forbids_fields_f1_does_not_allow(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_payload("referral.microcredit", payload)
    errors = info.value.errors()
    assert [(".".join(map(str, e["loc"])), e["type"]) for e in errors] == [(field, "extra_forbidden")]
    with pytest.raises(ValidationError):
        envelope(payload)  # nor can an envelope of this type carry them


def test_encoder_refuses_an_envelope_that_was_not_minimised() -> None:
    """Even given a full arrears referral by mistake, the encoder fails instead of forwarding the extras."""
    full = referral_payload(isee_value_cents=540000, tenancy={
        "contract_id": "ALER-C-12345678", "contract_type": "SAP", "unit_id": "ALER-U-7654321",
        "quartiere": "san-siro", "municipio": 7, "rent_band": "protezione"})
    full["household"] = {"type": "single-adult", "size": 1}
    full["arrears"] = {**full["arrears"], "kind": "rent", "stage": "late"}
    unminimised = envelope(full, message_type="tenancy.arrears-referral")
    with pytest.raises(ValidationError) as info:
        encode(unminimised)
    assert {e["type"] for e in info.value.errors()} == {"extra_forbidden"}
    assert {str(e["loc"][0]) for e in info.value.errors()} >= {"tenancy", "isee_value_cents"}


def test_referral_model_fields_are_exactly_the_f1_payload() -> None:
    schema = MicrocreditReferral.model_json_schema()
    assert set(schema["properties"]) == {"eligibility", "household", "isee_band", "arrears", "request"}
    assert "isee_value_cents" not in json.dumps(schema)
    assert "tenancy" not in json.dumps(schema)


@pytest.mark.parametrize(("path", "value"), [
    ("isee_band", "isee-0-5000"),
    ("household.type", "big-family"),
    ("arrears.amount_cents", -1),
    ("arrears.months", 601),
    ("request.type", "loan"),
])
def test_input_model_rejects_invalid_values(path: str, value: Any) -> None:
    payload = copy.deepcopy(referral_payload())
    *parents, last = path.split(".")
    target = payload
    for key in parents:
        target = target[key]
    target[last] = value
    with pytest.raises(ValidationError) as info:
        validate_payload("referral.microcredit", payload)
    assert [".".join(map(str, e["loc"])) for e in info.value.errors()] == [path]


def test_native_model_rejects_badly_formatted_euro_text() -> None:
    document = json.loads(encode(envelope()))
    for bad in ("1234.5", "1234", "-1.00", "1,00", "1.000"):
        document["morosita"]["importo_euro"] = bad
        with pytest.raises(ValidationError):
            FwaReferral.model_validate(document)
