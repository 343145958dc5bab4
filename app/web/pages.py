"""Page contexts: what each template receives, assembled from query results. No I/O."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from app.catalog import Catalog
from app.config import Customer
from app.engine import maintenance
from app.engine.answers import Rule, mute_rules
from app.engine.blind import BlindSpot
from app.engine.runboard import Runboard
from app.engine.runs import RunView
from app.reports import charts, words
from app.reports.model import Period, Report, Summary
from app.web import present, queries, standings
from app.web.names import Namer, no_names
from app.web.params import OUTCOMES, STATUSES
from app.web.queries import Page
from blocks import delivery
from blocks.marks import SEVERITY_MARK, SEVERITY_WORD, STANDING_MARK
from checks import kinds

FORM_KEYS = ("customer", "status", "outcome", "check", "from", "to")
BOARD_BLIND = 20
"""Blind spots listed on the runboard; the rest are counted, and listed on each customer's page."""
CUSTOMER_BLIND = 100
"""Blind spots listed on a customer's page; the rest are counted (``/api/blind-spots`` has all)."""
BOARD_MAINTENANCE = 20
"""Maintenance windows listed on the runboard, active and upcoming each; the rest are counted."""
CUSTOMER_MAINTENANCE = 100
"""Maintenance windows listed on a customer's page, active and upcoming each (``/api/maintenance``
has all)."""


@dataclass(frozen=True)
class Tile:
    """One customer's latest outcome on the runboard."""

    id: str
    name: str
    mark: str
    tone: str
    text: str
    run: present.RunRow | None


def runboard(
    board: Runboard,
    catalog: Catalog,
    now: datetime,
    spots: Sequence[BlindSpot] = (),
    windows: queries.Windows = queries.NO_WINDOWS,
    names: Namer = no_names,
) -> dict[str, Any]:
    """The runboard; ``spots`` are the blind spots of the customers it shows, oldest first;
    ``windows`` their maintenance windows open now and coming. It spans customers: every time
    in :data:`present.MIXED_ZONE`."""
    customers, tz = catalog.customers, present.MIXED_ZONE

    def row(run: Any, with_steps: bool = False) -> present.RunRow:
        customer, steps = customers.get(run.customer_id), board.steps.get(run.id, {})
        return present.run_row(run, customer, steps, now, with_steps, tz=tz, names=names)

    blind = present.blind_counts(spots)
    tiles = [_tile(c, board, now, blind.get(c.id, 0)) for c in customers.values()]
    tiles.sort(key=lambda t: (present.ORDER.get(t.tone, 5), t.name.lower()))
    day = board.day
    return {
        "title": "Runboard",
        "nav": "board",
        "live": True,
        "version": board.version,
        "queued": board.queued,
        "oldest_queued": _ago(board.oldest_queued_at, now),
        "running": [row(r, with_steps=True) for r in board.running],
        "waiting": [row(r) for r in board.waiting],
        "recent": [row(r) for r in board.recent],
        "tiles": tiles,
        "day": day,
        "fires": present.next_fires(customers.values(), now, tz)[:6],
        "failed": present.failed_deliveries(board.failed, customers, now, tz, names),
        "notices": present.failed_notices(board.notices, customers, now, tz),
        "blind": _blind(spots, customers, now, BOARD_BLIND, tz),
        "maintenance": _maintenance(windows, now, BOARD_MAINTENANCE, tz, names),
        "now": now,
        "zone": zone_label(tz, now),
    }


def zone_label(tz: ZoneInfo, now: datetime) -> str:
    """``UTC``, or ``WIB (Asia/Jakarta)``: what a page's times are in, said once."""
    short = now.astimezone(tz).tzname() or tz.key
    return short if short == tz.key else f"{short} ({tz.key})"


def _blind(
    spots: Sequence[BlindSpot],
    customers: Mapping[str, Customer],
    now: datetime,
    limit: int,
    tz: ZoneInfo | None = None,
) -> dict[str, Any]:
    """The "Not checked" block: the first ``limit`` lines (the oldest), and how many more."""
    rows = [present.blind_row(s, customers.get(s.customer), now, tz) for s in spots[:limit]]
    return {
        "mark": present.BLIND_MARK,
        "rows": rows,
        "count": len(spots),
        "more": len(spots) - len(rows),
    }


def _maintenance(
    windows: queries.Windows,
    now: datetime,
    limit: int,
    tz: ZoneInfo | None = None,
    names: Namer = no_names,
) -> dict[str, Any]:
    """The "Maintenance" block: the first ``limit`` windows open now (each with when it ends)
    and the first ``limit`` opening within 7 days (each with its span), and how many more."""

    def line(customer: Customer, window: maintenance.Window, opening: bool) -> Any:
        return present.window_row(window, customer, now, opening=opening, tz=tz, names=names)

    active = [line(c, w, False) for c, w in windows.active[:limit]]
    coming = [line(c, w, True) for c, w in windows.upcoming[:limit]]
    return {
        "mark": present.MAINTENANCE_MARK,
        "active": active,
        "upcoming": coming,
        "more_active": len(windows.active) - len(active),
        "more_upcoming": len(windows.upcoming) - len(coming),
        "days": maintenance.UPCOMING.days,
    }


def _ago(moment: datetime | None, now: datetime) -> tuple[present.Stamp, str] | None:
    """A moment and "N s ago" for a ``<time class="ago">`` the page's script keeps fresh."""
    if moment is None:
        return None
    return present.stamp(moment, present.UTC_ZONE, now), present.ago(moment, now)


def _tile(customer: Customer, board: Runboard, now: datetime, blind: int = 0) -> Tile:
    """A customer's latest outcome; never "all OK" while it has ``blind`` spots (it reads
    ``1 not checked`` instead, marked 🕳️)."""
    run = board.latest.get(customer.id)
    unseen = present.not_checked(blind) if blind else ""
    if run is None:
        text = " · ".join(t for t in ("no finished runs yet", unseen) if t)
        if blind:
            return Tile(customer.id, customer.name, present.BLIND_MARK, "error", text, None)
        return Tile(customer.id, customer.name, "·", "none", text, None)
    severities = board.steps.get(run.id, {})
    row = present.run_row(run, customer, severities, now, tz=present.MIXED_ZONE)
    chips = row.problems
    mark, tone = row.mark, row.tone
    if run.status == "failed":
        said = [f"failed — {run.error or 'see the run'}"]
    elif chips:
        said = [c.text for c in chips]
    else:
        said = [] if blind else ["all OK"]
    if blind:
        said.append(unseen)
        if tone in present.QUIET or tone == "none":
            mark, tone = present.BLIND_MARK, "error"
    text = f"{row.created.text}: " + " · ".join(said)
    return Tile(customer.id, customer.name, mark, tone, text, row)


def runs_list(
    page: Page,
    catalog: Catalog,
    query: Mapping[str, str],
    filters: dict[str, str],
    tz: ZoneInfo,
    now: datetime,
    names: Namer = no_names,
) -> dict[str, Any]:
    """All runs, or one customer's: their times in ``tz``, the zone the filter's dates are
    read in (the customer's, else UTC as any list spanning customers)."""
    customers = catalog.customers
    rows = [
        present.run_row(
            r, customers.get(r.customer_id), page.steps.get(r.id, {}), now, tz=tz, names=names
        )
        for r in page.runs
    ]
    older = f"/runs?{urlencode({**filters, 'before': page.older})}" if page.older else None
    newer = f"/runs?{urlencode({**filters, 'after': page.newer})}" if page.newer else None
    return {
        "title": "Runs",
        "nav": "runs",
        "live": False,
        "rows": rows,
        "older": older,
        "newer": newer,
        "partial": page.partial,
        "scan": queries.CHECK_SCAN,
        "form": {k: query.get(k, "") for k in FORM_KEYS},
        "filtered": bool(filters),
        "customers": sorted(customers.values(), key=lambda c: c.name.lower()),
        "statuses": STATUSES,
        "outcomes": [(o, SEVERITY_MARK[o], SEVERITY_WORD[o]) for o in OUTCOMES],
        "checks": [(k.name, k.title) for k in kinds.KINDS],
        "zone": tz.key if tz.key != "UTC" else "UTC",
        "api": f"/api/runs?{urlencode({**filters, **_cursor(query)})}",
    }


def _cursor(query: Mapping[str, str]) -> dict[str, str]:
    return {k: query[k] for k in ("before", "after") if query.get(k)}


def run_page(
    view: RunView,
    customer: Customer | None,
    now: datetime,
    version: str,
    names: Namer = no_names,
) -> dict[str, Any]:
    """A run, in its customer's zone: its results, problems first, and its timeline."""
    run = view.run
    tz = present.zone(customer)
    severities = {(r.account, r.check): r.severity for r in view.results}
    row = present.run_row(run, customer, severities, now, with_steps=True, names=names)
    blocks = present.result_blocks(view.results)
    return {
        "title": f"Run #{run.id}",
        "nav": "runs",
        "live": not view.terminal,
        "version": version,
        "run": row,
        "status": run.status,
        "window": present.window(run),
        "attempt": run.attempt,
        "error": run.error,
        "zone": zone_label(tz, now),
        "started": present.stamp(run.started_at, tz, now, seconds=True) if run.started_at else None,
        "finished": present.stamp(run.finished_at, tz, now, seconds=True)
        if run.finished_at
        else None,
        "problems": [b for b in blocks if b.tone not in present.QUIET],
        "quiet": [b for b in blocks if b.tone in present.QUIET],
        "pending": present.pending(run, view.results, view.terminal),
        "events": present.timeline(view.events, tz, now, names),
        "deliveries": present.timeline(delivery.failures(view.events), tz, now, names),
        "terminal": view.terminal,
        "known": customer is not None,
    }


def customer_page(
    customer: Customer,
    page: Page,
    now: datetime,
    spots: Sequence[BlindSpot] = (),
    windows: queries.Windows = queries.NO_WINDOWS,
    names: Namer = no_names,
) -> dict[str, Any]:
    """A customer's accounts, settings, schedules and recent runs; its blind spots first, then
    its maintenance windows open now and coming. In the customer's zone."""
    rows = [
        present.run_row(r, customer, page.steps.get(r.id, {}), now, names=names) for r in page.runs
    ]
    tz = customer.tz
    schedules = [
        {
            "name": s.name,
            "cron": s.cron,
            "checks": ", ".join(s.checks) or "each account's configured checks",
            "channel": present.channel(s.channel or customer.slack.channel or "", names),
            "next": [present.stamp(m, tz, now) for m in present.fire_times(s.cron, tz, now, 3)],
        }
        for s in customer.schedules
    ]
    return {
        "title": customer.name,
        "nav": "customers",
        "live": False,
        "customer": customer,
        "zone_now": present.stamp(now, customer.tz, now).text,
        "zone": zone_label(tz, now),
        "channel": present.channel(customer.slack.channel or "", names),
        "accounts": [
            {
                "id": a.id,
                "name": a.name,
                "account_id": a.account_id,
                "regions": ", ".join(a.regions),
                "access": a.role_arn or (f"profile {a.profile}" if a.profile else "default chain"),
                "checks": [(c, kinds.title(c)) for c in a.checks],
            }
            for a in customer.accounts
        ],
        "settings": [
            (kinds.title(kind), json.dumps(value, indent=2, ensure_ascii=False))
            for kind, value in sorted(customer.checks.items())
        ],
        "schedules": schedules,
        "rows": rows,
        "more": f"/runs?{urlencode({'customer': customer.id})}",
        "blind": _blind(spots, {customer.id: customer}, now, CUSTOMER_BLIND),
        "blind_api": f"/api/blind-spots?{urlencode({'customer': customer.id})}",
        "maintenance": _maintenance(windows, now, CUSTOMER_MAINTENANCE, names=names),
        "maintenance_api": f"/api/maintenance?{urlencode({'customer': customer.id})}",
        "reports": _report_links(customer, now),
    }


def _report_links(customer: Customer, now: datetime) -> list[tuple[str, str]]:
    """Last month's report and this month's so far, in the customer's zone."""
    today = now.astimezone(customer.tz).date()
    last = today.replace(day=1) - timedelta(days=1)
    here = _reports_url(customer.id)
    return [
        (f"{last:%B %Y}", f"{here}/{last:%Y-%m}"),
        (f"{today:%B %Y} to date", f"{here}/{today:%Y-%m}"),
    ]


def _reports_url(customer_id: str) -> str:
    return f"/customers/{quote(customer_id, safe='')}/reports"


def report_page(report: Report) -> dict[str, Any]:
    """A customer's report for a month or a range of days: the report itself, the wording and
    the charts it is shown with, the summary against the period before, and its other forms."""
    period, here = report.period, _reports_url(report.customer_id)
    month = period.month
    # a month's forms are /reports/2026-11.pdf; a range's /reports.pdf?from=…&to=…
    tail = f"/{month}" if month else ""
    days = "" if month else f"?from={period.first.isoformat()}&to={period.last.isoformat()}"
    return {
        "title": f"{report.customer} · {period.label}",
        "nav": "",
        "live": False,
        "report": report,
        "w": words,
        "charts": charts,
        "zone": f"{report.timezone} ({report.generated_at.tzname()})",
        "headline": words.headline(report)[1],
        "summary": _summary_rows(report.summary, report.previous),
        "customer_url": f"/customers/{quote(report.customer_id, safe='')}",
        "files": {"pdf": f"{here}{tail}.pdf{days}", "zip": f"{here}{tail}.zip{days}"},
        "api": f"/api{here}{tail}{days}",
        "earlier": _month_link(here, period.first - timedelta(days=1)) if month else None,
        "later": _later(here, period, report.generated_at.date()) if month else None,
    }


def _summary_rows(now: Summary, before: Summary | None) -> list[tuple[str, str, str, str]]:
    """Each summary figure: what, this period, the period before, the change (``""`` and
    ``—`` without a period before)."""
    figures: list[tuple[str, Callable[[Summary], float | None], Callable[[Summary], str], str]] = [
        ("Checks run", lambda s: s.looks, lambda s: f"{s.looks:,}", ""),
        ("Scheduled runs made", lambda s: s.scheduled_pct, words.coverage, " %"),
        ("Accounts looked at", lambda s: s.accounts,
         lambda s: f"{s.accounts} of {s.accounts_configured}", ""),
        ("Days with a problem", lambda s: s.problem_days,
         lambda s: f"{s.problem_days} of {s.days}", ""),
    ]  # fmt: skip
    return [
        (
            what,
            show(now),
            show(before) if before is not None else "",
            words.versus(value(now), value(before) if before is not None else None, unit),
        )
        for what, value, show, unit in figures
    ]


def _month_link(here: str, day: date) -> tuple[str, str]:
    return f"{day:%B %Y}", f"{here}/{day:%Y-%m}"


def _later(here: str, period: Period, today: date) -> tuple[str, str] | None:
    """The next month's report, once that month has begun."""
    following = period.last + timedelta(days=1)
    return _month_link(here, following) if following <= today else None


GROUP_TITLE = {
    "open": ("Open", "Nothing open."),
    "snoozed": ("Snoozed or in maintenance", "Nothing snoozed or in maintenance."),
    "muted": ("Muted", "Nothing muted."),
    "resolved": (f"Resolved in the last {standings.RECENT.days} days", "Nothing resolved lately."),
}


def findings_page(
    customer: Customer,
    board: standings.Board,
    rules: Sequence[Rule],
    now: datetime,
    show: str | None = None,
    spots: Sequence[BlindSpot] = (),
    names: Namer = no_names,
) -> dict[str, Any]:
    """Open (and acknowledged), snoozed, muted, resolved in the last 7 days, the mute rules
    beside them; ``show`` lists one group alone. With blind ``spots`` it never reads as all
    clear: it says what is not checked and links to why (the customer's page)."""
    tz = customer.tz
    counts = board.counts
    here = f"/customers/{quote(customer.id, safe='')}/findings"
    total = {
        "open": counts["open"] + counts["acknowledged"],
        "snoozed": counts["snoozed"] + counts["maintenance"],
        "muted": counts["muted"],
        "resolved": counts["resolved"],
    }
    groups = []
    for group in [show] if show else standings.GROUPS:
        rows = [present.finding_row(f, s, tz, now, names) for f, s in board.lines.get(group, ())]
        title, empty = GROUP_TITLE[group]
        more = total[group] > len(rows) and not show
        groups.append(
            {"id": group, "title": title, "count": total[group], "rows": rows, "empty": empty,
             "more": f"{here}?{urlencode({'group': group})}" if more else None}
        )  # fmt: skip
    return {
        "title": f"Findings · {customer.name}",
        "nav": "",
        "live": False,
        "customer": customer,
        "zone_now": present.stamp(now, tz, now).text,
        "tone": _findings_tone(counts["crit"], total["open"], len(spots)),
        "chips": _finding_chips(counts),
        "blind": {"mark": present.BLIND_MARK, "text": _unseen(spots)} if spots else None,
        "groups": groups,
        "show": show,
        "here": here,
        "rules": [
            present.rule_row(r, board.muted_by.get(r.key, 0), tz, now, names)
            for r in mute_rules(rules)
        ],
        "partial": board.partial,
        "scan": standings.OPEN_SCAN,
        "api": f"/api/findings?{urlencode({'customer': customer.id})}",
    }


def _findings_tone(crit: int, loud: int, blind: int) -> str:
    """Critical first, then not checked (never "ok" while blind), then warnings."""
    return "crit" if crit else "error" if blind else "warn" if loud else "ok"


def _unseen(spots: Sequence[BlindSpot]) -> str:
    """``arbel · backup not checked`` for one; ``3 account × checks not checked`` for more."""
    if len(spots) == 1:
        return f"{spots[0].account} · {spots[0].check} not checked"
    return f"{len(spots):,} account × checks not checked"


def _finding_chips(counts: Mapping[str, int]) -> list[present.Chip]:
    """``🔴 2 critical · 🟠 3 warnings · 👀 1 acknowledged · 💤 1 snoozed · 🔕 2 muted ·
    ✅ 4 resolved in 7 days`` (the ones that are not zero)."""
    loud = counts["open"] + counts["acknowledged"]
    warn = loud - counts["crit"]
    lately = f"resolved in {standings.RECENT.days} days"
    chips = [
        ("crit", SEVERITY_MARK["crit"], counts["crit"], "critical"),
        ("warn", SEVERITY_MARK["warn"], warn, "warning" if warn == 1 else "warnings"),
        ("none", STANDING_MARK["acknowledged"], counts["acknowledged"], "acknowledged"),
        ("none", STANDING_MARK["snoozed"], counts["snoozed"], "snoozed"),
        ("none", STANDING_MARK["muted"], counts["muted"], "muted"),
        ("none", STANDING_MARK["maintenance"], counts["maintenance"], "during maintenance"),
        ("ok", SEVERITY_MARK["ok"], counts["resolved"], lately),
    ]
    return [present.Chip(m, tone, f"{n:,} {words}") for tone, m, n, words in chips if n]
