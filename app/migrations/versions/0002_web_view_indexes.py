"""web view indexes: runs by outcome, results by check (keyset pages of /runs)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 08:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_outcome_id", ["outcome", "id"], unique=False)
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.create_index("ix_results_check_run", ["check", "run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_index("ix_results_check_run")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_outcome_id")
