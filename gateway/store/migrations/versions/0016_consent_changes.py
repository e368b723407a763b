"""Consent changes in commit order, so that each process's consent index stays exactly current.

Every consent version written takes the next number from the single row of ``consent_change_head`` and is stored
with it in ``consents.change_seq``. The head row is locked from that update until the writing transaction
commits, so numbers become visible in the order they were given: a reader that sees head ``n`` knows every
version numbered ``n`` or less has committed. A process's index (:mod:`gateway.consents.index`) reads the head
once per batch of messages and reloads only the subjects whose consents changed since the number it holds.
Versions written before this revision have no number: an index loads them when it starts.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("change_seq", sa.BigInteger, nullable=True,
                                   comment="position in consent_change_head's order of commits"))
        batch.create_index("ix_consents_change_seq", ["change_seq"])
    head = op.create_table(
        "consent_change_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False, comment="number given to the latest consent version"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("consent_change_head")
    with op.batch_alter_table("consents") as batch:
        batch.drop_index("ix_consents_change_seq")
        batch.drop_column("change_seq")
