"""Referral lifecycle: accepted / rejected / completed, as the recipient reports it, on the sender's message.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("lifecycle", sa.String(16), nullable=True,
                                   comment="accepted, rejected or completed, as the recipient reports"))
        batch.add_column(sa.Column("lifecycle_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("lifecycle_at")
        batch.drop_column("lifecycle")
