"""A report's sections worked out from the looks of a period: pure functions over the results
the hub recorded (no database). Each look is one account × check of one run; they come in the
order they were made. Times are worked out in UTC and shown in the customer's zone."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from app.engine.blind import why
from app.reports.model import (
    Alarm,
    BackupAccount,
    Backups,
    Budget,
    Crossing,
    Database,
    Endpoint,
    Gap,
    Outage,
    RpoBreach,
)
from checks.kinds import title

PROBLEMS = frozenset({"warn", "crit"})
LOOKED = frozenset({"ok", "warn", "crit"})
"""Severities of a look that worked (``error``: it could not look; ``skipped``: nothing to)."""
FAILED_JOBS = frozenset({"FAILED", "ABORTED", "EXPIRED"})
BLIND_LOOKS = 2
BLIND_AFTER = timedelta(hours=24)
"""A gap is reported from 2 failed looks in a row or 24 hours, the blind-spot rule."""


@dataclass(frozen=True, slots=True)
class Look:
    account: str
    check: str
    severity: str
    at: datetime
    """When the look was made (the result's finish), in UTC."""
    summary: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Frame:
    """What the sections need to know about the period: its instants in UTC (``until`` is
    the end, or now while the period is still going), the zone and its first day."""

    start: datetime
    until: datetime
    tz: tzinfo
    first_day: datetime
    """Midnight of the period's first day, in ``tz``."""
    days: int

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def day_index(self, moment: datetime) -> int:
        """Which day of the period ``moment`` falls on (0 for the first)."""
        return (self.local(moment).date() - self.first_day.date()).days

    def seconds(self, a: datetime, b: datetime | None) -> float:
        return max(0.0, ((b or self.until) - a).total_seconds())


def problem_days(looks: Iterable[Look], frame: Frame) -> int:
    return len({frame.day_index(look.at) for look in looks if look.severity in PROBLEMS})


def _aspect(line: dict[str, Any]) -> str:
    return str(line.get("fingerprint", "")).rsplit(":", 1)[-1]


# -- availability ---------------------------------------------------------------------------


def _down(line: dict[str, Any]) -> bool:
    """Down: no answer, or the wrong one. Slow, or a certificate about to expire, is up."""
    if line.get("severity") != "crit":
        return False
    return _aspect(line) not in {"latency", "cert"} or line.get("latency_ms") is None


def availability(looks: Sequence[Look], frame: Frame) -> tuple[Endpoint, ...]:
    seen: dict[tuple[str, str], list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
    for look in looks:
        if look.check != "http":
            continue
        for line in look.details.get("resources", ()):
            if line.get("severity") in LOOKED:
                seen[(look.account, str(line.get("id")))].append((look.at, line))
    return tuple(_endpoint(account, name, lines, frame) for (account, name), lines in seen.items())


def _endpoint(
    account: str, name: str, lines: list[tuple[datetime, dict[str, Any]]], frame: Frame
) -> Endpoint:
    up = 0
    worst: tuple[float, datetime] | None = None
    outages: list[Outage] = []
    down_since: datetime | None = None
    day_looks = [0] * frame.days
    day_up = [0] * frame.days
    for at, line in lines:
        day = min(max(frame.day_index(at), 0), frame.days - 1)
        day_looks[day] += 1
        latency = line.get("latency_ms")
        if isinstance(latency, int | float) and (worst is None or latency > worst[0]):
            worst = (float(latency), at)
        if _down(line):
            down_since = down_since or at
            continue
        up += 1
        day_up[day] += 1
        if down_since is not None:
            outages.append(_outage(down_since, at, frame))
            down_since = None
    if down_since is not None:
        outages.append(_outage(down_since, None, frame))
    last = lines[-1][1]
    return Endpoint(
        name=name,
        account=account,
        url=last.get("url"),
        looks=len(lines),
        up_looks=up,
        worst_latency_ms=worst[0] if worst else None,
        worst_latency_at=frame.local(worst[1]) if worst else None,
        outages=len(outages),
        longest=max(outages, key=lambda o: o.seconds, default=None),
        cert_days_left=last.get("cert_days_left"),
        daily_uptime=tuple(
            100 * u / n if n else None for u, n in zip(day_up, day_looks, strict=True)
        ),
    )


def _outage(start: datetime, end: datetime | None, frame: Frame) -> Outage:
    return Outage(frame.local(start), frame.local(end) if end else None, frame.seconds(start, end))


# -- backups --------------------------------------------------------------------------------


def backups(looks: Sequence[Look], frame: Frame, rpo_hours: dict[str, float]) -> Backups:
    """Each job once (as the last look saw it), counted when it was created in the period;
    an RPO breach where a resource went longer than its account's RPO between completed
    backups."""
    jobs: dict[str, tuple[str, str, str, datetime, datetime | None]] = {}
    for look in looks:
        if look.check != "backup":
            continue
        for job_id, state, _region, name, created, done in look.details.get("seen", ()):
            jobs[job_id or f"{look.account}:{name}:{created}"] = (
                look.account,
                state,
                name,
                _parse(created),
                _parse(done) if done else None,
            )
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    completed: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for account, state, name, created, done in jobs.values():
        if state == "COMPLETED":
            completed[(account, name)].append(done or created)
        elif (account, name) not in completed:
            completed[(account, name)] = []
        if frame.start <= created < frame.until:
            counts[account][0 if state == "COMPLETED" else 1 if state in FAILED_JOBS else 2] += 1
    breaches: list[RpoBreach] = []
    for (account, name), times in sorted(completed.items()):
        rpo = timedelta(hours=rpo_hours.get(account, 24.0))
        breaches += _breaches(account, name, sorted(times), rpo, frame)
    return Backups(
        accounts=tuple(
            BackupAccount(account, *numbers) for account, numbers in sorted(counts.items())
        ),
        breaches=tuple(sorted(breaches, key=lambda b: b.start)),
        rpo_hours=min(rpo_hours.values(), default=24.0),
    )


def _breaches(
    account: str, name: str, times: list[datetime], rpo: timedelta, frame: Frame
) -> list[RpoBreach]:
    if not times:  # jobs but never one completed that the hub saw
        return [
            RpoBreach(
                account, name, frame.local(frame.start), None, frame.seconds(frame.start, None)
            )
        ]
    out = []
    for before, after in zip(times, [*times[1:], None], strict=True):
        broke = before + rpo
        ended = after if after is not None and after < frame.until else None
        if broke >= (ended or frame.until) or (ended is not None and ended <= frame.start):
            continue
        begin = max(broke, frame.start)
        out.append(
            RpoBreach(
                account,
                name,
                frame.local(begin),
                frame.local(ended) if ended else None,
                frame.seconds(begin, ended),
            )
        )
    return out


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- databases ------------------------------------------------------------------------------

_METRIC = {
    "cpu": "CPU",
    "storage": "free storage",
    "memory": "memory",
    "connections": "connections",
    "status": "status",
    "data": "metrics",
}
_LEVEL = {"warn": "warning", "crit": "critical"}


def databases(looks: Sequence[Look], frame: Frame) -> tuple[Database, ...]:
    figures: dict[tuple[str, str], list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
    regions: dict[tuple[str, str], str] = {}
    crossed: dict[tuple[str, str], dict[str, tuple[str, datetime, str]]] = defaultdict(dict)
    for look in looks:
        if look.check != "rds":
            continue
        for prefix, measured in look.details.get("metrics", {}).items():
            figures[(look.account, prefix)].append((look.at, measured))
        for line in look.details.get("resources", ()):
            key = (look.account, _prefix(line, look.details))
            regions.setdefault(key, str(line.get("region", "")))
            severity = line.get("severity")
            if severity not in PROBLEMS:
                continue
            aspect = _aspect(line)
            known = crossed[key].get(aspect)
            if known is None or (severity == "crit" and known[0] == "warn"):
                first = known[1] if known else look.at
                crossed[key][aspect] = (str(severity), first, str(line.get("summary", "")))
    out = []
    for key in sorted(figures.keys() | crossed.keys()):
        out.append(_database(key, figures.get(key, []), regions, crossed.get(key, {}), frame))
    return tuple(out)


def _prefix(line: dict[str, Any], details: dict[str, Any]) -> str:
    """The key an instance has in ``details["metrics"]``: ``region/name`` when the account
    has several regions."""
    name, region = str(line.get("id")), str(line.get("region", ""))
    metrics = details.get("metrics", {})
    return f"{region}/{name}" if f"{region}/{name}" in metrics else name


def _database(
    key: tuple[str, str],
    rows: list[tuple[datetime, dict[str, Any]]],
    regions: dict[tuple[str, str], str],
    crossed: dict[str, tuple[str, datetime, str]],
    frame: Frame,
) -> Database:
    account, prefix = key
    region, _, name = prefix.rpartition("/")
    peak: tuple[float, datetime] | None = None
    daily_cpu: list[float | None] = [None] * frame.days
    daily_free: list[float | None] = [None] * frame.days
    frees = [(at, m) for at, m in rows if m.get("free_pct") is not None]
    for at, m in rows:
        day = min(max(frame.day_index(at), 0), frame.days - 1)
        cpu = m.get("cpu_max")
        if cpu is not None:
            if peak is None or cpu > peak[0]:
                peak = (float(cpu), at)
            daily_cpu[day] = max(cpu, daily_cpu[day] or cpu)
        free = m.get("free_pct")
        if free is not None:
            daily_free[day] = min(free, daily_free[day] if daily_free[day] is not None else free)
    return Database(
        account=account,
        region=region or regions.get(key, ""),
        name=name,
        cpu_peak=peak[0] if peak else None,
        cpu_peak_at=frame.local(peak[1]) if peak else None,
        free_start_pct=frees[0][1]["free_pct"] if frees else None,
        free_end_pct=frees[-1][1]["free_pct"] if frees else None,
        free_start_gib=frees[0][1].get("free_gib") if frees else None,
        free_end_gib=frees[-1][1].get("free_gib") if frees else None,
        daily_cpu_peak=tuple(daily_cpu),
        daily_free_pct=tuple(daily_free),
        crossings=tuple(
            Crossing(_METRIC.get(aspect, aspect), _LEVEL[level], frame.local(at), plain(text))
            for aspect, (level, at, text) in sorted(crossed.items(), key=lambda i: i[1][1])
        ),
    )


# -- alarms ---------------------------------------------------------------------------------


def alarms(looks: Sequence[Look], frame: Frame) -> tuple[Alarm, ...]:
    """Each time an alarm went into ALARM (its state-change time) is one firing; it lasted
    until the first look of its account that no longer saw it."""
    open_: dict[tuple[str, str], tuple[datetime, str | None]] = {}
    totals: dict[tuple[str, str], list[Any]] = {}

    def close(key: tuple[str, str], since: datetime, end: datetime | None) -> None:
        begin = max(since, frame.start)
        total = totals.setdefault(key, [0, 0.0, since, open_[key][1]])
        total[0] += 1
        total[1] += frame.seconds(begin, end)
        total[2] = max(total[2], since)

    for look in looks:
        if look.check != "alarms" or look.severity not in LOOKED:
            continue
        now_in: dict[tuple[str, str], tuple[datetime, str | None]] = {}
        for line in look.details.get("resources", ()):
            if _aspect(line) not in ("state", ""):  # no data, actions off: not a firing
                continue
            since = _parse(line["since"]) if line.get("since") else look.at
            now_in[(look.account, str(line.get("id")))] = (since, line.get("label"))
        for key, (since, _label) in list(open_.items()):
            if key[0] != look.account:
                continue
            if now_in.get(key, (None,))[0] != since:
                close(key, since, look.at)
                del open_[key]
        for key, value in now_in.items():
            open_.setdefault(key, value)
    for key, (since, _label) in open_.items():
        close(key, since, None)
    return tuple(
        Alarm(account, name, label, fired, seconds, frame.local(last))
        for (account, name), (fired, seconds, last, label) in sorted(
            totals.items(), key=lambda i: -i[1][1]
        )
    )


# -- cost -----------------------------------------------------------------------------------


def budgets(looks: Sequence[Look], before: Sequence[Look], frame: Frame) -> tuple[Budget, ...]:
    """Each budget as the period's last look saw it, against the previous period's last."""
    last = _last_budgets(looks)
    previous = _last_budgets(before)
    out = []
    for (account, name), (at, line) in sorted(last.items()):
        then = previous.get((account, name))
        out.append(
            Budget(
                account=account,
                name=name,
                unit=str(line.get("unit") or "USD"),
                limit=float(line["limit"]),
                actual=float(line["actual"]),
                forecast=float(line["forecast"]) if line.get("forecast") is not None else None,
                as_of=frame.local(at),
                previous_actual=float(then[1]["actual"]) if then else None,
            )
        )
    return tuple(out)


def _last_budgets(looks: Sequence[Look]) -> dict[tuple[str, str], tuple[datetime, dict[str, Any]]]:
    found: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = {}
    for look in looks:
        if look.check != "budget":
            continue
        for line in look.details.get("resources", ()):
            if line.get("limit") and line.get("actual") is not None:
                found[(look.account, str(line.get("id")))] = (look.at, line)
    return found


# -- could not check ------------------------------------------------------------------------


def gaps(looks: Sequence[Look], frame: Frame) -> tuple[Gap, ...]:
    """Runs of looks that could not look, per account and check, kept when they were a blind
    spot (2 looks in a row or 24 hours)."""
    failing: dict[tuple[str, str], list[Look]] = {}
    out: list[Gap] = []

    def close(key: tuple[str, str], end: datetime | None) -> None:
        failed = failing.pop(key)
        first = failed[0]
        if len(failed) < BLIND_LOOKS and (end or frame.until) - first.at < BLIND_AFTER:
            return
        last = failed[-1]
        d = last.details
        reason = why(str(d.get("reason", "")), last.summary, d.get("call"), d.get("code"))
        out.append(
            Gap(
                key[0],
                title(key[1]),
                frame.local(first.at),
                frame.local(end) if end else None,
                frame.seconds(first.at, end),
                len(failed),
                plain(reason),
            )
        )

    for look in looks:
        key = (look.account, look.check)
        if look.severity == "error":
            failing.setdefault(key, []).append(look)
        elif look.severity in LOOKED and key in failing:
            close(key, look.at)
    for key in list(failing):
        close(key, None)
    return tuple(sorted(out, key=lambda g: g.start))


# -- words ----------------------------------------------------------------------------------

_JARGON = re.compile(r"\b(crit|warn)\b")


def plain(text: str) -> str:
    """A check's own words for a customer: ``crit ≥ 90 %`` reads ``critical at ≥ 90 %``."""
    return _JARGON.sub(lambda m: "critical at" if m[1] == "crit" else "warning at", text)
