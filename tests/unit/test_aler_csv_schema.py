"""The published schema of one row of ALER's tenancy export (``contracts/aler/esportazione-contratti-riga.schema.json``)
agrees with the decoder: every row it accepts (golden exports, rows of synthetic tenants, what ``encode_csv``
writes) meets the schema, the header schema takes exactly the headers the decoder takes in the columns' case,
every spelling of every code the decoder takes is taken by the schema and no other, and the invalid golden
exports fail the schema where their problem is structural (the others are pinned as beyond a row schema)."""

from __future__ import annotations

import csv
import io
import json
from itertools import product
from pathlib import Path

import jsonschema
import pytest

from adapters.aler.csv_export import COLUMNS, DELIMITER, decode_csv, encode_csv
from adapters.aler.csv_schema import CODED_COLUMNS, row_schema
from gateway.contracts.publication import CSV_ROW_FORMATS
from gateway.identity.synthetic import generate_tenants
from schemas.codelists import load_codelist
from schemas.errors import DecodeError
from tests.unit.test_adapter_aler_csv import export, tenant_row

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contracts" / "examples" / "aler"
[PATH] = CSV_ROW_FORMATS
SCHEMA = json.loads((ROOT / "contracts" / PATH).read_text(encoding="utf-8"))
ROW = jsonschema.Draft202012Validator(SCHEMA)
HEADER = jsonschema.Draft202012Validator({**SCHEMA["$defs"]["header"], "$schema": SCHEMA["$schema"]})
EXAMPLE: dict[str, str] = SCHEMA["examples"][0]


def read(body: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of an export as the decoder reads them: trimmed cells by lower-cased column name."""
    reader = csv.reader(io.StringIO(body.decode("utf-8").removeprefix("\ufeff"), newline=""), delimiter=DELIMITER)
    header = [cell.strip().lower() for cell in next(reader)]
    rows = [dict(zip(header, (cell.strip() for cell in cells), strict=True))
            for cells in reader if any(cell.strip() for cell in cells)]
    return header, rows


def row_errors(row: dict[str, str]) -> set[str]:
    """The columns the row schema finds fault with (``""`` for the row as a whole)."""
    return {str(error.absolute_path[0]) if error.absolute_path else "" for error in ROW.iter_errors(row)}


def accepts(row: dict[str, str]) -> bool:
    """Whether the decoder loads an export of this one row."""
    try:
        decode_csv(export([row]))
    except DecodeError:
        return False
    return True


# --- what the decoder accepts meets the schema ---------------------------------------------------------------


def test_the_schema_is_published_with_the_header_in_the_order_the_gateway_writes() -> None:
    assert {"$schema": SCHEMA["$schema"], "$id": SCHEMA["$id"], **row_schema()} == SCHEMA
    assert SCHEMA["$defs"]["header"]["default"] == list(COLUMNS)
    assert SCHEMA["required"] == list(COLUMNS) and sorted(SCHEMA["properties"]) == sorted(COLUMNS)
    assert list(HEADER.iter_errors(list(COLUMNS))) == []
    assert list(HEADER.iter_errors(list(reversed(COLUMNS)))) == []
    assert list(HEADER.iter_errors(list(COLUMNS[:-1])))
    assert list(HEADER.iter_errors([*COLUMNS[:-1], COLUMNS[0]]))
    assert list(HEADER.iter_errors([*COLUMNS, "nome"]))


def test_the_example_row_meets_the_schema_and_the_decoder() -> None:
    assert row_errors(EXAMPLE) == set()
    assert accepts(EXAMPLE)


@pytest.mark.parametrize("name", sorted(p.name for p in (EXAMPLES / "valid").glob("*.csv")))
def test_valid_golden_exports_meet_the_schema_row_by_row(name: str) -> None:
    body = (EXAMPLES / "valid" / name).read_bytes()
    header, rows = read(body)

    assert len(decode_csv(body)) == len(rows) > 0
    assert list(HEADER.iter_errors(header)) == []
    assert [row_errors(row) for row in rows] == [set()] * len(rows)


def test_rows_of_synthetic_tenants_and_what_the_encoder_writes_meet_the_schema() -> None:
    rows = [tenant_row(tenant) for tenant in generate_tenants("S", seed=11, limit=300)]
    written = encode_csv(decode_csv(export(rows)))
    header, back = read(written)

    assert header == list(COLUMNS)
    for row in [*rows, *back]:
        assert row_errors(row) == set(), row["id_contratto"]


# --- the schema's codes are the decoder's ---------------------------------------------------------------------


def _spellings(codelist: str) -> list[str]:
    codes = load_codelist(codelist)
    written = {*codes.labels_it, *codes.labels_it.values(), *codes.aliases}
    return sorted({variant for text in written for variant in (text, text.upper(), text.title(), f" {text}  ")})


@pytest.mark.parametrize("column", sorted(CODED_COLUMNS))
def test_a_coded_column_takes_every_spelling_of_the_codes_the_decoder_takes_and_nothing_else(column: str) -> None:
    spellings = [*_spellings(CODED_COLUMNS[column]), "", "none", "unknown-code", "san siro x"]
    for spelling in spellings:
        row = {**EXAMPLE, column: spelling.strip()}
        assert (column not in row_errors(row)) == accepts(row), (column, spelling)


def test_members_follow_the_decoder_on_relation_band_and_flags() -> None:
    relations = _spellings("household_relations")[::3]
    bands = sorted(load_codelist("age_bands").labels_it)
    for relation, band, flags in product(relations, bands, ["-", "", "M", "A", "D", "MD", "dm", "AD", "MA", "MM"]):
        row = {**EXAMPLE, "componenti": f"holder:age-25-44:-|{relation.strip()} : {band} : {flags}"}
        holder = load_codelist("household_relations").resolve(relation.strip()) == "holder"
        schema = "componenti" not in row_errors(row)
        assert schema == accepts(row) or (holder and schema), (relation, band, flags)


CELLS: list[tuple[str, str, bool]] = [
    # (column, cell, taken by both the schema and the decoder; else refused by both)
    ("municipio", "9", True), ("municipio", "10", False), ("municipio", "0", False), ("municipio", "x", False),
    ("canone_mensile_euro", "0", True), ("canone_mensile_euro", "85,50", True), ("canone_mensile_euro", "85.5", True),
    ("canone_mensile_euro", "10000000", True), ("canone_mensile_euro", "10000000.01", False),
    ("canone_mensile_euro", "85.501", False), ("canone_mensile_euro", "1.000,50", False),
    ("canone_mensile_euro", "-5", False), ("morosita_euro", "0,00", False), ("morosita_euro", "0.01", True),
    ("morosita_mensilita", "600", True), ("morosita_mensilita", "601", False), ("morosita_mensilita", "0", True),
    ("data_inizio", "2024-03-01", True), ("data_inizio", "01/03/2024", True), ("data_inizio", "2024-13-01", False),
    ("data_inizio", "1/3/2024", False), ("data_aggiornamento", "2026-11-20T09:30:00Z", True),
    ("data_aggiornamento", "2026-11-20 09:30+01:00", True), ("data_aggiornamento", "2026-11-20T09:30:00", False),
    ("data_aggiornamento", "2026-11-20", False), ("canone_oltre_30_reddito", "Sì", True),
    ("canone_oltre_30_reddito", "FALSE", True), ("canone_oltre_30_reddito", "forse", False),
    ("tipo_contratto", "SAP", True), ("tipo_contratto", "ERP", False), ("civico", "12/A bis", True),
    ("civico", "12;A", False), ("id_contratto", "ALER C 1", False), ("codice_fiscale_intestatario",
                                                                        EXAMPLE["codice_fiscale_intestatario"].lower(),
                                                                        True),
    ("codice_fiscale_intestatario", "STP0303080000001", True), ("codice_fiscale_intestatario", "STP03030800000", False),
    ("codice_fiscale_intestatario", "1234567890123456", False), ("segnali_fragilita", "isolation|minors", True),
    ("segnali_fragilita", "isolation|", False), ("segnali_fragilita", "Isolamento sociale", True),
]


@pytest.mark.parametrize(("column", "cell", "taken"), CELLS)
def test_documented_cells_are_taken_or_refused_by_schema_and_decoder_alike(column: str, cell: str, taken: bool) -> None:
    row = {**EXAMPLE, column: cell}

    assert (column not in row_errors(row)) is taken
    assert accepts(row) is taken


def test_arrears_columns_go_together() -> None:
    nothing_owed = {**EXAMPLE, **{name: "" for name in COLUMNS if name.startswith("morosita_")}}
    assert row_errors(nothing_owed) == set()
    assert row_errors({**EXAMPLE, "morosita_stadio": ""}) == {"morosita_stadio"}
    assert row_errors({**nothing_owed, "morosita_dal": "2026-04-01"}) == {"morosita_dal"}
    assert row_errors({**EXAMPLE, "morosita_dal": ""}) == set()


# --- what the decoder refuses for a structural reason fails the schema ---------------------------------------

INVALID: dict[str, tuple[str, int | None, str | None] | None] = {
    # name -> ("header", None, None) | ("row", row, column) where the schema finds fault, or None: beyond a schema
    "export-missing-column": ("header", None, None),
    "export-unknown-column": ("header", None, None),
    "export-comma-separated": ("header", None, None),
    "export-unknown-quartiere": ("row", 0, "quartiere"),
    "export-incomplete-arrears": ("row", 0, "morosita_tipo"),
    "export-arrears-without-amount": ("row", 1, "morosita_mensilita"),
    "export-flags-disagree-with-age": ("row", 1, "componenti"),
    "export-bad-check-character": None,  # the check character
    "export-impossible-date": None,  # 31 February: a calendar, not a pattern
    "export-no-holder": None,  # exactly one holder among the members
    "export-duplicate-contract": None,  # a contract once per file
    "export-wrong-field-count": None,  # CSV syntax, before there is a row
    "export-not-utf8": None,  # the encoding, before there is a row
}


def test_every_invalid_golden_export_is_classified() -> None:
    assert sorted(INVALID) == sorted(p.stem for p in (EXAMPLES / "invalid").glob("*.csv"))


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_golden_exports_fail_the_schema_where_the_problem_is_structural(name: str) -> None:
    body = (EXAMPLES / "invalid" / f"{name}.csv").read_bytes()
    with pytest.raises(DecodeError):
        decode_csv(body)
    where = INVALID[name]
    if name in ("export-wrong-field-count", "export-not-utf8"):
        return
    header, rows = read(body)
    if where is None:
        assert list(HEADER.iter_errors(header)) == []
        assert [row_errors(row) for row in rows] == [set()] * len(rows)
    elif where[0] == "header":
        assert list(HEADER.iter_errors(header))
    else:
        _, row, column = where
        assert row is not None and column in row_errors(rows[row])
