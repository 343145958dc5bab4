"""Check kinds by name. Adding a check: write ``checks/<kind>.py`` and list it here
(see docs/adding-a-check.md)."""

from __future__ import annotations

from checks.base import Check
from checks.rds import RdsCheck

REGISTRY: dict[str, Check] = {check.kind: check for check in (RdsCheck(),)}
