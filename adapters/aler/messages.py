"""ALER's messages on ``in.aler`` besides its JSON messages, as the gateway's AsyncAPI document describes them: the
bulk tenancy export (CSV, one ``tenancy.record`` per row; :mod:`adapters.aler.csv_export`)."""

from __future__ import annotations

from typing import Final

from adapters.aler.csv_export import COLUMNS, CSV_CONTENT_TYPES
from adapters.descriptor import InboundMessage

__all__ = ["CSV_ROW_PATH", "inbound_messages"]

CSV_ROW_PATH: Final = "aler/esportazione-contratti-riga.schema.json"
"""The published JSON Schema of one row of the export (:mod:`adapters.aler.csv_schema`)."""


def inbound_messages() -> tuple[InboundMessage, ...]:
    """The tenancy export: a text payload whose rows the schema at :data:`CSV_ROW_PATH` describes."""
    columns = ", ".join(COLUMNS)
    return (InboundMessage(
        name="aler.tenancy-export", title="aler.tenancy-export (CSV)",
        summary="A bulk tenancy export: one tenancy.record per row",
        description=f"UTF-8 CSV with a header row; columns: {columns}. Each row is described by the JSON "
                    "Schema {schema} (cells by column name).",
        content_types=CSV_CONTENT_TYPES,
        payload={"type": "string", "contentMediaType": CSV_CONTENT_TYPES[0], "description": f"Columns: {columns}"},
        schema_path=CSV_ROW_PATH, schema_description="The published JSON Schema of one row",
        content_type_required=True,
    ),)
