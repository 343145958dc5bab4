"""reads: the live-update token skips the audit rows of web reads (a partial index)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CHANGES = sa.text("type != 'read'")


def upgrade() -> None:
    op.create_index(
        "ix_run_events_changes",
        "run_events",
        ["id"],
        sqlite_where=CHANGES,
        postgresql_where=CHANGES,
    )


def downgrade() -> None:
    op.drop_index("ix_run_events_changes", table_name="run_events")
