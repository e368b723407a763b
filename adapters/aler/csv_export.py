"""ALER's bulk tenancy export (CSV) for initial loads and backfills: one ``tenancy.record`` per row.

The file is UTF-8 (a leading byte-order mark is allowed and ignored), fields separated by semicolons (``;``,
the separator of Italian spreadsheet exports), quoted with ``"`` where a field holds a separator, a quote or a
line break, with one header row naming the columns below in any order. Blank lines are skipped.

=============================  ========  ====================================================================
column                         required  content
=============================  ========  ====================================================================
id_contratto                   yes       ALER contract id (letters, digits, ``._:-``; unique in the file)
tipo_contratto                 yes       ``SAP`` or ``SAT``
data_inizio                    yes       contract start, ``2026-01-31`` or ``31/01/2026``
data_fine                      no        contract end, same formats, not before data_inizio
id_unita                       yes       ALER unit id
id_edificio                    yes       ALER building id
via                            yes       street (ALER-internal: never crosses)
civico                         yes       house number, e.g. ``12/A`` (ALER-internal: never crosses)
quartiere                      yes       quartiere code, Italian name or alias (``Molise Calvaire``)
municipio                      yes       1-9
codice_fiscale_intestatario    yes       holder's codice fiscale, or STP/ENI code
tipologia_nucleo               yes       household type code
componenti                     yes       household members, holder included, ``|``-separated; each member
                                         ``relation:age band:flags``, flags any of ``M`` (minor), ``A``
                                         (anziano, over 65), ``D`` (disabilità), or ``-`` for none; e.g.
                                         ``holder:age-45-64:-|child:age-6-13:M|parent:age-75-84:AD``
fascia_canone                  yes       ``protezione``, ``accesso``, ``permanenza`` or ``decadenza``
fascia_isee                    yes       ISEE band code
canone_mensile_euro            yes       monthly rent in euro, ``.`` or ``,`` before at most two decimals,
                                         no thousands separator: ``85.50``, ``85,50``
canone_oltre_30_reddito        yes       rent above 30% of household income (ALER's flag): ``si``/``no``
                                         (also ``true``/``false``, ``1``/``0``)
morosita_euro                  no        amount owed (> 0); empty when nothing is owed
morosita_mensilita             with      months unpaid (0-600)
morosita_dal                   no        first unpaid due date
morosita_tipo                  with      ``canone``, ``spese`` or ``utenze``
morosita_stadio                with      arrears stage code, not ``none``
segnali_fragilita              no        fragility signal codes, ``|``-separated, each at most once
data_aggiornamento             yes       when ALER last updated the record, ISO 8601 with a UTC offset
=============================  ========  ====================================================================

"with": required when ``morosita_euro`` is filled; every ``morosita_`` column is empty when nothing is owed.

Each row becomes one envelope with message id ``aler-csv:<id_contratto>:<data_aggiornamento in UTC>``, so a
re-sent export is recognised as a replay while an updated record is new; no purpose and no recipients (an
initial load goes to the gateway itself). The import is all-or-nothing: one bad row rejects the whole file, and
the error lists up to :data:`MAX_PROBLEMS` problems, each located as ``/rows/<n>/<column>`` (``n`` counts data
rows from 0, blank lines not counted; the message gives the file's line number), header problems as
``/header/<column>`` (missing) or ``/header/<index>`` (unknown or repeated, index from 0). Values are never
echoed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, ValidationError, ValidationInfo, field_validator

from adapters.aler._native import (
    ArrearsStageCode,
    Euro,
    FragilitySignalCode,
    HouseholdTypeCode,
    Id,
    IseeBandCode,
    Municipio,
    Native,
    PersonCode,
    QuartiereCode,
    cents,
    check_date_order,
    check_unique,
    make_envelope,
    person_identifier,
)
from adapters.aler.tenancy import ARREARS_KINDS, Componente, HouseNumber, Street, check_one_holder, member_payload
from schemas.envelope import Envelope, Identifier
from schemas.errors import DecodeError, FieldProblem, problems_from_validation

__all__ = ["COLUMNS", "CSV_CONTENT_TYPES", "MAX_PROBLEMS", "AlerTenancyCsvRow", "decode_csv", "encode_csv"]

CSV_CONTENT_TYPES: Final = ("text/csv",)
DELIMITER: Final = ";"
MAX_PROBLEMS: Final = 50
"""Most problems one rejection lists; the detail still counts every bad row."""
MESSAGE_TYPE: Final = "tenancy.record"

COLUMNS: Final[tuple[str, ...]] = (
    "id_contratto",
    "tipo_contratto",
    "data_inizio",
    "data_fine",
    "id_unita",
    "id_edificio",
    "via",
    "civico",
    "quartiere",
    "municipio",
    "codice_fiscale_intestatario",
    "tipologia_nucleo",
    "componenti",
    "fascia_canone",
    "fascia_isee",
    "canone_mensile_euro",
    "canone_oltre_30_reddito",
    "morosita_euro",
    "morosita_mensilita",
    "morosita_dal",
    "morosita_tipo",
    "morosita_stadio",
    "segnali_fragilita",
    "data_aggiornamento",
)
"""Every column of the export, in the order :func:`encode_csv` writes them."""

_ARREARS_DETAIL: Final = ("morosita_mensilita", "morosita_dal", "morosita_tipo", "morosita_stadio")
_ARREARS_REQUIRED: Final = ("morosita_mensilita", "morosita_tipo", "morosita_stadio")
_FLAGS: Final = {"M": "minore", "A": "over_65", "D": "disabilita"}
_ITALIAN_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")
_TRUE: Final = frozenset({"si", "sì", "s"})
_FALSE: Final = frozenset({"no", "n"})


def _italian_date(value: Any) -> Any:
    if isinstance(value, str) and (match := _ITALIAN_DATE.fullmatch(value.strip())):
        day, month, year = match.groups()
        return f"{year}-{month}-{day}"
    return value


def _decimal_comma(value: Any) -> Any:
    if isinstance(value, str) and value.count(",") == 1 and "." not in value:
        return value.replace(",", ".")
    return value


def _italian_bool(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return value


def _members(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    members = []
    for number, text in enumerate(value.split("|"), start=1):
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"member {number}: write relation:age band:flags")
        relation, band, flags = (part.strip() for part in parts)
        flags = "" if flags == "-" else flags.upper()
        if not set(flags) <= _FLAGS.keys() or len(set(flags)) != len(flags):
            raise ValueError(f"member {number}: flags are any of M, A, D once each, or - for none")
        members.append({"relazione": relation, "fascia_eta": band, **{name: letter in flags
                                                                       for letter, name in _FLAGS.items()}})
    return members


def _codes(value: Any) -> Any:
    if isinstance(value, str):
        return [code.strip() for code in value.split("|")] if value.strip() else []
    return value


CsvDate = Annotated[date, BeforeValidator(_italian_date)]
CsvEuro = Annotated[Euro, BeforeValidator(_decimal_comma)]
CsvBool = Annotated[bool, BeforeValidator(_italian_bool)]


class AlerTenancyCsvRow(Native):
    """One row of the export, with the column names as field names (see the module docstring)."""

    id_contratto: Id
    tipo_contratto: Literal["SAP", "SAT"]
    data_inizio: CsvDate
    data_fine: CsvDate | None = None
    id_unita: Id
    id_edificio: Id
    via: Street
    civico: HouseNumber
    quartiere: QuartiereCode
    municipio: Municipio
    codice_fiscale_intestatario: PersonCode
    tipologia_nucleo: HouseholdTypeCode
    componenti: Annotated[list[Componente], BeforeValidator(_members), Field(min_length=1, max_length=20)]
    fascia_canone: Literal["protezione", "accesso", "permanenza", "decadenza"]
    fascia_isee: IseeBandCode
    canone_mensile_euro: CsvEuro
    canone_oltre_30_reddito: CsvBool
    morosita_euro: Annotated[CsvEuro, Field(gt=0)] | None = None
    morosita_mensilita: Annotated[int, Field(ge=0, le=600)] | None = None
    morosita_dal: CsvDate | None = None
    morosita_tipo: Literal["canone", "spese", "utenze"] | None = None
    morosita_stadio: ArrearsStageCode | None = None
    segnali_fragilita: Annotated[list[FragilitySignalCode], BeforeValidator(_codes), Field(max_length=20)] = []
    data_aggiornamento: AwareDatetime

    @field_validator("data_fine")
    @classmethod
    def _after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        check_date_order(info.data.get("data_inizio"), value, "data_inizio")
        return value

    @field_validator("componenti")
    @classmethod
    def _one_holder(cls, value: list[Componente]) -> list[Componente]:
        return check_one_holder(value)

    @field_validator("morosita_stadio")
    @classmethod
    def _owed(cls, value: str | None) -> str | None:
        if value == "none":
            raise ValueError("stage none means nothing is owed: leave every morosita_ column empty instead")
        return value

    @field_validator("segnali_fragilita")
    @classmethod
    def _unique_signals(cls, value: list[str]) -> list[str]:
        check_unique(value, "fragility signal")
        return value

    @field_validator("data_aggiornamento")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        try:
            value.astimezone(UTC)  # the message id is in UTC: 9999-12-31T23:59-23:59 has no UTC time
        except OverflowError:
            raise ValueError("must fall within the years 1-9999 in UTC") from None
        return value


def _malformed(detail: str, rule: str, message: str) -> DecodeError:
    return DecodeError("malformed", detail, [FieldProblem("", rule, message)])


def _text(raw: bytes, content_type: str) -> str:
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in CSV_CONTENT_TYPES:
        raise _malformed(f"content type {media_type or '(none)'} is not accepted; send text/csv", "content-type",
                         "send the export as text/csv; charset=utf-8")
    charset = next((value.strip().strip('"').lower() for name, _, value in
                    (p.partition("=") for p in parameters.split(";")) if name.strip().lower() == "charset"), "utf-8")
    if charset not in ("utf-8", "utf8"):
        raise _malformed("the export must be UTF-8", "charset", "encode the export as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("export is not valid UTF-8", "utf-8", f"invalid byte at {exc.start}") from None
    return text.removeprefix("\ufeff")


def _header(cells: list[str]) -> dict[str, int]:
    names = [cell.strip().lower() for cell in cells]
    problems: list[FieldProblem] = []
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        if name not in COLUMNS:
            problems.append(FieldProblem(f"/header/{index}", "extra_forbidden", "not a column of the ALER export"))
        elif name in positions:
            problems.append(FieldProblem(f"/header/{index}", "duplicate", "column named twice"))
        else:
            positions[name] = index
    hint = " (columns are separated by ';')" if len(cells) == 1 and "," in cells[0] else ""
    problems += [FieldProblem(f"/header/{name}", "missing", f"add the column{hint}")
                 for name in COLUMNS if name not in positions]
    if problems:
        raise DecodeError("contract", "the header row does not match ALER's tenancy export", problems[:MAX_PROBLEMS])
    return positions


def _row_problems(error: ValidationError, row: int, line: int) -> list[FieldProblem]:
    problems = []
    for problem in problems_from_validation(error):
        column, *rest = problem.pointer.removeprefix("/").split("/")
        where = ""
        if rest:
            where = f"member {int(rest[0]) + 1}" if rest[0].isdigit() and column == "componenti" else f"item {rest[0]}"
            where += "".join(f" {part}" for part in rest[1:]) + ": "
        problems.append(FieldProblem(f"/rows/{row}/{column}", problem.rule, f"line {line}: {where}{problem.message}"))
    return problems


def _arrears_problems(cells: dict[str, str], row: int, line: int) -> list[FieldProblem]:
    if "morosita_euro" in cells:
        missing = [name for name in _ARREARS_REQUIRED if name not in cells]
        return [FieldProblem(f"/rows/{row}/{name}", "missing",
                             f"line {line}: required when morosita_euro is filled") for name in missing]
    if any(name in cells for name in _ARREARS_DETAIL):
        return [FieldProblem(f"/rows/{row}/morosita_euro", "missing",
                             f"line {line}: fill morosita_euro, or leave every morosita_ column empty")]
    return []


def _message_id(row: AlerTenancyCsvRow) -> str:
    stamp = row.data_aggiornamento.astimezone(UTC)
    fraction = f".{stamp.microsecond:06d}" if stamp.microsecond else ""
    return f"aler-csv:{row.id_contratto}:{stamp:%Y%m%dT%H%M%S}{fraction}Z"


def _payload(row: AlerTenancyCsvRow) -> dict[str, Any]:
    arrears = None
    if row.morosita_euro is not None and row.morosita_tipo is not None:
        arrears = {
            "amount_cents": cents(row.morosita_euro),
            "months": row.morosita_mensilita,
            "since": row.morosita_dal,
            "kind": ARREARS_KINDS[row.morosita_tipo],
            "stage": row.morosita_stadio,
        }
    return {
        "contract_id": row.id_contratto,
        "contract_type": row.tipo_contratto,
        "start_date": row.data_inizio,
        "end_date": row.data_fine,
        "unit_id": row.id_unita,
        "building_id": row.id_edificio,
        "address": {"street": row.via, "house_number": row.civico},
        "quartiere": row.quartiere,
        "municipio": row.municipio,
        "household_type": row.tipologia_nucleo,
        "members": [member_payload(member) for member in row.componenti],
        "rent_band": row.fascia_canone,
        "isee_band": row.fascia_isee,
        "monthly_rent_cents": cents(row.canone_mensile_euro),
        "rent_over_30_percent_of_income": row.canone_oltre_30_reddito,
        "arrears": arrears,
        "fragility_signals": row.segnali_fragilita,
    }


def _envelope(row: AlerTenancyCsvRow) -> Envelope:
    message_id = _message_id(row)
    return make_envelope(
        message_id=message_id,
        correlation_id=message_id,
        message_type=MESSAGE_TYPE,
        recipients=(),
        identifiers=(person_identifier(row.codice_fiscale_intestatario),
                     Identifier(system="aler-contract", value=row.id_contratto)),
        purpose=None,
        occurred_at=row.data_aggiornamento,
        payload=_payload(row),
    )


def decode_csv(raw: bytes, content_type: str = "text/csv") -> list[Envelope]:
    """An ALER tenancy export -> one ``tenancy.record`` envelope per row, in file order; raises DecodeError.

    All-or-nothing: any bad row rejects the file, listing up to :data:`MAX_PROBLEMS` problems.
    """
    reader = csv.reader(io.StringIO(_text(raw, content_type), newline=""), delimiter=DELIMITER, strict=True)
    envelopes: list[Envelope] = []
    problems: list[FieldProblem] = []
    bad_rows = 0
    rows = 0
    seen: dict[str, int] = {}
    try:
        header = next(reader, None)
        if header is None:
            raise _malformed("the export is empty: it needs a header row", "header", "start with the header row")
        positions = _header(header)
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            row, line = rows, reader.line_num
            rows += 1
            row_problems: list[FieldProblem] = []
            if len(cells) != len(header):
                row_problems.append(FieldProblem(
                    f"/rows/{row}", "field_count",
                    f"line {line}: expected {len(header)} fields separated by ';', found {len(cells)}"))
            else:
                values = {name: cells[index].strip() for name, index in positions.items()}
                values = {name: value for name, value in values.items() if value}
                row_problems += _arrears_problems(values, row, line)
                try:
                    parsed = AlerTenancyCsvRow.model_validate(values)
                except ValidationError as exc:
                    row_problems += _row_problems(exc, row, line)
                else:
                    first = seen.setdefault(parsed.id_contratto, row)
                    if first != row:
                        row_problems.append(FieldProblem(f"/rows/{row}/id_contratto", "duplicate",
                                                         f"line {line}: same contract as row {first}"))
                    if not row_problems and not problems:
                        try:
                            envelopes.append(_envelope(parsed))
                        except ValidationError as exc:  # the row model enforces every canonical rule: a backstop
                            row_problems += [FieldProblem(f"/rows/{row}", p.rule, f"line {line}: {p.message}")
                                             for p in problems_from_validation(exc)]
            if row_problems:
                bad_rows += 1
                problems += row_problems[: MAX_PROBLEMS - len(problems)]
    except csv.Error as exc:
        raise _malformed(f"the export is not valid CSV (line {reader.line_num})", "csv",
                         f"line {reader.line_num}: {exc}") from None
    if problems:
        raise DecodeError(
            "contract",
            f"{bad_rows} of {rows} rows do not match ALER's tenancy export; nothing was loaded",
            problems,
        )
    return envelopes


def _euro(amount_cents: int) -> str:
    return f"{amount_cents // 100}.{amount_cents % 100:02d}"


def _flags(member: dict[str, Any]) -> str:
    letters = "".join(letter for letter, name in (("M", "minor"), ("A", "over_65"), ("D", "disability"))
                      if member[name])
    return letters or "-"


def _row(envelope: Envelope) -> list[str]:
    if envelope.message_type != MESSAGE_TYPE:
        raise ValueError(f"only {MESSAGE_TYPE} envelopes go into the ALER export")
    p = envelope.payload
    holder = next(i.value for i in envelope.subject.identifiers if i.system in ("cf", "stp", "eni"))
    arrears: dict[str, Any] = p.get("arrears") or {}
    kinds = {kind: native for native, kind in ARREARS_KINDS.items()}
    values = {
        "id_contratto": p["contract_id"],
        "tipo_contratto": p["contract_type"],
        "data_inizio": p["start_date"],
        "data_fine": p.get("end_date", ""),
        "id_unita": p["unit_id"],
        "id_edificio": p["building_id"],
        "via": p["address"]["street"],
        "civico": p["address"]["house_number"],
        "quartiere": p["quartiere"],
        "municipio": str(p["municipio"]),
        "codice_fiscale_intestatario": holder,
        "tipologia_nucleo": p["household_type"],
        "componenti": "|".join(f"{m['relation']}:{m['age_band']}:{_flags(m)}" for m in p["members"]),
        "fascia_canone": p["rent_band"],
        "fascia_isee": p["isee_band"],
        "canone_mensile_euro": _euro(p["monthly_rent_cents"]),
        "canone_oltre_30_reddito": "si" if p["rent_over_30_percent_of_income"] else "no",
        "morosita_euro": _euro(arrears["amount_cents"]) if arrears else "",
        "morosita_mensilita": str(arrears["months"]) if arrears else "",
        "morosita_dal": arrears.get("since", ""),
        "morosita_tipo": kinds[arrears["kind"]] if arrears else "",
        "morosita_stadio": arrears.get("stage", ""),
        "segnali_fragilita": "|".join(p.get("fragility_signals", ())),
        "data_aggiornamento": envelope.occurred_at.isoformat(),
    }
    return [values[name] for name in COLUMNS]


def encode_csv(records: Iterable[Envelope], *, bom: bool = False) -> bytes:
    """``tenancy.record`` envelopes -> ALER's export format (header row, ``;``, CRLF, UTF-8; BOM on request).

    The inverse of :func:`decode_csv` for what it decodes: ``decode_csv(encode_csv(e))`` has the payloads,
    subjects and timestamps of ``e``. Raises ValueError for any other message type.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=DELIMITER, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(_row(envelope) for envelope in records)
    return ("\ufeff" if bom else "").encode() + buffer.getvalue().encode("utf-8")

