"""The result card: one message per run, posted once and then updated in place.

Problems first, one row per account × check with its worst resources (sparklines for metric
series, bars for budgets); OK and skipped results folded into counts; checks still to finish
listed as running or queued. A Cancel button while the run is queued or running, Retry when it
failed or a check could not look, and a link to the web view when the hub has a public URL.

A view read with its timeline (``/monitor status``) also says when Slack refused the run's
card or digest for good (``delivery_failed`` events: when, why, what to do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from app.engine.answers import Line, Standing, settle
from app.engine.findings import change, lines_of
from blocks import delivery
from blocks import findings as findings_blocks
from blocks import maintenance as maintenance_words
from blocks import text as t
from blocks.ids import ActionId, BlockId
from blocks.marks import (
    SEVERITY_MARK,
    SEVERITY_WORD,
    STATUS_MARK,
    bar,
    clock,
    took,
    trend,
    unit_of,
)
from checks import kinds

if TYPE_CHECKING:
    from app.engine.maintenance import Window
    from app.engine.runs import RunView

Console = Callable[[str, str, str, str, Mapping[str, Any]], str | None]
"""(account, check, region, resource id, the resource line) → its AWS console link, or None."""
Standings = Mapping[str, tuple[Any, Standing]]
"""Findings by fingerprint, with what each is now (``Answers.standings``)."""

MAX_RESOURCES = 8
"""Resources listed under one result row; the rest are counted."""
MAX_ACCOUNTS_IN_TITLE = 5
_FIXED_BLOCKS = 7  # title, meta, folded, pending, problem, deliveries, actions
MAX_DELIVERY_LINES = 3
"""Failed deliveries listed on the card (the newest); the web view's timeline has them all."""
MAX_ROWS = t.MAX_BLOCKS - _FIXED_BLOCKS
_ORDER = {"crit": 0, "error": 1, "warn": 2, "skipped": 3, "ok": 4}
_QUIET = ("ok", "skipped")


def run_card(
    view: RunView,
    *,
    customer_name: str,
    tz: tzinfo,
    now: datetime,
    web_url: str | None = None,
    actions: bool = True,
    standings: Standings | None = None,
    console: Console | None = None,
    windows: Sequence[Window] = (),
) -> dict[str, Any]:
    """The card as a message: ``{"text": fallback, "blocks": [...]}``. ``standings`` are the
    findings of its problem lines by fingerprint: snoozed and muted lines are folded into one
    line and do not raise the outcome; the others carry their age, change and answer, and each
    problem row a ``⋯`` menu to answer it (when ``actions``); ``windows`` are the maintenance
    windows that were open while it ran."""
    run = view.run
    kept = standings or {}
    rows = [Row(r, _lines(r, kept), kept) for r in view.results]
    title = _title(view, customer_name, _worst(rows))
    blocks: list[dict[str, Any]] = [
        t.section(f"*{title}*", BlockId.TITLE),
        t.context([_meta(view, tz, now)], BlockId.META),
    ]
    rows.sort(key=lambda r: (_ORDER.get(r.severity, 9), r.result.account, r.result.check))
    problems = [r for r in rows if r.severity not in _QUIET]
    shown = problems if len(problems) <= MAX_ROWS else problems[: MAX_ROWS - 1]
    blocks.extend(
        _row_block(row, f"{BlockId.ROW}_{index}", tz, now, menus=actions, console=console)
        for index, row in enumerate(shown)
    )
    if len(shown) < len(problems):
        hidden = problems[len(shown) :]
        blocks.append(
            t.section(
                f"… and {len(hidden)} more problems: "
                + ", ".join(_label(r.result) for r in hidden)
                + (" — the web view lists them all." if web_url else ""),
                f"{BlockId.ROW}_more",
            )
        )
    answered = [line.standing for row in rows for line in row.lines if line.quiet]
    if answered:
        folded = findings_blocks.folded([s for s in answered if s is not None], tz, now)
        blocks.append(t.context([t.truncate(folded, t.SECTION_TEXT)], f"{BlockId.FOLDED}_quiet"))
    quiet = [r.result for r in rows if r.severity in _QUIET]
    if quiet:
        blocks.append(t.context([_folded(quiet)], BlockId.FOLDED))
    held = maintenance_words.during_run(windows, tz, now)
    if held:
        blocks.append(t.context([held], f"{BlockId.FOLDED}_maintenance"))
    pending = _pending(view)
    if pending:
        blocks.append(t.context([pending], BlockId.PENDING))
    if run.error:
        blocks.append(t.section(f"{SEVERITY_MARK['error']} {t.escape(run.error)}", BlockId.PROBLEM))
    failed = delivery.failures(view.events)
    if failed:
        blocks.append(
            t.context([_failed_deliveries(failed, tz, now)], f"{BlockId.PROBLEM}_delivery")
        )
    buttons = _buttons(view, web_url) if actions else []
    if buttons:
        blocks.append({"type": "actions", "block_id": BlockId.ACTIONS, "elements": buttons})
    return {"text": t.fallback(f"{title} · #{run.id}"), "blocks": blocks[: t.MAX_BLOCKS]}


def web_link(public_url: str | None, run_id: int) -> str | None:
    return f"{public_url.rstrip('/')}/runs/{run_id}" if public_url else None


def retryable(view: RunView) -> bool:
    """Retry is offered when the run failed or a check could not look."""
    return view.run.status == "failed" or any(r.severity == "error" for r in view.results)


# -- pieces -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A result with its problem lines and their standings."""

    result: Any
    lines: tuple[Line, ...]
    kept: Standings

    @property
    def severity(self) -> str:
        """The result's severity once snoozed and muted lines are left out."""
        return settle(self.result.severity, self.lines)

    def standing(self, fingerprint: str) -> Standing | None:
        return next((x.standing for x in self.lines if x.fingerprint == fingerprint), None)

    def note(self, fingerprint: str, tz: tzinfo, now: datetime | None) -> str:
        """``open 9 d · 🆕 new · 👀 @alice`` for a line whose finding is kept."""
        pair = self.kept.get(fingerprint)
        if pair is None or now is None:
            return ""
        found, standing = pair
        return findings_blocks.notes(
            findings_blocks.age(found, now),
            findings_blocks.change_note(change(found.history, found.returns)),
            findings_blocks.answer_note(standing, tz, now),
        )


def _lines(result: Any, kept: Standings) -> tuple[Line, ...]:
    seen = lines_of(result.check, result.account, result.severity, result.summary, result.details)
    return tuple(
        Line(s.fingerprint, s.severity, kept[s.fingerprint][1] if s.fingerprint in kept else None)
        for s in seen
    )


def _worst(rows: Sequence[Row]) -> str | None:
    """The run's outcome with quiet lines left out (None when nothing finished)."""
    if not rows:
        return None
    return min((r.severity for r in rows), key=lambda s: _ORDER.get(s, 9))


def _title(view: RunView, customer_name: str, settled: str | None = None) -> str:
    run = view.run
    where = f"{t.escape(customer_name)} / {_accounts(run.targets)}"
    checks = ", ".join(t.escape(c) for c in _unique(x["check"] for x in run.targets))
    window = _window(run.params)
    if run.status == "running" and run.cancel_requested_by:
        by = t.user(run.cancel_requested_by)
        return f"{STATUS_MARK['cancelled']} Cancelling · {where} · {checks} · asked by {by}"
    if run.status == "running":
        return f"▶ Running · {where} · {checks}{window}"
    if run.status == "queued":
        return f"{STATUS_MARK['queued']} Queued · {where} · {checks}{window}"
    if run.status == "cancelled":
        by = f" by {t.user(run.cancel_requested_by)}" if run.cancel_requested_by else ""
        return (
            f"{STATUS_MARK['cancelled']} Cancelled{by} after {view.done} of "
            f"{checks_count(view.total)} · {where}"
        )
    finished = took(run.started_at, run.finished_at)
    if run.status == "failed":
        return (
            f"{SEVERITY_MARK['error']} Failed · {where} · {view.done} of {checks_count(view.total)}"
        )
    outcome = run.outcome or "ok"
    if settled is not None:  # as of now: snoozed and muted problems left out
        outcome = settled
    word = SEVERITY_WORD.get(outcome, "Done")
    mark = SEVERITY_MARK.get(outcome, SEVERITY_MARK["ok"])
    return f"{mark} {word} · {where} · {checks_count(view.total)}{finished}{window}"


def _meta(view: RunView, tz: tzinfo, now: datetime) -> str:
    run = view.run
    parts = [f"#{run.id}", t.user(run.requested_by), _clock(run.created_at, tz, now)]
    if not view.terminal:
        parts.append(f"{view.done} of {checks_count(view.total)}")
    if run.attempt > 1:
        parts.append(f"attempt {run.attempt}")
    if run.retry_of:
        parts.append(f"retry of #{run.retry_of}")
    return " · ".join(p for p in parts if p)


def _row_block(
    row: Row, block_id: str, tz: tzinfo, now: datetime, *, menus: bool, console: Console | None
) -> dict[str, Any]:
    block = t.section(_row(row.result, row, tz, now), block_id)
    result_id = getattr(row.result, "id", None)
    if menus and result_id is not None and any(not x.quiet for x in row.lines):
        url = _console_url(row, console)
        block["accessory"] = findings_blocks.menu(findings_blocks.target("r", result_id), url)
    return block


def _console_url(row: Row, console: Console | None) -> str | None:
    """The console page of the row's first problem that is not quiet."""
    if console is None:
        return None
    result = row.result
    for res in _resources(result):
        if res.get("severity") in ("warn", "crit") and not _quiet(
            row.standing(_fingerprint(result, res))
        ):
            region = str(res.get("region") or "")
            return console(result.account, result.check, region, str(res.get("id", "")), res)
    return None


def _row(result: Any, row: Row | None = None, tz: tzinfo = UTC, now: datetime | None = None) -> str:
    mark = SEVERITY_MARK.get(row.severity if row else result.severity, "❔")
    head = f"{mark} *{_label(result)}* — {t.escape(result.summary)}"
    if row is not None and not _resources(result):  # the whole result is the problem line
        note = row.note(f"{result.check}:{result.account}:*", tz, now)
        head += f" · {note}" if note else ""
    details: Mapping[str, Any] = result.details or {}
    resources = [r for r in details.get("resources", []) or [] if isinstance(r, Mapping)]
    resources = [r for r in resources if r.get("severity") != "ok"]
    if row is not None:  # snoozed and muted lines are folded below the rows
        resources = [r for r in resources if not _quiet(row.standing(_fingerprint(result, r)))]
    lines = [
        _resource(r, result.series or {})
        + (_tail(row.note(_fingerprint(result, r), tz, now)) if row is not None else "")
        for r in resources[:MAX_RESOURCES]
    ]
    if len(resources) > MAX_RESOURCES:
        lines.append(f"      … and {len(resources) - MAX_RESOURCES} more")
    return t.fit_lines([head, *lines], t.SECTION_TEXT)


def _resources(result: Any) -> list[Mapping[str, Any]]:
    details: Mapping[str, Any] = result.details or {}
    return [r for r in details.get("resources", []) or [] if isinstance(r, Mapping)]


def _fingerprint(result: Any, res: Mapping[str, Any]) -> str:
    return str(res.get("fingerprint") or f"{result.check}:{result.account}:{res.get('id', '?')}")


def _quiet(standing: Standing | None) -> bool:
    return standing is not None and standing.quiet


def _tail(note: str) -> str:
    return f" · {note}" if note else ""


def _resource(res: Mapping[str, Any], series: Mapping[str, Any]) -> str:
    """``🔴 arbel-prod-db · CPU max 93 % (crit ≥ 90 %)  ▂▃▃▄▅▇█``"""
    mark = SEVERITY_MARK.get(str(res.get("severity", "")), "•")
    line = f"      {mark} `{t.escape(res.get('id', '?'))}` {t.escape(res.get('summary', ''))}"
    points = series.get(str(res.get("series"))) if res.get("series") else None
    if isinstance(points, Sequence) and points:
        numbers = [float(p) for p in points if isinstance(p, int | float)]
        if numbers:
            line += f"  {trend(numbers, unit_of(str(res.get('series'))))}"
    elif isinstance(res.get("fraction"), int | float):
        line += f"  {bar(float(res['fraction']))}"
    return line


def _failed_deliveries(events: Sequence[Any], tz: tzinfo, now: datetime) -> str:
    """``⚠️ 07:05 WIB · Delivery failed · card post to C0OPS · channel_not_found — …``"""
    shown = events[-MAX_DELIVERY_LINES:]
    lines = [
        f"{delivery.MARK} {clock(e.created_at, tz, now)} · "
        f"{t.escape(delivery.timeline_text(e.data or {}))}"
        for e in shown
    ]
    if len(events) > len(shown):
        lines.insert(0, f"… {len(events) - len(shown)} earlier failed deliveries")
    return t.fit_lines(lines, t.SECTION_TEXT)


def _folded(quiet: Sequence[Any]) -> str:
    ok = [r for r in quiet if r.severity == "ok"]
    skipped = [r for r in quiet if r.severity == "skipped"]
    parts = []
    if ok:
        parts.append(f"{SEVERITY_MARK['ok']} {len(ok)} OK: " + ", ".join(_label(r) for r in ok))
    if skipped:
        parts.append(
            f"{SEVERITY_MARK['skipped']} {len(skipped)} skipped: "
            + ", ".join(_label(r) for r in skipped)
        )
    return t.truncate(" · ".join(parts), t.SECTION_TEXT)


def _pending(view: RunView) -> str:
    run = view.run
    done = {(r.account, r.check) for r in view.results}
    left = [x for x in run.targets if (x["account"], x["check"]) not in done]
    if not left:
        return ""
    names = ", ".join(
        f"{t.escape(x['account'])} · {t.escape(kinds.title(x['check']))}" for x in left
    )
    if run.status == "running":
        return t.truncate(f"{STATUS_MARK['running']} {names} — running…", t.SECTION_TEXT)
    if run.status == "queued":
        return t.truncate(f"{STATUS_MARK['queued']} {names} — queued", t.SECTION_TEXT)
    return t.truncate(f"{STATUS_MARK['cancelled']} not run: {names}", t.SECTION_TEXT)


def _buttons(view: RunView, web_url: str | None) -> list[dict[str, Any]]:
    run = view.run
    value = str(run.id)
    buttons: list[dict[str, Any]] = []
    if not view.terminal and not run.cancel_requested_by:
        cancel = t.button("Cancel", ActionId.CANCEL_RUN, value=value, style="danger")
        cancel["confirm"] = {
            "title": t.plain("Cancel this run?", 100),
            "text": t.plain(f"Run #{run.id} stops; finished checks stay on the card.", 300),
            "confirm": t.plain("Cancel run", 30),
            "deny": t.plain("Keep running", 30),
            "style": "danger",
        }
        buttons.append(cancel)
    elif retryable(view):
        buttons.append(t.button("Retry", ActionId.RETRY_RUN, value=value, style="primary"))
    if web_url:
        buttons.append(t.button("Open in browser", ActionId.OPEN_WEB, url=web_url))
    return buttons


def checks_count(n: int) -> str:
    return f"{n} check" if n == 1 else f"{n} checks"


def _label(result: Any) -> str:
    return f"{t.escape(result.account)} · {t.escape(kinds.title(result.check))}"


def _accounts(targets: Sequence[Mapping[str, str]]) -> str:
    accounts = _unique(x["account"] for x in targets)
    shown = ", ".join(t.escape(a) for a in accounts[:MAX_ACCOUNTS_IN_TITLE])
    extra = len(accounts) - MAX_ACCOUNTS_IN_TITLE
    return f"{shown} (+{extra})" if extra > 0 else shown


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def _window(params: Mapping[str, Any]) -> str:
    seconds = params.get("window_s")
    if not isinstance(seconds, int | float) or seconds <= 0:
        return ""
    minutes = int(seconds // 60)
    if minutes % 1440 == 0:
        return f" · window {minutes // 1440}d"
    if minutes % 60 == 0:
        return f" · window {minutes // 60}h"
    return f" · window {minutes}m"


_clock = clock
