"""What the core needs to know of a partner, in one value: :class:`PartnerDescriptor`.

Each adapter package exports one (``adapters.aler.DESCRIPTOR``, ...); :mod:`gateway.partners` lists them and
builds the gateway's tables from them (who decodes what a partner sends, who encodes what a recipient receives,
the golden examples). Adding a partner is writing its adapter package with its descriptor and declaring its
flows in the registry data: nothing in the core changes.

This module imports nothing of the gateway, so that adapters may import it (the import contracts in
``pyproject.toml`` keep adapters away from the pipeline, the store, the API and the bus).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.envelope import Envelope

__all__ = [
    "BulkExport", "BulkExportError", "ContractFormats", "Decoder", "Encoder", "GoldenExamples", "InboundMessage",
    "Mutation", "OutboundLabels", "PartnerDescriptor",
]


@dataclass(frozen=True, slots=True)
class OutboundLabels:
    """What travels with a disclosure besides the payload (privacy.md rule 8)."""

    consent_ref: str | None
    obligations: tuple[str, ...]
    refrains: tuple[str, ...]


Decoder = Callable[[bytes, str], list[Envelope]]
"""What a partner sends (its body and content type) -> canonical envelopes; raises
:class:`~schemas.errors.DecodeError` with the problems the sender is told."""

Encoder = Callable[[Envelope, OutboundLabels], bytes]
"""A minimised envelope and its disclosure labels -> the bytes the recipient receives on ``out.<recipient>``."""

Mutation = tuple[str, str, Any] | bytes
"""How an invalid golden example is made: (valid example, slash-separated path, value or ``...`` to delete the
key), or the raw bytes sent."""


@dataclass(frozen=True)
class GoldenExamples:
    """A partner's golden examples, published under ``contracts/examples/<organisation>/{valid,invalid}/``."""

    valid: Callable[[], Mapping[str, Any]]
    """Name -> a valid JSON message the partner sends (deterministic: fixed ids, synthetic people)."""
    invalid: Mapping[str, tuple[Mutation, Sequence[tuple[str, str]]]]
    """Name -> (how it is made from a valid one, the (pointer, rule) of each problem the gateway reports)."""
    valid_files: Mapping[str, Callable[[], bytes]] = field(default_factory=dict)
    """File name (with its extension) -> a valid message that is not JSON (ALER's CSV tenancy exports)."""
    invalid_files: Mapping[str, tuple[Callable[[], bytes], Sequence[tuple[str, str]]]] = field(default_factory=dict)
    """File name -> (how it is made, the problems the gateway reports for it), for messages that are not JSON."""
    files_content_type: str | None = None
    """The content type :attr:`valid_files` and :attr:`invalid_files` are sent with."""


@dataclass(frozen=True)
class InboundMessage:
    """A message the partner produces to ``in.<organisation>`` whose body is not one of the JSON models of
    :attr:`ContractFormats.inbound` (a FHIR resource, a CSV export), as the AsyncAPI document describes it."""

    name: str
    """The message's name in the document (``<organisation>.<what>``), also the name of its payload schema."""
    title: str
    summary: str
    description: str
    """What it is; ``{schema}`` in it stands for the URL of the published schema at :attr:`schema_path`."""
    content_types: tuple[str, ...]
    """The content types it may be sent with; the first is the message's own."""
    payload: dict[str, Any]
    """The JSON Schema of the body (without ``$schema`` and ``$id``)."""
    schema_path: str
    """The path under ``contracts/`` of the published JSON Schema that documents it."""
    schema_description: str
    """What that published schema is, as its link in the document says."""
    content_type_required: bool = False
    """Whether the ``content-type`` header must be sent (it tells a CSV export from a JSON message)."""


def _no_messages() -> Sequence[InboundMessage]:
    return ()


@dataclass(frozen=True)
class ContractFormats:
    """The partner's native formats the gateway publishes contracts for, by their path under ``contracts/``
    (``<organisation>/<name>.schema.json``); the JSON Schemas and the AsyncAPI document are generated from them."""

    inbound: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    """JSON messages the partner sends: path -> the model of its published JSON Schema."""
    outbound: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    """JSON messages the adapter's encoders write: path -> model."""
    fhir_inbound: Mapping[str, str] = field(default_factory=dict)
    """FHIR R4 resources the partner sends: path -> resource type."""
    fhir_inbound_schema: Callable[[str], dict[str, Any]] | None = None
    """Resource type of :attr:`fhir_inbound` -> its JSON Schema (without ``$schema`` and ``$id``)."""
    fhir_outbound: Mapping[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    """FHIR R4 resources the adapter's encoders write: path -> the function that builds its schema."""
    csv_rows: Mapping[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    """CSV exports the partner sends, by the schema of one row: path -> the function that builds it."""
    deliveries: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(recipient, outbound message type) -> the path of the format its encoder writes (one of :attr:`outbound`
    or :attr:`fhir_outbound`)."""
    messages: Callable[[], Sequence[InboundMessage]] = _no_messages
    """The messages the partner produces to ``in.<organisation>`` besides the JSON models of :attr:`inbound`,
    in the order the AsyncAPI document lists them (built when the document is)."""


class BulkExportError(ValueError):
    """A bulk export that cannot be read; the message says what to do (never a record's content)."""


@dataclass(frozen=True)
class BulkExport:
    """How a backfill reads the partner's bulk export (``gateway backfill --from <organisation>``): every record
    as one unit the partner's decoder takes on its own, so that one bad record does not refuse the file."""

    description: str
    """What the export is, as the command's messages name it (``CSV export``, ``FHIR Bulk Data NDJSON``)."""
    units: Callable[[Sequence[Path]], Iterator[tuple[bytes, str]]]
    """The input files (checked to exist) -> every unit as ``(raw, content type)``, in file order, streamed;
    raises :class:`BulkExportError`."""
    count: Callable[[Sequence[Path]], int]
    """How many units :attr:`units` yields, without building them; raises :class:`BulkExportError`."""


@dataclass(frozen=True)
class PartnerDescriptor:
    """One partner as the core sees it."""

    organisation: str
    """The organisation code of the registry (``gateway/registry/partners.yaml``) and of the topics."""
    decode: Decoder | None
    """Decoder of what the partner sends over HTTP or on ``in.<organisation>``; None for a receiver only."""
    encoders: Mapping[str, Encoder] = field(default_factory=dict)
    """Outbound message type -> encoder of what the partner receives; a type without one is delivered as the
    canonical envelope with its labels."""
    encoders_for: Mapping[str, Mapping[str, Encoder]] = field(default_factory=dict)
    """Other recipients whose deliveries this adapter writes (recipient -> outbound message type -> encoder):
    services of the partner with a topic of their own, such as the Comune's emergency social service."""
    content_type: str = "application/json"
    """The content type the partner sends its messages (and its golden examples) with."""
    examples: GoldenExamples | None = None
    """The partner's golden examples, or None for a partner that sends nothing."""
    formats: ContractFormats = field(default_factory=ContractFormats)
    """The contracts the gateway publishes for the partner's native formats; none for a partner whose formats
    are not published (what it receives is then described as the canonical envelope)."""
    bulk_export: BulkExport | None = None
    """How a backfill reads the partner's bulk export, or None for a partner without one."""

    def outbound(self) -> dict[tuple[str, str], Encoder]:
        """(recipient, outbound message type) -> encoder, for every delivery this adapter writes."""
        table = {(self.organisation, kind): encoder for kind, encoder in self.encoders.items()}
        for recipient, encoders in self.encoders_for.items():
            table.update({(recipient, kind): encoder for kind, encoder in encoders.items()})
        return table
