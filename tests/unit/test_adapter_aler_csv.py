"""Tests for :mod:`adapters.aler.csv_export`: ALER's bulk tenancy export (``;``-separated CSV) -> one
``tenancy.record`` envelope per row, and back.

Row-by-row decoding of synthetic tenants, byte-exact round trips, agreement with the JSON
``anagrafica-contratto``, the formats Italian spreadsheets write (BOM, decimal comma, dd/mm/yyyy, si/no, any
column order, LF or CRLF), header and row rejections located as ``/header/...`` and ``/rows/<n>/<column>``,
all-or-nothing loading with at most 50 problems listed, values never echoed, and the tier S load (11,000 rows)
timed.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adapters.aler
from adapters.aler import decode
from adapters.aler.csv_export import COLUMNS, MAX_PROBLEMS, decode_csv, encode_csv
from gateway.identity.synthetic import TIER_TENANCIES, SyntheticTenant, generate_tenants
from schemas.codelists import load_codelist
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from schemas.tenancy import MINOR_AGE_BANDS, OVER_65_AGE_BANDS
from tests.adapter_checks import refusal

CF = "RSSMRA85T10A562S"
BOM = "\ufeff".encode()


# --- building exports ---------------------------------------------------------------------------------------

HOUSEHOLDS: dict[str, list[tuple[str, str]]] = {
    "couple-several-minors": [("holder", "age-25-44"), ("spouse-partner", "age-25-44"), ("child", "age-6-13"),
                              ("child", "age-0-5")],
    "single-mother-minors": [("holder", "age-25-44"), ("child", "age-14-17")],
    "single-adult": [("holder", "age-45-64")],
    "mother-newly-adult-child": [("holder", "age-45-64"), ("child", "age-18-24")],
    "adult-with-over-65": [("holder", "age-45-64"), ("parent", "age-75-84")],
    "couple-minors-over-65": [("holder", "age-25-44"), ("spouse-partner", "age-25-44"), ("child", "age-0-5"),
                              ("grandparent", "age-65-74")],
    "elderly-single": [("holder", "age-85-plus")],
}
STREETS = ("Via Civitavecchia", "Via Dei Cinquecento", "Piazzale Selinunte", "Via Salomone", "Via Lorenteggio",
           "Via Gratosoglio", "Viale Molise", "Via \"Mompiani\"; lato B")
FRAGILITY = sorted(load_codelist("fragility_signals").labels_it)
STAGES = ("late", "repayment-plan", "formal-notice", "forfeiture-started", "eviction-validated")


def _flags(band: str, disabled: bool) -> str:
    flags = ("M" if band in MINOR_AGE_BANDS else "") + ("A" if band in OVER_65_AGE_BANDS else "")
    return (flags + ("D" if disabled else "")) or "-"


def tenant_row(tenant: SyntheticTenant) -> dict[str, str]:
    """The export row of a synthetic tenant in ALER's canonical formatting (what :func:`encode_csv` writes).

    Values the generator does not provide (dates, building, address, members, rent) are derived from the
    tenant's ids, so they are the same on every run.
    """
    rng = random.Random(tenant.contract_id)
    start = date(1985, 1, 1) + timedelta(days=rng.randrange(14_000))
    sat = rng.random() < 0.15
    disabled = rng.randrange(-3, len(HOUSEHOLDS[tenant.household_type]))
    members = "|".join(f"{relation}:{band}:{_flags(band, index == disabled)}"
                       for index, (relation, band) in enumerate(HOUSEHOLDS[tenant.household_type]))
    rent = rng.randint(4_000, 60_000)
    row = {
        "id_contratto": tenant.contract_id,
        "tipo_contratto": "SAT" if sat else "SAP",
        "data_inizio": start.isoformat(),
        "data_fine": (start + timedelta(days=5 * 365)).isoformat() if sat else "",
        "id_unita": tenant.unit_id,
        "id_edificio": f"ALER-B-{tenant.unit_id[-4:]}",
        "via": rng.choice(STREETS),
        "civico": f"{rng.randint(1, 240)}" + rng.choice(["", "/A", " bis"]),
        "quartiere": tenant.quartiere,
        "municipio": str(rng.randint(1, 9)),
        "codice_fiscale_intestatario": tenant.cf,
        "tipologia_nucleo": tenant.household_type,
        "componenti": members,
        "fascia_canone": tenant.rent_band,
        "fascia_isee": tenant.isee_band,
        "canone_mensile_euro": f"{rent // 100}.{rent % 100:02d}",
        "canone_oltre_30_reddito": rng.choice(["si", "no"]),
        "morosita_euro": "", "morosita_mensilita": "", "morosita_dal": "", "morosita_tipo": "", "morosita_stadio": "",
        "segnali_fragilita": "|".join(rng.sample(FRAGILITY, rng.choice([0, 0, 0, 1, 2]))),
        "data_aggiornamento": datetime(2026, 11, 1, 6, 0, tzinfo=UTC).isoformat(),
    }
    if tenant.arrears_cents:
        since = date(2026, 10, 1) - timedelta(days=30 * tenant.arrears_months)
        row |= {
            "morosita_euro": f"{tenant.arrears_cents // 100}.{tenant.arrears_cents % 100:02d}",
            "morosita_mensilita": str(tenant.arrears_months),
            "morosita_dal": since.isoformat() if rng.random() < 0.7 else "",
            "morosita_tipo": rng.choice(["canone", "spese", "utenze"]),
            "morosita_stadio": rng.choice(STAGES),
        }
    return row


def export(rows: Sequence[dict[str, str]], *, columns: Sequence[str] = COLUMNS, bom: bool = False,
           newline: str = "\r\n") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator=newline)
    writer.writerow(columns)
    writer.writerows([row.get(column, "") for column in columns] for row in rows)
    return (BOM if bom else b"") + buffer.getvalue().encode("utf-8")


def rejection(body: bytes, content_type: str = "text/csv") -> DecodeError:
    return refusal(decode_csv, body, content_type)


TENANTS: tuple[SyntheticTenant, ...] = tuple(generate_tenants("S", seed=2028, limit=400))
ROWS: tuple[dict[str, str], ...] = tuple(tenant_row(t) for t in TENANTS)


# --- decoding -----------------------------------------------------------------------------------------------


def test_generated_tenants_decode_one_record_per_row_in_file_order() -> None:
    envelopes = decode_csv(export(ROWS))
    assert len(envelopes) == len(TENANTS)
    for tenant, row, envelope in zip(TENANTS, ROWS, envelopes, strict=True):
        p = envelope.payload
        assert envelope.message_type == "tenancy.record"
        assert envelope.sender == "aler"
        assert envelope.sensitivity == ("S2", "S3")
        assert (envelope.purpose, envelope.recipients) == (None, ())
        assert envelope.message_id == envelope.correlation_id == f"aler-csv:{tenant.contract_id}:20261101T060000Z"
        assert [i.model_dump() for i in envelope.subject.identifiers] == [
            {"system": "cf", "value": tenant.cf}, {"system": "aler-contract", "value": tenant.contract_id}]
        assert envelope.occurred_at == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
        assert (p["contract_id"], p["unit_id"], p["quartiere"]) == (tenant.contract_id, tenant.unit_id,
                                                                   tenant.quartiere)
        assert (p["household_type"], p["rent_band"], p["isee_band"]) == (tenant.household_type, tenant.rent_band,
                                                                         tenant.isee_band)
        assert p["address"] == {"street": row["via"], "house_number": row["civico"]}
        assert [(m["relation"], m["age_band"]) for m in p["members"]] == HOUSEHOLDS[tenant.household_type]
        assert p["rent_over_30_percent_of_income"] is (row["canone_oltre_30_reddito"] == "si")
        assert p["fragility_signals"] == (row["segnali_fragilita"].split("|") if row["segnali_fragilita"] else [])
        if tenant.arrears_cents:
            assert (p["arrears"]["amount_cents"], p["arrears"]["months"]) == (tenant.arrears_cents,
                                                                             tenant.arrears_months)
        else:
            assert "arrears" not in p


def test_members_are_decoded_from_the_compact_column() -> None:
    row = ROWS[0] | {"tipologia_nucleo": "couple-minors-over-65",
                     "componenti": "holder:age-25-44:-|spouse-partner:age-25-44:D|child:age-0-5:M|"
                                   "grandparent:age-85-plus:AD"}
    [envelope] = decode_csv(export([row]))
    assert envelope.payload["members"] == [
        {"relation": "holder", "age_band": "age-25-44", "minor": False, "over_65": False, "disability": False},
        {"relation": "spouse-partner", "age_band": "age-25-44", "minor": False, "over_65": False, "disability": True},
        {"relation": "child", "age_band": "age-0-5", "minor": True, "over_65": False, "disability": False},
        {"relation": "grandparent", "age_band": "age-85-plus", "minor": False, "over_65": True, "disability": True},
    ]


def test_round_trip_is_byte_exact_and_value_exact() -> None:
    body = export(ROWS)
    envelopes = decode_csv(body)
    assert encode_csv(envelopes) == body
    assert decode_csv(encode_csv(envelopes)) == envelopes


def test_decoding_is_deterministic() -> None:
    body = export(ROWS[:50])
    assert decode_csv(body) == decode_csv(body)


def test_csv_and_json_tenancy_records_agree() -> None:
    row = ROWS[1] | {"morosita_euro": "1234.50", "morosita_mensilita": "7", "morosita_dal": "2026-04-01",
                     "morosita_tipo": "spese", "morosita_stadio": "formal-notice", "data_fine": "2030-01-01",
                     "segnali_fragilita": "isolation|degraded-housing"}
    members = [dict(zip(("relazione", "fascia_eta", "flags"), m.split(":"), strict=True))
               for m in row["componenti"].split("|")]
    document = {
        "id_messaggio": "x", "tipo_messaggio": "anagrafica-contratto", "versione": "1.0",
        "data_evento": row["data_aggiornamento"],
        "contratto": {"id_contratto": row["id_contratto"], "tipo": row["tipo_contratto"],
                      "data_inizio": row["data_inizio"], "data_fine": row["data_fine"],
                      "fascia_canone": row["fascia_canone"], "canone_mensile_euro": row["canone_mensile_euro"],
                      "canone_oltre_30_reddito": row["canone_oltre_30_reddito"] == "si"},
        "unita": {"id_unita": row["id_unita"], "id_edificio": row["id_edificio"], "via": row["via"],
                  "civico": row["civico"], "quartiere": row["quartiere"], "municipio": int(row["municipio"])},
        "intestatario": {"codice_fiscale": row["codice_fiscale_intestatario"]},
        "nucleo": {"tipologia": row["tipologia_nucleo"], "componenti": [
            {"relazione": m["relazione"], "fascia_eta": m["fascia_eta"], "minore": "M" in m["flags"],
             "over_65": "A" in m["flags"], "disabilita": "D" in m["flags"]} for m in members]},
        "isee": {"fascia": row["fascia_isee"]},
        "morosita": {"importo_euro": "1234.50", "mensilita": 7, "dal": "2026-04-01", "tipo": "spese",
                     "stadio": "formal-notice"},
        "segnali_fragilita": ["isolation", "degraded-housing"],
    }
    [from_json] = decode(json.dumps(document).encode())
    [from_csv] = decode_csv(export([row]))
    assert from_csv.payload == from_json.payload
    assert from_csv.subject == from_json.subject
    assert from_csv.occurred_at == from_json.occurred_at


# --- formats Italian spreadsheets write ---------------------------------------------------------------------


def test_a_byte_order_mark_is_ignored_and_can_be_written() -> None:
    plain = decode_csv(export(ROWS[:20]))
    assert decode_csv(export(ROWS[:20], bom=True)) == plain
    with_bom = encode_csv(plain, bom=True)
    assert with_bom.startswith(BOM)
    assert decode_csv(with_bom) == plain
    assert decode(with_bom, "text/csv") == plain


@pytest.mark.parametrize(("column", "written", "canonical"), [
    ("canone_mensile_euro", "85,50", "85.50"),
    ("canone_mensile_euro", "85.5", "85.50"),
    ("canone_mensile_euro", "85", "85.00"),
    ("data_inizio", "31/01/2001", "2001-01-31"),
    ("canone_oltre_30_reddito", "SI", "si"),
    ("canone_oltre_30_reddito", "sì", "si"),
    ("canone_oltre_30_reddito", "true", "si"),
    ("canone_oltre_30_reddito", "0", "no"),
    ("canone_oltre_30_reddito", "No", "no"),
    ("quartiere", "Molise Calvaire", "molise-calvairate"),
    ("quartiere", " S. Siro ", "san-siro"),
    ("tipologia_nucleo", "Anziano solo", "elderly-single"),
    ("fascia_isee", "ISEE fino a 6.000 €", "isee-0-6000"),
    ("componenti", "Intestatario del contratto : age-45-64 : -", "holder:age-45-64:-"),
    ("codice_fiscale_intestatario", f" {CF.lower()} ", CF),
    ("segnali_fragilita", "Isolamento | Alloggio degradato", "isolation|degraded-housing"),
    ("data_aggiornamento", "2026-11-01T07:00:00+01:00", "2026-11-01T07:00:00+01:00"),
])
def test_spreadsheet_spellings_decode_to_the_canonical_form(column: str, written: str, canonical: str) -> None:
    base = ROWS[2] | {"tipologia_nucleo": "elderly-single", "componenti": "holder:age-45-64:-"}
    [written_as] = decode_csv(export([base | {column: written}]))
    [canonical_as] = decode_csv(export([base | {column: canonical}]))
    assert written_as.payload == canonical_as.payload
    assert written_as.subject == canonical_as.subject


def test_columns_in_any_order_lf_line_ends_blank_lines_and_quoted_separators() -> None:
    expected = decode_csv(export(ROWS[:30]))
    shuffled = list(COLUMNS)
    random.Random(7).shuffle(shuffled)
    body = export(ROWS[:30], columns=shuffled, newline="\n")
    body = body.replace(b"\n", b"\n\n", 3) + b"\n;;\n"
    assert decode_csv(body) == expected
    assert any(";" in e.payload["address"]["street"] for e in expected)  # quoted in the file


def test_header_names_are_trimmed_and_case_insensitive() -> None:
    body = export(ROWS[:5])
    _, rest = body.split(b"\r\n", 1)
    shouted = ";".join(f" {name.upper()} " for name in COLUMNS).encode()
    assert decode_csv(shouted + b"\r\n" + rest) == decode_csv(body)


def test_an_export_with_a_header_and_no_rows_loads_nothing() -> None:
    assert decode_csv(export([])) == []


# --- rejections ---------------------------------------------------------------------------------------------

ROW_REJECTIONS: list[tuple[str, str, str, str]] = [
    # (case id, column, value, rule) -- the bad value goes into data row 3 of a 6-row export
    ("contract id missing", "id_contratto", "", "missing"),
    ("contract id with a space", "id_contratto", "ALER C 1", "string_pattern_mismatch"),
    ("contract type", "tipo_contratto", "ERP", "literal_error"),
    ("start date", "data_inizio", "2001-02-30", "date_from_datetime_parsing"),
    ("ends before it starts", "data_fine", "1980-01-01", "value_error"),
    ("street too long", "via", "x" * 121, "string_too_long"),
    ("house number", "civico", "12#", "string_pattern_mismatch"),
    ("quartiere", "quartiere", "Brera", "value_error"),
    ("municipio", "municipio", "10", "less_than_equal"),
    ("municipio not a number", "municipio", "IV", "int_parsing"),
    ("codice fiscale", "codice_fiscale_intestatario", "RSSMRA85T10A562T", "value_error"),
    ("household type", "tipologia_nucleo", "big-family", "value_error"),
    ("members missing", "componenti", "", "missing"),
    ("member without flags", "componenti", "holder:age-45-64", "value_error"),
    ("member with an unknown flag", "componenti", "holder:age-45-64:X", "value_error"),
    ("member flag twice", "componenti", "holder:age-45-64:DD", "value_error"),
    ("member with an unknown band", "componenti", "holder:age-45-64:-|child:age-6-12:M", "value_error"),
    ("minor flag on an adult", "componenti", "holder:age-45-64:M", "value_error"),
    ("no holder", "componenti", "child:age-6-13:M", "value_error"),
    ("two holders", "componenti", "holder:age-45-64:-|holder:age-25-44:-", "value_error"),
    ("rent band", "fascia_canone", "sociale", "literal_error"),
    ("ISEE band", "fascia_isee", "isee-0-5000", "value_error"),
    ("rent with thousands separator", "canone_mensile_euro", "1.234,50", "decimal_parsing"),
    ("rent with 3 decimals", "canone_mensile_euro", "85,505", "decimal_max_places"),
    ("rent negative", "canone_mensile_euro", "-1", "greater_than_equal"),
    ("rent-to-income flag", "canone_oltre_30_reddito", "forse", "bool_parsing"),
    ("arrears of zero", "morosita_euro", "0", "greater_than"),
    ("arrears months", "morosita_mensilita", "601", "less_than_equal"),
    ("arrears kind in English", "morosita_tipo", "rent", "literal_error"),
    ("arrears stage none", "morosita_stadio", "none", "value_error"),
    ("unknown fragility signal", "segnali_fragilita", "isolation|rumore", "value_error"),
    ("fragility signal twice", "segnali_fragilita", "isolation|Isolamento", "value_error"),
    ("timestamp without offset", "data_aggiornamento", "2026-11-01T06:00:00", "timezone_aware"),
    ("timestamp missing", "data_aggiornamento", "", "missing"),
]
ARREARS_ROW = ROWS[0] | {"morosita_euro": "100.00", "morosita_mensilita": "2", "morosita_tipo": "canone",
                         "morosita_stadio": "late"}


@pytest.mark.parametrize(("column", "value", "rule"), [c[1:] for c in ROW_REJECTIONS],
                         ids=[c[0] for c in ROW_REJECTIONS])
def test_a_bad_row_rejects_the_file_naming_row_column_and_rule(column: str, value: str, rule: str) -> None:
    rows = [ARREARS_ROW | {"id_contratto": f"ALER-C-{n}"} for n in range(6)]
    rows[3] = rows[3] | {column: value}
    error = rejection(export(rows))
    assert error.kind == "contract"
    assert [(p.pointer, p.rule) for p in error.problems] == [(f"/rows/3/{column}", rule)]
    assert error.problems[0].message.startswith("line 5: ")
    assert "1 of 6 rows" in error.detail and "nothing was loaded" in error.detail


def test_a_member_problem_names_the_member() -> None:
    row = ROWS[0] | {"componenti": "holder:age-45-64:-|child:age-6-12:M"}
    [problem] = rejection(export([row])).problems
    assert problem.pointer == "/rows/0/componenti"
    assert "member 2 fascia_eta" in problem.message


def test_arrears_columns_go_together() -> None:
    amount_only = ROWS[0] | {"morosita_euro": "100.00", "morosita_mensilita": "", "morosita_dal": "",
                             "morosita_tipo": "", "morosita_stadio": ""}
    detail_only = ROWS[1] | {"morosita_euro": "", "morosita_mensilita": "", "morosita_dal": "2026-01-01",
                             "morosita_tipo": "", "morosita_stadio": ""}
    error = rejection(export([amount_only, detail_only]))
    assert [(p.pointer, p.rule) for p in error.problems] == [
        ("/rows/0/morosita_mensilita", "missing"), ("/rows/0/morosita_tipo", "missing"),
        ("/rows/0/morosita_stadio", "missing"), ("/rows/1/morosita_euro", "missing")]


def test_a_contract_listed_twice_is_rejected_at_the_second_row() -> None:
    error = rejection(export([ROWS[0], ROWS[1], ROWS[0] | {"data_aggiornamento": "2026-11-02T00:00:00Z"}]))
    assert [(p.pointer, p.rule) for p in error.problems] == [("/rows/2/id_contratto", "duplicate")]
    assert "row 0" in error.problems[0].message


def test_a_row_with_the_wrong_number_of_fields_is_rejected() -> None:
    body = export(ROWS[:3])
    lines = body.split(b"\r\n")
    lines[2] = lines[2] + b";extra"
    error = rejection(b"\r\n".join(lines))
    assert [(p.pointer, p.rule) for p in error.problems] == [("/rows/1", "field_count")]


def test_at_most_fifty_problems_are_listed_but_every_bad_row_is_counted() -> None:
    rows = [row | {"municipio": "0", "fascia_canone": "x"} for row in ROWS[:200]]
    error = rejection(export(rows))
    assert len(error.problems) == MAX_PROBLEMS
    assert error.problems[0].pointer == "/rows/0/municipio"
    assert "200 of 200 rows" in error.detail


def test_one_bad_row_among_many_loads_nothing() -> None:
    rows = list(ROWS)
    rows[-1] = rows[-1] | {"quartiere": "Brera"}
    error = rejection(export(rows))
    assert [(p.pointer, p.rule) for p in error.problems] == [(f"/rows/{len(rows) - 1}/quartiere", "value_error")]


@pytest.mark.parametrize(("columns", "problems"), [
    ([c for c in COLUMNS if c != "via"], [("/header/via", "missing")]),
    ([*COLUMNS, "nome_intestatario"], [(f"/header/{len(COLUMNS)}", "extra_forbidden")]),
    ([*COLUMNS, "quartiere"], [(f"/header/{len(COLUMNS)}", "duplicate")]),
])
def test_header_problems_are_located_in_the_header(columns: list[str], problems: list[tuple[str, str]]) -> None:
    error = rejection(export(ROWS[:2], columns=columns))
    assert [(p.pointer, p.rule) for p in error.problems] == problems


def test_a_comma_separated_export_is_told_to_use_semicolons() -> None:
    body = ",".join(COLUMNS).encode() + b"\r\n"
    error = rejection(body)
    assert error.problems[0].pointer == "/header/0"
    assert error.problems[0].rule == "extra_forbidden"
    assert [(p.pointer, p.rule) for p in error.problems[1:]] == [(f"/header/{c}", "missing") for c in COLUMNS]
    assert all("';'" in p.message for p in error.problems[1:])


@pytest.mark.parametrize(("body", "content_type", "rule"), [
    (b"", "text/csv", "header"),
    (b"\xef\xbb\xbf", "text/csv", "header"),
    ("id_contratto;via\r\nC1;Città".encode("latin-1"), "text/csv", "utf-8"),
    (";".join(COLUMNS).encode() + b'\r\n"unterminated', "text/csv", "csv"),
    (export(ROWS[:1]), "text/csv; charset=iso-8859-1", "charset"),
    (export(ROWS[:1]), "application/json", "content-type"),
    (export(ROWS[:1]), "text/plain", "content-type"),
])
def test_malformed_exports(body: bytes, content_type: str, rule: str) -> None:
    error = rejection(body, content_type)
    assert error.kind == "malformed"
    assert [(p.pointer, p.rule) for p in error.problems] == [("", rule)]


def test_utf8_charset_parameter_is_accepted() -> None:
    assert len(decode_csv(export(ROWS[:3]), 'text/csv; header=present; charset="UTF-8"')) == 3


def test_no_problem_echoes_a_submitted_value() -> None:
    street = "Via Segreta del Testimone"
    rows = [ROWS[0] | {"codice_fiscale_intestatario": CF[:15] + "T"},
            ROWS[1] | {"via": street + "x" * 120},
            ROWS[2] | {"civico": CF + "#"},
            ROWS[3] | {"quartiere": CF},
            ROWS[4] | {"componenti": f"{CF}:age-45-64:-"},
            ROWS[5] | {"segnali_fragilita": CF}]
    error = rejection(export(rows))
    said = " ".join([error.detail, *(p.message for p in error.problems), *(p.pointer for p in error.problems)])
    for fragment in (CF, CF[:11], street):
        assert fragment not in said


def test_only_tenancy_records_can_be_encoded() -> None:
    [record] = decode_csv(export(ROWS[:1]))
    other = record.model_copy(update={"message_type": "tenancy.arrears-referral"})
    with pytest.raises(ValueError, match=r"tenancy\.record"):
        encode_csv([other])


# --- property: spreadsheet variants never change what a row means --------------------------------------------


@st.composite
def variant(draw: st.DrawFn, row: dict[str, str]) -> dict[str, str]:
    """The same row as a spreadsheet might write it."""
    out = dict(row)
    if draw(st.booleans()):
        out["canone_mensile_euro"] = out["canone_mensile_euro"].replace(".", ",")
    if draw(st.booleans()):
        out["data_inizio"] = date.fromisoformat(out["data_inizio"]).strftime("%d/%m/%Y")
    out["canone_oltre_30_reddito"] = draw(st.sampled_from(
        ["si", "SI", "sì", "true", "1"] if row["canone_oltre_30_reddito"] == "si" else ["no", "NO", "false", "0"]))
    out["quartiere"] = draw(st.sampled_from([row["quartiere"],
                                             load_codelist("quartieri").labels_it[row["quartiere"]]]))
    if draw(st.booleans()):
        out["codice_fiscale_intestatario"] = f" {row['codice_fiscale_intestatario'].lower()} "
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(range(len(ROWS))), min_size=1, max_size=20, unique=True).flatmap(
    lambda picks: st.tuples(st.just(picks), st.tuples(*(variant(ROWS[i]) for i in picks)),
                            st.booleans(), st.sampled_from(["\r\n", "\n"]), st.permutations(COLUMNS))))
def test_spreadsheet_variants_decode_to_the_canonical_rows(
        case: tuple[list[int], tuple[dict[str, str], ...], bool, str, list[str]]) -> None:
    picks, variants, bom, newline, columns = case
    canonical = export([ROWS[i] for i in picks])
    decoded = decode_csv(export(variants, columns=columns, bom=bom, newline=newline))
    assert decoded == decode_csv(canonical)
    assert encode_csv(decoded) == canonical


# --- volume -------------------------------------------------------------------------------------------------


def test_tier_s_initial_load_of_11000_rows_takes_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [tenant_row(t) for t in generate_tenants("S", seed=11)]
    assert len(rows) == TIER_TENANCIES["S"] == 11_000
    body = export(rows, bom=True)

    started = time.perf_counter()
    envelopes = adapters.aler.decode(body, "text/csv; charset=utf-8")
    decoded_in = time.perf_counter() - started
    started = time.perf_counter()
    encoded = encode_csv(envelopes, bom=True)
    encoded_in = time.perf_counter() - started

    assert len(envelopes) == 11_000
    assert all(isinstance(e, Envelope) for e in envelopes)
    assert encoded == body
    with capsys.disabled():
        print(f"\nALER CSV tier S: {len(rows):,} rows, {len(body) / 1e6:.1f} MB: decode_csv {decoded_in:.2f} s "
              f"({len(rows) / decoded_in:,.0f} rows/s), encode_csv {encoded_in:.2f} s")
    assert decoded_in < 15, "decoding 11,000 rows should take a few seconds"
