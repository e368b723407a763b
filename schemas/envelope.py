"""The canonical envelope every partner message is decoded into, and every outgoing message is built from.

An envelope says who sent what about whom, for which purpose, with which sensitivity; its payload is one of
the typed message types registered in :mod:`schemas.messages`. Envelopes are internal to the gateway: they
may hold identifiers (a codice fiscale) that the minimiser removes before anything crosses.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, model_validator

from schemas.codelists import SensitivityLabel

__all__ = ["UNIDENTIFIED_MESSAGE_TYPES", "Envelope", "Identifier", "SensitivityLabel", "SubjectRef"]

PayloadModel = TypeVar("PayloadModel", bound=BaseModel)

UNIDENTIFIED_MESSAGE_TYPES = frozenset({"emergency.social-event"})
"""Message types that may be about a person with no identifier at all (an ``unidentified`` subject): emergencies
only, which are never held back for an identifier the person does not have or will not give."""

Token = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
"""An opaque identifier minted by a partner or the gateway: no spaces, no personal data by convention."""


class Identifier(BaseModel):
    """One identifier of a person, in a named system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: Literal[
        "cf", "stp", "eni", "aler-contract", "asst-patient", "comune-case", "fwa-referral", "gateway-token",
        "unidentified",
    ]
    """``cf`` codice fiscale (as issued), ``stp``/``eni`` for people without one, a partner's own id, an
    opaque ``gateway-token`` minted per recipient by the crosswalk, or ``unidentified``: a person the sender
    cannot name (an unaccompanied minor, someone refusing to give a name), known by the sender's own incident
    reference as ``<sender>:<reference>``, in emergency messages only (:data:`UNIDENTIFIED_MESSAGE_TYPES`)."""
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SubjectRef(BaseModel):
    """The person a message is about: every identifier the sender gave, plus the gateway pseudonym."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    identifiers: tuple[Identifier, ...] = Field(min_length=1)
    pseudonym: Token | None = None
    """Filled in by the identity step; stable per person across partners."""

    def first(self, system: str) -> str | None:
        """Value of the first identifier in ``system``, or None."""
        return next((i.value for i in self.identifiers if i.system == system), None)


class Envelope(BaseModel):
    """A canonical message: header fields plus a typed payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: Token
    """The sender's id for this message; a replay with the same id is not forwarded twice."""
    correlation_id: Token
    """Ties together a referral and every status and outcome that follows it, across partners."""
    message_type: Token
    """Registered message type, e.g. ``tenancy.arrears-referral`` (see :data:`schemas.messages.MESSAGE_TYPES`)."""
    schema_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+$")] = "1.0"
    sender: Token
    """Organisation code of the partner that sent the message (``aler``, ``asst``, ``comune``, ``fwa``)."""
    recipients: tuple[Token, ...] = ()
    """Organisations the sender addresses; empty means every recipient a declared flow allows."""
    subject: SubjectRef
    purpose: str | None = None
    """Purpose code claimed by the sender (privacy.md vocabulary); missing or unknown purposes are denied."""
    sensitivity: tuple[SensitivityLabel, ...] = ()
    occurred_at: datetime
    payload: dict[str, Any]
    """The message-type payload, validated against its model by :func:`schemas.messages.validate_payload`."""
    _typed_payload: BaseModel | None = PrivateAttr(default=None)
    """The payload's validated model when the envelope was built from one (:meth:`from_validated`)."""

    @classmethod
    def assemble(cls, *, message_id: str, correlation_id: str, message_type: str, sender: str,
                 recipients: tuple[str, ...], subject: SubjectRef, purpose: str | None,
                 sensitivity: tuple[SensitivityLabel, ...], occurred_at: datetime, payload: dict[str, Any]) -> Envelope:
        """The envelope ``model_construct`` builds from these fields (``schema_version`` left to its default),
        without validating anything, for a decoder whose native model already enforced every canonical rule
        (and at a fifth of the cost: see :func:`_constructed`)."""
        return _constructed({
            "message_id": message_id, "correlation_id": correlation_id, "message_type": message_type,
            "schema_version": _DEFAULTS["schema_version"], "sender": sender, "recipients": recipients,
            "subject": subject, "purpose": purpose, "sensitivity": sensitivity, "occurred_at": occurred_at,
            "payload": payload,
        }, _ASSEMBLED_FIELDS, None)

    @classmethod
    def from_validated(cls, payload: BaseModel, subject: SubjectRef, **header: Any) -> Envelope:
        """An envelope built by the gateway itself from parts already validated: ``payload`` is the message
        type's model (validated by the caller), ``subject`` a validated :class:`SubjectRef`, and ``header``
        the other fields, taken from a validated envelope or the flow registry. Nothing is validated again,
        and :meth:`payload_as` hands ``payload`` back to an encoder without another validation. Use it only
        for envelopes derived inside the gateway (minimisation), never for anything a partner sent. It is what
        ``model_construct`` builds from the same fields, with ``payload`` kept as the typed payload."""
        given = {**header, "subject": subject, "payload": payload.model_dump(mode="json", exclude_none=True)}
        fields = {name: given[name] if name in given else _DEFAULTS[name]
                  for name in _FIELD_ORDER if name in given or name in _DEFAULTS}
        return _constructed(fields, given.keys() & _FIELD_ORDER, payload)

    def about(self, subject: SubjectRef) -> Envelope:
        """This envelope with ``subject`` (validated by the caller) in place of its own: what
        ``model_copy(update={"subject": subject})`` returns, built directly (:func:`_constructed`) because the
        intake does it for every message it identifies."""
        fields = dict(self.__dict__)
        fields["subject"] = subject
        return _constructed(fields, self.__pydantic_fields_set__ | {"subject"},
                            (self.__pydantic_private__ or {}).get("_typed_payload"))

    def payload_as(self, model: type[PayloadModel]) -> PayloadModel:
        """The payload as ``model``: the validated model it was built from when there is one, else parsed."""
        # read from the private attributes' dict directly: ``self._typed_payload`` goes through pydantic's
        # ``__getattr__``, which costs more than the rest of this method
        typed = (self.__pydantic_private__ or {}).get("_typed_payload")
        if isinstance(typed, model):
            return typed
        return model.model_validate(self.payload)

    @model_validator(mode="before")
    @classmethod
    def _normalise_payload(cls, data: Any) -> Any:
        """Validate the payload against its message type and keep its normalised JSON form."""
        if isinstance(data, dict) and isinstance(data.get("payload"), dict):
            from schemas.messages import validate_payload

            model = validate_payload(str(data.get("message_type", "")), data["payload"])
            data = {**data, "payload": model.model_dump(mode="json", exclude_none=True)}
        return data

    @model_validator(mode="after")
    def _unidentified_only_in_emergencies(self) -> Envelope:
        """An ``unidentified`` subject is the sender's own incident reference, and only an emergency may have one."""
        for identifier in self.subject.identifiers:
            if identifier.system != "unidentified":
                continue
            if self.message_type not in UNIDENTIFIED_MESSAGE_TYPES:
                raise ValueError("only an emergency message may be about an unidentified person; "
                                 "give the person's codice fiscale, STP or ENI code")
            if not identifier.value.startswith(f"{self.sender}:") or identifier.value == f"{self.sender}:":
                raise ValueError("an unidentified person is known by the sender's own incident reference, "
                                 "written <sender>:<reference>")
        return self


_set_attribute: Final = object.__setattr__  # what pydantic itself uses: a model's own __setattr__ refuses (frozen)
_FIELD_ORDER: Final = tuple(Envelope.model_fields)
_DEFAULTS: Final[dict[str, Any]] = {name: field.default for name, field in Envelope.model_fields.items()
                                    if not field.is_required()}
"""Every default is immutable (a string, None, an empty tuple), so it is shared, as ``model_construct`` shares it."""
_ASSEMBLED_FIELDS: Final = frozenset(_FIELD_ORDER) - {"schema_version"}


def _constructed(fields: dict[str, Any], given: Set[str], typed_payload: BaseModel | None) -> Envelope:
    """An envelope of ``fields`` (every field, in the model's order), ``given`` naming those the caller set, as
    ``model_construct`` leaves it, with ``typed_payload`` as the private attribute.

    ``model_construct`` walks the model's fields in Python (aliases, defaults through a deep copy, the private
    attribute through ``model_post_init``): 4.8 us for an envelope. This sets the instance attributes pydantic
    documents for a model directly (the field values, the names of the fields given, no extra fields, the
    private attribute) in 1 us. ``tests/unit/test_envelope.py`` holds the constructors to ``model_construct``
    (and :meth:`Envelope.about` to ``model_copy``) on all four, so a pydantic release that changes them fails there."""
    envelope = Envelope.__new__(Envelope)
    _set_attribute(envelope, "__dict__", fields)
    _set_attribute(envelope, "__pydantic_fields_set__", set(given))
    _set_attribute(envelope, "__pydantic_extra__", None)
    _set_attribute(envelope, "__pydantic_private__", {"_typed_payload": typed_payload})
    return envelope
