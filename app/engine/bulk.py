"""Many rows in one statement on PostgreSQL: one array per column, unnested.

The statement's text is the same for any number of rows, so it is parsed and planned once per
connection, and SQLAlchemy does not render a parameter per value (both cost more than the rows
themselves for large batches). SQLite needs none of this: one multi-row INSERT through its one
writer connection is already cheap.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.selectable import TableValuedAlias


def unnest(name: str, **columns: tuple[list[Any], Any]) -> TableValuedAlias:
    """``columns`` (name → (values, SQL type)) as a derived table ``name`` with an ordinality
    column ``n``, to select from in an ``INSERT … SELECT`` or an ``IN (SELECT …)``."""
    arrays = [
        bindparam(f"{name}__{column}", values, type_=ARRAY(kind))
        for column, (values, kind) in columns.items()
    ]
    return (
        func.unnest(*arrays).table_valued(*columns, with_ordinality="n").render_derived(name=name)
    )
