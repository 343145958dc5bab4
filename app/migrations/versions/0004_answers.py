"""answers: acknowledge and snooze on findings, mute rules made from Slack or the CLI, and
findings by resolution time (the findings page's "resolved in the last 7 days")

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    stamp = app.models.UtcDateTime(timezone=True)
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ack_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("ack_at", stamp, nullable=True))
        batch_op.add_column(sa.Column("snooze_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("snooze_at", stamp, nullable=True))
        batch_op.add_column(sa.Column("snooze_until", stamp, nullable=True))
        batch_op.add_column(sa.Column("snooze_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("snooze_severity", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("answers", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index(
            "ix_findings_resolved", ["customer_id", "status", "resolved_at"], unique=False
        )
    op.create_table(
        "mutes",
        sa.Column("id", big, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("resource", sa.String(length=1024), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("until", stamp, nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", stamp, nullable=False),
        sa.Column("ended_by", sa.String(length=128), nullable=True),
        sa.Column("ended_at", stamp, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mutes", schema=None) as batch_op:
        batch_op.create_index("ix_mutes_customer", ["customer_id", "ended_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mutes", schema=None) as batch_op:
        batch_op.drop_index("ix_mutes_customer")
    op.drop_table("mutes")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index("ix_findings_resolved")
        for column in (
            "answers",
            "snooze_severity",
            "snooze_reason",
            "snooze_until",
            "snooze_at",
            "snooze_by",
            "ack_at",
            "ack_by",
        ):
            batch_op.drop_column(column)
