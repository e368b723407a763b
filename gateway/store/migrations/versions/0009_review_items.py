"""The privacy officers' review queue (privacy.md rule 11), kept as rows with a reviewed state.

Every audit record that calls for review (a denial, a drop at delivery, a decision on an emergency flow)
gets a row in the same transaction as the record itself; a privacy officer closes it with a resolution.
Records written before this revision have no row: the queue starts with the records written after it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("audit_index", sa.BigInteger, primary_key=True, autoincrement=False,
                  comment="log index of the audit record to review"),
        sa.Column("kind", sa.String(32), nullable=False, comment="denial, drop-at-delivery or emergency"),
        sa.Column("flow_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True, comment="NULL while open"),
        sa.Column("reviewed_by", sa.String(64), nullable=True, comment="client id of the privacy officer"),
        sa.Column("resolution", sa.String(32), nullable=True, comment="confirmed or escalated"),
    )
    op.create_index("ix_review_items_open", "review_items", ["reviewed_at", "audit_index"])


def downgrade() -> None:
    op.drop_index("ix_review_items_open", table_name="review_items")
    op.drop_table("review_items")
