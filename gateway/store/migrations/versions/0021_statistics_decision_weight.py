"""An F13 decision row counts the alike decisions of a batch: its ``weight`` says how many.

Until now every decision of every message added a row of weight 1 to ``statistics_activity``. The intake now
stores one row per group of alike decisions of a batch (same month, sender, quartiere, flow, recipient and
outcome: :func:`gateway.statistics.counting.combine_decisions`), weighing as many decisions as it stands for,
and the publication counts weights for decisions. Rows written before weigh 1 and count as they did, so no row
changes: only the column's comment says what the weight means now (PostgreSQL; SQLite keeps no comments).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "minutes of care for visits; 1 otherwise"
_AFTER = "minutes of care for visits; decisions the row counts for decisions; 1 for vaccinations"


def _comment(comment: str, existing: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("statistics_activity", "weight", existing_type=sa.Integer(), existing_nullable=False,
                    comment=comment, existing_comment=existing)


def upgrade() -> None:
    _comment(_AFTER, _BEFORE)


def downgrade() -> None:
    _comment(_BEFORE, _AFTER)
