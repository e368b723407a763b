"""Envelope.assemble builds exactly what model_construct builds from the same fields (schemas.envelope)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.envelope import Envelope, Identifier, SubjectRef

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
    assert type(assembled) is Envelope
    assert assembled.__dict__ == constructed.__dict__
    assert list(assembled.__dict__) == list(constructed.__dict__)  # field order, as model_dump writes them
    assert assembled.model_fields_set == constructed.model_fields_set
    assert assembled.__pydantic_extra__ == constructed.__pydantic_extra__
    assert assembled.__pydantic_private__ == constructed.__pydantic_private__
    assert assembled == constructed
    assert assembled.model_dump_json() == constructed.model_dump_json()
    assert assembled.schema_version == "1.0"
    with pytest.raises(ValueError, match="frozen"):
        assembled.message_id = "other"  # type: ignore[misc]
    assert assembled.model_copy(update={"message_id": "M-3"}).message_id == "M-3"
    assert hash(assembled.subject) == hash(constructed.subject)
