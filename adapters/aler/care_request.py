"""ALER's request for care (``richiesta-assistenza``, flow F4) and its translation to ``care.service-request``
(:class:`schemas.health.CareServiceRequest`, the payload the hospital trust's FHIR ServiceRequest is built from).

An ALER community manager asks ASST, with the person's explicit consent, for a home nursing visit, a
telemedicine appointment or a flu vaccination. After the common header (:mod:`adapters.aler._native`)::

    id_richiesta  ALER's id for the request, kept across updates: letters, digits, ``-`` and ``.`` (a FHIR id)
    stato         optional: ``attiva`` (default, a new or standing request) or ``annullata`` (withdrawn)
    assistito     codice_fiscale (codice fiscale, STP or ENI code) of the person to be seen -> the subject
    servizio      requested service: home-nursing-visit, telemedicine, flu-vaccination (or label or alias)
    urgenza       routine, urgent or asap (``ordinaria``, ``urgente``, ``prima-possibile``)
    finestra      dal (first acceptable day), al (optional, last acceptable day)
    logistica     optional, what the community manager knows about reaching the home, every part optional:
                  piano (floor, -2..40, 0 the ground floor), ascensore (a working lift: true/false), accesso
                  (how a visitor gets in: code list ``home-entry-methods``, never the name on the doorbell),
                  fascia_oraria (code list ``visit-time-windows``), custode_accompagna (the porter can
                  accompany: true/false), lingua_interprete (code list ``interpreter-languages``), note_accesso
                  (codes of list ``home-access-notes``, each at most once)

What it becomes: ``request_id`` = id_richiesta; ``status`` active | revoked; ``intent`` ``proposal`` (ALER
suggests, the trust's clinicians decide); ``priority`` = urgenza; ``category`` and ``service`` from
:data:`SERVICES`; ``requested_from`` / ``requested_until`` = the window; ``requester`` ``aler``;
``authored_on`` = data_evento; ``logistics`` = logistica (floor, lift, entry, time_window, porter_can_accompany,
interpreter_language, access_notes). No ALER id travels in this message at all: ASST never gets ALER ids, and the
person is named to the trust by their codice fiscale only. Free-text notes have no field.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from adapters._json import load_json_object
from adapters.aler._native import (
    CareServiceCode,
    CareUrgencyCode,
    Header,
    HomeAccessCode,
    HomeEntryCode,
    InterpreterLanguageCode,
    Native,
    Persona,
    VisitTimeCode,
    build_envelope,
    check_date_order,
    check_unique,
    parse,
    person_identifier,
)
from schemas.envelope import Envelope

__all__ = ["SERVICES", "AlerCareRequestMessage", "decode", "decode_document"]

MESSAGE_TYPE = "care.service-request"

SERVICES: Final[dict[str, tuple[str, str]]] = {
    "home-nursing-visit": ("nurse-visit", "home-nursing"),
    "telemedicine": ("telemedicine", "specialist-telemedicine"),
    "flu-vaccination": ("vaccination", "vaccination"),
}
"""Requested service (code list ``requested-care-services``) -> (``care-request-categories``, ``care-services``)."""

_STATUS: Final = {"attiva": "active", "annullata": "revoked"}

RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


class Finestra(Native):
    dal: date
    al: date | None = None

    @field_validator("al")
    @classmethod
    def _after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        check_date_order(info.data.get("dal"), value, "dal")
        return value


class Logistica(Native):
    """How the visit can happen at the person's home: codes, numbers and yes/no only, never free text."""

    piano: Annotated[int, Field(ge=-2, le=40)] | None = None
    ascensore: bool | None = None
    accesso: HomeEntryCode | None = None
    fascia_oraria: VisitTimeCode | None = None
    custode_accompagna: bool | None = None
    lingua_interprete: InterpreterLanguageCode | None = None
    note_accesso: list[HomeAccessCode] = Field(default_factory=list, max_length=10)

    @field_validator("note_accesso")
    @classmethod
    def _unique_notes(cls, value: list[str]) -> list[str]:
        check_unique(value, "access note")
        return value

    def canonical(self) -> dict[str, Any]:
        """The canonical ``logistics`` object (:class:`schemas.health.VisitLogistics`)."""
        return {
            "floor": self.piano,
            "lift": self.ascensore,
            "entry": self.accesso,
            "time_window": self.fascia_oraria,
            "porter_can_accompany": self.custode_accompagna,
            "interpreter_language": self.lingua_interprete,
            "access_notes": list(self.note_accesso),
        }


class AlerCareRequestMessage(Header):
    """ALER's ``richiesta-assistenza``: a community manager asks ASST for a service (F4)."""

    tipo_messaggio: Literal["richiesta-assistenza"]
    id_richiesta: RequestId
    stato: Literal["attiva", "annullata"] = "attiva"
    assistito: Persona
    servizio: CareServiceCode
    urgenza: CareUrgencyCode
    finestra: Finestra
    logistica: Logistica | None = None


def _payload(message: AlerCareRequestMessage) -> dict[str, Any]:
    category, service = SERVICES[message.servizio]
    return {
        "request_id": message.id_richiesta,
        "status": _STATUS[message.stato],
        "intent": "proposal",
        "priority": message.urgenza,
        "category": category,
        "service": service,
        "requested_from": message.finestra.dal,
        "requested_until": message.finestra.al,
        "requester": "aler",
        "authored_on": message.data_evento,
        "logistics": None if message.logistica is None else message.logistica.canonical(),
    }


def decode_document(document: dict[str, Any]) -> list[Envelope]:
    """A parsed ``richiesta-assistenza`` -> one ``care.service-request`` envelope; raises DecodeError."""
    message = parse(AlerCareRequestMessage, document, "care request (richiesta-assistenza)")
    identifiers = (person_identifier(message.assistito.codice_fiscale),)
    return [build_envelope(message, MESSAGE_TYPE, identifiers, _payload(message))]


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """ALER ``richiesta-assistenza`` bytes -> one ``care.service-request`` envelope; raises DecodeError."""
    return decode_document(load_json_object(raw, content_type))
