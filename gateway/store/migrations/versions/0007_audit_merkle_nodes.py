"""Hashes of complete Merkle subtrees of the audit log, so that proofs need not read every leaf hash.

The audit append writes each subtree it completes, in the same transaction as the records. Rows for a log
written before this revision cannot be computed in SQL: ``gateway audit rebuild-nodes`` fills them in from
the stored leaf hashes, and until then proofs that need a missing one are computed from the leaves as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_merkle_nodes",
        sa.Column("level", sa.Integer, nullable=False, autoincrement=False,
                  comment="height of the perfect subtree: 1 = two leaves; leaves stay in audit_log.leaf_hash"),
        sa.Column("idx", sa.BigInteger, nullable=False, autoincrement=False,
                  comment="covers audit_log indexes idx * 2^level .. (idx + 1) * 2^level - 1"),
        sa.Column("hash", sa.LargeBinary(32), nullable=False, comment="RFC 6962 Merkle Tree Hash of those records"),
        sa.PrimaryKeyConstraint("level", "idx", name="pk_audit_merkle_nodes"),
        sqlite_with_rowid=False,  # one B-tree keyed by (level, idx), no separate rowid table
    )


def downgrade() -> None:
    op.drop_table("audit_merkle_nodes")
