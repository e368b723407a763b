"""Partner clients kept in the store, so that they can be added, given a new secret or disabled while the
gateway runs (issue 10 point 13). The YAML clients file only seeds this table: a client it names that the
table does not hold yet is added at start; what the table holds wins afterwards.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("secret_hash", sa.Text, nullable=False, comment="scrypt hash; the secret itself is never kept"),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False, comment="space-separated OAuth 2 scopes"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True,
                  comment="NULL while enabled; its tokens, issued or not, are refused once set"),
    )


def downgrade() -> None:
    op.drop_table("clients")
