"""Envelope.assemble and Envelope.from_validated build exactly what model_construct builds from the same fields,
and Envelope.about what model_copy builds (schemas.envelope)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from gateway.identity.synthetic import generate_tenants
from gateway.routing import DECODERS
from gateway.simulators import aler_arrears_message
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.messages import validate_payload

TENANT = next(t for t in generate_tenants("S", seed=5, limit=50) if t.arrears_cents > 0)
SUBJECT = SubjectRef(identifiers=(Identifier(system="cf", value="RSSMRA85T10A562S"),))


@pytest.mark.parametrize("fields", [
    {"message_id": "M-1", "correlation_id": "C-1", "message_type": "tenancy.arrears-referral", "sender": "aler",
     "recipients": ("fwa",), "subject": SUBJECT, "purpose": "microcredit-assessment", "sensitivity": ("S2",),
     "occurred_at": datetime(2026, 6, 1, 9, 30, tzinfo=UTC),
     "payload": {"isee_band": "A", "arrears": {"amount_cents": 120_000, "months": 3}}},
    {"message_id": "M-2", "correlation_id": "M-2", "message_type": "tenancy.arrears-referral", "sender": "aler",
     "recipients": (), "subject": SUBJECT, "purpose": None, "sensitivity": (),
     "occurred_at": datetime(2026, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))), "payload": {}},
])
def test_assemble_sets_what_model_construct_sets(fields: dict[str, Any]) -> None:
    assembled = Envelope.assemble(**fields)
    constructed = Envelope.model_construct(**fields)
    _same_construction(assembled, constructed)
    assert assembled.schema_version == "1.0"
    with pytest.raises(ValueError, match="frozen"):
        assembled.message_id = "other"  # type: ignore[misc]
    assert assembled.model_copy(update={"message_id": "M-3"}).message_id == "M-3"
    assert hash(assembled.subject) == hash(constructed.subject)


def _same_construction(built: Envelope, constructed: Envelope) -> None:
    assert type(built) is Envelope
    assert built.__dict__ == constructed.__dict__
    assert list(built.__dict__) == list(constructed.__dict__)  # field order, as model_dump writes them
    assert built.model_fields_set == constructed.model_fields_set
    assert built.__pydantic_extra__ == constructed.__pydantic_extra__
    assert built.__pydantic_private__ == constructed.__pydantic_private__
    assert built == constructed
    assert built.model_dump_json() == constructed.model_dump_json()


@pytest.mark.parametrize("header", [
    {"message_id": "gw-1", "correlation_id": "C-1", "message_type": "tenancy.arrears-referral",
     "schema_version": "1.0", "sender": "aler", "recipients": ("fwa",), "purpose": "microcredit-assessment",
     "sensitivity": ("S2",), "occurred_at": datetime(2026, 6, 1, 9, 30, tzinfo=UTC)},
    {"message_id": "gw-2", "correlation_id": "C-2", "message_type": "tenancy.arrears-referral", "sender": "aler",
     "occurred_at": datetime(2026, 6, 1, 9, 30)},  # defaults: schema version, recipients, purpose, sensitivity
])
def test_from_validated_sets_what_model_construct_and_the_private_payload_set(header: dict[str, Any]) -> None:
    decoded = DECODERS["aler"](orjson.dumps(aler_arrears_message(TENANT, "M-1")), "application/json")[0]
    payload = validate_payload("tenancy.arrears-referral", decoded.payload)
    built = Envelope.from_validated(payload, SUBJECT, **header)
    constructed = Envelope.model_construct(subject=SUBJECT, payload=payload.model_dump(mode="json", exclude_none=True),
                                           **header)
    constructed._typed_payload = payload
    _same_construction(built, constructed)
    assert built.payload_as(type(payload)) is payload


@pytest.mark.parametrize("typed", [False, True])
def test_about_builds_what_model_copy_builds_with_the_new_subject(typed: bool) -> None:
    decoded = DECODERS["aler"](orjson.dumps(aler_arrears_message(TENANT, "M-1")), "application/json")[0]
    payload = validate_payload("tenancy.arrears-referral", decoded.payload)
    envelope = Envelope.from_validated(payload, SUBJECT, message_id="gw-1", correlation_id="C-1",
                                       message_type="tenancy.arrears-referral", sender="aler",
                                       occurred_at=datetime(2026, 6, 1, 9, 30, tzinfo=UTC)) if typed else decoded
    other = SubjectRef(identifiers=SUBJECT.identifiers, pseudonym="p-1")
    moved = envelope.about(other)
    _same_construction(moved, envelope.model_copy(update={"subject": other}))
    assert moved.subject is other and envelope.subject is not other  # the original is left as it was
    assert "subject" in moved.model_fields_set
    assert (moved.payload_as(type(payload)) is payload) is typed
