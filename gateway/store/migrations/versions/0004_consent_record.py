"""Full consent record (grantor, notice, nested provisions, capture evidence) and subject identifiers.

Each consent version keeps its R5-shaped document, its consent type and the hash of the record; a subject
can be found through any of its identifiers (codice fiscale, STP/ENI, a partner's id), one lookup hash each.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("consent_type", sa.String(16), nullable=True,
                                   comment="explicit, express or opt-out"))
        batch.add_column(sa.Column("document", sa.JSON, nullable=True,
                                   comment="the version as an R5-shaped record, without direct identifiers"))
        batch.add_column(sa.Column("record_hash", sa.String(80), nullable=True,
                                   comment="sha256 of the canonical document"))
    op.create_table(
        "subject_identifiers",
        sa.Column("lookup_hash", sa.String(64), nullable=False, comment="HMAC of one canonical identifier"),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lookup_hash", name="pk_subject_identifiers"),
        sa.ForeignKeyConstraint(["pseudonym"], ["subjects.pseudonym"],
                                name="fk_subject_identifiers_pseudonym_subjects"),
    )
    op.create_index("ix_subject_identifiers_pseudonym", "subject_identifiers", ["pseudonym"])
    op.execute("INSERT INTO subject_identifiers (lookup_hash, pseudonym, created_at) "
               "SELECT lookup_hash, pseudonym, created_at FROM subjects")


def downgrade() -> None:
    op.drop_index("ix_subject_identifiers_pseudonym", "subject_identifiers")
    op.drop_table("subject_identifiers")
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("record_hash")
        batch.drop_column("document")
        batch.drop_column("consent_type")
