"""The check kinds: the one list of what the hub can check, and how each is named.

Every place that names a kind reads it from here: config validation and ``/monitor run``
(which names exist), the card, the App Home and the terminal (:attr:`Kind.title`: "arbel ·
RDS"), the digest (:attr:`Kind.group` and :attr:`Kind.totals`: "RDS — 40 instances: 1
critical"), the web view's filters and ``mhub run --help``. ``checks.registry`` implements
exactly these (a test holds the two together), in this order, which is also the order the
digest lists its sections in.

Pure data with no imports, so the configuration models can validate names without loading a
single check.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Totals:
    """What one result of a kind counts (``details[key]``), and how to say it."""

    key: str
    one: str
    many: str
    severities: bool = True
    """Also say how many of them were critical or warnings."""


@dataclass(frozen=True)
class Kind:
    name: str
    """As typed in config and commands: ``rds``."""
    title: str
    """One result's heading: ``arbel · RDS``."""
    group: str
    """A digest section across accounts: ``Backups``, ``Endpoints``."""
    about: str
    """What it looks at, in one line (help text and docs)."""
    totals: Totals | None = None
    """What its results count; None when the digest says it its own way (backup jobs)."""


KINDS: tuple[Kind, ...] = (
    Kind(
        "backup",
        "Backup",
        "Backups",
        "AWS Backup jobs in the window, and recovery-point age against the RPO",
    ),
    Kind(
        "rds",
        "RDS",
        "RDS",
        "every RDS instance: CPU, free storage, connections and freeable memory",
        Totals("instances", "instance", "instances"),
    ),
    Kind(
        "alarms",
        "Alarms",
        "Alarms",
        "CloudWatch alarms in ALARM, stuck without data, or with actions off",
        Totals("in_alarm", "alarm in ALARM", "alarms in ALARM", severities=False),
    ),
    Kind(
        "budget",
        "Budget",
        "Budgets",
        "AWS Budgets: actual and forecast spend against the limit",
        Totals("budgets", "budget", "budgets"),
    ),
    Kind(
        "http",
        "HTTP",
        "Endpoints",
        "HTTP endpoints: status, latency, optional body match, TLS certificate days",
        Totals("endpoints", "endpoint", "endpoints"),
    ),
    Kind(
        "health",
        "Health",
        "AWS Health",
        "AWS Health events: instance retirements, database maintenance, service issues",
        Totals("events", "event", "events"),
    ),
    Kind(
        "certs",
        "Certificates",
        "Certificates",
        "ACM certificates: days to expiry, imported ones, stuck validation or renewal",
        Totals("certificates", "certificate", "certificates"),
    ),
    Kind(
        "security",
        "Security",
        "Security findings",
        "Security Hub active findings by severity; Security Hub and GuardDuty switched on",
        Totals("findings", "finding", "findings"),
    ),
    Kind(
        "cost",
        "Cost",
        "Cost",
        "yesterday's spend against the 7-day average, by service and account; cost anomalies",
        Totals("services", "service", "services"),
    ),
    Kind(
        "hygiene",
        "Hygiene",
        "Account hygiene",
        "root MFA and keys, old access keys, CloudTrail, AWS Config, S3 Block Public Access",
        Totals("controls", "control", "controls"),
    ),
)
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def title(name: str) -> str:
    """``RDS`` for ``rds``; an unknown name (a kind removed since a run) as it is."""
    kind = BY_NAME.get(name)
    return kind.title if kind is not None else name


def group(name: str) -> str:
    """``Backups`` for ``backup``; an unknown name as it is."""
    kind = BY_NAME.get(name)
    return kind.group if kind is not None else name
