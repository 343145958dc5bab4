"""The terminal rendering of a run: the result card, as text, for ``mhub run`` and ``status``.

Problems first, OK folded into counts, the same marks as Slack and the web view. A view read
with its timeline also lists the deliveries Slack refused for good, with what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.config import format_window
from app.engine import findings
from app.engine.runs import RunView
from app.models import Finding, Result
from blocks import delivery
from blocks.marks import (
    SEVERITY_MARK,
    SEVERITY_WORD,
    STATUS_MARK,
    bar,
    duration,
    mark,
    sparkline,
    took,
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
        extra = "   " + sparkline(series[res["series"]])
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


def _clock(moment: datetime | None, tz: ZoneInfo | None) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(tz) if tz else moment
    return local.strftime("%Y-%m-%d %H:%M %Z")


def render_findings(
    found: Sequence[Finding], tz: ZoneInfo | None, now: datetime, customer_name: str
) -> str:
    """A customer's findings for ``mhub findings``: open first with their age and what
    changed (new, regressed, flapping), then the resolved ones with when; each with its
    fingerprint, which the answers to a finding take."""
    if not found:
        return f"No findings for {customer_name}."
    lines = []
    for f in found:
        where = f"{f.account} · {kinds.title(f.check)}" + (f" · {f.resource}" if f.resource else "")
        if f.status == "open":
            age = f"open {duration((now - f.first_seen_at).total_seconds(), precise=False)}"
            change = findings.change(f.history, f.returns)
            notes = [age, change] if change else [age]
            head = f"{SEVERITY_MARK.get(f.severity, '•')} {where} — {f.summary}"
        else:
            notes = [f"resolved {_clock(f.resolved_at or f.last_seen_at, tz)}"]
            head = f"{SEVERITY_MARK['ok']} {where} — was: {f.summary}"
        lines.append(f"{head}  ({', '.join(notes)})")
        lines.append(f"     {f.fingerprint}")
    return "\n".join(lines)
