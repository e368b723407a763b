"""Partner clients that authenticate with ``private_key_jwt`` (issue 10 point 14): a client holds either a secret
hash or the public keys (JWK Set) that verify its RFC 7523 assertions, never both; and the ``jti`` of accepted
assertions, kept until they expire so that a replay is refused by every gateway process on the store.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.alter_column("secret_hash", existing_type=sa.Text, nullable=True,
                           comment="scrypt hash (the secret itself is never kept); NULL for a client registered "
                                   "with keys")
        batch.add_column(sa.Column("public_jwks", sa.Text, nullable=True,
                                   comment="JWK Set verifying its private_key_jwt assertions; NULL for a client "
                                           "with a secret"))
        batch.create_check_constraint("ck_clients_one_auth_method", "(secret_hash IS NULL) <> (public_jwks IS NULL)")
    op.create_table(
        "client_assertion_ids",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("jti", sa.String(128), primary_key=True, comment="the assertion's jti, as the client chose it"),
        sa.Column("keep_until", sa.DateTime(timezone=True), nullable=False,
                  comment="the assertion's exp plus the leeway: after that it is refused as expired anyway"),
    )
    op.create_index("ix_client_assertion_ids_keep_until", "client_assertion_ids", ["keep_until"])


def downgrade() -> None:
    op.drop_index("ix_client_assertion_ids_keep_until", table_name="client_assertion_ids")
    op.drop_table("client_assertion_ids")
    op.execute("DELETE FROM clients WHERE secret_hash IS NULL")  # clients with keys cannot exist before 0013
    with op.batch_alter_table("clients") as batch:
        batch.drop_constraint("ck_clients_one_auth_method", type_="check")
        batch.drop_column("public_jwks")
        batch.alter_column("secret_hash", existing_type=sa.Text, nullable=False,
                           comment="scrypt hash; the secret itself is never kept")
