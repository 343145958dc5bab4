"""Link unfurls: the compact card Slack shows under a web-view link posted in a conversation —
a run (``/runs/1842``), a customer (``/customers/aryanoble`` and its ``/findings``), a month's
report (``/customers/aryanoble/reports/2026-11``).

Each card is one section and one context line, in the marks of :mod:`blocks.marks`, times in
the customer's zone. The blocks carry no ids: nothing in them can be pressed. Pure: the service
(:mod:`app.slack.unfurls`) decides who may see a card and reads what it shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from blocks import text as t
from blocks.marks import BLIND_MARK, SEVERITY_MARK, SEVERITY_WORD, STANDING_MARK, clock, mark
from blocks.marks import duration as how_long
from blocks.report import AskedReport
from checks import kinds

if TYPE_CHECKING:
    from app.engine.runs import RunView
    from app.models import Run

NAMED = 5
"""Checks or accounts named on a run's card; the rest are counted (``+3``)."""
ERROR_TEXT = 300
"""Characters of a failed run's error shown on its card."""
NAME = 150
"""Characters of a customer's name shown in a card's title."""
LINE = 700
"""Characters of one line of a card at most: four fit in a section, however long the names."""
_PROBLEMS = (
    ("crit", "critical", "critical"),
    ("error", "could not check", "could not check"),
    ("warn", "warning", "warnings"),
)
_QUIET = (("ok", "OK", "OK"), ("skipped", "skipped", "skipped"))


@dataclass(frozen=True)
class CustomerGlance:
    """A customer as its card shows it."""

    name: str
    tz: tzinfo
    latest: Run | None
    """Its latest finished run (None: none yet)."""
    steps: Mapping[tuple[str, str], str]
    """That run's results: (account, check) → severity."""
    open: int
    """Open findings, acknowledged ones included (snoozed, muted and in maintenance not)."""
    critical: int
    """How many of those are critical."""
    quiet: int
    """Open findings snoozed, muted or in a maintenance window."""
    blind: int
    """Account × checks that cannot look (blind spots)."""
    next_digest: tuple[str, datetime] | None
    """The schedule whose digest comes next, and when (None: no digest is scheduled)."""
    more: bool = False
    """More open findings than were read: the counts are at least these."""


def run_unfurl(view: RunView, *, customer_name: str, tz: tzinfo, now: datetime) -> dict[str, Any]:
    """``⏳ Running · Aryanoble · run #1842`` with its checks, its problems by severity, and
    when it started and finished."""
    run = view.run
    title = f"*{mark(run.status, run.outcome)} {_word(run)} · {_name(customer_name)} · #{run.id}*"
    lines = [title, _checks(view)]
    counted = _counts([r.severity for r in view.results])
    if counted:
        lines.append(counted)
    if run.error:
        lines.append(f"{SEVERITY_MARK['error']} {t.escape(t.truncate(run.error, ERROR_TEXT))}")
    return _card(lines, [_when(run, tz, now)])


def customer_unfurl(
    glance: CustomerGlance, now: datetime, *, findings: bool = False
) -> dict[str, Any]:
    """``Aryanoble``: its latest run's outcome, its open findings and blind spots, and when its
    next digest comes (``findings``: the card of its findings page)."""
    name = _name(glance.name)
    title = f"*Findings · {name}*" if findings else f"*{name}*"
    return _card(
        [title, _latest(glance, now), _standing(glance)],
        [_next_digest(glance, now)],
    )


def report_unfurl(report: AskedReport) -> dict[str, Any]:
    """A month's report: its two-line headline, the month and the zone its times are in."""
    first, second = (t.escape(line) for line in report.headline)
    about = [f"{t.escape(report.label)} · times in {t.escape(report.timezone)}"]
    if report.began:
        about.append(f"Monitoring began on {t.escape(report.began)}; the figures start there.")
    about += [t.escape(note) for note in report.notes]
    return _card([f"*{first}*", second], about)


# -- pieces -----------------------------------------------------------------------------------


def _card(lines: Sequence[str], about: Sequence[str]) -> dict[str, Any]:
    """One section and one context block: what ``chat.unfurl`` is given for one link."""
    elements = [t.mrkdwn(t.truncate(x, LINE)) for x in about if x][: t.CONTEXT_ELEMENTS]
    return {
        "blocks": [
            {
                "type": "section",
                "text": t.mrkdwn(t.fit_lines([t.truncate(x, LINE) for x in lines if x])),
            },
            {"type": "context", "elements": elements or [t.mrkdwn(" ")]},
        ]
    }


def _name(name: str) -> str:
    return t.escape(t.truncate(name, NAME))


def _word(run: Run) -> str:
    """``Running``, ``Critical``, ``Failed``…: a run's status while it is not done, then its
    outcome (the web view's words)."""
    if run.status == "running" and run.cancel_requested_by:
        return "Cancelling"
    if run.status in ("queued", "running", "cancelled", "failed"):
        return run.status.capitalize()
    return SEVERITY_WORD.get(run.outcome or "ok", "Done")


def _checks(view: RunView) -> str:
    """``3 checks: RDS, Budget, Backup · arbel, arbel-dr · 2 of 3 done``."""
    run = view.run
    titles = _named(kinds.title(x["check"]) for x in run.targets)
    accounts = _named(x["account"] for x in run.targets)
    total = view.total
    said = f"{total} check{'' if total == 1 else 's'}: {titles} · {accounts}"
    if not view.terminal:
        said += f" · {view.done} of {total} done"
    return said


def _named(values: Iterable[str]) -> str:
    unique = list(dict.fromkeys(str(v) for v in values))
    shown = ", ".join(t.escape(v) for v in unique[:NAMED])
    extra = len(unique) - NAMED
    return f"{shown} (+{extra})" if extra > 0 else shown


def _counts(severities: Sequence[str]) -> str:
    """``🔴 1 critical · ⚠️ 1 could not check · 🟠 2 warnings · ✅ 3 OK``: problems first, the
    rest last."""
    parts = []
    for severity, one, many in (*_PROBLEMS, *_QUIET):
        n = severities.count(severity)
        if n:
            parts.append(f"{SEVERITY_MARK[severity]} {n} {one if n == 1 else many}")
    return " · ".join(parts)


def _when(run: Run, tz: tzinfo, now: datetime) -> str:
    """``Started 07:03 WIB · finished 07:03 WIB (14 s) · requested by @alice``."""
    if run.started_at is None:
        parts = [f"Queued at {clock(run.created_at, tz, now)}"]
    else:
        parts = [f"Started {clock(run.started_at, tz, now)}"]
    if run.finished_at is not None:
        ended = "cancelled" if run.status == "cancelled" else "finished"
        took = (
            f" ({how_long((run.finished_at - run.started_at).total_seconds())})"
            if run.started_at is not None
            else ""
        )
        parts.append(f"{ended} {clock(run.finished_at, tz, now)}{took}")
    parts.append(f"requested by {t.user(run.requested_by)}")
    return " · ".join(parts)


def _latest(glance: CustomerGlance, now: datetime) -> str:
    """``Latest run: 🔴 Critical · #1842 · 07:03 WIB · 🔴 1 critical · ✅ 5 OK``. Never ✅
    while a check cannot look."""
    run = glance.latest
    if run is None:
        return "Latest run: none finished yet"
    shown = mark(run.status, run.outcome)
    if shown == SEVERITY_MARK["ok"] and glance.blind:
        shown = BLIND_MARK
    at = clock(run.finished_at or run.created_at, glance.tz, now)
    said = f"Latest run: {shown} {_word(run)} · #{run.id} · {at}"
    counted = _counts(list(glance.steps.values()))
    return f"{said} · {counted}" if counted else said


def _standing(glance: CustomerGlance) -> str:
    """``🔴 3 open findings, 1 critical · 💤 2 snoozed or muted · 🕳️ 1 not checked``."""
    plus = "+" if glance.more else ""
    if glance.open:
        tone = SEVERITY_MARK["crit"] if glance.critical else SEVERITY_MARK["warn"]
        noun = "finding" if glance.open == 1 and not plus else "findings"
        said = f"{tone} {glance.open:,}{plus} open {noun}"
        if glance.critical:
            said += f", {glance.critical:,} critical"
    elif glance.blind:
        said = "No open findings"
    else:
        said = f"{SEVERITY_MARK['ok']} No open findings"
    parts = [said]
    if glance.quiet:
        parts.append(f"{STANDING_MARK['snoozed']} {glance.quiet:,}{plus} snoozed or muted")
    if glance.blind:
        parts.append(f"{BLIND_MARK} {glance.blind:,} not checked")
    return " · ".join(parts)


def _next_digest(glance: CustomerGlance, now: datetime) -> str:
    """``Next digest: daily · Sat 21 Nov 07:00 WIB``."""
    if glance.next_digest is None:
        return "No digest scheduled"
    name, at = glance.next_digest
    return f"Next digest: {t.escape(name)} · {clock(at, glance.tz, now)}"
