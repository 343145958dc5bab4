"""blind spots: how each (account, check) last fared at looking, and which notices are about
one

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = app.models.UtcDateTime(timezone=True)
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "sights",
        sa.Column("id", big, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("last_ok_at", stamp, nullable=True),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("failing_since", stamp, nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("looked_at", stamp, nullable=False),
        sa.Column("looked_run_id", big, nullable=False),
        sa.Column("routed", sa.String(length=16), nullable=True),
        sa.Column("told", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sights", schema=None) as batch_op:
        batch_op.create_index("uq_sights_target", ["customer_id", "account", "check"], unique=True)
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sight_id", big, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("sight_id")
    with op.batch_alter_table("sights", schema=None) as batch_op:
        batch_op.drop_index("uq_sights_target")
    op.drop_table("sights")
