"""alerts channel: what each finding's thread last said, and when each channel may next be
sent an alert

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = app.models.UtcDateTime(timezone=True)
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("told", sa.String(length=32), nullable=True))
    op.create_table(
        "channel_paces",
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("next_at", stamp, nullable=False),
        sa.PrimaryKeyConstraint("channel"),
    )


def downgrade() -> None:
    op.drop_table("channel_paces")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_column("told")
