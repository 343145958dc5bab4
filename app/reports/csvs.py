"""The report as CSV files, one per section, for spreadsheets: numbers as plain numbers
(``99.5``, not ``99.5 %``), amounts beside a unit column, lengths of time in the unit the
column heading names and times as ISO 8601 with the customer's offset. Headings and names are
the page's words; a section with nothing in it is a file with its headings alone."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from app.reports.model import Report, Summary

Table = tuple[list[str], list[list[str]]]


def tables(report: Report) -> dict[str, Table]:
    """``{section: (headings, rows)}``, in the order of the page."""
    return {name: build(report) for name, build in _SECTIONS.items()}


def file_names(report: Report) -> dict[str, str]:
    """``{section: "arbel-2026-11-availability.csv"}``."""
    p = report.period
    period = p.month or f"{p.first.isoformat()}_{p.last.isoformat()}"
    return {name: f"{report.customer_id}-{period}-{name}.csv" for name in _SECTIONS}


def write_csvs(report: Report, directory: Path) -> list[Path]:
    """Writes one file per section into ``directory``; their paths, in the page's order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in _texts(report).items():
        path = directory / name
        path.write_text(text, encoding="utf-8", newline="")
        paths.append(path)
    return paths


def zip_bytes(report: Report) -> bytes:
    """The same files in one zip; each dated ``generated_at``, so the same report gives the
    same bytes."""
    stamp = report.generated_at.timetuple()[:6]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _texts(report).items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))
    return out.getvalue()


def _texts(report: Report) -> dict[str, str]:
    names = file_names(report)
    texts = {}
    for section, (headings, rows) in tables(report).items():
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(headings)
        writer.writerows([[_inert(cell) for cell in row] for row in rows])
        texts[names[section]] = buffer.getvalue()
    return texts


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _inert(cell: str) -> str:
    """A name a spreadsheet would run as a formula (``=HYPERLINK(…)`` as a budget's name, from
    the customer's own AWS account) starts with ``'``; numbers, negative ones too, stay numbers."""
    if not cell.startswith(_FORMULA):
        return cell
    try:
        float(cell)
    except ValueError:
        return "'" + cell
    return cell


def num(value: float | None, digits: int = 2) -> str:
    """``99.5``, ``5200``, ``96.77``: a number a spreadsheet reads ("" for nothing)."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def iso(moment: datetime | None) -> str:
    """``2026-11-10T02:00:00+07:00`` ("" for nothing)."""
    return "" if moment is None else moment.isoformat(timespec="seconds")


def minutes(seconds: float | None) -> str:
    return "" if seconds is None else num(seconds / 60, 1)


def hours(seconds: float | None) -> str:
    return "" if seconds is None else num(seconds / 3600, 2)


def _summary(r: Report) -> Table:
    def figures(s: Summary | None) -> list[str]:
        if s is None:
            return [""] * 8
        values = (s.looks, s.scheduled_expected, s.scheduled_done, s.scheduled_pct)
        rest = (s.accounts, s.accounts_configured, s.problem_days, s.days)
        return [num(v) for v in (*values, *rest)]

    labels = [
        "Checks run",
        "Scheduled runs expected",
        "Scheduled runs made",
        "Scheduled runs made (%)",
        "Accounts looked at",
        "Accounts configured",
        "Problem days",
        "Days monitored",
    ]
    now, before = figures(r.summary), figures(r.previous)
    rows = [[label, a, b] for label, a, b in zip(labels, now, before, strict=True)]
    return ["Figure", "This period", "Previous period"], rows


def _availability(r: Report) -> Table:
    headings = [
        "Account",
        "Endpoint",
        "URL",
        "Checks",
        "Checks up",
        "Uptime (%)",
        "Worst latency (ms)",
        "Worst latency at",
        "Outages",
        "Longest outage start",
        "Longest outage end",
        "Longest outage (minutes)",
        "Certificate days left",
    ]
    rows = []
    for e in r.availability:
        o = e.longest
        rows.append(
            [
                e.account,
                e.name,
                e.url or "",
                num(e.looks),
                num(e.up_looks),
                num(e.uptime_pct),
                num(e.worst_latency_ms, 0),
                iso(e.worst_latency_at),
                num(e.outages),
                iso(o.start) if o else "",
                iso(o.end) if o else "",
                minutes(o.seconds) if o else "",
                num(e.cert_days_left),
            ]
        )
    return headings, rows


def _backups(r: Report) -> Table:
    headings = ["Account", "Completed", "Failed", "Partly done or running", "Success (%)"]
    rows = [
        [a.account, num(a.completed), num(a.failed), num(a.other), num(a.success_pct)]
        for a in r.backups.accounts
    ]
    return headings, rows


def _backup_rpo(r: Report) -> Table:
    headings = ["Account", "Resource", "RPO (hours)", "From", "Until", "Duration (hours)"]
    rpo = num(r.backups.rpo_hours)
    rows = [
        [b.account, b.resource, rpo, iso(b.start), iso(b.end), hours(b.seconds)]
        for b in r.backups.breaches
    ]
    return headings, rows


def _databases(r: Report) -> Table:
    headings = [
        "Account",
        "Region",
        "Database",
        "CPU peak (%)",
        "CPU peak at",
        "Free storage at start (%)",
        "Free storage at end (%)",
        "Free storage at start (GiB)",
        "Free storage at end (GiB)",
        "Thresholds crossed",
    ]
    rows = [
        [
            d.account,
            d.region,
            d.name,
            num(d.cpu_peak),
            iso(d.cpu_peak_at),
            num(d.free_start_pct),
            num(d.free_end_pct),
            num(d.free_start_gib),
            num(d.free_end_gib),
            "; ".join(
                f"{c.metric} ({c.level}) from {iso(c.first_at)}: {c.text}" for c in d.crossings
            ),
        ]
        for d in r.databases
    ]
    return headings, rows


def _alarms(r: Report) -> Table:
    headings = ["Account", "Alarm", "Label", "Times fired", "Time in alarm (minutes)", "Last"]
    rows = [
        [a.account, a.name, a.label or "", num(a.fired), minutes(a.seconds), iso(a.last_at)]
        for a in r.alarms
    ]
    return headings, rows


def _cost(r: Report) -> Table:
    headings = [
        "Account",
        "Budget",
        "Unit",
        "Limit",
        "Actual",
        "Actual (% of limit)",
        "Forecast",
        "Forecast (% of limit)",
        "Previous period actual",
        "As of",
    ]
    rows = [
        [
            b.account,
            b.name,
            b.unit,
            num(b.limit),
            num(b.actual),
            num(b.actual_pct),
            num(b.forecast),
            num(b.forecast_pct),
            num(b.previous_actual),
            iso(b.as_of),
        ]
        for b in r.cost
    ]
    return headings, rows


def _findings(r: Report) -> Table:
    f = r.findings
    rows = [
        ["Opened", num(f.opened), ""],
        ["Resolved", num(f.resolved), ""],
        ["Still open at the end", num(f.open_at_end), ""],
        ["Mean time to resolve (hours)", hours(f.mean_resolve_s), ""],
        ["Acknowledged", num(f.acknowledged), ""],
    ]
    rows += [["Snoozed", num(a.count), a.reason] for a in f.snoozed]
    rows += [["Muted", num(a.count), a.reason] for a in f.muted]
    return ["Figure", "Value", "Reason"], rows


def _findings_longest(r: Report) -> Table:
    headings = ["Account", "Check", "Resource", "Finding", "Open since", "Resolved", "Open (hours)"]
    rows = [
        [
            x.account,
            x.check,
            x.resource,
            x.summary,
            iso(x.since),
            iso(x.resolved_at),
            hours(x.seconds),
        ]
        for x in r.findings.longest
    ]
    return headings, rows


def _could_not_check(r: Report) -> Table:
    headings = ["Account", "Check", "From", "Until", "Duration (hours)", "Failed checks", "Why"]
    rows = [
        [g.account, g.check, iso(g.start), iso(g.end), hours(g.seconds), num(g.looks), g.why]
        for g in r.gaps
    ]
    return headings, rows


_SECTIONS: dict[str, Callable[[Report], Table]] = {
    "summary": _summary,
    "availability": _availability,
    "backups": _backups,
    "backup_rpo": _backup_rpo,
    "databases": _databases,
    "alarms": _alarms,
    "cost": _cost,
    "findings": _findings,
    "findings_longest": _findings_longest,
    "could_not_check": _could_not_check,
}
"""Each section's file name (``<customer>-<period>-<section>.csv``) and its table."""
