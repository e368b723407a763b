"""What the core needs to know of a partner, in one value: :class:`PartnerDescriptor`.

Each adapter package exports one (``adapters.aler.DESCRIPTOR``, ...); :mod:`gateway.partners` lists them and
builds the gateway's tables from them (who decodes what a partner sends, who encodes what a recipient receives,
the golden examples). Adding a partner is writing its adapter package with its descriptor and declaring its
flows in the registry data: nothing in the core changes.

This module imports nothing of the gateway, so that adapters may import it (the import contracts in
``pyproject.toml`` keep adapters away from the pipeline, the store, the API and the bus).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from schemas.envelope import Envelope

__all__ = [
    "ContractFormats", "Decoder", "Encoder", "GoldenExamples", "Mutation", "OutboundLabels", "PartnerDescriptor",
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
class ContractFormats:
    """The partner's native formats the gateway publishes contracts for, by their path under ``contracts/``
    (``<organisation>/<name>.schema.json``); the JSON Schemas and the AsyncAPI document are generated from them."""

    inbound: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    """JSON messages the partner sends: path -> the model of its published JSON Schema."""
    outbound: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    """JSON messages the adapter's encoders write: path -> model."""
    fhir_inbound: Mapping[str, str] = field(default_factory=dict)
    """FHIR R4 resources the partner sends: path -> resource type."""
    fhir_outbound: Mapping[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    """FHIR R4 resources the adapter's encoders write: path -> the function that builds its schema."""
    csv_rows: Mapping[str, Callable[[], dict[str, Any]]] = field(default_factory=dict)
    """CSV exports the partner sends, by the schema of one row: path -> the function that builds it."""
    deliveries: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(recipient, outbound message type) -> the path of the format its encoder writes (one of :attr:`outbound`
    or :attr:`fhir_outbound`)."""


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

    def outbound(self) -> dict[tuple[str, str], Encoder]:
        """(recipient, outbound message type) -> encoder, for every delivery this adapter writes."""
        table = {(self.organisation, kind): encoder for kind, encoder in self.encoders.items()}
        for recipient, encoders in self.encoders_for.items():
            table.update({(recipient, kind): encoder for kind, encoder in encoders.items()})
        return table
