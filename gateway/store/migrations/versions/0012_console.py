"""The privacy officers' console: local officer accounts (argon2id password hash and TOTP second factor),
server-side sessions (the cookie's SHA-256 only, with its CSRF token and the officer who signed in), and the
comment an officer leaves when closing a review item.

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_officers",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("organisation", sa.String(64), nullable=False),
        sa.Column("roles", sa.Text, nullable=False, comment="space-separated console roles"),
        sa.Column("password_hash", sa.Text, nullable=False,
                  comment="argon2id hash; the password itself is never kept"),
        sa.Column("totp_secret", sa.String(64), nullable=False, comment="base32 TOTP seed of the second factor"),
        sa.Column("totp_last_step", sa.BigInteger, nullable=True,
                  comment="last accepted TOTP time step (no code reused)"),
        sa.Column("failed_sign_ins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True,
                  comment="NULL while the account may sign in"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True,
                  comment="SHA-256 of the session cookie; never the cookie"),
        sa.Column("ref", sa.String(32), nullable=False, unique=True, comment="the session's name in audit records"),
        sa.Column("officer", sa.JSON, nullable=False, comment="who signed in: subject, organisation, roles, method"),
        sa.Column("csrf_token", sa.String(64), nullable=False, comment="synchronizer token every console form carries"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_sessions_last_seen", "console_sessions", ["last_seen_at"])
    op.add_column("review_items", sa.Column("comment", sa.Text, nullable=True,
                                            comment="the reviewing officer's note (kept here, never in the log)"))


def downgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("comment")
    op.drop_index("ix_console_sessions_last_seen", "console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_officers")
