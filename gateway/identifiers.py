"""Identifiers a partner chooses (message, correlation and request ids) screened for personal data.

Those ids are written as they are to the append-only audit log, the outbox headers, status topics and log
lines, where erasure (crypto-shredding) can never reach them. So an id that holds a person identifier in
any disguise (:func:`gateway.identity.codice_fiscale.contains_person_identifier`) never gets that far: a
message or correlation id is refused (:func:`gateway.routing.screen_identifiers`), and a request id, which
only helps tracing, is replaced by one the gateway mints (:func:`request_id_or_minted`), on HTTP
(``X-Request-ID``) and Kafka (the ``request-id`` header) alike.
"""

from __future__ import annotations

import re
from typing import Final

from gateway.identity.codice_fiscale import contains_person_identifier
from gateway.uuids import uuid7_text

__all__ = ["holds_personal_data", "request_id_or_minted"]

_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def holds_personal_data(identifier: str) -> bool:
    """Whether a partner-chosen identifier holds a codice fiscale or an STP/ENI code, however written."""
    return contains_person_identifier(identifier)


def request_id_or_minted(given: str | None) -> str:
    """The caller's request id when it is short, plain and names no person; otherwise a fresh UUID."""
    if given and _REQUEST_ID.fullmatch(given) and not holds_personal_data(given):
        return given
    return uuid7_text()
