"""The published JSON Schema of one row of ALER's bulk tenancy export (:mod:`adapters.aler.csv_export`).

A CSV cell is text, so the schema describes a row as an object of strings, one property per column: the
cell's content with surrounding spaces removed (the decoder trims every cell), ``""`` for an empty one. Each
column's pattern and code list comes from the decoder's own row model (:class:`AlerTenancyCsvRow`): lengths and
patterns from its JSON Schema, enums from its literals, and the codes of every coded column by asking the model
which codes of the list it takes, so a change to the decoder changes the schema (and generation fails on a
column it cannot describe). ``$defs/header`` is the header row, with the column order the gateway writes.

What a row schema cannot say, the decoder still checks: real calendar dates, ``data_fine`` not before
``data_inizio``, exactly one ``holder`` among the members, each fragility signal once, the codice fiscale's
check character, and a contract id once per file. It states the formats to write; the decoder's parser is a
little more lenient than the schema in places (it reads what pydantic reads), which is no part of the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from itertools import product
from math import prod
from typing import Any, Final

from pydantic import ValidationError

from adapters._patterns import (
    anchored,
    any_case,
    decimal_pattern,
    flag_letters,
    int_range,
    person_code,
    spelling,
)
from adapters.aler import csv_export
from adapters.aler.csv_export import (  # the decoder's own rules, private to its package
    _ARREARS_DETAIL,
    _ARREARS_REQUIRED,
    _FALSE,
    _FLAGS,
    _TRUE,
    COLUMNS,
    CSV_CONTENT_TYPES,
    DELIMITER,
    MAX_PROBLEMS,
    AlerTenancyCsvRow,
)
from adapters.aler.tenancy import Componente
from gateway.identity.codice_fiscale import check_character
from schemas.codelists import load_codelist

__all__ = ["CODED_COLUMNS", "row_schema"]

CODED_COLUMNS: Final[dict[str, str]] = {
    "quartiere": "quartieri",
    "tipologia_nucleo": "household_types",
    "fascia_isee": "isee_bands",
    "morosita_stadio": "arrears_stages",
    "segnali_fragilita": "fragility_signals",
}
"""Column -> the code list its cells name codes of (by code, Italian label or alias)."""

_MEMBER_LISTS: Final = {"relazione": "household_relations", "fascia_eta": "age_bands"}
_PERSON_COLUMNS: Final = frozenset({"codice_fiscale_intestatario"})
_LIST_SEPARATOR: Final = "|"
_MEMBER_SEPARATOR: Final = ":"
_NO_FLAG: Final = "-"
_DAY: Final = "(?:0[1-9]|[12][0-9]|3[01])"
_MONTH: Final = "(?:0[1-9]|1[0-2])"
_ISO_DATE: Final = f"[0-9]{{4}}-{_MONTH}-{_DAY}"
_ITALIAN_DATE: Final = f"{_DAY}/{_MONTH}/[0-9]{{4}}"
_TIME: Final = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]+)?)?"
_OFFSET: Final = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])"
_BOOLEAN_WORDS: Final = ("true", "false", "1", "0")
"""Besides si/no: the spellings of a yes/no cell the module docstring lists."""

_CF_FIRST15: Final = "XQZKWJ80A01F205"
_EXAMPLE: Final[dict[str, str]] = {
    "id_contratto": "ALER-C-12345678", "tipo_contratto": "SAT", "data_inizio": "2024-03-01",
    "data_fine": "2029-02-28", "id_unita": "ALER-U-7654321", "id_edificio": "ALER-B-0042", "via": "Via Esempio",
    "civico": "12/A", "quartiere": "molise-calvairate", "municipio": "4",
    "codice_fiscale_intestatario": _CF_FIRST15 + check_character(_CF_FIRST15),
    "tipologia_nucleo": "single-mother-minors", "componenti": "holder:age-25-44:-|child:age-6-13:MD",
    "fascia_canone": "accesso", "fascia_isee": "isee-0-6000", "canone_mensile_euro": "185.50",
    "canone_oltre_30_reddito": "si", "morosita_euro": "1234.50", "morosita_mensilita": "7",
    "morosita_dal": "2026-04-01", "morosita_tipo": "spese", "morosita_stadio": "formal-notice",
    "segnali_fragilita": "isolation", "data_aggiornamento": "2026-11-20T09:30:00+01:00",
}
"""A row the decoder accepts, made up (the codice fiscale is synthetic): what the schema asks the model about."""


def _accepts(column: str, value: str) -> bool:
    """Whether the row model accepts ``value`` in ``column`` of an otherwise valid row."""
    cells = {**_EXAMPLE, column: value}
    try:
        AlerTenancyCsvRow.model_validate({name: cell for name, cell in cells.items() if cell})
    except ValidationError:
        return False
    return True


def _accepted_codes(column: str, codelist: str) -> list[str]:
    """The codes of ``codelist`` the model takes in ``column`` (for a list column, as a list of one)."""
    codes = sorted(code for code in load_codelist(codelist).labels_it if _accepts(column, code))
    if not codes:
        raise ValueError(f"column {column} takes no code of list {codelist}: update CODED_COLUMNS")
    return codes


def _member_accepts(**fields: Any) -> bool:
    member = {"relazione": "child", "fascia_eta": "age-25-44", "minore": False, "over_65": False,
              "disabilita": False, **fields}
    try:
        Componente.model_validate(member)
    except ValidationError:
        return False
    return True


def _coded(codelist: str, codes: Iterable[str]) -> dict[str, Any]:
    listed = sorted(codes)
    return {"anyOf": [
        {"enum": listed, "title": "a code", "description": f"code list {codelist} v{load_codelist(codelist).version}"},
        {"type": "string", "pattern": anchored(spelling(codelist, listed)),
         "title": "or its Italian label or an alias", "description": "in any letter case and spacing"},
    ]}


def _members() -> str:
    """The pattern of ``componenti``, from the member model's own rules: the relations and age bands it takes,
    and per age band the flags it requires, allows and refuses."""
    relations = [code for code in load_codelist(_MEMBER_LISTS["relazione"]).labels_it
                 if _member_accepts(relazione=code)]
    letter = {name: flag for flag, name in _FLAGS.items()}
    bands = []
    for band in sorted(load_codelist(_MEMBER_LISTS["fascia_eta"]).labels_it):
        names = list(_FLAGS.values())
        taken = [values for values in product((False, True), repeat=len(names))
                 if _member_accepts(fascia_eta=band, **dict(zip(names, values, strict=True)))]
        per_flag = [{values[k] for values in taken} for k in range(len(names))]
        if not taken or len(taken) != prod(len(values) for values in per_flag):
            raise ValueError(f"the flags age band {band} takes are not one choice per flag")
        required = {letter[name] for name, values in zip(names, per_flag, strict=True) if values == {True}}
        optional = {letter[name] for name, values in zip(names, per_flag, strict=True) if len(values) == 2}
        flags = flag_letters(required, optional, none=_NO_FLAG)
        bands.append(f"{spelling(_MEMBER_LISTS['fascia_eta'], [band])}{_MEMBER_SEPARATOR}\\s*{flags}\\s*")
    member = f"{spelling(_MEMBER_LISTS['relazione'], relations)}{_MEMBER_SEPARATOR}(?:{'|'.join(bands)})"
    most = AlerTenancyCsvRow.model_json_schema()["properties"]["componenti"]["maxItems"]
    return f"{member}(?:\\{_LIST_SEPARATOR}{member}){{0,{most - 1}}}"


def _places(column: str) -> int:
    """How many decimals the model takes in ``column``."""
    places = 0
    while _accepts(column, "1." + "1" * (places + 1)):
        places += 1
        if places > 8:
            raise ValueError(f"column {column} takes any number of decimals")
    return places


def _string(pattern: str) -> dict[str, Any]:
    return {"type": "string", "pattern": anchored(pattern)}


def _cell(column: str, field: dict[str, Any]) -> dict[str, Any]:
    """The schema of a non-empty cell of ``column``, from the JSON Schema of its field in the row model."""
    if column in CODED_COLUMNS:
        codelist = CODED_COLUMNS[column]
        if field.get("type") == "array":
            codes = _accepted_codes(column, codelist)
            item = spelling(codelist, codes)
            return _string(f"{item}(?:\\{_LIST_SEPARATOR}{item}){{0,{field['maxItems'] - 1}}}")
        return _coded(codelist, _accepted_codes(column, codelist))
    if column in _PERSON_COLUMNS:
        return {**_string(person_code()), "minLength": field["minLength"], "maxLength": field["maxLength"]}
    if column == "componenti":
        return _string(_members())
    if "enum" in field:
        return {"enum": field["enum"]}
    kind, shape = field.get("type"), field.get("format")
    if kind == "string" and shape == "date":
        return _string(f"{_ISO_DATE}|{_ITALIAN_DATE}")
    if kind == "string" and shape == "date-time":
        return _string(f"{_ISO_DATE}[Tt ]{_TIME}{_OFFSET}")
    if kind == "string":
        return {k: field[k] for k in ("type", "minLength", "maxLength", "pattern") if k in field}
    if kind == "integer":
        return _string(int_range(field["minimum"], field["maximum"]))
    if kind == "boolean":
        words = sorted({*_TRUE, *_FALSE, *_BOOLEAN_WORDS})
        refused = [word for word in words if not _accepts(column, word)]
        if refused:
            raise ValueError(f"column {column} no longer takes {refused}")
        return _string("|".join(any_case(word) for word in words))
    number = next((branch for branch in field.get("anyOf", []) if branch.get("type") == "number"), None)
    if number is not None:
        maximum = Decimal(str(number["maximum"]))
        return _string(decimal_pattern(maximum, _places(column), positive=field.get("gt") == 0))
    raise ValueError(f"column {column}: no cell schema for {field}")


def _documented() -> dict[str, tuple[str, str]]:
    """Column -> (required, content) from the column table of :mod:`adapters.aler.csv_export`'s docstring."""
    table: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (csv_export.__doc__ or "").splitlines():
        name, _, rest = line.partition(" ")
        if name in COLUMNS:
            required, _, content = rest.strip().partition(" ")
            current = table.setdefault(name, [required, content.strip()])
        elif current is not None and line.startswith(" ") and line.strip() and not line.startswith("="):
            current[1] += " " + line.strip()
        else:
            current = None
    missing = [column for column in COLUMNS if column not in table]
    if missing:
        raise ValueError(f"the docstring of adapters.aler.csv_export does not describe columns {missing}")
    return {column: (required, content.replace("``", "`")) for column, (required, content) in table.items()}


def _unwrap(field: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema of a present value and whether the column may be empty."""
    branches = field.get("anyOf")
    if branches and {"type": "null"} in branches:
        present = [branch for branch in branches if branch != {"type": "null"}]
        if len(present) == 1:
            return present[0], True
    return field, "default" in field


@cache
def row_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one row of the export, keyed by column name (without ``$id``)."""
    model = AlerTenancyCsvRow.model_json_schema(mode="validation")
    if list(model["properties"]) != list(COLUMNS):
        raise ValueError("the row model's fields are not the export's columns in order")
    documented = _documented()
    properties: dict[str, Any] = {}
    for column in COLUMNS:
        field, optional = _unwrap(model["properties"][column])
        cell = _cell(column, field)
        if not _accepts(column, _EXAMPLE[column]):
            raise ValueError(f"the example row no longer fits column {column}")
        required, content = documented[column]
        if (required == "yes") == optional:
            raise ValueError(f"column {column} is documented as required {required!r}, the model disagrees")
        described = {"description": content + ("" if required == "yes" else " (may be empty)")}
        properties[column] = {**described, "anyOf": [{"const": ""}, cell]} if optional else {**described, **cell}
    filled = {"properties": {"morosita_euro": {"minLength": 1}}}
    arrears = {
        "if": filled,
        "then": {"properties": {name: {"minLength": 1} for name in _ARREARS_REQUIRED}},
        "else": {"properties": {name: {"const": ""} for name in _ARREARS_DETAIL}},
        "description": f"When morosita_euro is filled, {', '.join(_ARREARS_REQUIRED)} are too; when it is empty, "
                       f"so is every other morosita_ column ({', '.join(_ARREARS_DETAIL)}).",
    }
    return {
        "title": "ALER tenancy export: one row",
        "description": (
            "One data row of ALER's bulk tenancy export (initial loads and backfills), each cell as the gateway "
            "reads it: surrounding spaces removed, an empty cell as \"\". The file: "
            f"{CSV_CONTENT_TYPES[0]}, UTF-8 (a leading byte-order mark is ignored), fields separated by "
            f"{DELIMITER!r} and quoted with '\"' where a field holds a separator, a quote or a line break, one "
            "header row naming every column once in any order ($defs/header, in the order the gateway writes "
            "them), then one row per contract; blank lines are skipped. All or nothing: one bad row rejects the "
            f"file, with up to {MAX_PROBLEMS} problems located as /header/<column> (missing), /header/<index> "
            "(unknown or repeated, from 0) or /rows/<n>/<column> (n counts data rows from 0). Each row becomes "
            "one tenancy.record. The decoder also checks what a row schema cannot: real dates, data_fine not "
            "before data_inizio, exactly one holder, each signal once, the check character of the codice "
            "fiscale, and each contract once per file."
        ),
        "type": "object",
        "required": list(COLUMNS),
        "additionalProperties": False,
        "properties": properties,
        "allOf": [arrears],
        "examples": [{**_EXAMPLE}],
        "$defs": {
            "header": {
                "title": "Header row",
                "description": "Every column once, in any order and letter case; the gateway writes them in "
                               "this order (the default).",
                "type": "array",
                "items": {"enum": list(COLUMNS)},
                "uniqueItems": True,
                "minItems": len(COLUMNS),
                "maxItems": len(COLUMNS),
                "default": list(COLUMNS),
            },
        },
    }
