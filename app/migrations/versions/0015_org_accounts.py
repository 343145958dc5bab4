"""org accounts: the accounts discovered from each customer's AWS organization and its syncs
(app/accounts/store.py)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    stamp = app.models.UtcDateTime(timezone=True)
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "org_accounts",
        sa.Column("id", big, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("alias", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=True),
        sa.Column("parent", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("first_seen", stamp, nullable=False),
        sa.Column("last_seen", stamp, nullable=False),
        sa.Column("changed_at", stamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_org_accounts_account", "org_accounts", ["customer_id", "account_id"], unique=True
    )
    # an alias names one account across customers: unique among the active rows
    op.create_index(
        "uq_org_accounts_alias",
        "org_accounts",
        ["alias"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_table(
        "org_syncs",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tried_at", stamp, nullable=True),
        sa.Column("synced_at", stamp, nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )


def downgrade() -> None:
    op.drop_table("org_syncs")
    op.drop_index("uq_org_accounts_alias", table_name="org_accounts")
    op.drop_index("uq_org_accounts_account", table_name="org_accounts")
    op.drop_table("org_accounts")
