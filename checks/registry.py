"""The check of each kind, by name, in the order of :data:`checks.kinds.KINDS`. Adding a check:
name it in ``checks/kinds.py``, write ``checks/<kind>.py`` and list it here
(docs/adding-a-check.md)."""

from __future__ import annotations

from checks.alarms import AlarmsCheck
from checks.backup import BackupCheck
from checks.base import Check
from checks.budget import BudgetCheck
from checks.certs import CertsCheck
from checks.cost import CostCheck
from checks.health import HealthCheck
from checks.http import HttpCheck
from checks.hygiene import HygieneCheck
from checks.rds import RdsCheck
from checks.security import SecurityCheck

REGISTRY: dict[str, Check] = {
    check.kind: check
    for check in (
        BackupCheck(),
        RdsCheck(),
        AlarmsCheck(),
        BudgetCheck(),
        HttpCheck(),
        HealthCheck(),
        CertsCheck(),
        SecurityCheck(),
        CostCheck(),
        HygieneCheck(),
    )
}
