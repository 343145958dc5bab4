"""RDS: placeholder until the real check lands (being written now)."""

from __future__ import annotations

from checks.base import Check


class RdsCheck(Check):
    kind = "rds"
