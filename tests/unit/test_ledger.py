"""The ledger alone builds audit records and outbox rows (architecture.md "ledger"); what it builds.

The first test reads the gateway's own source: a module that constructs an ``AuditRecord`` (validated, or
unvalidated through ``trusted_record``) or an ``OutboxRow`` itself would decide on its own what a record holds or
what a message names, which is what the ledger is for (the store reads rows back into ``OutboxRow``, and that is
all).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from gateway.pipeline import ledger
from gateway.policy.consent import ConsentRecord
from gateway.settings import TopicSettings
from gateway.store.models import MessageStatus, OutboxRow

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
NOW = datetime(2026, 12, 6, tzinfo=UTC)
_CONSTRUCTION = re.compile(r"(?<!class )\b(AuditRecord|OutboxRow|trusted_record)\(")


def test_only_the_ledger_constructs_audit_records_and_outbox_rows() -> None:
    builders = {}
    for path in sorted(GATEWAY.rglob("*.py")):
        found = _CONSTRUCTION.findall(path.read_text(encoding="utf-8"))
        if found:
            builders[str(path.relative_to(GATEWAY))] = sorted(set(found))
    assert builders == {"pipeline/ledger.py": ["AuditRecord", "OutboxRow", "trusted_record"],
                        "store/outbox.py": ["OutboxRow"]}


def test_record_keys_keep_one_person_in_order_for_a_recipient_but_differ_between_recipients() -> None:
    assert ledger.record_key(None, "fwa", "sbj_a") == ledger.record_key(None, "fwa", "sbj_a")
    assert ledger.record_key(None, "fwa", "sbj_a") != ledger.record_key(None, "comune", "sbj_a")
    assert b"sbj_a" not in ledger.record_key(None, "fwa", "sbj_a")


def test_headers_name_the_purpose_only_when_there_is_one() -> None:
    with_purpose = dict(ledger.headers("m1", "c1", "r1", "referral.microcredit", "1.0", "microcredit-assessment"))
    assert with_purpose == {"message-id": "m1", "correlation-id": "c1", "request-id": "r1",
                            "message-type": "referral.microcredit", "schema-version": "1.0",
                            "purpose": "microcredit-assessment"}
    assert "purpose" not in dict(ledger.headers("m1", "c1", "r1", "referral.status", "1.0", None))


def test_a_status_row_goes_to_the_senders_status_topic_with_the_lifecycle_suffix() -> None:
    status = MessageStatus(sender="aler", message_id="m1", correlation_id="c1", message_type="t", state="forwarded",
                           reason_class=None, recipients=("fwa",), received_at=NOW, request_id="r1")
    row = ledger.status_row(status, b"k", TopicSettings(prefix="p."), NOW, "-accepted")
    assert (row.topic, row.recipient, row.message_id) == ("p.status.aler", "aler", "status-m1-accepted")
    assert dict(row.headers)["message-type"] == "referral.status"


def test_restriction_notices_name_each_recipients_own_messages_and_never_the_pseudonym() -> None:
    record = ConsentRecord(consent_id="cns-1", version=2, subject_pseudonym="sbj_a", status="inactive",
                           decision="permit", purposes=frozenset({"microcredit-assessment"}))
    notices = ledger.restriction_notices(record, [("fwa", "gw-2"), ("aler", "gw-3"), ("fwa", "gw-1")],
                                         TopicSettings(), NOW, "r1")
    assert [(n.recipient, n.topic) for n in notices] == [("aler", "out.aler"), ("fwa", "out.fwa")]
    assert [n.value.count(b"gw-") for n in notices] == [1, 2]
    assert all(isinstance(n, OutboxRow) and n.key == b"cns-1" and b"sbj_a" not in n.value for n in notices)
    assert ledger.drop_record(notices[0], "consent-withdrawn", None, "i", NOW).message_ids == (notices[0].message_id,)


def test_a_row_claimed_for_delivery_keeps_every_field_but_its_id() -> None:
    """The delivery path gives queued rows their ids with a direct constructor call (cheaper than
    ``dataclasses.replace``); it must carry over every field, in order, including any added later."""
    from dataclasses import fields, replace

    from gateway.store.outbox import _with_id

    row = OutboxRow(topic="t", recipient="fwa", message_id="m", value=b"v", key=b"k", headers=(("a", "b"),),
                    created_at=NOW, consent_id="c", consent_version=3, subject_pseudonym="sbj_a", id=None)
    assert [f.name for f in fields(OutboxRow)][-1] == "id"
    assert _with_id(row, 42) == replace(row, id=42)
    assert all(getattr(_with_id(row, 42), f.name) == getattr(replace(row, id=42), f.name) for f in fields(OutboxRow))
