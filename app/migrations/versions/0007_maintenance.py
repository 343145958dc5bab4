"""maintenance windows started from Slack or the CLI

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = app.models.UtcDateTime(timezone=True)
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "maintenance",
        sa.Column("id", big, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("accounts", sa.JSON(), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=True),
        sa.Column("starts_at", stamp, nullable=False),
        sa.Column("ends_at", stamp, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", stamp, nullable=False),
        sa.Column("ended_by", sa.String(length=128), nullable=True),
        sa.Column("ended_at", stamp, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("maintenance", schema=None) as batch_op:
        batch_op.create_index("ix_maintenance_customer", ["customer_id", "ends_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("maintenance", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_customer")
    op.drop_table("maintenance")
