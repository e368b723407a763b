"""Tests for :mod:`adapters.fwa`: a minimised ``referral.microcredit`` envelope -> FWA's native referral JSON.

The encoder only renames and formats; what it may carry is fixed by the input model, so the ISEE value and
the ALER tenancy cannot reach FWA even if a caller forgets to minimise. Property tests: every generated
referral encodes to a document the published contract accepts and that reads back to the same fields; every
generated outcome the contract accepts decodes to the canonical outcome with the same fields, of which ALER
gets exactly F1-outcome's.
"""

from __future__ import annotations

import copy
import json
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.fwa import FwaReferral, decode, encode
from adapters.fwa.referral import Etichette, Morosita, Nucleo, Requisiti, Richiedente, Richiesta, _euro
from gateway.identity.synthetic import synthetic_codice_fiscale
from gateway.policy.minimise import minimise
from gateway.policy.registry import load_registry
from schemas.codelists import load_codelist
from schemas.envelope import Envelope, SubjectRef
from schemas.messages import MicrocreditReferral, validate_payload
from tests.helpers import dumps, raw

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


# --- properties: referral encode -> contract -> read back; outcome contract -> decode -> canonical -> fields ---

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "fwa"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
tokens = st.from_regex(r"[A-Za-z0-9._:@\-]{1,64}", fullmatch=True)
ids = st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                        timezones=st.sampled_from(ZONES))


@cache
def contract(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((CONTRACTS / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def contract_errors(name: str, document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in contract(name).iter_errors(document)]


def codes(name: str) -> list[str]:
    return sorted(load_codelist(name).labels_it)


def cents_of(euro_text: str) -> int:
    value = Decimal(euro_text) * 100
    assert value == value.to_integral_value(), euro_text
    return int(value)


person_ids = st.one_of(
    st.builds(lambda seed: ("cf", synthetic_codice_fiscale(random.Random(seed))), st.integers(0, 2**32)),
    st.builds(lambda code: ("stp", code), st.from_regex(r"STP[0-9]{13}", fullmatch=True)),
    st.builds(lambda code: ("eni", code), st.from_regex(r"ENI[0-9]{13}", fullmatch=True)),
)
amounts = st.one_of(st.integers(0, 10_000_000_00), st.sampled_from([0, 1, 9, 10, 99, 100, 101, 10_000_000_00]))


@st.composite
def referrals(draw: st.DrawFn) -> tuple[Envelope, dict[str, Any]]:
    """A minimised ``referral.microcredit`` envelope, and the labels the intake hands the encoder."""
    people = draw(st.lists(person_ids, min_size=1, max_size=3, unique_by=lambda i: i[0]))
    # an identifier FWA may not see, as the subject of an unminimised envelope would still carry
    others = [("aler-contract", "ALER-C-12345678")] if draw(st.booleans()) else []
    identifiers = draw(st.permutations([*people, *others]))
    envelope = Envelope.model_validate({
        "message_id": draw(tokens), "correlation_id": draw(tokens), "message_type": "referral.microcredit",
        "sender": draw(st.sampled_from(["aler", "comune"])), "recipients": ["fwa"],
        "subject": {"identifiers": [{"system": system, "value": value} for system, value in identifiers]},
        "purpose": draw(st.sampled_from(["microcredit-assessment", None])), "sensitivity": ["S2"],
        "occurred_at": draw(instants),
        "payload": {
            "eligibility": {"resides_in_metro_area": draw(st.booleans()), "works_in_metro_area": draw(st.booleans())},
            "household": {"type": draw(st.sampled_from(codes("household_types")))},
            "isee_band": draw(st.sampled_from(codes("isee_bands"))),
            "arrears": {"amount_cents": draw(amounts), "months": draw(st.integers(0, 600))},
            "request": {"type": draw(st.sampled_from(codes("request_types"))), "amount_cents": draw(amounts)},
        },
    })
    labels = {"consent_ref": draw(st.one_of(st.none(), st.builds(lambda c, v: f"{c}@{v}", ids, st.integers(1, 99)))),
              "obligations": tuple(draw(st.lists(st.sampled_from(["PSEUD", "ENCRYPT"]), unique=True))),
              "refrains": tuple(draw(st.lists(st.sampled_from(["NORDSCLCD", "NOREUSE", "NORELINK"]), unique=True)))}
    return envelope, labels


def read_back(document: dict[str, Any]) -> dict[str, Any]:
    """What FWA reads in a ``segnalazione-microcredito``, back in the canonical names (euro text -> cents)."""
    referral = FwaReferral.model_validate(document)
    payload = validate_payload("referral.microcredit", {
        "eligibility": {"resides_in_metro_area": referral.requisiti.residenza_citta_metropolitana,
                        "works_in_metro_area": referral.requisiti.lavoro_citta_metropolitana},
        "household": {"type": referral.nucleo.tipologia},
        "isee_band": referral.fascia_isee,
        "arrears": {"amount_cents": cents_of(referral.morosita.importo_euro), "months": referral.morosita.mensilita},
        "request": {"type": referral.richiesta.tipo, "amount_cents": cents_of(referral.richiesta.importo_euro)},
    })
    return {"message_id": referral.id_segnalazione, "correlation_id": referral.id_correlazione,
            "sender": referral.ente_inviante, "purpose": referral.finalita_trattamento or None,
            "applicant": referral.richiedente.codice_fiscale, "occurred_at": referral.inviato_il,
            "payload": payload.model_dump(mode="json"),
            "labels": {"consent_ref": referral.riferimento_consenso, "obligations": referral.etichette.obblighi,
                       "refrains": referral.etichette.divieti}}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(referrals())
def test_every_referral_encodes_to_what_the_contract_accepts_and_reads_back_to_the_same_fields(
        case: tuple[Envelope, dict[str, Any]]) -> None:
    envelope, labels = case
    body = encode(envelope, **labels)
    document = json.loads(body.decode("utf-8"))
    assert contract_errors("segnalazione-microcredito", document) == []
    assert RFC3339.fullmatch(document["inviato_il"]), document["inviato_il"]  # the contract's date-time

    preferred = next(envelope.subject.first(s) for s in ("cf", "stp", "eni") if envelope.subject.first(s))
    back = read_back(document)
    assert back == {"message_id": envelope.message_id, "correlation_id": envelope.correlation_id,
                    "sender": envelope.sender, "purpose": envelope.purpose, "applicant": preferred,
                    "occurred_at": envelope.occurred_at, "payload": envelope.payload, "labels": labels}
    assert back["occurred_at"].utcoffset() == envelope.occurred_at.utcoffset()  # the same instant, as written
    others = [i.value for i in envelope.subject.identifiers if i.value != preferred]
    assert not [value for value in others if value in body.decode("utf-8")]  # one identifier crosses, no more


F1_OUTCOME = load_registry().flows[[f.id for f in load_registry().flows].index("F1-outcome")]


STATE_OF_ESITO = {"in-istruttoria": "assessing", "approvato": "approved", "respinto": "rejected",
                  "ritirato": "withdrawn", "consulenza-avviata": "counselling-started"}
"""FWA's words and the canonical states (code list ``fwa-outcome-states``), written out independently of the
adapter's own table."""


def test_the_outcome_words_are_those_of_the_published_contract() -> None:
    esito = contract("esito-segnalazione").schema["properties"]["esito"]["enum"]
    assert sorted(esito) == sorted(STATE_OF_ESITO)
    assert set(STATE_OF_ESITO.values()) == set(codes("fwa_outcome_states"))


def tokenise(recipient: str, system: str, value: str) -> str:
    return f"gwt_{recipient}_{abs(hash((system, value))) % 10**12}"


@st.composite
def outcomes(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ``esito-segnalazione`` as FWA sends it (the amount a string or a bare JSON number), and the canonical
    fields it stands for."""
    esito = draw(st.sampled_from(sorted(STATE_OF_ESITO)))
    decided = draw(instants)
    message: dict[str, Any] = {
        "id_messaggio": draw(ids), "id_correlazione": draw(ids), "tipo_messaggio": "esito-segnalazione",
        "versione": "1.0", "id_segnalazione": draw(ids), "esito": esito, "data_decisione": decided.isoformat(),
    }
    cents = None
    if esito == "approvato":
        cents = draw(st.integers(1, 10_000_000_00))
        text = f"{Decimal(cents).scaleb(-2):.2f}"
        message["importo_approvato_euro"] = raw(text) if draw(st.booleans()) else text
    reason = None
    if esito == "respinto" and draw(st.booleans()):
        reason = draw(st.sampled_from(codes("fwa_rejection_reasons")))
        message["motivo"] = reason
    return message, {"referral_id": message["id_segnalazione"], "state": STATE_OF_ESITO[esito],
                     "approved_amount_cents": cents, "rejection_reason": reason, "decided_at": decided}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes())
def test_every_outcome_the_contract_accepts_decodes_to_the_canonical_fields_and_aler_gets_f1_outcomes(
        case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    message, expected = case
    body = dumps(message)
    assert contract_errors("esito-segnalazione", json.loads(body)) == []
    [envelope] = decode(body)

    assert (envelope.message_id, envelope.correlation_id, envelope.message_type, envelope.sender,
            envelope.recipients, envelope.purpose) == (message["id_messaggio"], message["id_correlazione"],
                                                      "referral.microcredit-outcome", "fwa", ("aler",),
                                                      "microcredit-assessment")
    assert [i.model_dump() for i in envelope.subject.identifiers] == [
        {"system": "fwa-referral", "value": message["id_segnalazione"]}]
    canonical = validate_payload("referral.microcredit-outcome", envelope.payload)
    assert canonical.model_dump() == expected
    assert envelope.occurred_at == expected["decided_at"]

    # the fields ALER receives: exactly F1-outcome's; the referral id FWA quoted crosses only in the payload
    identified = envelope.model_copy(update={"subject": SubjectRef(identifiers=envelope.subject.identifiers,
                                                                   pseudonym="sbj_test")})
    to_aler = minimise(identified, F1_OUTCOME, "gw-out", tokenise)
    assert to_aler.payload == envelope.payload
    assert set(to_aler.payload) <= set(F1_OUTCOME.allowed_fields)
    assert [(i.system, i.value) for i in to_aler.subject.identifiers] == [
        ("gateway-token", tokenise("aler", "subject", "sbj_test"))]


def validated_referral(envelope: Envelope, consent_ref: str | None = None, obligations: tuple[str, ...] = (),
                       refrains: tuple[str, ...] = ()) -> bytes:
    """The reference the encoder is held to: FWA's referral built through its validating models, then dumped."""
    payload = envelope.payload_as(MicrocreditReferral)
    cf = envelope.subject.first("cf") or envelope.subject.first("stp") or envelope.subject.first("eni")
    referral = FwaReferral(
        id_segnalazione=envelope.message_id, id_correlazione=envelope.correlation_id, ente_inviante=envelope.sender,
        finalita_trattamento=envelope.purpose or "", riferimento_consenso=consent_ref,
        richiedente=Richiedente(codice_fiscale=cf),
        requisiti=Requisiti(residenza_citta_metropolitana=payload.eligibility.resides_in_metro_area,
                            lavoro_citta_metropolitana=payload.eligibility.works_in_metro_area),
        nucleo=Nucleo(tipologia=payload.household.type), fascia_isee=payload.isee_band,
        morosita=Morosita(importo_euro=_euro(payload.arrears.amount_cents), mensilita=payload.arrears.months),
        richiesta=Richiesta(tipo=payload.request.type, importo_euro=_euro(payload.request.amount_cents)),
        etichette=Etichette(obblighi=obligations, divieti=refrains), inviato_il=envelope.occurred_at,
    )
    return orjson.dumps(referral.model_dump(mode="json"))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(referrals(), st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31),
                                 timezones=st.one_of(st.none(), st.timezones())))
def test_the_referral_written_directly_is_byte_for_byte_the_validated_models_dump(
        case: tuple[Envelope, dict[str, Any]], occurred: datetime) -> None:
    """The encoder writes FWA's referral without building its models; over generated referrals (instants with
    microseconds, any zone, none) the bytes are those of the validating models' dump."""
    envelope, labels = case
    for candidate in (envelope, envelope.model_copy(update={"occurred_at": occurred})):
        assert encode(candidate, **labels) == validated_referral(candidate, **labels)


def test_the_referral_of_a_minimised_arrears_referral_is_the_validated_models_dump() -> None:
    """The same through the intake's own path: the envelope minimisation builds without validating it again."""
    flow = next(f for f in load_registry().flows if f.id == "F1")
    arrears = envelope(payload={**referral_payload(), "tenancy": {
        "contract_id": "ALER-C-1", "contract_type": "SAP", "unit_id": "ALER-U-1", "quartiere": "san-siro",
        "municipio": 7, "rent_band": "protezione"}, "household": {"type": "single-adult", "size": 1},
        "arrears": {"amount_cents": 10, "months": 1, "kind": "rent", "stage": "late"}},
        message_type="tenancy.arrears-referral")
    outgoing = minimise(arrears, flow, "gw-0002")
    assert (encode(outgoing, consent_ref="cns-1@2", obligations=flow.obligations, refrains=flow.refrains)
            == validated_referral(outgoing, "cns-1@2", flow.obligations, flow.refrains))
