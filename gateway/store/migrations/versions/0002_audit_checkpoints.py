"""Signed audit checkpoints and the public halves of their signing keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_signing_keys",
        sa.Column("key_name", sa.String(255), nullable=False),
        sa.Column("key_id", sa.String(8), nullable=False, comment="hex C2SP signed-note key ID"),
        sa.Column(
            "public_key", sa.LargeBinary(32), nullable=False, comment="raw Ed25519 public key; never the private key"
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "retired_at", sa.DateTime(timezone=True), nullable=True, comment="when it stopped signing; NULL if it signs"
        ),
        sa.PrimaryKeyConstraint("key_name", "key_id", name="pk_audit_signing_keys"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text, nullable=False, comment="C2SP signed note (tlog-checkpoint body) as published"),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_name", sa.String(255), nullable=False, comment="the key that signed first"),
        sa.Column("key_id", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
        sa.ForeignKeyConstraint(
            ["key_name", "key_id"], ["audit_signing_keys.key_name", "audit_signing_keys.key_id"],
            name="fk_audit_checkpoints_key_name_audit_signing_keys",
        ),
    )
    op.create_index("ix_audit_checkpoints_tree_size", "audit_checkpoints", ["tree_size"])


def downgrade() -> None:
    op.drop_index("ix_audit_checkpoints_tree_size", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_signing_keys")
