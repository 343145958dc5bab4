"""api tokens: automation's credentials, scoped to customers, stored as digests

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = app.models.UtcDateTime(timezone=True)
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "api_tokens",
        sa.Column("id", big, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("customers", sa.JSON(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        # SHA-256 of a 256-bit random secret: unsalted is right for a secret nobody chose.
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", stamp, nullable=False),
        sa.Column("expires_at", stamp, nullable=True),
        sa.Column("revoked_at", stamp, nullable=True),
        sa.Column("last_used_at", stamp, nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index("uq_api_tokens_digest", ["digest"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index("uq_api_tokens_digest")
    op.drop_table("api_tokens")
