"""ALER Milano adapter: what ALER's tenancy system sends <-> canonical envelopes.

:func:`decode` is the one entry point for everything ALER sends. A JSON message (``application/json``) is routed
by its ``tipo_messaggio``:

==========================  ================================  ====  ======================================
tipo_messaggio              canonical message type            flow  module
==========================  ================================  ====  ======================================
``segnalazione-morosita``   ``tenancy.arrears-referral``      F1    :mod:`adapters.aler.arrears`
``anagrafica-contratto``    ``tenancy.record``                load  :mod:`adapters.aler.tenancy`
``segnalazione-fragilita``  ``tenancy.fragility-signal``      F2    :mod:`adapters.aler.fragility`
``richiesta-assistenza``    ``care.service-request``          F4    :mod:`adapters.aler.care_request`
``segnalazione-riservata``  ``safety.disclosure``             F7    :mod:`adapters.aler.disclosure`
``evento-sfratto``          ``tenancy.eviction-milestone``    F9    :mod:`adapters.aler.eviction`
``evento-emergenza``        ``emergency.social-event``        F10   :mod:`adapters.aler.emergency`
==========================  ================================  ====  ======================================

A bulk tenancy export (``text/csv``) becomes one ``tenancy.record`` per row (:mod:`adapters.aler.csv_export`).
A missing or unknown ``tipo_messaggio`` is a contract error at ``/tipo_messaggio`` that lists the accepted
values. ALER receives canonical envelopes (no native outbound format); :data:`DESCRIPTOR` is what the core
knows of ALER.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel

from adapters._json import JSON_CONTENT_TYPES, load_json_object
from adapters.aler import (
    arrears,
    bulk,
    care_request,
    csv_schema,
    disclosure,
    emergency,
    eviction,
    fragility,
    messages,
    tenancy,
)
from adapters.aler.arrears import AlerArrearsMessage
from adapters.aler.csv_export import CSV_CONTENT_TYPES, decode_csv, encode_csv
from adapters.aler.examples import EXAMPLES
from adapters.descriptor import ContractFormats, PartnerDescriptor
from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem

__all__ = ["DESCRIPTOR", "NATIVE_MESSAGES", "AlerArrearsMessage", "decode", "decode_csv", "encode_csv"]

NATIVE_MESSAGES: Final[dict[str, type[BaseModel]]] = {
    "segnalazione-morosita": AlerArrearsMessage,
    "anagrafica-contratto": tenancy.AlerTenancyRecordMessage,
    "segnalazione-fragilita": fragility.AlerFragilityMessage,
    "richiesta-assistenza": care_request.AlerCareRequestMessage,
    "segnalazione-riservata": disclosure.AlerDisclosureMessage,
    "evento-sfratto": eviction.AlerEvictionMessage,
    "evento-emergenza": emergency.AlerEmergencyMessage,
}
"""ALER's native JSON messages by ``tipo_messaggio``: the models their published JSON Schemas come from."""

_DOCUMENT_DECODERS: Final[dict[str, Callable[[dict[str, Any]], list[Envelope]]]] = {
    "segnalazione-morosita": arrears.decode_document,
    "anagrafica-contratto": tenancy.decode_document,
    "segnalazione-fragilita": fragility.decode_document,
    "richiesta-assistenza": care_request.decode_document,
    "segnalazione-riservata": disclosure.decode_document,
    "evento-sfratto": eviction.decode_document,
    "evento-emergenza": emergency.decode_document,
}
_ACCEPTED: Final = ", ".join(sorted(NATIVE_MESSAGES))


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """Whatever ALER sends -> canonical envelopes; raises :class:`~schemas.errors.DecodeError`."""
    media_type = _media_type(content_type)
    if media_type in CSV_CONTENT_TYPES:
        return decode_csv(raw, content_type)
    if media_type not in JSON_CONTENT_TYPES:
        raise DecodeError(
            "malformed",
            f"content type {media_type or '(none)'} is not accepted; send application/json (one message) "
            "or text/csv (a tenancy export)",
            [FieldProblem("", "content-type", "send a message as application/json, an export as text/csv")],
        )
    document = load_json_object(raw, content_type)
    kind = document.get("tipo_messaggio")
    decoder = _DOCUMENT_DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is not None:
        return decoder(document)
    if "tipo_messaggio" not in document:
        problem = FieldProblem("/tipo_messaggio", "missing", f"say which message this is: one of {_ACCEPTED}")
    else:
        problem = FieldProblem("/tipo_messaggio", "literal_error", f"not an ALER message type; accepted: {_ACCEPTED}")
    raise DecodeError("contract", "message does not name a known ALER message type", [problem])


DESCRIPTOR: Final = PartnerDescriptor(
    organisation="aler", decode=decode, content_type="application/json", examples=EXAMPLES,
    formats=ContractFormats(
        inbound={f"aler/{kind}.schema.json": model for kind, model in NATIVE_MESSAGES.items()},
        csv_rows={messages.CSV_ROW_PATH: csv_schema.row_schema},
        messages=messages.inbound_messages,
    ),
    bulk_export=bulk.BULK_EXPORT,
)
"""ALER as the core sees it: what it sends is decoded by :func:`decode`; what it receives is canonical."""
