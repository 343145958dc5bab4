"""The terminal rendering of a run (the result card, as text, for ``mhub run`` and ``status``)
and of a customer's findings and mute rules (``mhub findings``).

Problems first, OK folded into counts, the same marks as Slack and the web view. A view read
with its timeline also lists the deliveries Slack refused for good, with what to do. Times are
in the customer's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from app.config import format_window
from app.engine import findings
from app.engine.answers import Rule, Standing
from app.engine.runs import RunView
from app.models import Finding, Result
from blocks import delivery
from blocks.findings import BACK_MARK, BACK_WORD, age, change_note, clock, during, until_text
from blocks.marks import (
    SEVERITY_MARK,
    SEVERITY_WORD,
    STANDING_MARK,
    STATUS_MARK,
    bar,
    mark,
    took,
    trend,
    unit_of,
)
from checks import kinds

MAX_ROWS_PER_RESULT = 8
_ORDER = {"crit": 0, "error": 1, "warn": 2, "skipped": 3, "ok": 4}


def render_run(view: RunView, tz: ZoneInfo | None = None, customer_name: str | None = None) -> str:
    run = view.run
    lines = [_header(view, customer_name), _subheader(view, tz)]
    results = sorted(view.results, key=lambda r: (_ORDER.get(r.severity, 9), r.account, r.check))
    problems = [r for r in results if r.severity not in ("ok", "skipped")]
    quiet = [r for r in results if r.severity in ("ok", "skipped")]
    for result in problems:
        lines.extend(_result_lines(result))
    for result in quiet if len(quiet) <= 6 else []:
        lines.append(f"{SEVERITY_MARK[result.severity]} {_label(result)} — {result.summary}")
    if len(quiet) > 6:
        lines.append(
            f"{SEVERITY_MARK['ok']} {len(quiet)} more checks OK: "
            + ", ".join(sorted({f"{r.account}·{r.check}" for r in quiet}))[:300]
        )
    done = {(r.account, r.check) for r in view.results}
    for target in run.targets:
        key = (target["account"], target["check"])
        if key not in done:
            pending = STATUS_MARK["running"] if run.status == "running" else STATUS_MARK["queued"]
            word = (
                "running…" if run.status == "running" else "not run" if view.terminal else "queued"
            )
            lines.append(f"{pending} {key[0]} · {kinds.title(key[1])} — {word}")
    if run.error:
        lines.append(f"⚠️ {run.error}")
    for event in delivery.failures(view.events):
        when = _clock(event.created_at, tz)
        lines.append(f"{delivery.MARK} {when} · {delivery.timeline_text(event.data or {})}")
    return "\n".join(lines)


def _header(view: RunView, customer_name: str | None) -> str:
    run = view.run
    where = f"{customer_name or run.customer_id} / {', '.join(_accounts(run.targets))}"
    if run.status == "running":
        return f"▶ Running · {where} · {', '.join(_checks(run.targets))}{_window(run.params)}"
    if run.status == "queued":
        return f"{STATUS_MARK['queued']} Queued · {where} · {', '.join(_checks(run.targets))}"
    if run.status == "cancelled":
        by = f" by {run.cancel_requested_by}" if run.cancel_requested_by else ""
        progress = f"{view.done} of {view.total} checks"
        return f"{STATUS_MARK['cancelled']} Cancelled{by} after {progress} · {where}"
    finished = took(run.started_at, run.finished_at)
    word = "Failed" if run.status == "failed" else SEVERITY_WORD.get(run.outcome or "ok", "Done")
    return (
        f"{mark(run.status, run.outcome)} {word} · {where} · "
        f"{view.total} checks{finished}{_window(run.params)}"
    )


def _subheader(view: RunView, tz: ZoneInfo | None) -> str:
    run = view.run
    when = _clock(run.created_at, tz)
    parts = [f"#{run.id}", run.requested_by, when]
    if not view.terminal:
        parts.append(f"{view.done} of {view.total} checks")
    if run.attempt > 1:
        parts.append(f"attempt {run.attempt}")
    if run.retry_of:
        parts.append(f"retry of #{run.retry_of}")
    return " · ".join(parts)


def _result_lines(result: Result) -> list[str]:
    lines = [f"{SEVERITY_MARK.get(result.severity, '❔')} {_label(result)} — {result.summary}"]
    resources = [r for r in result.details.get("resources", []) if r.get("severity") != "ok"]
    for res in resources[:MAX_ROWS_PER_RESULT]:
        lines.append("     " + resource_line(res, result.series))
    if len(resources) > MAX_ROWS_PER_RESULT:
        lines.append(f"     … and {len(resources) - MAX_ROWS_PER_RESULT} more")
    return lines


def resource_line(res: dict[str, Any], series: dict[str, Any]) -> str:
    """``arbel-prod-db   CPU max 93 % (crit ≥ 90 %)   ▂▃▃▄▅▇█``"""
    extra = ""
    if res.get("series") and series.get(res["series"]):
        extra = "   " + trend(series[res["series"]], unit_of(str(res["series"])))
    elif res.get("fraction") is not None:
        extra = "   " + bar(float(res["fraction"]))
    mark_ = SEVERITY_MARK.get(res.get("severity", ""), " ")
    return f"{mark_} {res.get('id', '?'):<22} {res.get('summary', '')}{extra}"


def _label(result: Result) -> str:
    return f"{result.account} · {kinds.title(result.check)}"


def _accounts(targets: Sequence[dict[str, str]]) -> list[str]:
    return list(dict.fromkeys(t["account"] for t in targets))


def _checks(targets: Sequence[dict[str, str]]) -> list[str]:
    return list(dict.fromkeys(t["check"] for t in targets))


def _window(params: dict[str, Any]) -> str:
    seconds = params.get("window_s")
    return f" · window {format_window(timedelta(seconds=seconds))}" if seconds else ""


def _clock(moment: datetime | None, tz: tzinfo | None) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(tz) if tz else moment
    return local.strftime("%Y-%m-%d %H:%M %Z")


_STANDING_ORDER = {
    "open": 0, "acknowledged": 0, "snoozed": 1, "maintenance": 1, "muted": 2, "resolved": 3
}  # fmt: skip
"""Problems first (open and acknowledged, in the listing's order: worst, then latest), then
the quiet ones, then the resolved ones."""


def render_findings(
    found: Sequence[tuple[Finding, Standing]], tz: tzinfo, now: datetime, customer_name: str
) -> str:
    """A customer's findings for ``mhub findings``: a count line, the problems with their age,
    what changed (new, came back, flapping) and who answered them, then the snoozed and muted
    ones, then the resolved ones with when; each with its fingerprint, which answers take."""
    if not found:
        return f"No findings for {customer_name}."
    lines = [_counts(customer_name, found)]
    for f, standing in sorted(found, key=lambda pair: _STANDING_ORDER.get(pair[1].state, 9)):
        lines.extend(finding_lines(f, standing, tz, now))
    return "\n".join(lines)


def finding_lines(found: Finding, standing: Standing, tz: tzinfo, now: datetime) -> list[str]:
    """``🔴 shop-prod · RDS · shop-prod-db — CPU 93 %  (open 3 d · 🆕 new · 👀 @alice 10:02 WIB)``
    and the fingerprint under it."""
    where = f"{found.account} · {kinds.title(found.check)}" + (
        f" · {found.resource}" if found.resource else ""
    )
    if standing.state == "resolved":
        head = f"{SEVERITY_MARK['ok']} {where} — was: {found.summary}"
        notes = [f"resolved {_clock(found.resolved_at or found.last_seen_at, tz)}"]
    else:
        head = f"{SEVERITY_MARK.get(found.severity, '•')} {where} — {found.summary}"
        change = findings.change(found.history, found.returns)
        notes = [age(found, now), change_note(change), answer_text(standing, tz, now)]
    return [f"{head}  ({' · '.join(n for n in notes if n)})", f"     {found.fingerprint}"]


def answer_text(standing: Standing, tz: tzinfo, now: datetime) -> str:
    """Who answered a finding, in the terminal: ``👀 @alice 10:02 WIB``, ``💤 until Mon 09:00
    WIB by @bob — reason``, ``🔕 muted by @carol — reason (rule 12)``, ``⏰ snooze ended``."""
    parts = []
    if standing.back:
        parts.append(f"{BACK_MARK[standing.back]} {BACK_WORD[standing.back]}")
    if standing.state == "acknowledged":
        at = f" {clock(standing.at, tz, now)}" if standing.at else ""
        parts.append(f"{STANDING_MARK['acknowledged']} {person(standing.by)}{at}")
    elif standing.state == "snoozed":
        parts.append(
            f"{STANDING_MARK['snoozed']} {until_text(standing.until, tz, now)}"
            f"{_by(standing.by)}{_because(standing.reason)}"
        )
    elif standing.state == "maintenance":
        parts.append(f"{STANDING_MARK['maintenance']} {during(standing, tz, now)}")
    elif standing.state == "muted":
        rule = standing.rule
        origin = " (YAML)" if rule is not None and rule.origin == "yaml" else ""
        until = f" until {clock(standing.until, tz, now)}" if standing.until else ""
        key = f" (rule {rule.key})" if rule is not None else ""
        parts.append(
            f"{STANDING_MARK['muted']} muted{origin}{_by(standing.by)}{until}"
            f"{_because(standing.reason)}{key}"
        )
    if standing.ack_by and standing.state != "acknowledged":
        parts.append(f"{STANDING_MARK['acknowledged']} {person(standing.ack_by)}")
    return " · ".join(parts)


def render_rules(rules: Sequence[Rule], tz: tzinfo, now: datetime, customer_name: str) -> str:
    """A customer's mute rules in force for ``mhub findings TARGET --rules``: each with its id
    (what ``unmute`` takes), where it came from, what it matches, who made it, why, and until."""
    if not rules:
        return f"No mute rules for {customer_name}."
    lines = [f"Mute rules of {customer_name}: {len(rules)}"]
    for rule in rules:
        where = " · ".join(
            [
                kinds.title(rule.check),
                rule.account or "every account",
                rule.region or "every region",
            ]
        )
        origin = "in the customer's YAML" if rule.origin == "yaml" else "made from Slack or the CLI"
        made = f"{_by(rule.by)}{f' {clock(rule.at, tz, now)}' if rule.at else ''}"
        until = f"until {clock(rule.until, tz, now)}" if rule.until else "no end"
        matches = f"{rule.key} · {where} · {rule.resource}"
        lines.append(f"{STANDING_MARK['muted']} {matches}{_because(rule.reason)}")
        lines.append(f"     {origin}{made} · {until}")
    return "\n".join(lines)


def person(ref: str | None) -> str:
    """``@alice`` (or a Slack user id as ``@U123``); ``cli:bob`` and ``schedule:daily`` as is."""
    if not ref:
        return "someone"
    return ref if ":" in ref or ref.startswith("@") else f"@{ref}"


def _by(ref: str | None) -> str:
    return f" by {person(ref)}" if ref else ""


def _because(reason: str | None) -> str:
    return f" — {reason}" if reason else ""


def _counts(customer_name: str, found: Sequence[tuple[Finding, Standing]]) -> str:
    """``Demo Retail · 🔴 1 critical · 🟠 2 warnings · 💤 1 snoozed · 🔕 1 muted · ✅ 3 resolved``
    (critical and warnings: the open and acknowledged ones)."""
    states = [s.state for _, s in found]
    problems = [f.severity for f, s in found if s.state in ("open", "acknowledged")]
    parts = [customer_name]
    if crit := problems.count("crit"):
        parts.append(f"{SEVERITY_MARK['crit']} {crit} critical")
    if warn := problems.count("warn"):
        parts.append(f"{SEVERITY_MARK['warn']} {warn} warning{'s' if warn > 1 else ''}")
    for state, mark_ in (
        ("snoozed", STANDING_MARK["snoozed"]),
        ("muted", STANDING_MARK["muted"]),
        ("maintenance", STANDING_MARK["maintenance"]),
        ("resolved", SEVERITY_MARK["ok"]),
    ):
        if count := states.count(state):
            word = "during maintenance" if state == "maintenance" else state
            parts.append(f"{mark_} {count} {word}")
    return " · ".join(parts)
