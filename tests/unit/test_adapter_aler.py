"""Tests for :mod:`adapters.aler`: ALER's ``segnalazione-morosita`` decoded into a canonical envelope.

Field-by-field mapping, euro -> cents, code-list aliases, codice fiscale handling, one rejection per contract
rule (with the JSON pointer and rule the sender sees), and property tests over synthetic tenants: decoding is
total and deterministic on valid messages, amounts are exact, and flow F1 followed by the FWA encoder lets
through exactly the fields F1 allows.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import adapters.fwa
from adapters.aler import arrears as arrears_module
from adapters.aler import decode
from adapters.aler.arrears import AlerArrearsMessage
from gateway.identity.codice_fiscale import classify, is_omocodic, omocodic_variant
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.policy.minimise import minimise
from gateway.policy.registry import Flow, load_registry
from gateway.routing import DECODERS
from schemas.codelists import load_codelist
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.errors import DecodeError
from tests.adapter_checks import decoded_one, header_of, refusal
from tests.helpers import dumps, leaves, native_euro, raw, with_value

CF = "RSSMRA85T10A562S"
"""The widely used "Mario Rossi" specimen; RSSMRA85T10A562T is the same code with a wrong check character."""
CF_OMOCODIC = omocodic_variant(CF, 2)  # RSSMRA85T10A5SNT


def native() -> dict[str, Any]:
    """A valid ALER arrears referral in which every field has a value distinct from the defaults."""
    return {
        "id_messaggio": "ALER-M-0001",
        "id_correlazione": "ALER-K-0001",
        "tipo_messaggio": "segnalazione-morosita",
        "versione": "1.0",
        "data_evento": "2026-11-20T09:30:00+01:00",
        "finalita": "microcredit-assessment",
        "destinatari": ["fwa"],
        "contratto": {
            "id_contratto": "ALER-C-12345678",
            "tipo": "SAT",
            "id_unita": "ALER-U-7654321",
            "quartiere": "Molise Calvaire",
            "municipio": 4,
            "fascia_canone": "accesso",
        },
        "intestatario": {
            "codice_fiscale": CF.lower(),
            "residente_citta_metropolitana": True,
            "lavora_citta_metropolitana": False,
        },
        "nucleo": {"tipologia": "single-mother-minors", "componenti": 3},
        "isee": {"fascia": "isee-0-6000", "valore_euro": "5400.00"},
        "morosita": {
            "importo_euro": "1234.50",
            "mensilita": 7,
            "dal": "2026-04-01",
            "tipo": "canone",
            "stadio": "formal-notice",
        },
        "richiesta": {"tipo": "debt-counselling", "importo_euro": "1500.00"},
    }


def decode_one(document: Any, content_type: str = "application/json") -> Envelope:
    return decoded_one(decode, document, content_type)


def rejection(body: bytes, content_type: str = "application/json") -> DecodeError:
    return refusal(decode, body, content_type)


# --- decoding a valid message -------------------------------------------------------------------------------


def test_valid_message_decodes_to_the_expected_envelope_field_by_field() -> None:
    envelope = decode_one(native())

    assert header_of(envelope) == {
        "message_id": "ALER-M-0001", "correlation_id": "ALER-K-0001", "message_type": "tenancy.arrears-referral",
        "schema_version": "1.0", "sender": "aler", "recipients": ("fwa",),
        "subject": {"identifiers": ({"system": "cf", "value": CF},), "pseudonym": None},
        "purpose": "microcredit-assessment", "sensitivity": ("S2",),
        "occurred_at": datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
    }
    assert envelope.occurred_at.utcoffset() == timedelta(hours=1)
    assert envelope.payload == {
        "tenancy": {
            "contract_id": "ALER-C-12345678",
            "contract_type": "SAT",
            "unit_id": "ALER-U-7654321",
            "quartiere": "molise-calvairate",
            "municipio": 4,
            "rent_band": "accesso",
        },
        "eligibility": {"resides_in_metro_area": True, "works_in_metro_area": False},
        "household": {"type": "single-mother-minors", "size": 3},
        "isee_band": "isee-0-6000",
        "isee_value_cents": 540000,
        "arrears": {
            "amount_cents": 123450,
            "months": 7,
            "since": "2026-04-01",
            "kind": "rent",
            "stage": "formal-notice",
        },
        "request": {"type": "debt-counselling", "amount_cents": 150000},
    }


def test_optional_fields_may_be_left_out() -> None:
    document = native()
    for path in ("id_correlazione", "finalita", "destinatari", "isee/valore_euro", "morosita/dal"):
        document = with_value(document, path, ...)
    envelope = decode_one(document)
    assert envelope.correlation_id == envelope.message_id == "ALER-M-0001"
    assert envelope.purpose is None
    assert envelope.recipients == ()
    assert "isee_value_cents" not in envelope.payload
    assert "since" not in envelope.payload["arrears"]


# Each native field, a different valid value, the canonical path it must land on and the value it becomes.
FIELD_MAP: list[tuple[str, Any, str, Any]] = [
    ("id_messaggio", "ALER-M-0002", "message_id", "ALER-M-0002"),
    ("id_correlazione", "ALER-K-0002", "correlation_id", "ALER-K-0002"),
    ("data_evento", "2026-11-21T10:00:00+00:00", "occurred_at", "2026-11-21T10:00:00Z"),
    ("finalita", "tenancy-management", "purpose", "tenancy-management"),
    ("destinatari", ["fwa", "comune"], "recipients", ["fwa", "comune"]),
    ("contratto/id_contratto", "ALER-C-87654321", "payload/tenancy/contract_id", "ALER-C-87654321"),
    ("contratto/tipo", "SAP", "payload/tenancy/contract_type", "SAP"),
    ("contratto/id_unita", "ALER-U-1234567", "payload/tenancy/unit_id", "ALER-U-1234567"),
    ("contratto/quartiere", "San Siro", "payload/tenancy/quartiere", "san-siro"),
    ("contratto/municipio", 7, "payload/tenancy/municipio", 7),
    ("contratto/fascia_canone", "decadenza", "payload/tenancy/rent_band", "decadenza"),
    ("intestatario/codice_fiscale", "MRTMTT25D09F205Z", "subject/identifiers", [
        {"system": "cf", "value": "MRTMTT25D09F205Z"}]),
    ("intestatario/residente_citta_metropolitana", False, "payload/eligibility/resides_in_metro_area", False),
    ("intestatario/lavora_citta_metropolitana", True, "payload/eligibility/works_in_metro_area", True),
    ("nucleo/tipologia", "elderly-single", "payload/household/type", "elderly-single"),
    ("nucleo/componenti", 1, "payload/household/size", 1),
    ("isee/fascia", "isee-6000-20000", "payload/isee_band", "isee-6000-20000"),
    ("isee/valore_euro", "6543.21", "payload/isee_value_cents", 654321),
    ("morosita/importo_euro", "99.99", "payload/arrears/amount_cents", 9999),
    ("morosita/mensilita", 12, "payload/arrears/months", 12),
    ("morosita/dal", "2025-12-01", "payload/arrears/since", "2025-12-01"),
    ("morosita/tipo", "utenze", "payload/arrears/kind", "utilities"),
    ("morosita/stadio", "repayment-plan", "payload/arrears/stage", "repayment-plan"),
    ("richiesta/tipo", "microcredit", "payload/request/type", "microcredit"),
    ("richiesta/importo_euro", "2000.00", "payload/request/amount_cents", 200000),
]
CONSTANT_NATIVE = {"tipo_messaggio", "versione"}
CONSTANT_CANONICAL = {"message_type", "schema_version", "sender", "sensitivity", "subject/pseudonym"}


def test_field_map_covers_every_native_and_every_canonical_field() -> None:
    native_paths = set(leaves(native()))
    assert {n for n, _, _, _ in FIELD_MAP} | CONSTANT_NATIVE == native_paths
    canonical_paths = set(leaves(decode_one(native()).model_dump(mode="json")))
    assert {c for _, _, c, _ in FIELD_MAP} | CONSTANT_CANONICAL == canonical_paths


@pytest.mark.parametrize(("native_path", "value", "canonical_path", "expected"), FIELD_MAP,
                         ids=[n for n, _, _, _ in FIELD_MAP])
def test_each_canonical_field_comes_from_its_native_field(native_path: str, value: Any, canonical_path: str,
                                                           expected: Any) -> None:
    before = leaves(decode_one(native()).model_dump(mode="json"))
    after = leaves(decode_one(with_value(native(), native_path, value)).model_dump(mode="json"))
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    assert changed == {canonical_path}
    assert after[canonical_path] == expected


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("1234.50", 123450),
        (raw("1234.5"), 123450),
        (raw("1234.50"), 123450),
        ("1234.5", 123450),
        ("0", 0),
        ("0.00", 0),
        ("0.01", 1),
        (raw("0.1"), 10),
        (7, 700),
        ("12.300", 1230),
        (raw("1E+3"), 100000),
        ("10000000.00", 1_000_000_000),
        (raw("19.99"), 1999),  # 19.99 * 100 is 1998.9999999999998 in binary floating point
        (raw("0.29"), 29),  # and 0.29 * 100 is 28.999999999999996
    ],
)
def test_euro_amounts_become_exact_cents(amount: Any, cents: int) -> None:
    document = with_value(with_value(native(), "morosita/importo_euro", amount), "richiesta/importo_euro", amount)
    document = with_value(document, "isee/valore_euro", amount)
    payload = decode_one(document).payload
    assert payload["arrears"]["amount_cents"] == cents
    assert payload["request"]["amount_cents"] == cents
    assert payload["isee_value_cents"] == cents
    assert type(payload["arrears"]["amount_cents"]) is int


@pytest.mark.parametrize(
    ("given_as", "code"),
    [
        ("Molise Calvaire", "molise-calvairate"),
        ("Molise Calvairate", "molise-calvairate"),
        ("molise  calvairate", "molise-calvairate"),
        ("Calvairate", "molise-calvairate"),
        ("molise-calvairate", "molise-calvairate"),
        ("S. Siro", "san-siro"),
        ("SAN SIRO", "san-siro"),
        ("  Gratosoglio ", "gratosoglio"),
        ("Altri quartieri ERP di Milano", "other-milano"),
    ],
)
def test_quartiere_codes_labels_and_aliases_resolve_to_the_code(given_as: str, code: str) -> None:
    envelope = decode_one(with_value(native(), "contratto/quartiere", given_as))
    assert envelope.payload["tenancy"]["quartiere"] == code


@pytest.mark.parametrize(("tipo", "kind"), [("canone", "rent"), ("spese", "charges"), ("utenze", "utilities")])
def test_arrears_kind_is_translated(tipo: str, kind: str) -> None:
    assert decode_one(with_value(native(), "morosita/tipo", tipo)).payload["arrears"]["kind"] == kind


@pytest.mark.parametrize("given_as", [CF, CF.lower(), f"  {CF.lower()} ", "rSsMrA85t10a562s"])
def test_codice_fiscale_is_normalised_to_upper_case(given_as: str) -> None:
    envelope = decode_one(with_value(native(), "intestatario/codice_fiscale", given_as))
    assert envelope.subject.identifiers[0].model_dump() == {"system": "cf", "value": CF}


@pytest.mark.parametrize("given_as", [CF_OMOCODIC, CF_OMOCODIC.lower()])
def test_omocodic_codice_fiscale_is_accepted_and_kept_as_issued(given_as: str) -> None:
    assert is_omocodic(CF_OMOCODIC)
    envelope = decode_one(with_value(native(), "intestatario/codice_fiscale", given_as))
    assert envelope.subject.identifiers[0].model_dump() == {"system": "cf", "value": CF_OMOCODIC}


@pytest.mark.parametrize(("given_as", "system", "value"), [
    ("STP0303080000001", "stp", "STP0303080000001"),
    ("eni0303080000002", "eni", "ENI0303080000002"),
])
def test_stp_and_eni_codes_are_accepted_in_their_own_system(given_as: str, system: str, value: str) -> None:
    envelope = decode_one(with_value(native(), "intestatario/codice_fiscale", given_as))
    assert envelope.subject.identifiers[0].model_dump() == {"system": system, "value": value}


# --- rejections ---------------------------------------------------------------------------------------------

CONTRACT_REJECTIONS: list[tuple[str, str, Any, str, str]] = [
    # (case id, native path, value or ... to delete, pointer, rule)
    ("missing top-level field", "nucleo", ..., "/nucleo", "missing"),
    ("missing nested field", "morosita/importo_euro", ..., "/morosita/importo_euro", "missing"),
    ("missing codice fiscale", "intestatario/codice_fiscale", ..., "/intestatario/codice_fiscale", "missing"),
    ("missing tipo_messaggio", "tipo_messaggio", ..., "/tipo_messaggio", "missing"),
    ("extra top-level field", "nome", "Mario", "/nome", "extra_forbidden"),
    ("extra nested field", "morosita/nota", "x", "/morosita/nota", "extra_forbidden"),
    ("string for integer", "contratto/municipio", "cinque", "/contratto/municipio", "int_parsing"),
    ("fraction for integer", "morosita/mensilita", raw("1.5"), "/morosita/mensilita", "int_from_float"),
    ("null for integer", "nucleo/componenti", None, "/nucleo/componenti", "int_type"),
    ("number for string", "id_messaggio", 12, "/id_messaggio", "string_type"),
    ("object for string", "contratto/id_unita", {}, "/contratto/id_unita", "string_type"),
    ("string for object", "contratto", "x", "/contratto", "model_type"),
    ("string for list", "destinatari", "fwa", "/destinatari", "tuple_type"),
    ("word for boolean", "intestatario/residente_citta_metropolitana", "forse",
     "/intestatario/residente_citta_metropolitana", "bool_parsing"),
    ("null for boolean", "intestatario/lavora_citta_metropolitana", None,
     "/intestatario/lavora_citta_metropolitana", "bool_type"),
    ("word for amount", "morosita/importo_euro", "dieci", "/morosita/importo_euro", "decimal_parsing"),
    ("decimal comma", "richiesta/importo_euro", "12,30", "/richiesta/importo_euro", "decimal_parsing"),
    ("boolean for amount", "morosita/importo_euro", True, "/morosita/importo_euro", "decimal_type"),
    ("NaN as string", "morosita/importo_euro", "NaN", "/morosita/importo_euro", "finite_number"),
    ("Infinity as string", "isee/valore_euro", "Infinity", "/isee/valore_euro", "finite_number"),
    ("negative amount", "morosita/importo_euro", "-1.00", "/morosita/importo_euro", "greater_than_equal"),
    ("negative amount number", "richiesta/importo_euro", raw("-0.01"), "/richiesta/importo_euro",
     "greater_than_equal"),
    ("negative ISEE", "isee/valore_euro", "-5400.00", "/isee/valore_euro", "greater_than_equal"),
    ("3 decimal places", "morosita/importo_euro", "12.345", "/morosita/importo_euro", "decimal_max_places"),
    ("3 decimal places number", "richiesta/importo_euro", raw("0.001"), "/richiesta/importo_euro",
     "decimal_max_places"),
    ("amount over the cap", "morosita/importo_euro", "10000000.01", "/morosita/importo_euro", "less_than_equal"),
    ("too many digits", "morosita/importo_euro", "1234567890123", "/morosita/importo_euro", "decimal_max_digits"),
    ("municipio 10", "contratto/municipio", 10, "/contratto/municipio", "less_than_equal"),
    ("municipio 0", "contratto/municipio", 0, "/contratto/municipio", "greater_than_equal"),
    ("household of 21", "nucleo/componenti", 21, "/nucleo/componenti", "less_than_equal"),
    ("601 months", "morosita/mensilita", 601, "/morosita/mensilita", "less_than_equal"),
    ("unknown household type", "nucleo/tipologia", "big-family", "/nucleo/tipologia", "value_error"),
    ("unknown ISEE band", "isee/fascia", "isee-0-5000", "/isee/fascia", "value_error"),
    ("unknown arrears stage", "morosita/stadio", "eviction", "/morosita/stadio", "value_error"),
    ("unknown request type", "richiesta/tipo", "loan", "/richiesta/tipo", "value_error"),
    ("unknown quartiere", "contratto/quartiere", "Brera", "/contratto/quartiere", "value_error"),
    ("unknown rent band", "contratto/fascia_canone", "sociale", "/contratto/fascia_canone", "literal_error"),
    ("unknown arrears kind", "morosita/tipo", "affitto", "/morosita/tipo", "literal_error"),
    ("unknown contract type", "contratto/tipo", "ERP", "/contratto/tipo", "literal_error"),
    ("canonical code for arrears kind", "morosita/tipo", "rent", "/morosita/tipo", "literal_error"),
    ("wrong check character", "intestatario/codice_fiscale", "RSSMRA85T10A562T", "/intestatario/codice_fiscale",
     "value_error"),
    ("bad month letter", "intestatario/codice_fiscale", "RSSMRA85Z10A562S", "/intestatario/codice_fiscale",
     "value_error"),
    ("short codice fiscale", "intestatario/codice_fiscale", CF[:15], "/intestatario/codice_fiscale",
     "string_too_short"),
    ("bad STP code", "intestatario/codice_fiscale", "STP030308000000X", "/intestatario/codice_fiscale",
     "value_error"),
    ("wrong tipo_messaggio", "tipo_messaggio", "segnalazione-sfratto", "/tipo_messaggio", "literal_error"),
    ("wrong versione", "versione", "2.0", "/versione", "literal_error"),
    ("versione as number", "versione", raw("1.0"), "/versione", "literal_error"),
    ("id with a space", "id_messaggio", "ALER M 1", "/id_messaggio", "string_pattern_mismatch"),
    ("id too long", "id_correlazione", "x" * 65, "/id_correlazione", "string_too_long"),
    ("bad recipient id", "destinatari", ["fwa", "f w a"], "/destinatari/1", "string_pattern_mismatch"),
    ("impossible date", "morosita/dal", "2026-13-01", "/morosita/dal", "date_from_datetime_parsing"),
    ("not a timestamp", "data_evento", "ieri", "/data_evento", "datetime_from_date_parsing"),
]


@pytest.mark.parametrize(("path", "value", "pointer", "rule"), [c[1:] for c in CONTRACT_REJECTIONS],
                         ids=[c[0] for c in CONTRACT_REJECTIONS])
def test_contract_rejections_name_the_field_and_the_rule(path: str, value: Any, pointer: str, rule: str) -> None:
    error = rejection(dumps(with_value(native(), path, value)))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [(pointer, rule)]


def test_pointer_escapes_slash_and_tilde_in_keys() -> None:
    document = native()
    document["contratto"]["a/b~c"] = 1
    [problem] = rejection(dumps(document)).problems
    assert (problem.pointer, problem.rule) == ("/contratto/a~1b~0c", "extra_forbidden")


def test_every_problem_is_reported_not_just_the_first() -> None:
    document = with_value(with_value(native(), "contratto/municipio", 10), "nucleo/tipologia", "big-family")
    document = with_value(document, "extra", 1)
    error = rejection(dumps(document))
    assert {(p.pointer, p.rule) for p in error.problems} == {
        ("/contratto/municipio", "less_than_equal"),
        ("/nucleo/tipologia", "value_error"),
        ("/extra", "extra_forbidden"),
    }


def test_code_list_rejection_lists_the_allowed_codes() -> None:
    [problem] = rejection(dumps(with_value(native(), "isee/fascia", "isee-0-5000"))).problems
    assert "isee-bands" in problem.message
    for code in load_codelist("isee_bands").labels_it:
        assert code in problem.message


@pytest.mark.parametrize(
    "document",
    [
        with_value(native(), "intestatario/codice_fiscale", "RSSMRA85T10A562T"),
        with_value(native(), "intestatario/codice_fiscale", "rssmra85t10a562t"),
        with_value(native(), "intestatario/codice_fiscale", "RSSMRA85T10A562"),
        with_value(native(), "intestatario/codice_fiscale", "RSSMRA85T10A562SS"),
        with_value(native(), "intestatario/codice_fiscale", "RSSMRA85Z10A562S"),
        with_value(native(), "intestatario/codice_fiscale", "RSSMRA85T99A562S"),
        with_value(native(), "intestatario/codice_fiscale", "RSSMRA8!T10A562S"),
        with_value(native(), "intestatario/nota", CF),
        with_value(native(), "intestatario/residente_citta_metropolitana", CF),
        with_value(native(), "nucleo/tipologia", CF),
        with_value(native(), "contratto/quartiere", CF),
        with_value(native(), "id_messaggio", CF + "!"),
    ],
    ids=["check char", "check char lower", "short", "long", "month", "day", "symbol", "extra field",
         "cf in boolean", "cf as code", "cf as quartiere", "cf in id"],
)
def test_no_problem_echoes_the_submitted_codice_fiscale(document: dict[str, Any]) -> None:
    error = rejection(dumps(document))
    submitted = str(document["intestatario"].get("codice_fiscale", CF))
    said = [error.detail, str(error), *(p.message for p in error.problems), *(p.pointer for p in error.problems)]
    for fragment in {CF, CF.lower(), submitted, submitted.upper(), submitted.strip()}:
        for text in said:
            assert fragment not in text
    assert CF[:11] not in " ".join(said)  # not even the name, birth date and sex part


# --- properties over synthetic tenants ----------------------------------------------------------------------

TENANTS: tuple[SyntheticTenant, ...] = tuple(generate_tenants("S", seed=2026, limit=400))
F1: Flow = next(f for f in load_registry().flows if f.id == "F1")

_QUARTIERI = load_codelist("quartieri")
QUARTIERE_SPELLINGS = sorted({*_QUARTIERI.labels_it, *_QUARTIERI.labels_it.values(), *_QUARTIERI.aliases,
                              "Molise Calvaire", "S. Siro"})
ARREARS_KINDS = {"canone": "rent", "spese": "charges", "utenze": "utilities"}
ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
ids = st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True)


def codes(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(load_codelist(name).labels_it))


@st.composite
def euro(draw: st.DrawFn) -> tuple[Any, int]:
    """An amount as ALER may write it (string or JSON number, two decimals or fewer) and its value in cents."""
    cents = draw(st.one_of(st.integers(0, 1_000_000_000), st.sampled_from([0, 1, 10, 99, 100, 1999, 123450])))
    exact = Decimal(cents).scaleb(-2)  # e.g. Decimal("1234.50")
    text = draw(st.sampled_from([f"{exact:.2f}", str(exact.normalize()), f"{exact:f}"]))
    if cents % 100 == 0 and draw(st.booleans()):
        text = str(cents // 100)
    return (raw(text) if draw(st.booleans()) else text), cents


@st.composite
def identifiers(draw: st.DrawFn, tenant: SyntheticTenant) -> tuple[str, str, str]:
    """(as sent, expected system, expected value as issued)."""
    kind = draw(st.sampled_from(["cf", "cf", "cf", "omocodic", "stp"]))
    if kind == "stp":
        prefix = draw(st.sampled_from(["STP", "ENI"]))
        code = f"{prefix}{draw(st.integers(0, 10**13 - 1)):013d}"
        return draw(st.sampled_from([code, code.lower()])), prefix.lower(), code
    cf = omocodic_variant(tenant.cf, draw(st.integers(1, 3))) if kind == "omocodic" else tenant.cf
    return draw(st.sampled_from([cf, cf.lower(), f" {cf} "])), "cf", cf


@st.composite
def valid_messages(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid native message built from a synthetic tenant, and what its decoding must contain."""
    tenant = draw(st.sampled_from(TENANTS))
    sent_cf, system, cf = draw(identifiers(tenant))
    arrears, arrears_cents = draw(euro())
    request, request_cents = draw(euro())
    isee_value = draw(st.none() | euro())
    quartiere = draw(st.sampled_from(QUARTIERE_SPELLINGS))
    kind = draw(st.sampled_from(sorted(ARREARS_KINDS)))
    occurred = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                                 timezones=st.sampled_from(ZONES)))
    message: dict[str, Any] = {
        "id_messaggio": draw(ids),
        "tipo_messaggio": "segnalazione-morosita",
        "versione": "1.0",
        "data_evento": occurred.isoformat(),
        "contratto": {
            "id_contratto": tenant.contract_id,
            "tipo": draw(st.sampled_from(["SAP", "SAT"])),
            "id_unita": tenant.unit_id,
            "quartiere": quartiere,
            "municipio": draw(st.integers(1, 9)),
            "fascia_canone": tenant.rent_band,
        },
        "intestatario": {
            "codice_fiscale": sent_cf,
            "residente_citta_metropolitana": draw(st.booleans()),
            "lavora_citta_metropolitana": draw(st.booleans()),
        },
        "nucleo": {"tipologia": draw(st.sampled_from([tenant.household_type]) | codes("household_types")),
                   "componenti": draw(st.integers(1, 20))},
        "isee": {"fascia": draw(st.sampled_from([tenant.isee_band]) | codes("isee_bands"))},
        "morosita": {"importo_euro": arrears, "mensilita": draw(st.integers(0, 600)), "tipo": kind,
                     "stadio": draw(codes("arrears_stages"))},
        "richiesta": {"tipo": draw(codes("request_types")), "importo_euro": request},
    }
    if draw(st.booleans()):
        message["id_correlazione"] = draw(ids)
    if draw(st.booleans()):
        message["finalita"] = draw(st.sampled_from(["microcredit-assessment", "tenancy-management"]))
    if draw(st.booleans()):
        message["destinatari"] = draw(st.lists(st.sampled_from(["fwa", "comune", "asst"]), max_size=3))
    if isee_value is not None:
        message["isee"]["valore_euro"] = isee_value[0]
    if draw(st.booleans()):
        message["morosita"]["dal"] = draw(st.dates(date(2000, 1, 1), date(2099, 12, 31))).isoformat()
    expected = {
        "system": system,
        "cf": cf,
        "arrears_cents": arrears_cents,
        "request_cents": request_cents,
        "isee_cents": None if isee_value is None else isee_value[1],
        "quartiere": _QUARTIERI.resolve(quartiere.strip()),
        "kind": ARREARS_KINDS[kind],
        "occurred_at": occurred,
    }
    return message, expected



@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages())
def test_valid_messages_decode_deterministically_with_exact_amounts(
        case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    message, expected = case
    body = dumps(message)
    [envelope] = decode(body)
    assert decode(body) == [envelope]

    payload = envelope.payload
    assert envelope.subject.identifiers[0].model_dump() == {"system": expected["system"], "value": expected["cf"]}
    assert envelope.message_id == message["id_messaggio"]
    assert envelope.correlation_id == message.get("id_correlazione", message["id_messaggio"])
    assert envelope.occurred_at == expected["occurred_at"]
    assert payload["tenancy"]["quartiere"] == expected["quartiere"]
    assert payload["arrears"]["kind"] == expected["kind"]
    assert payload["arrears"]["months"] == message["morosita"]["mensilita"]
    assert payload["household"] == {"type": message["nucleo"]["tipologia"], "size": message["nucleo"]["componenti"]}
    assert payload["eligibility"] == {
        "resides_in_metro_area": message["intestatario"]["residente_citta_metropolitana"],
        "works_in_metro_area": message["intestatario"]["lavora_citta_metropolitana"],
    }

    assert payload["arrears"]["amount_cents"] == expected["arrears_cents"]
    assert payload["request"]["amount_cents"] == expected["request_cents"]
    assert payload.get("isee_value_cents") == expected["isee_cents"]
    for native_amount, cents in ((message["morosita"]["importo_euro"], payload["arrears"]["amount_cents"]),
                                 (message["richiesta"]["importo_euro"], payload["request"]["amount_cents"])):
        value = native_euro(native_amount)
        assert cents == round(value * 100)
        assert Decimal(cents) / 100 == value


FWA_NAME = {
    "subject.cf": "richiedente/codice_fiscale",
    "subject.stp": "richiedente/codice_fiscale",
    "subject.eni": "richiedente/codice_fiscale",
    "eligibility.resides_in_metro_area": "requisiti/residenza_citta_metropolitana",
    "eligibility.works_in_metro_area": "requisiti/lavoro_citta_metropolitana",
    "household.type": "nucleo/tipologia",
    "isee_band": "fascia_isee",
    "arrears.amount_cents": "morosita/importo_euro",
    "arrears.months": "morosita/mensilita",
    "request.type": "richiesta/tipo",
    "request.amount_cents": "richiesta/importo_euro",
}
"""Where each field F1 allows lands in FWA's native referral."""
FWA_HEADER = {
    "tipo_messaggio", "versione", "id_segnalazione", "id_correlazione", "ente_inviante", "finalita_trattamento",
    "riferimento_consenso", "etichette/obblighi", "etichette/divieti", "inviato_il",
}


def test_fwa_name_map_covers_exactly_the_f1_allowed_fields() -> None:
    assert set(FWA_NAME) == set(F1.allowed_fields)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages())
def test_f1_projection_and_fwa_encoding_carry_exactly_the_f1_fields(
        case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    message, expected = case
    [envelope] = decode(dumps(message))
    outbound = minimise(envelope, F1, "gw-00000001")
    body = adapters.fwa.encode(outbound, consent_ref="cns-1", obligations=F1.obligations, refrains=F1.refrains)
    referral = orjson.loads(body)
    fields = leaves(referral)

    assert set(fields) == {FWA_NAME[p] for p in F1.allowed_fields} | FWA_HEADER
    assert fields["richiedente/codice_fiscale"] == expected["cf"]
    assert fields["morosita/importo_euro"] == f"{native_euro(message['morosita']['importo_euro']):.2f}"
    assert fields["richiesta/importo_euro"] == f"{native_euro(message['richiesta']['importo_euro']):.2f}"
    assert fields["morosita/mensilita"] == message["morosita"]["mensilita"]
    assert fields["fascia_isee"] == message["isee"]["fascia"]
    assert fields["etichette/obblighi"] == list(F1.obligations)
    assert fields["etichette/divieti"] == list(F1.refrains)
    assert fields["id_correlazione"] == envelope.correlation_id
    # nothing ALER-internal leaks under another name
    for value in (envelope.payload["tenancy"]["contract_id"], envelope.payload["tenancy"]["unit_id"]):
        assert value.encode() not in body


@pytest.mark.parametrize("number", ["1e999999999", "-1e999999999", "1e1001", "1e-999999999"])
def test_a_number_with_a_huge_exponent_is_rejected_at_once(number: str) -> None:
    """Regression: ``1e999999999`` became Decimal('1E+999999999') and validating it as an int field (mensilita)
    built a billion-digit integer: minutes of CPU for 11 bytes of input."""
    body = dumps(native()).replace(b'"mensilita": ', b'"mensilita": ' + number.encode() + b', "x": ', 1)
    started = time.perf_counter()
    error = rejection(body)
    assert time.perf_counter() - started < 1.0
    assert [(p.pointer, p.rule) for p in error.problems] == [("", "number-range")]


def _validated_envelope(body: bytes) -> Envelope:
    """The reference the decoder's fast path is held to: the same message through the validating constructors
    (the canonical envelope and payload models check every field again)."""
    message = AlerArrearsMessage.model_validate(orjson.loads(body))
    cf = message.intestatario.codice_fiscale
    return Envelope(
        message_id=message.id_messaggio,
        correlation_id=message.id_correlazione or message.id_messaggio,
        message_type="tenancy.arrears-referral",
        sender="aler",
        recipients=message.destinatari,
        subject=SubjectRef(identifiers=(Identifier(system=classify(cf), value=cf),)),
        purpose=message.finalita,
        sensitivity=("S2",),
        occurred_at=message.data_evento,
        payload={
            "tenancy": {"contract_id": message.contratto.id_contratto, "contract_type": message.contratto.tipo,
                        "unit_id": message.contratto.id_unita, "quartiere": message.contratto.quartiere,
                        "municipio": message.contratto.municipio, "rent_band": message.contratto.fascia_canone},
            "eligibility": {"resides_in_metro_area": message.intestatario.residente_citta_metropolitana,
                            "works_in_metro_area": message.intestatario.lavora_citta_metropolitana},
            "household": {"type": message.nucleo.tipologia, "size": message.nucleo.componenti},
            "isee_band": message.isee.fascia,
            "isee_value_cents": None if message.isee.valore_euro is None else int(message.isee.valore_euro * 100),
            "arrears": {"amount_cents": int(message.morosita.importo_euro * 100),
                        "months": message.morosita.mensilita, "since": message.morosita.dal,
                        "kind": ARREARS_KINDS[message.morosita.tipo], "stage": message.morosita.stadio},
            "request": {"type": message.richiesta.tipo, "amount_cents": int(message.richiesta.importo_euro * 100)},
        },
    )


def _same_envelope(fast: Envelope, validated: Envelope) -> None:
    assert fast == validated
    assert orjson.dumps(fast.model_dump(mode="json")) == orjson.dumps(validated.model_dump(mode="json"))
    assert fast.model_dump_json() == validated.model_dump_json()
    assert fast.model_dump() == validated.model_dump()  # the Python types too (tuples, datetimes)
    assert Envelope.model_validate(fast.model_dump()) == fast  # and it passes every canonical rule


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_messages())
def test_the_envelope_built_without_revalidation_equals_the_validated_one(
        case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The native model enforces every canonical rule, so the decoder assembles the envelope without
    validating it again (``model_construct``); over generated messages it is the very envelope, byte for byte,
    that the validating constructors build. Behind the strict JSON check, which hands the adapter the document it
    parsed instead of letting it parse the bytes again, the envelope is the same again."""
    body = dumps(case[0])
    [fast] = decode(body)
    _same_envelope(fast, _validated_envelope(body))
    [read_once] = DECODERS["aler"](body, "application/json")
    _same_envelope(read_once, fast)


@pytest.mark.parametrize(("field", "codelist"), [
    (("contratto", "tipo"), "contract_types"), (("contratto", "fascia_canone"), "rent_bands"),
    (("nucleo", "tipologia"), "household_types"), (("isee", "fascia"), "isee_bands"),
    (("morosita", "stadio"), "arrears_stages"), (("richiesta", "tipo"), "request_types"),
    (("contratto", "quartiere"), "quartieri"),
])
def test_every_code_the_native_model_accepts_is_a_canonical_code(field: tuple[str, str], codelist: str) -> None:
    """What makes skipping the canonical validation safe: each native coded field accepts only codes the
    canonical list has (every value of the native literal, or every code of the same list)."""
    models: dict[str, type[BaseModel]] = {
        "contratto": arrears_module.Contratto, "nucleo": arrears_module.Nucleo, "isee": arrears_module.Isee,
        "morosita": arrears_module.Morosita, "richiesta": arrears_module.Richiesta,
    }
    annotation = models[field[0]].model_fields[field[1]].annotation
    canonical = set(load_codelist(codelist).labels_it)
    accepted = set(get_args(annotation)) if get_origin(annotation) is Literal else canonical
    assert accepted <= canonical
    for value in sorted(accepted):
        message = native()
        message[field[0]][field[1]] = value
        body = dumps(message)
        [fast] = decode(body)
        _same_envelope(fast, _validated_envelope(body))
