"""Fuzzing ALER's bulk tenancy export (``text/csv``, :mod:`adapters.aler.csv_export`) through the ALER decoder
partners reach (``DECODERS["aler"]``): 100,000 inputs from a seeded :class:`random.Random` (a failure names the
seed and case number that rebuild the input), made from the valid golden exports of :mod:`adapters.aler.examples` and
exports of synthetic tenants.

Inputs: cells swapped for other columns' values, code-list labels in odd case, tricky numbers and dates,
separators, quotes, line breaks, control characters, lone surrogates and 10,000-character values; rows dropped,
repeated, cut short or padded; headers with columns dropped, repeated, renamed, reordered, re-cased or
comma-separated; unbalanced quotes and NUL bytes in the text; byte flips, truncations, other encodings and
byte-order marks; random bytes; other content types and charsets; and now and then a file of 120 rows with
many bad ones.

Every call must either return one ``tenancy.record`` envelope per data row (none for a header without rows) or
raise :class:`DecodeError` with a
non-empty ``detail`` and 1 to ``MAX_PROBLEMS`` problems, each with a ``rule`` and a ``message`` and a pointer of
the export (``""``, ``/header/<column or index>``, ``/rows/<n>`` or ``/rows/<n>/<column>``) when sent as
``text/csv``; no codice fiscale or street of a seed row may appear in what the sender is told. Run with
``pytest -s`` to see counts, runtimes and the distribution of rejection rules.
"""

from __future__ import annotations

import csv
import io
import random
import re
from typing import Any

import pytest

from adapters.aler.csv_export import COLUMNS, DELIMITER, MAX_PROBLEMS
from adapters.aler.examples import VALID_CSV
from gateway.identity.synthetic import generate_tenants
from gateway.routing import DECODERS
from schemas.codelists import load_codelist
from schemas.envelope import Envelope
from schemas.errors import DecodeError
from tests.fuzz.inputs import NUMBERS, Tally, byte_flips, random_string, run
from tests.unit.test_adapter_aler_csv import export, tenant_row

pytestmark = pytest.mark.fuzz

INPUTS = 100_000
SEED = 20261124
DECODE = DECODERS["aler"]

# --- seeds ---------------------------------------------------------------------------------------------------


def _read(body: bytes) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(body.decode("utf-8").removeprefix("\ufeff"), newline=""), delimiter=DELIMITER)
    header, *rows = [row for row in reader if any(cell.strip() for cell in row)]
    return header, rows


def _seeds() -> list[tuple[list[str], list[list[str]]]]:
    exports = [build() for build in VALID_CSV.values()]
    tenants = list(generate_tenants("S", seed=41, limit=40))
    exports += [export([tenant_row(t) for t in tenants[k:k + size]]) for k, size in ((0, 1), (1, 3), (4, 5))]
    return [_read(body) for body in exports]


SEEDS = _seeds()
SEED_BYTES = [build() for build in VALID_CSV.values()]
PERSONAL = sorted({cells[header.index(column)].strip().upper() for header, rows in SEEDS for cells in rows
                   for column in ("codice_fiscale_intestatario", "via") if len(cells[header.index(column)]) >= 6})
"""Codici fiscali and streets of the seed rows: none may be echoed back."""

_LABELS = sorted({text for name in ("quartieri", "household_types", "isee_bands", "arrears_stages",
                                     "fragility_signals", "household_relations", "age_bands")
                  for code, label in load_codelist(name).labels_it.items() for text in (code, label)})
CELL_VALUES = [
    "", " ", "0", "1", "-1", "00", "01/13/2026", "31/02/2024", "29/02/2023", "2026-02-30", "2026-1-1", "0000-00-00",
    "86400", "1700000000", "2026-11-20T09:30:00", "2026-11-20T09:30:00+25:00", "2026-11-20T24:00:00Z", "si", "SÌ",
    "forse", "true", "2", "85,50", "85.505", "1.000,50", "1 000", "€ 85", "85,5,0", "1e3", "1_000", "NaN", "-0",
    "holder:age-25-44:-", "holder:age-25-44", "holder:age-0-5:-", "holder:age-25-44:-|holder:age-25-44:-",
    "child:age-6-13:M", "holder:age-25-44:MX", "holder:age-25-44:-|" * 25, ":", "|", "||", ";", '"', '""',
    "a;b", 'a"b', "a\nb", "a\rb", "\r\n", "\x00", "\ud800", "x" * 10_000, "STP0303080000001", "ENI030308000000",
    "none", "SAP", "SAT", "ERP", *NUMBERS[:20], *_LABELS,
]


def _cell(rng: random.Random, header: list[str], rows: list[list[str]]) -> str:
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(CELL_VALUES)
    if roll < 0.65:
        return random_string(rng)
    if roll < 0.8:  # the value of another column
        cells = rng.choice(rows)
        return cells[rng.randrange(len(cells))]
    if roll < 0.9:
        value = rng.choice(_LABELS)
        return rng.choice((value.upper(), value.swapcase(), f"  {value} ", value.replace(" ", "  ")))
    return rng.choice(rows)[rng.randrange(len(header))][: rng.randrange(1, 8)]


def _write(header: list[str], rows: list[list[str]], rng: random.Random) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=DELIMITER, lineterminator=rng.choice(("\r\n", "\n")))
    writer.writerow(header)
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + buffer.getvalue().encode("utf-8", "surrogatepass")


def _header(rng: random.Random, header: list[str]) -> list[str]:
    header = list(header)
    roll = rng.randrange(7)
    if roll == 0 and header:
        del header[rng.randrange(len(header))]
    elif roll == 1:
        header.insert(rng.randrange(len(header) + 1), rng.choice(header))
    elif roll == 2:
        names = ("nome", "cognome", "", " ", "ID_CONTRATTO ", random_string(rng))
        header[rng.randrange(len(header))] = rng.choice(names)
    elif roll == 3:
        rng.shuffle(header)
    elif roll == 4:
        header = [rng.choice((name.upper(), f" {name} ", name.title())) for name in header]
    elif roll == 5:
        header = [",".join(header)]
    else:
        header = header[: rng.randrange(len(header))]
    return header


def _rows(rng: random.Random, header: list[str], rows: list[list[str]]) -> list[list[str]]:
    rows = [list(cells) for cells in rows]
    roll = rng.randrange(6)
    if roll == 0 and rows:
        del rows[rng.randrange(len(rows))]
    elif roll == 1:
        rows.append(list(rng.choice(rows)))
    elif roll == 2:
        cells = rng.choice(rows)
        del cells[rng.randrange(len(cells)):]
    elif roll == 3:
        rng.choice(rows).extend(_cell(rng, header, rows) for _ in range(rng.randrange(1, 4)))
    elif roll == 4:
        rows.insert(rng.randrange(len(rows) + 1), [random_string(rng) for _ in range(rng.randrange(1, 30))])
    else:
        rows = []
    return rows


def _syntax(rng: random.Random, text: str) -> str:
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(text) + 1)
        text = text[:i] + rng.choice(('"', '""', '";', ";", ",", "\r", "\n", "\x00", "\\", '"\n"', "\t")) + text[i:]
    return text


def _big(rng: random.Random) -> bytes:
    header, rows = SEEDS[2]
    many = [list(rng.choice(rows)) for _ in range(120)]
    for k, cells in enumerate(many):
        cells[header.index("id_contratto")] = f"ALER-C-{k:08d}"
        if rng.random() < 0.5:
            cells[rng.randrange(len(cells))] = rng.choice(CELL_VALUES)
    return _write(header, many, rng)


CONTENT_TYPES = ["text/csv", "text/csv; charset=utf-8", "TEXT/CSV", 'text/csv; charset="UTF-8"', "text/csv;",
                 "text/csv; charset=latin-1", "text/csv; charset=utf-16", "text/plain", "application/json",
                 "application/vnd.ms-excel", "", "text/csv\x00", "text/csv; header=present"]


def csv_input(rng: random.Random) -> tuple[bytes, str, str]:
    """(body, content type, category) for one fuzz case."""
    header, rows = SEEDS[rng.randrange(len(SEEDS))]
    content_type = "text/csv" if rng.random() < 0.95 else rng.choice(CONTENT_TYPES)
    roll = rng.random()
    if roll < 0.40:
        mutated = [list(cells) for cells in rows]
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            cells = rng.choice(mutated)
            cells[rng.randrange(len(cells))] = _cell(rng, header, rows)
        return _write(header, mutated, rng), content_type, "cells"
    if roll < 0.50:
        return _write(header, _rows(rng, header, rows), rng), content_type, "rows"
    if roll < 0.60:
        return _write(_header(rng, header), rows, rng), content_type, "header"
    if roll < 0.70:
        text = _write(header, rows, rng).decode("utf-8", "surrogatepass")
        return _syntax(rng, text).encode("utf-8", "surrogatepass"), content_type, "syntax"
    if roll < 0.80:
        return byte_flips(rng, rng.choice(SEED_BYTES)), content_type, "byte-flips"
    if roll < 0.85:
        body = rng.choice(SEED_BYTES)
        return body[: rng.randrange(len(body))], content_type, "truncated"
    if roll < 0.90:
        text = _write(header, rows, rng).decode("utf-8").replace("a", "à", 3)
        encoding = rng.choice(("utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "utf-8-sig"))
        return text.encode(encoding, "replace"), content_type, "encodings"
    if roll < 0.94:
        if rng.random() < 0.5:
            return rng.randbytes(rng.choice((0, 1, 2, 8, 64, 300))), content_type, "random-bytes"
        lines = [";".join(random_string(rng) for _ in range(rng.randrange(1, 30))) for _ in range(rng.randrange(1, 5))]
        return "\n".join(lines).encode("utf-8", "surrogatepass"), content_type, "random-text"
    if roll < 0.998:
        return rng.choice(SEED_BYTES), rng.choice(CONTENT_TYPES), "content-type"
    return _big(rng), "text/csv", "big"


# --- checks --------------------------------------------------------------------------------------------------

_COLUMN = "|".join(re.escape(column) for column in COLUMNS)
CSV_POINTER = re.compile(rf"|/header/(?:{_COLUMN}|\d+)|/rows/\d+(?:/(?:{_COLUMN}))?")


def _is_csv(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/csv"


class CsvTally(Tally):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.empty = 0
        """Accepted exports with a header and no rows: nothing to load."""

    def report(self, seconds: float) -> str:
        return super().report(seconds) + f"\n  accepted with a header and no rows (nothing loaded): {self.empty}"


def check_csv_decode(tally: CsvTally, case: str, body: bytes, content_type: str) -> None:
    tally.calls += 1
    try:
        result: Any = DECODE(body, content_type)
    except DecodeError as exc:
        tally.kinds[exc.kind] += 1
        if exc.kind not in ("malformed", "contract"):
            tally.fail(f"{case}: unknown kind {exc.kind!r}")
        if not exc.detail:
            tally.fail(f"{case}: empty detail")
        if not 1 <= len(exc.problems) <= MAX_PROBLEMS:
            tally.fail(f"{case}: {len(exc.problems)} problems ({exc.detail})")
        told = [exc.detail]
        for problem in exc.problems:
            tally.rules[problem.rule] += 1
            told.append(problem.message)
            if not problem.rule or not problem.message:
                tally.fail(f"{case}: problem without rule or message: {problem}")
            pointer_ok = (CSV_POINTER.fullmatch(problem.pointer) if _is_csv(content_type)
                          else problem.pointer == "" or problem.pointer.startswith("/"))
            if not isinstance(problem.pointer, str) or not pointer_ok:
                tally.fail(f"{case}: bad pointer {problem.pointer!r}")
        text = "\n".join(told).upper()
        for value in PERSONAL:
            if value in text:
                tally.fail(f"{case}: a seed value is echoed in {told!r}")
    except Exception as exc:
        tally.fail(f"{case}: unhandled {type(exc).__name__}: {str(exc)[:200]} for {body[:200]!r} ({content_type!r})")
    else:
        tally.accepted += 1
        if result == []:
            tally.empty += 1
        elif not (isinstance(result, list) and all(
                isinstance(e, Envelope) and e.message_type == "tenancy.record" for e in result)):
            tally.fail(f"{case}: unexpected result {result!r}")
        elif len({e.message_id for e in result}) != len(result):
            tally.fail(f"{case}: two rows with one message id")


def test_an_update_time_without_a_utc_equivalent_is_a_problem_not_a_crash() -> None:
    """Found by this fuzz: the message id's UTC conversion overflowed past year 9999 (an unhandled error)."""
    header, rows = SEEDS[0]
    cells = list(rows[0])
    cells[header.index("data_aggiornamento")] = "9999-12-31T23:59:59-23:59"
    with pytest.raises(DecodeError) as info:
        DECODE(_write(header, [cells], random.Random(0)), "text/csv")
    assert [(p.pointer, p.rule) for p in info.value.problems] == [("/rows/0/data_aggiornamento", "value_error")]


def test_seed_exports_are_valid() -> None:
    for header, rows in SEEDS:
        envelopes = DECODE(_write(header, rows, random.Random(0)), "text/csv")
        assert len(envelopes) == len(rows)


@pytest.mark.slow  # tens of thousands of inputs: a minute or more on a loaded machine
@pytest.mark.timeout(1800)
def test_fuzz_aler_csv_export_rejects_every_malformed_input_with_a_reason() -> None:
    tally = CsvTally('DECODERS["aler"] (text/csv tenancy export)')
    run(tally, SEED, INPUTS, csv_input,
        lambda case, body, content_type: check_csv_decode(tally, case, body, content_type),
        rejected_share=0.75, rules=("csv", "utf-8", "content-type", "missing", "extra_forbidden", "duplicate",
                                    "field_count", "value_error"))
