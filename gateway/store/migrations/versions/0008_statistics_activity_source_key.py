"""A keyed hash of the source record on F6 care rows, so that a record sent again is counted once.

The trust may send the same finished Encounter or given Immunization again under a new message id (a
correction of its length or quartiere); the intake then replaces the row it counted before instead of adding
one. ``source_key`` is an HMAC of (sender, resource type, resource id) under a key derived from the pseudonym
key, never the id itself; it is unique per kind, and NULL (any number of times) for F13 decision rows and for
rows counted before this revision.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "statistics_activity",
        sa.Column("source_key", sa.String(64), nullable=True,
                  comment="for care: HMAC of (sender, resource type, resource id), so a re-send replaces the row"),
    )
    op.create_index("ux_statistics_activity_kind_source_key", "statistics_activity", ["kind", "source_key"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("ux_statistics_activity_kind_source_key", table_name="statistics_activity")
    op.drop_column("statistics_activity", "source_key")
