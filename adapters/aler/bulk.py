"""ALER's bulk tenancy export read for a backfill (:attr:`adapters.descriptor.PartnerDescriptor.bulk_export`):
one CSV file, each row a unit of its own (the header and that row), so that one bad row is counted as invalid
instead of refusing the file. The decoder gives each row the deterministic message id
``aler-csv:<contract>:<updated at>``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from adapters.descriptor import BulkExport, BulkExportError

__all__ = ["BULK_EXPORT", "count_rows", "rows"]


def _one_file(inputs: Sequence[Path]) -> Path:
    if len(inputs) != 1:
        raise BulkExportError("ALER's export is one CSV file: give exactly one")
    return inputs[0]


def rows(inputs: Sequence[Path]) -> Iterator[tuple[bytes, str]]:
    """Every row of the export as a one-row export ``(raw, "text/csv")``, in file order; blank rows are skipped."""
    return _rows(_one_file(inputs))


def _rows(path: Path) -> Iterator[tuple[bytes, str]]:
    text = path.read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
    header = next(reader, None)
    if header is None:
        raise BulkExportError(f"{path} is empty: ALER's export starts with a header row")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    head = buffer.getvalue()
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(cells)
            yield (head + buffer.getvalue()).encode("utf-8"), "text/csv"
    except csv.Error as exc:
        raise BulkExportError(f"{path} is not valid CSV at line {reader.line_num}: {exc}") from None


def count_rows(inputs: Sequence[Path]) -> int:
    """How many rows :func:`rows` yields, without building them."""
    path = _one_file(inputs)
    text = path.read_bytes().decode("utf-8-sig")
    try:
        cells = csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True)
        return max(0, sum(1 for row in cells if any(cell.strip() for cell in row)) - 1)
    except csv.Error as exc:
        raise BulkExportError(f"{path} is not valid CSV: {exc}") from None


BULK_EXPORT: Final = BulkExport(description="CSV export", units=rows, count=count_rows)
