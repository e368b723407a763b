"""The vaccine group of an F6 vaccination row, so that F6 counts vaccinations per group.

Community nurses give COVID-19, pneumococcal and herpes zoster vaccines as well as influenza ones; the intake
maps each vaccine to its group (code list ``vaccine_groups``: influenza, covid-19, pneumococcal, zoster,
other) and the statistics count by it. The column is NULL for visits and decisions, and for vaccinations
counted before this revision (published as ``other``). Like every dimension it is a coded value about no one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "statistics_activity",
        sa.Column("vaccine_group", sa.String(32), nullable=True,
                  comment="for vaccinations: influenza, covid-19, pneumococcal, zoster or other"),
    )


def downgrade() -> None:
    with op.batch_alter_table("statistics_activity") as batch:
        batch.drop_column("vaccine_group")
