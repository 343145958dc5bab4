"""The report as an A4 PDF: the web page's sections in the same order and the same words
(:mod:`app.reports.words`), with small charts drawn from rectangles and lines.

The text uses the PDF core font Helvetica, which is single-byte (Windows-1252): every string
goes through :func:`latin`, so a name with a character outside it prints as near as it can
(``≥`` as ``>=``, ``ő`` as ``o``, an emoji not at all) instead of failing the render. The
creation date is the report's ``generated_at``, so the same report gives the same bytes."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Sequence

from fpdf import FPDF
from fpdf.enums import TableBordersLayout
from fpdf.fonts import FontFace

from app.reports import words as w
from app.reports.model import Budget, Database, Endpoint, Report

ENCODING = "windows-1252"

RGB = tuple[int, int, int]
INK: RGB = (33, 37, 41)
GREY: RGB = (120, 124, 130)
PALE: RGB = (222, 226, 230)
BLUE: RGB = (52, 110, 180)
GREEN: RGB = (46, 150, 70)
AMBER: RGB = (225, 150, 0)
RED: RGB = (200, 50, 50)
ORANGE: RGB = (230, 120, 30)

CELL_CHARS = 500
"""The most of one table cell shown (the CSV files carry it all): a row taller than a page
cannot be drawn."""

LABEL_W = 45.0
"""The width (mm) of the name left of each chart."""

_SPELLED = {"≥": ">=", "≤": "<=", "−": "-", "→": "->", "←": "<-", "≠": "!="}
_DROPPED = {"So", "Sk", "Cf", "Cs", "Mn", "Me"}
"""Unicode categories dropped when Windows-1252 lacks them: emoji and other pictographs,
their modifiers and joiners, and accents left over after decomposition."""


def latin(text: str) -> str:
    """``text`` as the core font can print it: ``Ünïcødé ≥ 😀 Kft`` → ``Ünïcødé >= Kft``."""
    text = unicodedata.normalize("NFC", text)
    try:
        text.encode(ENCODING)
    except UnicodeEncodeError:
        return "".join(_char(c) for c in text).replace("  ", " ")
    return text


@functools.cache
def _char(c: str) -> str:
    if c in _SPELLED:
        return _SPELLED[c]
    if _prints(c):
        return c
    if unicodedata.category(c) in _DROPPED:
        return ""
    base = "".join(b for b in unicodedata.normalize("NFKD", c) if not unicodedata.combining(b))
    return base if base and _prints(base) else "?"


def _cut(text: str) -> str:
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def _prints(text: str) -> bool:
    try:
        text.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


class _Document(FPDF):
    """An A4 page with the report's footer and the few building blocks every section uses."""

    def __init__(self, report: Report) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.core_fonts_encoding = ENCODING
        self.footing = latin(f"{report.customer} · {report.period.label}")
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=18)
        self.set_title(f"{report.customer}: monitoring report, {report.period.label}")
        self.set_author("Monitoring Hub")
        self.set_creator("Monitoring Hub")
        self.set_subject(f"Monitoring report for {report.period.label}")
        self.set_lang("en")
        self.set_creation_date(report.generated_at)
        self.set_text_color(*INK)
        self.add_page()

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7.5)
        self.set_text_color(*GREY)
        self.cell(0, 5, f"{self.footing} · page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(*INK)

    def room(self, height: float) -> None:
        """A new page unless ``height`` mm fit below the current line."""
        if self.get_y() + height > self.page_break_trigger:
            self.add_page()

    def heading(self, text: str, size: float = 13) -> None:
        self.room(30 if size > 11 else 20)
        self.ln(3 if size > 11 else 1)
        self.set_font("Helvetica", "B", size)
        self.multi_cell(0, size * 0.5, latin(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(1.5)

    def para(self, text: str, size: float = 9, colour: RGB = INK) -> None:
        self.set_font("Helvetica", "", size)
        self.set_text_color(*colour)
        self.multi_cell(0, size * 0.5, latin(text), new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(*INK)
        self.ln(1)

    def grid(
        self,
        headings: Sequence[str] | None,
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        numbers: Sequence[int] = (),
    ) -> None:
        """A table that splits across pages and repeats its headings (``None``: no headings,
        a list of facts); columns in ``numbers`` are right-aligned."""
        self.set_font("Helvetica", "", 8)
        self.set_draw_color(*PALE)
        self.set_fill_color(255)  # the table's cells take the current fill colour
        align = tuple("RIGHT" if i in numbers else "LEFT" for i in range(len(widths)))
        with self.table(
            col_widths=tuple(widths),
            text_align=align,
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            first_row_as_headings=headings is not None,
            headings_style=FontFace(emphasis="BOLD", fill_color=(240, 242, 245)),
            line_height=4,
            padding=(1, 1.5),
        ) as table:
            for row in [headings, *rows] if headings is not None else rows:
                table.row([_cut(latin(cell)) for cell in row])
        self.ln(2)

    def fit(self, text: str, width: float) -> str:
        """``text`` cut with ``…`` to ``width`` mm in the current font."""
        text = latin(text)
        while len(text) > 1 and self.get_string_width(text) > width:
            text = text[:-2] + "…"
        return text

    def chart(
        self,
        label: str,
        bars: Sequence[float | None],
        colour: Callable[[float], RGB],
        line: Sequence[float | None] = (),
    ) -> None:
        """One row: ``label``, then a bar per day on a 0–100 scale (a grey tick for a day with
        no figure) and optionally a line over them."""
        height = 8.0
        self.room(height + 3)
        top, left = self.get_y(), self.l_margin + LABEL_W
        step = (self.epw - LABEL_W) / max(1, len(bars), len(line))
        self.set_font("Helvetica", "", 7.5)
        self.set_xy(self.l_margin, top + height - 4)
        self.cell(LABEL_W - 2, 4, self.fit(label, LABEL_W - 3))
        self.set_draw_color(*PALE)
        self.line(left, top + height, left + step * len(bars), top + height)
        for i, value in enumerate(bars):
            tall = 0.4 if value is None else height * max(0.0, min(value, 100.0)) / 100
            self.set_fill_color(*(PALE if value is None else colour(value)))
            self.rect(left + i * step + step * 0.15, top + height - tall, step * 0.7, tall, "F")
        points = [
            (left + (i + 0.5) * step, top + height * (1 - max(0.0, min(v, 100.0)) / 100))
            for i, v in enumerate(line)
            if v is not None
        ]
        if len(points) > 1:
            self.set_draw_color(*ORANGE)
            self.set_line_width(0.5)
            self.polyline(points)
            self.set_line_width(0.2)
        self.set_xy(self.l_margin, top + height + 2.5)


def render_pdf(report: Report) -> bytes:
    """The report as the bytes of an A4 PDF."""
    pdf = _Document(report)
    _title(pdf, report)
    for heading, section in _SECTIONS:
        pdf.heading(heading)
        section(pdf, report)
    return bytes(pdf.output())


def _title(pdf: _Document, r: Report) -> None:
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 9, latin(r.customer), new_x="LMARGIN", new_y="NEXT")
    kind = "Monthly monitoring report" if r.period.month else "Monitoring report"
    pdf.para(f"{kind} · {r.period.label}", size=13)
    zone = r.period.start.tzname() or ""
    pdf.para(
        f"Times are in {r.timezone} ({zone}). Generated {w.when(r.generated_at)}.",
        size=8.5,
        colour=GREY,
    )
    if r.began is not None:
        pdf.para(f"Monitoring began on {w.when(r.began)}; the figures start there.", size=8.5)
    for note in r.notes:
        pdf.para(f"• {note}", size=8.5)


def _verdict(r: Report) -> str:
    s, label = r.summary, r.period.label
    blind = " For a while the hub could not look at some accounts: see Could not check."
    if not s.looks:
        return f"No check ran in {label}." + (blind if r.gaps else "")
    if s.problem_days:
        found = f"Checks found a problem on {w.count(s.problem_days, 'day')} of {s.days}."
        return found + (blind if r.gaps else "")
    if r.gaps:
        return (
            "No problem was found where the hub could look, but for a while it could not look "
            "at some accounts: see Could not check."
        )
    return f"No problem was found in {label}."


def _summary(pdf: _Document, r: Report) -> None:
    pdf.para(_verdict(r), size=10)
    s, p = r.summary, r.previous
    rows = [
        ["Checks run", f"{s.looks:,}"],
        ["Scheduled runs made", w.coverage(s)],
        ["Accounts looked at", f"{s.accounts} of {s.accounts_configured}"],
        ["Problem days", f"{s.problem_days} of {s.days}"],
        ["Days monitored", f"{s.days} of {r.period.days}"],
    ]
    if p is None:
        pdf.grid(None, rows, (35, 65))
        pdf.para(f"No comparison with {w.before(r)}: monitoring had not begun.", 8.5, GREY)
        return
    changes = [
        w.versus(s.looks, p.looks),
        w.versus(s.scheduled_pct, p.scheduled_pct, " %"),
        w.versus(s.accounts, p.accounts),
        w.versus(s.problem_days, p.problem_days),
        w.NONE,
    ]
    pdf.grid(
        ["", r.period.label, f"Against {w.before(r)}"],
        [[*row, change] for row, change in zip(rows, changes, strict=True)],
        (30, 40, 30),
    )


def _availability(pdf: _Document, r: Report) -> None:
    if not r.availability:
        pdf.para("No endpoint was checked.")
        return
    pdf.grid(
        ["Endpoint", "Uptime", "Worst latency", "Outages", "Longest outage", "Certificate"],
        [_endpoint(e) for e in r.availability],
        (22, 10, 20, 9, 29, 12),
        numbers=(1, 3),
    )
    pdf.para(
        f"Daily uptime, {w.day(r.period.first)} to {w.day(r.period.last)} (a full bar is 100 %; "
        "grey: no check that day).",
        size=8,
        colour=GREY,
    )
    for e in r.availability:
        pdf.chart(e.name, e.daily_uptime, _uptime_colour)


def _endpoint(e: Endpoint) -> list[str]:
    longest = w.NONE
    if e.longest is not None:
        end = w.when(e.longest.end) if e.longest.end else "still down at the end"
        longest = f"{w.when(e.longest.start)} – {end} ({w.span(e.longest.seconds)})"
    return [
        f"{e.name}\n{e.account}",
        w.pct(e.uptime_pct),
        f"{w.latency(e.worst_latency_ms)}\n{w.when(e.worst_latency_at)}",
        f"{e.outages:,}",
        longest,
        w.NONE if e.cert_days_left is None else f"{w.count(e.cert_days_left, 'day')} left",
    ]


def _uptime_colour(value: float) -> RGB:
    return GREEN if value >= 100 else AMBER if value >= 99 else RED


def _backups(pdf: _Document, r: Report) -> None:
    b = r.backups
    if not b.jobs and not b.breaches:
        pdf.para("No backup job ran.")
        return
    text = (
        f"{b.failed:,} of {w.count(b.jobs, 'backup job')} failed; {b.completed:,} completed "
        f"({w.pct(b.success_pct)} of finished jobs succeeded)."
    )
    pdf.para(text)
    pdf.grid(
        ["Account", "Completed", "Failed", "Partly done or running", "Success"],
        [
            [a.account, f"{a.completed:,}", f"{a.failed:,}", f"{a.other:,}", w.pct(a.success_pct)]
            for a in b.accounts
        ],
        (30, 15, 15, 20, 15),
        numbers=(1, 2, 3, 4),
    )
    target = w.span(b.rpo_hours * 3600)
    pdf.heading(f"Resources without a completed backup for over {target}", size=10)
    if not b.breaches:
        pdf.para(f"Every resource had a completed backup at least every {target}.")
        return
    pdf.grid(
        ["Account", "Resource", "From", "Until", "How long"],
        [
            [
                x.account,
                x.resource,
                w.when(x.start),
                w.when(x.end) if x.end else "not by the end",
                w.span(x.seconds),
            ]
            for x in b.breaches
        ],
        (20, 25, 22, 22, 14),
    )


def _databases(pdf: _Document, r: Report) -> None:
    if not r.databases:
        pdf.para("No database was checked.")
        return
    pdf.grid(
        ["Database", "CPU peak", "Free storage, start to end", "Thresholds crossed"],
        [_database(d) for d in r.databases],
        (22, 17, 25, 36),
    )
    pdf.para(
        "Daily CPU peak (bars) and lowest free storage (orange line), on a scale of 0 to 100 %.",
        size=8,
        colour=GREY,
    )
    for d in r.databases:
        pdf.chart(d.name, d.daily_cpu_peak, lambda _: BLUE, line=d.daily_free_pct)


def _database(d: Database) -> list[str]:
    def free(share: float | None, size: float | None) -> str:
        return w.pct(share) + ("" if size is None else f" ({w.gib(size)})")

    crossed = "\n".join(
        f"{c.metric} ({c.level}) from {w.when(c.first_at)}: {c.text}" for c in d.crossings
    )
    return [
        f"{d.name}\n{d.account} · {d.region}",
        f"{w.pct(d.cpu_peak)}\n{w.when(d.cpu_peak_at)}",
        f"{free(d.free_start_pct, d.free_start_gib)} to {free(d.free_end_pct, d.free_end_gib)}",
        crossed or "none",
    ]


def _alarms(pdf: _Document, r: Report) -> None:
    if not r.alarms:
        pdf.para("No alarm fired.")
        return
    pdf.grid(
        ["Alarm", "Account", "Label", "Times fired", "Time in alarm", "Last"],
        [
            [
                a.name,
                a.account,
                a.label or w.NONE,
                f"{a.fired:,}",
                w.span(a.seconds),
                w.when(a.last_at),
            ]
            for a in r.alarms
        ],
        (30, 18, 16, 11, 13, 22),
        numbers=(3, 4),
    )


def _cost(pdf: _Document, r: Report) -> None:
    if not r.cost:
        pdf.para("No budget was checked.")
        return
    pdf.grid(
        ["Budget", "Spent of limit", "Used", "Forecast", f"Against {w.before(r)}"],
        [_budget(b) for b in r.cost],
        (22, 28, 10, 22, 18),
        numbers=(2,),
    )
    pdf.para(
        "Spent (dark) and forecast (light) against the limit (black mark).", size=8, colour=GREY
    )
    for b in r.cost:
        _budget_bar(pdf, b)


def _budget(b: Budget) -> list[str]:
    spent = f"{w.money(b.actual, b.unit)} of {w.money(b.limit, b.unit)}"
    return [
        f"{b.name}\n{b.account}",
        f"{spent}\nas of {w.when(b.as_of)}",
        w.pct(b.actual_pct, 0),
        f"{w.money(b.forecast, b.unit)} ({w.pct(b.forecast_pct, 0)})",
        w.versus(b.actual, b.previous_actual, f" {b.unit}"),
    ]


def _budget_bar(pdf: _Document, b: Budget) -> None:
    """``b``'s spend as a bar, its forecast as a paler one behind it and its limit marked."""
    pdf.room(9)
    top, left = pdf.get_y(), pdf.l_margin + LABEL_W
    width = pdf.epw - LABEL_W - 20
    scale = width / (max(b.limit, b.actual, b.forecast or 0.0) * 1.05 or 1.0)
    pdf.set_font("Helvetica", "", 7.5)
    pdf.set_xy(pdf.l_margin, top)
    pdf.cell(LABEL_W - 2, 5, pdf.fit(b.name, LABEL_W - 3))
    if b.forecast:
        pdf.set_fill_color(*PALE)
        pdf.rect(left, top + 0.5, max(b.forecast * scale, 0.0), 4, "F")
    pdf.set_fill_color(*(RED if b.actual > b.limit else BLUE))
    pdf.rect(left, top + 0.5, max(b.actual * scale, 0.3), 4, "F")
    pdf.set_draw_color(*INK)
    pdf.set_line_width(0.6)
    pdf.line(left + b.limit * scale, top - 0.5, left + b.limit * scale, top + 5.5)
    pdf.set_line_width(0.2)
    pdf.set_xy(left + width + 2, top)
    pdf.cell(18, 5, latin(w.pct(b.actual_pct, 0)))
    pdf.set_xy(pdf.l_margin, top + 8)


def _findings(pdf: _Document, r: Report) -> None:
    f = r.findings
    if not (f.opened or f.open_at_end or f.resolved or f.longest or f.snoozed or f.muted):
        pdf.para("No finding was opened or open in this period.")
        return
    pdf.grid(
        None,
        [
            ["Opened", f"{f.opened:,}"],
            ["Resolved", f"{f.resolved:,}"],
            ["Still open at the end", f"{f.open_at_end:,}"],
            ["Mean time to resolve", w.span(f.mean_resolve_s)],
            ["Acknowledged", f"{f.acknowledged:,}"],
        ],
        (35, 65),
    )
    if f.longest:
        pdf.heading("Open longest", size=10)
        pdf.grid(
            ["Finding", "Account", "Check", "Since", "Until", "How long"],
            [
                [
                    f"{x.resource}: {x.summary}",
                    x.account,
                    x.check,
                    w.when(x.since),
                    w.when(x.resolved_at) if x.resolved_at else "still open",
                    w.span(x.seconds),
                ]
                for x in f.longest
            ],
            (34, 17, 10, 18, 18, 11),
        )
    answers = [("Snoozed", a) for a in f.snoozed] + [("Muted", a) for a in f.muted]
    if answers:
        pdf.heading("Snoozed and muted", size=10)
        pdf.grid(
            ["Answer", "Reason", "Times"],
            [[kind, a.reason, f"{a.count:,}"] for kind, a in answers],
            (15, 70, 15),
            numbers=(2,),
        )


def _gaps(pdf: _Document, r: Report) -> None:
    if not r.gaps:
        pdf.para("Every check could look at its account." if r.summary.looks else "No check ran.")
        return
    pdf.grid(
        ["Account", "Check", "From", "Until", "How long", "Why"],
        [
            [
                g.account,
                g.check,
                w.when(g.start),
                w.when(g.end) if g.end else "still failing at the end",
                w.span(g.seconds),
                g.why,
            ]
            for g in r.gaps
        ],
        (16, 11, 19, 19, 11, 24),
    )


_SECTIONS: tuple[tuple[str, Callable[[_Document, Report], None]], ...] = (
    ("Summary", _summary),
    ("Availability", _availability),
    ("Backups", _backups),
    ("Databases", _databases),
    ("Alarms", _alarms),
    ("Cost", _cost),
    ("Findings", _findings),
    ("Could not check", _gaps),
)
"""The sections in the order the web page shows them."""
