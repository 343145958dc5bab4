"""reports: a customer's runs by time (a report reads one customer's month of runs)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 19:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_customer_created", "runs", ["customer_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_customer_created", table_name="runs")
