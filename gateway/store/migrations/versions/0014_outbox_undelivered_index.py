"""The relay's read of undelivered outbox rows goes through a partial index of those rows alone.

The former index on ``(published_at, id)`` was passed over by PostgreSQL's planner, which read the outbox
in primary-key order and filtered out every delivered row: some 40 ms per read once 50,000 rows had been
delivered, twice per referral. The partial index holds only the rows still to deliver, in id order.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNDELIVERED = "published_at IS NULL AND dropped_reason IS NULL"


def upgrade() -> None:
    op.create_index("ix_outbox_undelivered", "outbox", ["id"], postgresql_where=sa.text(_UNDELIVERED),
                    sqlite_where=sa.text(_UNDELIVERED))
    op.drop_index("ix_outbox_pending", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_pending", "outbox", ["published_at", "id"])
    op.drop_index("ix_outbox_undelivered", table_name="outbox")
