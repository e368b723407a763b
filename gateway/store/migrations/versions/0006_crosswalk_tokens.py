"""Crosswalk tokens a partner can quote back.

Every token the gateway mints for a recipient (a subject token, a Comune case id as token) is recorded with
the recipient it was minted for, so that only that recipient can quote it back, the subject it stands for,
and the identifier it replaced, sealed (AES-GCM) so that the database never shows a partner's identifier.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crosswalk_tokens",
        sa.Column("token", sa.String(64), nullable=False, comment="gwt_...: HMAC of (recipient, system, value)"),
        sa.Column("recipient", sa.String(32), nullable=False,
                  comment="the only partner that may quote the token back"),
        sa.Column("system", sa.String(64), nullable=False,
                  comment="subject, an identifier system, or a tokenised path"),
        sa.Column("subject_pseudonym", sa.String(64), nullable=False),
        sa.Column("sealed_value", sa.LargeBinary, nullable=True,
                  comment="AES-GCM-sealed identifier the token stands for; NULL for a subject token"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_crosswalk_tokens"),
        sa.ForeignKeyConstraint(["subject_pseudonym"], ["subjects.pseudonym"],
                                name="fk_crosswalk_tokens_subject_pseudonym_subjects"),
    )
    op.create_index("ix_crosswalk_tokens_subject_pseudonym", "crosswalk_tokens", ["subject_pseudonym"])


def downgrade() -> None:
    op.drop_index("ix_crosswalk_tokens_subject_pseudonym", table_name="crosswalk_tokens")
    op.drop_table("crosswalk_tokens")
