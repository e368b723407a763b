"""Initial schema: subjects, consents, messages (status), audit log and head, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("pseudonym", sa.String(64), primary_key=True),
        sa.Column("lookup_hash", sa.String(64), nullable=False, comment="HMAC of the canonical identifier"),
        sa.Column("subject_key", sa.LargeBinary(32), nullable=True, comment="keys audit references; NULL once erased"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", name="pk_subjects"),
        sa.UniqueConstraint("lookup_hash", name="uq_subjects_lookup_hash"),
    )
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("subject_pseudonym", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("purposes", sa.JSON, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False, comment="client id of the recording partner"),
        sa.PrimaryKeyConstraint("consent_id", "version", name="pk_consents"),
        sa.ForeignKeyConstraint(
            ["subject_pseudonym"], ["subjects.pseudonym"], name="fk_consents_subject_pseudonym_subjects"
        ),
    )
    op.create_index("ix_consents_subject_pseudonym", "consents", ["subject_pseudonym"])
    op.create_table(
        "messages",
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason_class", sa.String(64), nullable=True),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("sender", "message_id", name="pk_messages"),
    )
    op.create_index("ix_messages_correlation_id", "messages", ["correlation_id"])
    op.create_table(
        "audit_log",
        sa.Column("idx", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("record", sa.Text, nullable=False, comment="RFC 8785 canonical JSON of the record"),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column(
            "chain_hash", sa.LargeBinary(32), nullable=False, comment="SHA-256(previous chain hash || leaf hash)"
        ),
        sa.Column("subject_ref", sa.String(64), nullable=True, comment="keyed per-subject reference"),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idx", name="pk_audit_log"),
        sa.UniqueConstraint("record_id", name="uq_audit_log_record_id"),
    )
    op.create_index("ix_audit_log_subject_ref", "audit_log", ["subject_ref"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False, comment="hex subtree roots of the Merkle accumulator"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("msg_key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("consent_id", sa.String(64), nullable=True),
        sa.Column("consent_version", sa.Integer, nullable=True),
        sa.Column("subject_pseudonym", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dropped_reason", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("topic", "message_id", name="uq_outbox_topic_message"),
    )
    op.create_index("ix_outbox_pending", "outbox", ["published_at", "id"])
    op.create_index("ix_outbox_recipient", "outbox", ["recipient", "id"])


def downgrade() -> None:
    for table in ("outbox", "audit_head", "audit_log", "messages", "consents", "subjects"):
        op.drop_table(table)
