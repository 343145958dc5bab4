"""results by severity: /runs?check=…&outcome=… finds the runs where that check had that
outcome by walking an index (check, severity, run_id)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 01:50:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_results_check_severity_run", "results", ["check", "severity", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_results_check_severity_run", table_name="results")
