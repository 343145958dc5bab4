"""run shards: a large run's targets in slices any replica claims (``app.engine.shards``)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 05:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = app.models.UtcDateTime(timezone=True)
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "run_shards",
        sa.Column("run_id", big, nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", stamp, nullable=True),
        sa.Column("heartbeat_at", stamp, nullable=True),
        sa.Column("done_by", sa.String(length=128), nullable=True),
        sa.Column("finished_at", stamp, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "shard"),
    )
    op.create_index("ix_run_shards_status", "run_shards", ["status", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_run_shards_status", table_name="run_shards")
    op.drop_table("run_shards")
