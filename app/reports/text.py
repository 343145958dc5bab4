"""A report as plain text for the terminal (``mhub report``): its two-line headline, then
each section's table as the CSV files have it, in aligned columns."""

from __future__ import annotations

from app.reports.csvs import tables
from app.reports.model import Report
from app.reports.words import headline

MAX_ROWS = 20
"""Rows shown per section; the CSV files and the page have them all."""


def render_text(report: Report) -> str:
    first, second = headline(report)
    lines = [first, second, f"Times in {report.timezone}.", *report.notes]
    for name, (header, rows) in tables(report).items():
        lines += ["", name.replace("_", " ").capitalize()]
        if not rows:
            lines.append("  (nothing)")
            continue
        shown = rows[:MAX_ROWS]
        widths = [
            max(len(str(cell)) for cell in column) for column in zip(header, *shown, strict=False)
        ]
        for row in (header, *shown):
            lines.append(
                "  "
                + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
            )
        if len(rows) > MAX_ROWS:
            lines.append(f"  … and {len(rows) - MAX_ROWS} more (--csv writes them all)")
    return "\n".join(lines)
