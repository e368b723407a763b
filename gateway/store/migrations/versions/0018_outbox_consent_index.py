"""A consent's withdrawal finds the messages disclosed under it through an index, not a scan of the outbox.

Rule 10 sends a restriction notice to every recipient that received data under a withdrawn consent; the
withdrawal reads those disclosures (and locks the rows still queued under the consent) in its transaction. The
outbox keeps every row it ever delivered (retention empties only their payloads), so without an index each
withdrawal read the whole table. The index holds only the rows sent under a consent. Built in one statement:
on a large outbox it holds the table's writes while it builds.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNDER_CONSENT = "consent_id IS NOT NULL"


def upgrade() -> None:
    op.create_index("ix_outbox_consent", "outbox", ["consent_id"], postgresql_where=sa.text(_UNDER_CONSENT),
                    sqlite_where=sa.text(_UNDER_CONSENT))


def downgrade() -> None:
    op.drop_index("ix_outbox_consent", table_name="outbox")
