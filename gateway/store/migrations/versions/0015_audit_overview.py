"""The privacy officers' overview kept in the store, so that the console's home answers at once at any log size.

``audit_integrity_checks`` keeps the outcome of each full verification of the audit log (the report, never a
record's content): a page shows the latest one and says when it was made, instead of reading a million records
before it answers. ``audit_activity_counts`` keeps the last days of the log counted per day, flow, series and the
organisations a record names, with ``audit_activity_cursor`` saying up to which record they count: whoever
looks next reads only what was appended since. Both are recomputable from the log, never the only copy of
anything.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_integrity_checks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False, comment="records the verification covered"),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("report", sa.JSON, nullable=False, comment="the integrity status as privacy officers see it"),
    )
    op.create_table(
        "audit_activity_counts",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("flow", sa.String(16), nullable=False),
        sa.Column("series", sa.String(32), nullable=False),
        sa.Column("source_org", sa.String(64), nullable=False, comment="'' when the record names none"),
        sa.Column("recipient_org", sa.String(64), nullable=False, comment="'' when the record names none"),
        sa.Column("requesting_org", sa.String(64), nullable=False, comment="'' when the record names none"),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("day", "kind", "flow", "series", "source_org", "recipient_org", "requesting_org",
                                name="pk_audit_activity_counts"),
    )
    op.create_table(
        "audit_activity_cursor",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_index", sa.BigInteger, nullable=False, comment="first audit record not yet counted"),
        sa.Column("window_start", sa.String(10), nullable=False, comment="oldest day the counts keep"),
    )


def downgrade() -> None:
    op.drop_table("audit_activity_cursor")
    op.drop_table("audit_activity_counts")
    op.drop_table("audit_integrity_checks")
