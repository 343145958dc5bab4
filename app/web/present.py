"""From rows to what the pages show: marks, words, local times, ordered results, charts.

Pure functions, no I/O. The wording and ordering follow the terminal card (``blocks.terminal``) and
the marks are the shared ones (``blocks.marks``): problems first, OK folded, run ids as #1842.
Slack ids are shown by name where a :data:`~app.web.names.Namer` knows it (``@alice``, ``#ops``).

Times, one rule: what is about one customer (its page, its findings, a run of it, a list of its
runs) is in that customer's zone; a list that spans customers (the runboard, all runs) is in UTC
(:data:`MIXED_ZONE`), said in its heading. Every time carries its zone's abbreviation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

from markupsafe import Markup

from app.config import Customer, format_window
from app.engine.answers import Rule, Standing
from app.engine.blind import BlindSpot
from app.engine.findings import change as finding_change
from app.engine.maintenance import Window, as_json
from app.engine.runboard import FailedDeliveries, FailedNotices
from app.models import Finding, Result, Run, RunEvent
from app.schedules import slots
from app.web import svg, thresholds
from app.web.names import CHANNEL_ID, Namer, no_names
from app.web.standings import Line
from blocks import delivery, findings, marks
from blocks import text as slack_text
from blocks.marks import SEVERITY_MARK, SEVERITY_WORD, STANDING_MARK, STATUS_MARK, mark
from checks import kinds

ORDER = {"crit": 0, "error": 1, "warn": 2, "skipped": 3, "ok": 4}
"""Result order, as on the card: problems first (``blocks.terminal``)."""
QUIET = frozenset({"ok", "skipped"})
UTC_ZONE = ZoneInfo("UTC")
MIXED_ZONE = UTC_ZONE
"""The zone of every time in a list that spans customers (each customer's own page uses its)."""
STALE_S = 30.0
"""A running run whose heartbeat is older than this is shown as possibly stuck (the lease)."""


@dataclass(frozen=True)
class Stamp:
    iso: str
    text: str
    title: str


SAID = {
    "crit": "Critical",
    "warn": "Warning",
    "ok": "OK",
    "error": "Error — could not check",
    "skipped": "Skipped",
    "running": "Running",
    "queued": "Queued",
    "cancelled": "Cancelled",
    "failed": "Failed",
    "none": "",
}
"""What a screen reader says for a mark of each tone (the marks are emoji and colours)."""


@dataclass(frozen=True)
class Step:
    mark: str
    tone: str
    label: str

    @property
    def said(self) -> str:
        return SAID.get(self.tone, "")


@dataclass(frozen=True)
class Chip:
    mark: str
    tone: str
    text: str


@dataclass(frozen=True)
class RunRow:
    id: int
    ref: str
    mark: str
    word: str
    tone: str
    customer_id: str
    customer: str
    accounts: str
    checks: str
    requested_by: str
    source: str
    created: Stamp
    took: str
    done: int
    total: int
    heartbeat: Stamp | None
    heartbeat_ago: str
    stale: bool
    steps: Sequence[Step]
    problems: Sequence[Chip]
    cancelled_by: str | None
    retry_of: int | None


@dataclass(frozen=True)
class ResourceRow:
    mark: str
    tone: str
    id: str
    summary: str
    where: str
    note: str
    chart: Markup


@dataclass(frozen=True)
class ResultBlock:
    anchor: str
    mark: str
    tone: str
    account: str
    check: str
    title: str
    summary: str
    problems: Sequence[ResourceRow]
    quiet: Sequence[ResourceRow]
    details: str
    took: str


@dataclass(frozen=True)
class Pending:
    mark: str
    account: str
    title: str
    word: str


@dataclass(frozen=True)
class EventRow:
    stamp: Stamp
    mark: str
    text: str
    actor: str


@dataclass(frozen=True)
class FailedNote:
    """The runboard's line about Slack deliveries that failed for good in the last 24 h."""

    count: int
    text: str
    """``2 Slack deliveries failed in the last 24 h``."""
    latest: str
    """The latest: which, where, Slack's code, why and what to do ("" when hidden)."""
    stamp: Stamp | None
    run_id: int | None


@dataclass(frozen=True)
class Fire:
    customer_id: str
    customer: str
    schedule: str
    checks: str
    stamp: Stamp
    moment: datetime = field(compare=False)


# -- time --------------------------------------------------------------------------------------


def zone(customer: Customer | None) -> ZoneInfo:
    return customer.tz if customer is not None else UTC_ZONE


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def stamp(
    moment: datetime,
    tz: ZoneInfo,
    now: datetime,
    seconds: bool = False,
    *,
    own: ZoneInfo | None = None,
) -> Stamp:
    """``07:03 WIB`` today, ``yesterday 07:03 WIB``, else ``Sat 21 Nov 07:03 WIB``. In a list
    shown in UTC, ``own`` (the customer's zone) adds the customer's own time to the title
    (``… 00:03 UTC · 07:03 WIB``), so hovering says what the customer's clock said.

    Formatted by hand, not with ``strftime``: a findings page shows a few hundred of these."""
    local = moment.astimezone(tz)
    today = now.astimezone(tz).date()
    date = local.date()
    hm = f"{local.hour:02d}:{local.minute:02d}"
    hms = f"{hm}:{local.second:02d}"
    zone_name = local.tzname() or ""
    if date == today:
        day = ""
    elif date == today - timedelta(days=1):
        day = "yesterday "
    elif date == today + timedelta(days=1):
        day = "tomorrow "
    elif date.year == today.year:
        day = f"{_DAYS[date.weekday()]} {date.day:02d} {_MONTHS[date.month - 1]} "
    else:
        day = f"{date.day:02d} {_MONTHS[date.month - 1]} {date.year} "
    title = f"{date.isoformat()} {hms} {zone_name}"
    if own is not None and own != tz:
        theirs = moment.astimezone(own)
        title += f" · {theirs.date().isoformat()} {theirs:%H:%M} {theirs.tzname() or ''}".rstrip()
    return Stamp(
        iso=moment.astimezone(UTC).isoformat(),
        text=f"{day}{hms if seconds else hm} {zone_name}".strip(),
        title=title,
    )


def ago(moment: datetime, now: datetime) -> str:
    return marks.ago((now - moment).total_seconds())


def took(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return marks.duration((end - start).total_seconds())


def fire_times(cron: str, tz: ZoneInfo, now: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` fire times of a cron read in ``tz``, in ``tz`` — computed by the
    scheduler itself, so the page shows exactly the slots that will fire (DST included).

    Cron has minute resolution, so the answer is the same all minute long: cached."""
    return list(_fire_times(cron, tz, now.replace(second=0, microsecond=0), count))


@lru_cache(maxsize=512)
def _fire_times(cron: str, tz: ZoneInfo, minute: datetime, count: int) -> tuple[datetime, ...]:
    fires = slots.fire_times(slots.CronCadence(cron, tz), minute, count)
    return tuple(fire.astimezone(tz) for fire in fires)


def next_fires(
    customers: Iterable[Customer], now: datetime, tz: ZoneInfo | None = None
) -> list[Fire]:
    """The next fire time of every schedule, soonest first, in ``tz`` (else each customer's)."""
    fires = [
        Fire(
            customer.id,
            customer.name,
            schedule.name,
            "last month's report"
            if schedule.kind == "report"
            else ", ".join(schedule.checks) or "configured checks",
            stamp(moment, tz or customer.tz, now, own=customer.tz),
            moment,
        )
        for customer in customers
        for schedule in customer.schedules
        for moment in fire_times(schedule.cron, customer.tz, now)
    ]
    return sorted(fires, key=lambda f: f.moment)


# -- runs --------------------------------------------------------------------------------------


def tone(status: str, outcome: str | None) -> str:
    """The colour of a run: its status while active, then its outcome."""
    if status in ("queued", "running", "cancelled"):
        return status
    if status == "failed":
        return "error"
    return outcome if outcome in SEVERITY_MARK else "ok"


def word(status: str, outcome: str | None) -> str:
    if status in ("queued", "running", "cancelled", "failed"):
        return status.capitalize()
    return SEVERITY_WORD.get(outcome or "ok", "Done")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def steps(run: Run, severities: Mapping[tuple[str, str], str]) -> list[Step]:
    """Every target of the run with its mark: its result, or running / queued. Labels name
    the account only when the run spans several."""
    pending = STATUS_MARK["running"] if run.status == "running" else STATUS_MARK["queued"]
    pending_tone = "running" if run.status == "running" else "queued"
    several = len({t["account"] for t in run.targets}) > 1
    out = []
    for target in run.targets:
        key = (target["account"], target["check"])
        label = f"{key[0]} · {key[1]}" if several else key[1]
        severity = severities.get(key)
        if severity is None:
            out.append(Step(pending, pending_tone, label))
        else:
            out.append(Step(SEVERITY_MARK.get(severity, "❔"), severity, label))
    return out


def problems(severities: Mapping[tuple[str, str], str]) -> list[Chip]:
    """``🔴 2 critical (rds, backup)``-style chips, most urgent first."""
    chips = []
    for severity, one, many in (
        ("crit", "critical", "critical"),
        ("error", "error", "errors"),
        ("warn", "warning", "warnings"),
    ):
        checks = sorted({check for (_, check), sev in severities.items() if sev == severity})
        count = sum(1 for sev in severities.values() if sev == severity)
        if count:
            noun = one if count == 1 else many
            chips.append(
                Chip(SEVERITY_MARK[severity], severity, f"{count} {noun} ({', '.join(checks)})")
            )
    return chips


def run_row(
    run: Run,
    customer: Customer | None,
    severities: Mapping[tuple[str, str], str],
    now: datetime,
    with_steps: bool = False,
    *,
    tz: ZoneInfo | None = None,
    names: Namer = no_names,
) -> RunRow:
    """A run's line; its times in ``tz`` (a list spanning customers), else its customer's."""
    local = zone(customer)
    tz = tz or local
    return RunRow(
        id=run.id,
        ref=f"#{run.id}",
        mark=mark(run.status, run.outcome),
        word=word(run.status, run.outcome),
        tone=tone(run.status, run.outcome),
        customer_id=run.customer_id,
        customer=customer.name if customer else run.customer_id,
        accounts=", ".join(_unique(t["account"] for t in run.targets)),
        checks=", ".join(_unique(t["check"] for t in run.targets)),
        requested_by=person(run.requested_by, names),
        source=run.source,
        created=stamp(run.created_at, tz, now, own=local),
        took=took(run.started_at, run.finished_at),
        done=len(severities),
        total=len(run.targets),
        heartbeat=stamp(run.heartbeat_at, tz, now, seconds=True) if run.heartbeat_at else None,
        heartbeat_ago=ago(run.heartbeat_at, now) if run.heartbeat_at else "",
        stale=run.status == "running"
        and (run.heartbeat_at is None or (now - run.heartbeat_at).total_seconds() > STALE_S),
        steps=steps(run, severities) if with_steps else (),
        problems=problems(severities),
        cancelled_by=person(run.cancel_requested_by, names) or None,
        retry_of=run.retry_of,
    )


def window(run: Run) -> str:
    seconds = run.params.get("window_s")
    return format_window(timedelta(seconds=seconds)) if seconds else ""


# -- results -----------------------------------------------------------------------------------


def ordered(results: Iterable[Result]) -> list[Result]:
    return sorted(results, key=lambda r: (ORDER.get(r.severity, 9), r.account, r.check))


def result_blocks(results: Iterable[Result]) -> list[ResultBlock]:
    blocks = []
    for result in ordered(results):
        rows = [resource_row(res, result) for res in result.details.get("resources", [])]
        rest = {k: v for k, v in result.details.items() if k != "resources"}
        blocks.append(
            ResultBlock(
                anchor=f"r-{_slug(result.account)}-{_slug(result.check)}",
                mark=SEVERITY_MARK.get(result.severity, "❔"),
                tone=result.severity,
                account=result.account,
                check=result.check,
                title=kinds.title(result.check),
                summary=result.summary,
                problems=[r for r in rows if r.tone not in QUIET],
                quiet=[r for r in rows if r.tone in QUIET],
                details=json.dumps(rest, indent=2, ensure_ascii=False, default=str) if rest else "",
                took=took(result.started_at, result.finished_at),
            )
        )
    return blocks


def pending(run: Run, results: Iterable[Result], terminal: bool) -> list[Pending]:
    done = {(r.account, r.check) for r in results}
    running = run.status == "running"
    out = []
    for target in run.targets:
        key = (target["account"], target["check"])
        if key in done:
            continue
        out.append(
            Pending(
                STATUS_MARK["running"] if running else STATUS_MARK["queued"],
                key[0],
                kinds.title(key[1]),
                "running…" if running else "not run" if terminal else "queued",
            )
        )
    return out


def resource_row(res: Mapping[str, Any], result: Result) -> ResourceRow:
    severity = str(res.get("severity", "ok"))
    rid = str(res.get("id", "?"))
    summary = own_words(str(res.get("summary", "")), rid, str(res.get("label") or ""))
    note = str(res.get("reason") or res.get("status_message") or "")
    if note and note in summary:
        note = ""
    where = " · ".join(str(x) for x in (res.get("region"), res.get("label")) if x)
    return ResourceRow(
        mark=SEVERITY_MARK.get(severity, "❔"),
        tone=severity,
        id=rid,
        summary=summary,
        where=where,
        note=note,
        chart=chart(res, result),
    )


def own_words(summary: str, rid: str, label: str) -> str:
    """A resource's summary without what its line already shows before it (its id, its
    label): ``shop-prod-db: failed in vault Default`` → ``failed in vault Default``."""
    for lead in (rid, label):
        for joint in (": ", " · ", " — ", " "):
            head = f"{lead}{joint}"
            if lead and summary.startswith(head) and len(summary) > len(head):
                summary = summary[len(head) :]
                break
    return summary


def chart(res: Mapping[str, Any], result: Result) -> Markup:
    """A sparkline for a resource with a series, a bar for one with a fraction."""
    severity = str(res.get("severity", "ok"))
    key = res.get("series")
    values = result.series.get(key) if isinstance(key, str) else None
    if values and isinstance(key, str):
        lines, extreme = thresholds.limits(res, result, key)
        return svg.sparkline(
            values,
            thresholds=lines if severity not in QUIET else (),
            severity=severity,
            extreme=extreme,
            label=str(res.get("summary", "")),
        )
    fraction = res.get("fraction")
    if isinstance(fraction, int | float):
        forecast = res.get("forecast_pct")
        return svg.bar(
            float(fraction),
            severity=severity,
            marker=float(forecast) / 100 if isinstance(forecast, int | float) else None,
            label=str(res.get("summary", "")),
        )
    return Markup("")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


# -- the timeline ------------------------------------------------------------------------------

_EVENT_MARK = {
    "created": "🆕",
    "access": "🔑",
    "claimed": "▶",
    "check_retried": "🔁",
    "cancel_requested": "✋",
    "cancelled": STATUS_MARK["cancelled"],
    "completed": "🏁",
    "failed": SEVERITY_MARK["error"],
    "requeued": "↩",
    "retried": "🔁",
    "delivered": "💬",
    "delivery_failed": delivery.MARK,
}
SOURCE_WORDS = {
    "slash": "Asked for in Slack with /monitor",
    "button": "Asked for in Slack with a button",
    "modal": "Asked for in Slack with the Run checks form",
    "schedule": "Started by its schedule",
    "cli": "Asked for on the command line",
    "web": "Asked for through the API",
}
FIXED_WORDS = {
    "cancel_requested": "Cancel asked for",
    "cancelled": "Cancelled",
    "retried": "Retried",
}
PEOPLE_EVENTS = frozenset({"created", "access", "cancel_requested", "cancelled", "retried"})
"""Events a person may do: their actor is shown (by name). The others are the hub's own
(a replica picking up a run, a check finishing), whose actor is a worker id nobody needs."""
LOST = "the worker running it stopped responding"
"""How a requeue or failure after a replica stopped reads (``app.engine.transitions``)."""


def timeline(
    events: Iterable[RunEvent], tz: ZoneInfo, now: datetime, names: Namer = no_names
) -> list[EventRow]:
    """A run's events in plain words, oldest first: who did what (never a worker id)."""
    rows, after = [], ""
    for event in events:
        rows.append(event_row(event, tz, now, names, after))
        if event.type == "requeued":
            after = str((event.data or {}).get("reason") or "")
        elif event.type == "claimed":
            after = ""
    return rows


def event_row(
    event: RunEvent, tz: ZoneInfo, now: datetime, names: Namer = no_names, after: str = ""
) -> EventRow:
    """One event; ``after`` is why the run was last put back in the queue (for a claim)."""
    data = dict(event.data or {})
    if data.get("channel"):
        data["channel"] = channel(str(data["channel"]), names)
    text, symbol = event_text(event.type, data, after)
    actor = person(event.actor, names) if event.type in PEOPLE_EVENTS else ""
    if event.type == "created" and actor.startswith("schedule:"):
        text, actor = f"Started by the {actor.removeprefix('schedule:')} schedule", ""
    elif actor == "cli":  # the text says so
        actor = ""
    return EventRow(stamp(event.created_at, tz, now, seconds=True), symbol, text, actor)


def event_text(kind: str, data: Mapping[str, Any], after: str = "") -> tuple[str, str]:
    """What happened, in words, and its mark."""
    symbol = _EVENT_MARK.get(kind, "•")
    if kind == "check_finished":
        severity = str(data.get("severity", ""))
        title = kinds.title(str(data.get("check", "?")))
        text = f"{data.get('account', '?')} · {title}: {SEVERITY_WORD.get(severity, severity)}"
        return text, SEVERITY_MARK.get(severity, "•")
    if kind == "delivery_failed":
        return delivery.timeline_text(data), delivery.MARK
    if kind == "delivered" and data.get("what"):
        where = f" to {data['channel']}" if data.get("channel") else ""
        return f"Delivered · {data['what']}{where}", symbol
    return _plain_words(kind, data, after), symbol


def _plain_words(kind: str, data: Mapping[str, Any], after: str) -> str:
    reason = str(data.get("reason") or data.get("error") or "")
    if kind == "created":
        text = SOURCE_WORDS.get(str(data.get("source") or ""), "Asked for")
        return text + (f" · a retry of #{data['retry_of']}" if data.get("retry_of") else "")
    if kind == "access":
        verdict = "allowed" if data.get("allowed") else "refused"
        return f"Access checked: {verdict}" + (f" — {reason}" if reason else "")
    if kind == "claimed":
        attempt = int(data.get("attempt") or 1)
        if attempt <= 1:
            return "Started"
        why = "after a replica stopped" if LOST in after else "again"
        return f"Picked up {why} (attempt {attempt})"
    if kind == "check_retried":
        check = f"{data.get('account', '?')} · {kinds.title(str(data.get('check', '?')))}"
        return f"{check}: trying again (try {data.get('try', '?')})" + _dash(reason)
    if kind == "requeued":
        if LOST in reason:
            return "Back in the queue: the replica running it stopped responding"
        return "Back in the queue" + _dash(reason)
    if kind == "completed":
        outcome = str(data.get("outcome") or "ok")
        return f"Finished: {SEVERITY_WORD.get(outcome, outcome)}"
    if kind == "failed":
        return "Failed" + _dash(reason)
    return FIXED_WORDS.get(kind) or kind.replace("_", " ").capitalize() + _dash(reason)


def _dash(words: str) -> str:
    return f" — {words}" if words else ""


def failed_deliveries(
    failed: FailedDeliveries,
    customers: Mapping[str, Customer],
    now: datetime,
    tz: ZoneInfo | None = None,
    names: Namer = no_names,
) -> FailedNote | None:
    """``⚠️ 2 Slack deliveries failed in the last 24 h · latest 07:05 WIB: card of #1842 to
    C0OPS · channel_not_found — …``; None when there were none."""
    if not failed.count:
        return None
    many = "deliveries" if failed.count != 1 else "delivery"
    text = f"{failed.count} Slack {many} failed in the last 24 h"
    last = failed.latest
    if last is None:
        return FailedNote(failed.count, text, "", None, None)
    name = delivery.thing(last.kind)
    words = delivery.explain(last.error, what=name, ref=last.key, run_id=last.run_id)
    which = f"{name} of #{last.run_id}" if last.run_id is not None else name
    where = f" to {channel(last.channel, names)}" if last.channel else ""
    latest = f"{which}{where} · {delivery.error_code(last.error)} — {words.reason}: {words.fix}"
    tz = tz or zone(customers.get(last.customer_id or ""))
    return FailedNote(failed.count, text, latest, stamp(last.at, tz, now), last.run_id)


DESTINATIONS = {"pagerduty": "PagerDuty"}


def failed_notices(
    failed: FailedNotices,
    customers: Mapping[str, Customer],
    now: datetime,
    tz: ZoneInfo | None = None,
) -> FailedNote | None:
    """``⚠️ 1 PagerDuty or webhook event failed in the last 24 h · latest 03:05 WIB: trigger
    for aryanoble to PagerDuty — PagerDuty refused the event (400: …): check …``; None when
    there were none."""
    if not failed.count:
        return None
    many = "events" if failed.count != 1 else "event"
    text = f"{failed.count} PagerDuty or webhook {many} failed in the last 24 h"
    last = failed.latest
    if last is None:
        return FailedNote(failed.count, text, "", None, None)
    where = DESTINATIONS.get(last.destination, last.destination.replace(":", " "))
    latest = f"{last.action} for {last.customer_id} to {where} — {last.error}"
    tz = tz or zone(customers.get(last.customer_id))
    return FailedNote(failed.count, text, latest, stamp(last.at, tz, now), None)


# -- findings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """One thing beside a finding's line: ``👀 acknowledged by @U0ALICE 10:02 WIB``."""

    mark: str
    text: str
    stamp: Stamp | None = None
    tail: str = ""


@dataclass(frozen=True)
class FindingRow:
    id: int
    mark: str
    tone: str
    where: str
    resource: str
    summary: str
    fingerprint: str
    age: str
    change: str
    notes: Sequence[Note]
    first_seen: Stamp
    run_id: int


@dataclass(frozen=True)
class RuleRow:
    key: str
    origin: str
    """``yaml`` or ``slack`` (a CSS class)."""
    origin_word: str
    scope: str
    resource: str
    reason: str
    who: str
    at: Stamp | None
    until: Stamp | None
    mutes: int


ORIGIN_WORD = {"yaml": "YAML", "slack": "Slack"}


def person(ref: str | None, names: Namer = no_names) -> str:
    """``@alice`` for a Slack user id Slack named (``@U0ALICE`` when it did not), anything else
    (``cli``, ``schedule:daily``) as is."""
    if not ref:
        return ""
    if not slack_text.user(ref).startswith("<@"):
        return ref
    return names(ref) or f"@{ref}"


def channel(ref: str, names: Namer = no_names) -> str:
    """``#ops`` for a Slack channel id Slack named, else the id; anything else as is."""
    return (names(ref) or ref) if CHANNEL_ID.match(ref) else ref


def finding_row(
    found: Line, now_is: Standing, tz: ZoneInfo, now: datetime, names: Namer = no_names
) -> FindingRow:
    """A finding's line: where, what, how long, what changed, and who answered it."""

    def _by(ref: str | None) -> str:
        return f" by {person(ref, names)}" if ref else ""

    resolved = now_is.state == "resolved"
    notes: list[Note] = []
    if now_is.back:
        notes.append(Note(findings.BACK_MARK[now_is.back], findings.BACK_WORD[now_is.back]))
    if now_is.state == "snoozed":
        until = stamp(now_is.until, tz, now) if now_is.until else None
        words = f"snoozed{_by(now_is.by)} until" + ("" if until else " it resolves")
        notes.append(Note(STANDING_MARK["snoozed"], words, until, _why(now_is.reason)))
    elif now_is.state == "maintenance":
        until = stamp(now_is.until, tz, now) if now_is.until else None
        name = getattr(now_is.rule, "name", "")
        words = f"during maintenance ({name})" if name else "during maintenance"
        notes.append(
            Note(STANDING_MARK["maintenance"], words + " until", until, _why(now_is.reason))
        )
    elif now_is.state == "muted" and now_is.rule is not None:
        rule = now_is.rule
        until = stamp(rule.until, tz, now) if rule.until else None
        words = f"muted{_by(now_is.by)} ({ORIGIN_WORD[rule.origin]} rule {rule.key})"
        words += " until" if until else ""
        notes.append(Note(STANDING_MARK["muted"], words, until, _why(now_is.reason)))
    if now_is.ack_by and not resolved:
        at = stamp(found.ack_at, tz, now) if found.ack_at else None
        notes.append(Note(STANDING_MARK["acknowledged"], f"acknowledged{_by(now_is.ack_by)}", at))
    if resolved:
        ended = found.resolved_at or found.last_seen_at
        notes.append(Note("", "resolved", stamp(ended, tz, now)))
        lasted = marks.duration((ended - found.first_seen_at).total_seconds(), precise=False)
        age, change = f"was open {lasted}", ""
    else:
        age = findings.age(cast(Finding, found), now)  # it reads first_seen_at alone
        change = findings.change_note(finding_change(found.history, found.returns))
    where = f"{found.account} · {kinds.title(found.check)}"
    return FindingRow(
        id=found.id,
        mark=SEVERITY_MARK["ok"] if resolved else SEVERITY_MARK.get(found.severity, "❔"),
        tone="ok" if resolved else found.severity,
        where=where,
        resource=found.resource,
        summary=found.summary,
        fingerprint=found.fingerprint,
        age=age,
        change=change,
        notes=notes,
        first_seen=stamp(found.first_seen_at, tz, now),
        run_id=found.last_run_id,
    )


def _why(reason: str | None) -> str:
    return f"— {reason}" if reason else ""


def rule_row(
    rule: Rule, mutes: int, tz: ZoneInfo, now: datetime, names: Namer = no_names
) -> RuleRow:
    where = [
        kinds.title(rule.check),
        rule.account or "every account",
        rule.region or "every region",
    ]
    return RuleRow(
        key=rule.key,
        origin=rule.origin,
        origin_word=ORIGIN_WORD.get(rule.origin, rule.origin),
        scope=" · ".join(where),
        resource=rule.resource,
        reason=rule.reason,
        who=person(rule.by or rule.owner, names),
        at=stamp(rule.at, tz, now) if rule.at else None,
        until=stamp(rule.until, tz, now) if rule.until else None,
        mutes=mutes,
    )


# -- blind spots -------------------------------------------------------------------------------

BLIND_MARK = marks.BLIND_MARK
"""A blind spot: an account × check that could not look (docs/findings.md#blind-spots)."""


@dataclass(frozen=True)
class BlindRow:
    """``🕳️ Not checked: Aryanoble · arbel · backup since Tue 01 Dec 07:00 WIB — AccessDenied…``"""

    customer_id: str
    customer: str
    account: str
    check: str
    since: Stamp | None
    """Not checked since (in the customer's zone): the last successful look, else the first
    failed one."""
    why: str
    detail: str
    """What the check said, whole (shown on hover)."""
    looks: str
    """``3 looks in a row``."""


def blind_row(
    spot: BlindSpot, customer: Customer | None, now: datetime, tz: ZoneInfo | None = None
) -> BlindRow:
    """A blind spot's line, its time in ``tz`` (a list spanning customers), else its
    customer's zone."""
    local = zone(customer)
    since = stamp(spot.since, tz or local, now, own=local) if spot.since else None
    looks = f"{spot.failed} look{'s' if spot.failed != 1 else ''} in a row could not look"
    name = customer.name if customer is not None else spot.customer
    return BlindRow(
        spot.customer, name, spot.account, spot.check, since, spot.why, spot.detail, looks
    )


def not_checked(count: int) -> str:
    """``2 not checked``: what stands in for "all OK" while a customer has blind spots."""
    return f"{count:,} not checked"


def blind_counts(spots: Iterable[BlindSpot]) -> dict[str, int]:
    """Customer id → how many blind spots it has."""
    counts: dict[str, int] = {}
    for spot in spots:
        counts[spot.customer] = counts.get(spot.customer, 0) + 1
    return counts


def blind_json(spot: BlindSpot) -> dict[str, Any]:
    """A blind spot in ``/api/blind-spots``; times in UTC, ISO 8601."""

    def iso(moment: datetime | None) -> str | None:
        return moment.astimezone(UTC).isoformat() if moment else None

    return {
        "customer": spot.customer,
        "account": spot.account,
        "check": spot.check,
        "since": iso(spot.since),
        "last_ok_at": iso(spot.last_ok_at),
        "failing_since": iso(spot.failing_since),
        "failed": spot.failed,
        "reason": spot.reason,
        "call": spot.call,
        "why": spot.why,
        "detail": spot.detail,
    }


# -- maintenance windows -----------------------------------------------------------------------

MAINTENANCE_MARK = marks.MAINTENANCE_MARK
"""During a maintenance window (docs/maintenance.md)."""


@dataclass(frozen=True)
class WindowRow:
    """``🛠️ Maintenance: RDS upgrades · Demo Retail · shop-prod · rds · until 09:00 WIB —
    Weekly engine patching · started by @U0ALICE 07:02 WIB from Slack`` (active), or
    ``🛠️ Upcoming: … · opens Sun 22 Nov 02:00–04:00 WIB — …``."""

    customer_id: str
    customer: str
    name: str
    scope: str
    """``shop-prod, shop-staging · rds`` or ``every account · every check``."""
    when: Stamp
    """Active: when it ends; upcoming: from when to when. In the customer's zone."""
    reason: str
    origin: str
    """``yaml`` or ``slack`` (a CSS class)."""
    who: str
    """``started by @U0ALICE`` for a window started from Slack or the CLI (``by @U0ALICE`` while
    it has yet to open); else empty."""
    at: Stamp | None
    """When it was started (a window started from Slack opens when it is started)."""
    via: str
    """``from Slack`` for a Slack user, ``in the YAML`` for a YAML window."""


def scope(window: Window) -> str:
    """``shop-prod, shop-staging · rds`` or ``every account · every check``."""
    accounts = ", ".join(window.accounts) if window.accounts else "every account"
    checks = ", ".join(window.checks) if window.checks else "every check"
    return f"{accounts} · {checks}"


def span(opens: datetime, closes: datetime, tz: ZoneInfo, now: datetime) -> Stamp:
    """``Sun 22 Nov 02:00–04:00 WIB``; across days or a clock change, both ends in full
    (``Sat 12 Dec 22:00 CET – Sun 13 Dec 04:00 CET``)."""
    first, last = stamp(opens, tz, now), stamp(closes, tz, now)
    start, end = opens.astimezone(tz), closes.astimezone(tz)
    zone_name = end.tzname() or ""
    if start.date() == end.date() and start.tzname() == end.tzname():
        text = f"{first.text.removesuffix(' ' + zone_name)}–{end.hour:02d}:{end.minute:02d} "
        text += zone_name
    else:
        text = f"{first.text} – {last.text}"
    return Stamp(first.iso, text.strip(), f"{first.title} – {last.title}")


def window_row(
    window: Window,
    customer: Customer,
    now: datetime,
    *,
    opening: bool,
    tz: ZoneInfo | None = None,
    names: Namer = no_names,
) -> WindowRow:
    """A window open now (its end), or one ``opening`` soon (its span), in ``tz`` (a list
    spanning customers), else the customer's zone."""
    tz = tz or customer.tz
    when = (
        span(window.starts_at, window.ends_at, tz, now)
        if opening
        else stamp(window.ends_at, tz, now)
    )
    slack = window.source == "slack"
    who = (
        f"{'by' if opening else 'started by'} {person(window.by, names)}"
        if slack and window.by
        else ""
    )
    if not slack:
        via = "in the YAML"
    elif slack_text.user(window.by or "").startswith("<@"):
        via = "from Slack"
    else:
        via = ""
    return WindowRow(
        customer_id=customer.id,
        customer=customer.name,
        name=window.name,
        scope=scope(window),
        when=when,
        reason=window.reason or "",
        origin="slack" if slack else "yaml",
        who=who,
        at=stamp(window.starts_at, tz, now) if slack and not opening else None,
        via=via,
    )


def window_json(window: Window, customer: Customer) -> dict[str, Any]:
    """A window in ``/api/maintenance``: :func:`app.engine.maintenance.as_json` and whose it
    is; times in UTC, ISO 8601."""
    return {"customer": customer.id, **as_json(window)}
