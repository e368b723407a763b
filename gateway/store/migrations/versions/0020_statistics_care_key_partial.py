"""The unique index on a care row's source key holds care rows only, not every F13 decision.

``ux_statistics_activity_kind_source_key`` (migration 0008) lets a care record sent again replace its row. F13
decision rows, one per decision of every message, have no source key (NULL), so they never conflict, yet each
added an entry to the index: a decision row cost PostgreSQL 4.2-4.7 us of CPU with it and 3.3-3.6 us without
(``bench/store_writes.py --only activity``, batches of 500). The index now holds only the rows that have a
source key, and the upsert of care rows names that condition so that PostgreSQL and SQLite use it as its
arbiter. Built in one statement: on a large table it holds the table's writes while it builds.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ux_statistics_activity_kind_source_key"
_CARE_ROWS = "source_key IS NOT NULL"


def upgrade() -> None:
    op.drop_index(_NAME, table_name="statistics_activity")
    op.create_index(_NAME, "statistics_activity", ["kind", "source_key"], unique=True,
                    postgresql_where=sa.text(_CARE_ROWS), sqlite_where=sa.text(_CARE_ROWS))


def downgrade() -> None:
    op.drop_index(_NAME, table_name="statistics_activity")
    op.create_index(_NAME, "statistics_activity", ["kind", "source_key"], unique=True)
