"""The morning digest: one message per scheduled run, problems first.

::

    ☀️ Aryanoble — daily digest · Sat 21 Nov, 07:00 WIB
    🔴 Critical — 🔴 2 critical · 🟠 1 warning · ✅ 37 OK · 10 accounts
    New since yesterday 07:00 WIB: 🔴 arbel · arbel-prod-db CPU max 93 % …   Resolved: ✅ …
    🔴 Backups — 42 completed, 1 failed · 10 accounts
       🔴 arbel · prod-db: failed in vault Default — "AccessDenied"
    🔴 RDS — 40 instances: 1 critical, 1 warning · 10 accounts
       🔴 arbel · arbel-prod-db CPU max 93 % (crit ≥ 90 %)  ▂▃▅▇█
    ✅ OK: Alarms in 10 accounts · Budgets in 9 accounts
    #1842 · 41 s · Full report ↗

Problems are grouped by check kind across accounts; OK results are folded into counts. "What
changed" compares the resources' fingerprints with the previous digest of the same schedule:
a problem is *new* when that run looked at the same account and check and did not have it,
*resolved* when this run looked and no longer has it (a check that could not look says
nothing either way). However many accounts, the message stays within Slack's limits: at most a
dozen blocks, each section cut to 3,000 characters with "… and N more".

Pure: domain values in, Block Kit (or plain text for the terminal) out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from blocks import text as t
from blocks.card import checks_count, clock
from blocks.marks import (
    SEVERITY_MARK,
    SEVERITY_WORD,
    STATUS_MARK,
    bar,
    duration,
    mark,
    sparkline,
)
from checks import kinds

if TYPE_CHECKING:
    from app.engine.runs import RunView

MAX_LINES_PER_GROUP = 12
"""Problem lines under one check kind; the rest are counted (the web view lists them all)."""
MAX_CHANGES = 8
"""New or resolved problems listed by name; the rest are counted."""
MAX_SUMMARY = 160
_ORDER = {"crit": 0, "error": 1, "warn": 2, "skipped": 3, "ok": 4}
_QUIET = ("ok", "skipped")
_BACKUP_STATES = ("COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL")
_BACKUP_RUNNING = ("CREATED", "PENDING", "RUNNING", "ABORTING")


@dataclass(frozen=True)
class Previous:
    """The previous digest of the same schedule: its run and results."""

    run_id: int
    at: datetime
    results: Sequence[Any]


@dataclass(frozen=True)
class Problem:
    """One thing wrong: a resource finding, or a whole result without findings (a check that
    could not look, a backup plan with no jobs)."""

    fingerprint: str
    account: str
    check: str
    severity: str
    name: str | None
    summary: str
    drawing: str = ""

    @property
    def scope(self) -> tuple[str, str]:
        return self.account, self.check

    @property
    def rank(self) -> int:
        return _ORDER.get(self.severity, 9)


@dataclass(frozen=True)
class Changes:
    new: list[tuple[Problem, str | None]]
    """Problems that are new (or worse: the earlier severity)."""
    resolved: list[Problem]


# -- reading results --------------------------------------------------------------------------


def problems(results: Iterable[Any]) -> dict[str, Problem]:
    """Every problem in ``results`` by fingerprint (stable across runs)."""
    found: dict[str, Problem] = {}
    for result in results:
        if result.severity in _QUIET:
            continue
        details: Mapping[str, Any] = result.details or {}
        resources = [
            r
            for r in details.get("resources") or []
            if isinstance(r, Mapping) and r.get("severity") not in _QUIET
        ]
        for res in resources:
            name = str(res.get("id", "?"))
            fingerprint = str(res.get("fingerprint") or f"{result.check}:{result.account}:{name}")
            found[fingerprint] = Problem(
                fingerprint,
                result.account,
                result.check,
                str(res.get("severity")),
                name,
                str(res.get("summary", "")),
                _drawing(res, result.series or {}),
            )
        if not resources:
            fingerprint = f"{result.check}:{result.account}:*"
            found[fingerprint] = Problem(
                fingerprint, result.account, result.check, result.severity, None, result.summary
            )
    return found


def changes(current: Sequence[Any], previous: Sequence[Any]) -> Changes:
    """New (or worse) and resolved problems between two runs of the same schedule."""
    now, before = problems(current), problems(previous)
    now_scopes = {(r.account, r.check): r.severity for r in current}
    before_scopes = {(r.account, r.check): r.severity for r in previous}

    def comparable(problem: Problem, other: Mapping[tuple[str, str], str]) -> bool:
        severity = other.get(problem.scope)
        return severity is not None and (severity != "error" or problem.name is None)

    new: list[tuple[Problem, str | None]] = []
    for fingerprint, problem in now.items():
        earlier = before.get(fingerprint)
        if earlier is None and comparable(problem, before_scopes):
            new.append((problem, None))
        elif earlier is not None and problem.rank < earlier.rank:
            new.append((problem, earlier.severity))
    resolved = [
        problem
        for fingerprint, problem in before.items()
        if fingerprint not in now and comparable(problem, now_scopes)
    ]
    return Changes(sorted(new, key=lambda n: _sort(n[0])), sorted(resolved, key=_sort))


def _sort(problem: Problem) -> tuple[int, str, str, str]:
    return problem.rank, problem.account, problem.check, problem.name or ""


def _drawing(res: Mapping[str, Any], series: Mapping[str, Any]) -> str:
    points = series.get(str(res.get("series"))) if res.get("series") else None
    if isinstance(points, Sequence) and points:
        numbers = [float(p) for p in points if isinstance(p, int | float)]
        if numbers:
            return sparkline(numbers)
    if isinstance(res.get("fraction"), int | float):
        return bar(float(res["fraction"]))
    return ""


# -- styles: Slack mrkdwn (escaped) or plain text -----------------------------------------------


@dataclass(frozen=True)
class _Style:
    esc: Callable[[object], str]
    bold: Callable[[str], str]
    code: Callable[[str], str]
    link: Callable[[str, str], str]
    user: Callable[[str], str]


SLACK = _Style(
    esc=t.escape,
    bold=lambda s: f"*{s}*",
    code=lambda s: f"`{s}`",
    link=lambda url, label: f"<{url}|{label}>",
    user=t.user,
)
PLAIN = _Style(esc=str, bold=str, code=str, link=lambda url, label: f"{label}: {url}", user=str)


# -- the digest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    kind: str  # "section" | "context"
    text: str
    block_id: str


def digest_message(
    view: RunView,
    *,
    customer_name: str,
    schedule: str,
    tz: tzinfo,
    previous: Previous | None,
    web_url: str | None = None,
) -> dict[str, Any]:
    """The digest as a Slack message: ``{"text": fallback, "blocks": [...]}``."""
    parts = _compose(view, customer_name, schedule, tz, previous, web_url, SLACK)
    blocks = [
        t.section(p.text, p.block_id) if p.kind == "section" else t.context([p.text], p.block_id)
        for p in parts
    ]
    first = _headline(view, customer_name, schedule, tz, SLACK)
    return {
        "text": t.fallback(f"{first} · {_tally(view.results, SLACK)}"),
        "blocks": blocks[: t.MAX_BLOCKS],
    }


def digest_text(
    view: RunView,
    *,
    customer_name: str,
    schedule: str,
    tz: tzinfo,
    previous: Previous | None,
    web_url: str | None = None,
) -> str:
    """The same digest as plain text (``mhub digest send`` with Slack off)."""
    parts = _compose(view, customer_name, schedule, tz, previous, web_url, PLAIN)
    return "\n".join(p.text for p in parts)


def _compose(
    view: RunView,
    customer_name: str,
    schedule: str,
    tz: tzinfo,
    previous: Previous | None,
    web_url: str | None,
    style: _Style,
) -> list[_Part]:
    results = view.results
    parts = [
        _Part("section", _headline(view, customer_name, schedule, tz, style), "digest_title"),
        _Part("section", _overall(view, style), "digest_overall"),
    ]
    parts.extend(_changes(view, previous, tz, style))
    groups = _problem_groups(results)
    parts.extend(
        _Part("section", _group(kind, group, results, style), f"digest_group_{index}")
        for index, (kind, group) in enumerate(groups)
    )
    quiet = _quiet(results, style)
    if quiet:
        parts.append(_Part("context", quiet, "digest_ok"))
    parts.append(_Part("context", _footer(view, web_url, style), "digest_footer"))
    return parts


def _headline(view: RunView, customer_name: str, schedule: str, tz: tzinfo, style: _Style) -> str:
    moment = fired_at(view)
    when = moment.astimezone(tz).strftime("%a %d %b, %H:%M %Z") if moment else ""
    title = style.bold(f"{style.esc(customer_name)} — {style.esc(schedule)} digest")
    return f"☀️ {title} · {when}" if when else f"☀️ {title}"


def _overall(view: RunView, style: _Style) -> str:
    run = view.run
    tally = _tally(view.results, style)
    if run.status == "failed":
        why = f": {style.esc(t.truncate(run.error or '', 300))}" if run.error else ""
        return (
            f"{SEVERITY_MARK['error']} {style.bold('The run failed')}{why} — {view.done} of "
            f"{checks_count(view.total)} finished, so this digest is partial. {tally}"
        )
    if run.status == "cancelled":
        by = f" by {style.user(run.cancel_requested_by)}" if run.cancel_requested_by else ""
        return (
            f"{STATUS_MARK['cancelled']} {style.bold('Cancelled' + by)} after {view.done} of "
            f"{checks_count(view.total)}. {tally}"
        )
    outcome = run.outcome or "ok"
    word = SEVERITY_WORD.get(outcome, "Done")
    return f"{mark(run.status, run.outcome)} {style.bold(word)} — {tally}"


def _tally(results: Sequence[Any], style: _Style) -> str:
    """``🔴 2 critical · 🟠 1 warning · ⚠️ 1 could not check · ✅ 37 OK · 10 accounts``"""
    counts = Counter(r.severity for r in results)
    words = (
        ("crit", "critical"),
        ("warn", "warning"),
        ("error", "could not check"),
        ("ok", "OK"),
        ("skipped", "skipped"),
    )
    parts = [f"{SEVERITY_MARK[s]} {counts[s]} {word}" for s, word in words if counts[s]]
    accounts = len({r.account for r in results})
    if accounts:
        parts.append(f"{accounts} account{'s' if accounts != 1 else ''}")
    return " · ".join(parts) or "no results"


def _changes(view: RunView, previous: Previous | None, tz: tzinfo, style: _Style) -> list[_Part]:
    if previous is None:
        note = "First digest of this schedule; from the next one on it shows what changed."
        return [_Part("context", note, "digest_changes")]
    since = _since(previous.at, fired_at(view), tz)
    found = changes(view.results, previous.results)
    if not found.new and not found.resolved:
        still = len(problems(view.results))
        what = f"the same {still} problem{'s' if still != 1 else ''}" if still else "all OK"
        return [_Part("context", f"No change since {since}: {what}.", "digest_changes")]
    lines: list[str] = []
    if found.new:
        lines.append(style.bold(f"New since {since} ({len(found.new)})"))
        lines += _capped(
            [_change_line(p, was, style) for p, was in found.new], "… and {n} more new"
        )
    if found.resolved:
        lines.append(style.bold(f"Resolved since {since} ({len(found.resolved)})"))
        lines += _capped(
            [_resolved_line(p, style) for p in found.resolved], "… and {n} more resolved"
        )
    return [_Part("section", t.fit_lines(lines), "digest_changes")]


def _capped(lines: list[str], more: str) -> list[str]:
    if len(lines) <= MAX_CHANGES:
        return lines
    return [*lines[: MAX_CHANGES - 1], more.format(n=len(lines) - MAX_CHANGES + 1)]


def _change_line(problem: Problem, was: str | None, style: _Style) -> str:
    now = SEVERITY_MARK.get(problem.severity, "❔")
    marks = f"{SEVERITY_MARK.get(was, '❔')}→{now}" if was else now
    return f"{marks} {_what(problem, style)}"


def _resolved_line(problem: Problem, style: _Style) -> str:
    was = t.truncate(problem.summary, 80)
    return f"{SEVERITY_MARK['ok']} {_where(problem, style)} — was: {style.esc(was)}"


def _where(problem: Problem, style: _Style) -> str:
    kind = kinds.group(problem.check)
    if problem.name is None:
        return f"{style.esc(problem.account)} · {style.esc(kind)}"
    return f"{style.esc(problem.account)} · {style.code(style.esc(problem.name))}"


def _what(problem: Problem, style: _Style) -> str:
    summary = style.esc(t.truncate(problem.summary, MAX_SUMMARY))
    drawing = f"  {problem.drawing}" if problem.drawing else ""
    if problem.name is None:
        kind = kinds.group(problem.check)
        return f"{style.esc(problem.account)} · {style.esc(kind)} — {summary}"
    return (
        f"{style.esc(problem.account)} · {style.code(style.esc(problem.name))} {summary}{drawing}"
    )


def _problem_groups(results: Sequence[Any]) -> list[tuple[str, list[Problem]]]:
    """Problems by check kind, the kind with the worst problem first."""
    grouped: dict[str, list[Problem]] = {}
    for problem in problems(results).values():
        grouped.setdefault(problem.check, []).append(problem)
    for group in grouped.values():
        group.sort(key=_sort)
    order = {kind: index for index, kind in enumerate(kinds.NAMES)}
    return sorted(grouped.items(), key=lambda g: (g[1][0].rank, order.get(g[0], 99), g[0]))


def _group(kind: str, group: list[Problem], results: Sequence[Any], style: _Style) -> str:
    """``🔴 Backups — 42 completed, 1 failed · 10 accounts`` and one line per problem."""
    of_kind = [r for r in results if r.check == kind]
    title = style.bold(style.esc(kinds.group(kind)))
    head = f"{SEVERITY_MARK.get(group[0].severity, '❔')} {title} — {_counts(kind, of_kind)}"
    lines = [f"{SEVERITY_MARK.get(p.severity, '❔')} {_what(p, style)}" for p in group]
    if len(lines) > MAX_LINES_PER_GROUP:
        rest = group[MAX_LINES_PER_GROUP - 1 :]
        accounts = len({p.account for p in rest})
        lines = [
            *lines[: MAX_LINES_PER_GROUP - 1],
            f"… and {len(rest)} more in {accounts} account{'s' if accounts != 1 else ''}",
        ]
    return t.fit_lines([head, *lines], more="… and {n} more")


def _counts(kind: str, results: Sequence[Any]) -> str:
    looked = [r for r in results if r.severity not in ("error", "skipped")]
    totals = kinds.BY_NAME[kind].totals if kind in kinds.BY_NAME else None
    if not looked:
        text = ""
    elif kind == "backup":
        text = _backup_counts(looked)
    elif totals is not None:
        text = _total_counts(totals, looked)
    else:
        text = _severity_counts(Counter(r.severity for r in looked))
    accounts = len({r.account for r in results})
    parts = [text, f"{accounts} account{'s' if accounts != 1 else ''}"]
    errors = sum(r.severity == "error" for r in results)
    if errors:
        parts.append(f"{SEVERITY_MARK['error']} could not check {errors}")
    return " · ".join(p for p in parts if p)


def _backup_counts(results: Sequence[Any]) -> str:
    counts: Counter[str] = Counter()
    for result in results:
        for state, n in ((result.details or {}).get("counts") or {}).items():
            if isinstance(n, int):
                counts[str(state)] += n
    parts = [f"{counts[s]} {s.lower()}" for s in _BACKUP_STATES if counts[s] or s == "COMPLETED"]
    running = sum(counts[s] for s in _BACKUP_RUNNING)
    if running:
        parts.append(f"{running} running")
    return ", ".join(parts)


def _total_counts(totals: kinds.Totals, results: Sequence[Any]) -> str:
    key = totals.key
    total = sum(n for r in results if isinstance(n := (r.details or {}).get(key), int) and n >= 0)
    noun = totals.one if total == 1 else totals.many
    if not totals.severities:
        return f"{total} {noun}"
    severities: Counter[str] = Counter()
    for result in results:
        details = result.details or {}
        if isinstance(details.get("counts"), Mapping):  # severities counted by the check
            severities.update({k: v for k, v in details["counts"].items() if isinstance(v, int)})
        else:
            severities.update(
                str(r.get("severity"))
                for r in details.get("resources") or []
                if isinstance(r, Mapping)
            )
    found = _severity_counts(severities, quiet=True)
    return f"{total} {noun}: {found}" if found else f"{total} {noun}"


def _severity_counts(counts: Mapping[str, int], quiet: bool = False) -> str:
    words: list[tuple[str, str]] = [
        ("crit", "critical"),
        ("error", "could not check"),
        ("warn", "warning"),
    ]
    if not quiet:
        words.append(("ok", "OK"))
    return ", ".join(f"{counts[s]} {word}" for s, word in words if counts.get(s))


def _quiet(results: Sequence[Any], style: _Style) -> str:
    """``✅ OK: Alarms in 10 accounts · Budgets in 9 accounts`` and the skipped ones."""
    order = {kind: index for index, kind in enumerate(kinds.NAMES)}
    lines = []
    for severity, word in (("ok", "OK"), ("skipped", "skipped")):
        per_kind = Counter(r.check for r in results if r.severity == severity)
        if not per_kind:
            continue
        items = [
            f"{style.esc(kinds.group(kind))} in {n} account{'s' if n != 1 else ''}"
            for kind, n in sorted(per_kind.items(), key=lambda i: (order.get(i[0], 99), i[0]))
        ]
        lines.append(f"{SEVERITY_MARK[severity]} {word}: " + " · ".join(items))
    return t.truncate("   ".join(lines), t.SECTION_TEXT)


def _footer(view: RunView, web_url: str | None, style: _Style) -> str:
    run = view.run
    parts = [f"#{run.id}"]
    if run.started_at and run.finished_at:
        parts.append(duration(max(0.0, (run.finished_at - run.started_at).total_seconds())))
    if run.source != "schedule":
        parts.append(f"sent by {style.esc(run.requested_by)} with mhub digest send")
    if web_url:
        parts.append(style.link(web_url, "Full report ↗"))
    return " · ".join(parts)


def _since(previous: datetime, now: datetime | None, tz: tzinfo) -> str:
    """``yesterday 07:00 WIB``, ``07:00 WIB`` (today) or ``Fri 20 Nov 07:00 WIB``."""
    reference = now or previous
    local, today = previous.astimezone(tz), reference.astimezone(tz).date()
    if local.date() == today - timedelta(days=1):
        return f"yesterday {local.strftime('%H:%M %Z')}"
    return clock(previous, tz, reference)


def fired_at(view: RunView) -> datetime:
    """The slot a scheduled run was for, else when it was asked for."""
    slot = view.run.params.get("slot")
    if isinstance(slot, str):
        try:
            return datetime.fromisoformat(slot.replace("Z", "+00:00"))
        except ValueError:
            pass
    return view.run.created_at
