"""Rows still to deliver are kept in a narrow queue table; delivering one deletes its id there.

Marking a row delivered used to update its ``published_at``: a new version of the whole outgoing message (its
payload and headers, about 1.3 KB of WAL) and, because the partial index of undelivered rows (0014) covers that
column, an entry in each of the outbox's indexes. It was the costliest statement of a referral's path in
PostgreSQL. Now a row is queued by inserting its id into ``outbox_queue`` in the transaction that writes it,
and delivered (or dropped) by deleting that id: a row is delivered when it is out of the queue and not dropped.
The time of publication is no longer kept (a recipient's Kafka record carries it).

The upgrade queues the rows not yet delivered, then drops ``published_at`` and the partial index over it. The
downgrade brings the column back, with the creation time standing in for the publication time of every row
delivered meanwhile. SQLite drops a column in place since 3.35; an older SQLite gets a copy of the table without
it (Alembic's batch mode), with the same columns, keys and indexes.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNDELIVERED = "published_at IS NULL AND dropped_reason IS NULL"


def upgrade() -> None:
    op.create_table("outbox_queue",
                    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=False,
                              nullable=False),
                    sa.PrimaryKeyConstraint("id", name="pk_outbox_queue"))
    op.execute("INSERT INTO outbox_queue (id) SELECT id FROM outbox "
               "WHERE published_at IS NULL AND dropped_reason IS NULL")
    op.drop_index("ix_outbox_undelivered", table_name="outbox")
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        with op.batch_alter_table("outbox", recreate="always") as batch:  # no DROP COLUMN before 3.35
            batch.drop_column("published_at")
    else:
        op.drop_column("outbox", "published_at")


def downgrade() -> None:
    op.add_column("outbox", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE outbox SET published_at = created_at "
               "WHERE dropped_reason IS NULL AND id NOT IN (SELECT id FROM outbox_queue)")
    op.create_index("ix_outbox_undelivered", "outbox", ["id"], postgresql_where=sa.text(_UNDELIVERED),
                    sqlite_where=sa.text(_UNDELIVERED))
    op.drop_table("outbox_queue")
