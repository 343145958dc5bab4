"""findings: one row per customer × fingerprint, backfilled from the recorded results

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models
from app.engine.findings import Fold, Look, look

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    stamp = app.models.UtcDateTime(timezone=True)
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    findings = op.create_table(
        "findings",
        sa.Column("id", big, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=1024), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("resource", sa.String(length=1024), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", stamp, nullable=False),
        sa.Column("last_seen_at", stamp, nullable=False),
        sa.Column("resolved_at", stamp, nullable=True),
        sa.Column("last_run_id", big, nullable=False),
        sa.Column("looked_run_id", big, nullable=False),
        sa.Column("returns", sa.Integer(), nullable=False),
        sa.Column("history", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index(
            "uq_findings_fingerprint", ["customer_id", "fingerprint"], unique=True
        )
        batch_op.create_index(
            "ix_findings_open", ["customer_id", "status", "account", "check"], unique=False
        )
    _backfill(findings)


def _backfill(findings: sa.Table) -> None:
    """Every recorded result, run by run, through the same rule the hub keeps findings by."""
    bind = op.get_bind()
    meta = sa.MetaData()
    runs = sa.Table("runs", meta, sa.Column("id"), sa.Column("customer_id"))
    results = sa.Table(
        "results",
        meta,
        sa.Column("id"),
        sa.Column("run_id"),
        sa.Column("account"),
        sa.Column("check"),
        sa.Column("severity"),
        sa.Column("summary"),
        sa.Column("details", sa.JSON()),
        sa.Column("finished_at", app.models.UtcDateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(
            runs.c.customer_id,
            results.c.run_id,
            results.c.account,
            results.c.check,
            results.c.severity,
            results.c.summary,
            results.c.details,
            results.c.finished_at,
        )
        .join(runs, runs.c.id == results.c.run_id)
        .order_by(results.c.run_id, results.c.id)
    )
    fold = Fold()
    run_id: int | None = None
    looks: list[Look] = []
    for row in rows:
        if row.run_id != run_id:
            fold.add(looks)
            run_id, looks = row.run_id, []
        found = look(*row)
        if found is not None:
            looks.append(found)
    fold.add(looks)
    kept = [vars(k) for k in fold.findings.values()]
    for start in range(0, len(kept), BATCH):
        bind.execute(findings.insert(), kept[start : start + BATCH])


def downgrade() -> None:
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index("ix_findings_open")
        batch_op.drop_index("uq_findings_fingerprint")
    op.drop_table("findings")
