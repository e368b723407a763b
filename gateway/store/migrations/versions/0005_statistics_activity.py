"""Statistics activity for the aggregate flows F6 and F13.

One row per counted event (a care visit, a vaccination, a flow decision): its month and coded dimensions,
never a person, a pseudonym, a message id, an operator or a time finer than the month.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "statistics_activity",
        sa.Column("id", BIGID, nullable=False, autoincrement=True),
        sa.Column("month", sa.String(7), nullable=False, comment="YYYY-MM (Europe/Rome) of the counted event"),
        sa.Column("kind", sa.String(32), nullable=False, comment="visit, vaccination or decision"),
        sa.Column("source", sa.String(32), nullable=False, comment="partner whose message the event came from"),
        sa.Column("quartiere", sa.String(64), nullable=False, comment="quartieri code, or non-indicato"),
        sa.Column("flow_id", sa.String(64), nullable=True, comment="for decisions: the declared flow, if any"),
        sa.Column("recipient", sa.String(32), nullable=True, comment="for decisions: the recipient organisation"),
        sa.Column("outcome", sa.String(8), nullable=True, comment="for decisions: permit or deny"),
        sa.Column("weight", sa.Integer, nullable=False, comment="minutes of care for visits; 1 otherwise"),
        sa.PrimaryKeyConstraint("id", name="pk_statistics_activity"),
    )
    op.create_index("ix_statistics_activity_month_kind", "statistics_activity", ["month", "kind"])


def downgrade() -> None:
    op.drop_index("ix_statistics_activity_month_kind", table_name="statistics_activity")
    op.drop_table("statistics_activity")
