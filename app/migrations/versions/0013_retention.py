"""retention: what pruning old runs walks (``mhub db prune``, ``HUB_RETENTION_DAYS``) — the
runs that retry a pruned run, a pruned run's outbox rows (also what PostgreSQL's foreign keys
check for every deleted run), and the web view's read audit rows by age

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

AUDIT = sa.text("run_id IS NULL")


def upgrade() -> None:
    op.create_index("ix_runs_retry_of", "runs", ["retry_of"])
    op.create_index("ix_outbox_run", "outbox", ["run_id"])
    op.create_index(
        "ix_run_events_audit",
        "run_events",
        ["created_at"],
        sqlite_where=AUDIT,
        postgresql_where=AUDIT,
    )


def downgrade() -> None:
    op.drop_index("ix_run_events_audit", table_name="run_events")
    op.drop_index("ix_outbox_run", table_name="outbox")
    op.drop_index("ix_runs_retry_of", table_name="runs")
