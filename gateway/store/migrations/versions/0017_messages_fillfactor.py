"""Room on each page of ``messages`` for the status written after a batch is decided.

A message is inserted as ``received`` when its batch claims it, then updated once its decision is taken. With
pages packed full the new version of the row went to another page, so every index of the table got a new entry
for it (four WAL records per message under load). With a fill factor of 70 PostgreSQL keeps the new version on
the same page as a heap-only tuple: the indexes are not touched, since none of them covers the columns updated
(state, reason class, recipients). Only pages written from now on keep the room. SQLite has no such setting.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messages SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messages RESET (fillfactor)")
