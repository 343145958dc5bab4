"""The answer to ``/monitor report CUSTOMER [YYYY-MM]``: the report's two-line headline, its
period and time zone, and where to get the whole of it — link buttons to the web page and the
PDF when the hub has a public URL, else the ``mhub report`` command that makes the PDF. Pure:
the report is worded by ``app.reports.words`` before it gets here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from blocks import text as t
from blocks.ids import ActionId, BlockId


@dataclass(frozen=True)
class AskedReport:
    """A month's report as its answer shows it."""

    customer_id: str
    month: str
    """``2026-11``."""
    label: str
    """``November 2026``."""
    timezone: str
    headline: tuple[str, str]
    """``Monthly report for …``, and the figures in one line."""
    began: str | None = None
    """When monitoring began (``2 Nov 2026 07:00 WIB``), when that is inside the month."""
    notes: Sequence[str] = ()
    """What a reader should know about the figures (a month not over yet, and so on)."""


def report_links(public_url: str | None, customer_id: str, month: str) -> tuple[str, str] | None:
    """The report's web page and its PDF, or None without a public URL."""
    if not public_url:
        return None
    page = f"{public_url.rstrip('/')}/customers/{quote(customer_id, safe='')}/reports/{month}"
    return page, f"{page}.pdf"


def cli_hint(customer_id: str, month: str) -> str:
    """The command that writes the same report's PDF."""
    return f"mhub report {customer_id} --month {month} --pdf {customer_id}-{month}.pdf"


def report_answer(report: AskedReport, public_url: str | None) -> dict[str, Any]:
    """The ephemeral answer: only the person who asked sees it."""
    first, second = (t.escape(line) for line in report.headline)
    about = [f"{t.escape(report.label)} · times in {t.escape(report.timezone)}"]
    if report.began:
        about.append(f"Monitoring began on {t.escape(report.began)}; the figures start there.")
    about += [t.escape(note) for note in report.notes]
    blocks: list[dict[str, Any]] = [
        t.section(f"*{first}*\n{second}", BlockId.REPORT_HEADLINE),
        t.context(about, BlockId.REPORT_ABOUT),
    ]
    links = report_links(public_url, report.customer_id, report.month)
    if links is None:
        hint = t.escape(cli_hint(report.customer_id, report.month))
        blocks.append(t.context([f"The whole report as a PDF: `{hint}`"], BlockId.REPORT_LINKS))
    else:
        page, pdf = links
        buttons = [
            t.button("Open the report", ActionId.REPORT_PAGE, url=page, style="primary"),
            t.button("Download the PDF", ActionId.REPORT_PDF, url=pdf),
        ]
        blocks.append({"type": "actions", "block_id": BlockId.REPORT_LINKS, "elements": buttons})
    return {
        "response_type": "ephemeral",
        "text": t.fallback(f"{first} {second}"),
        "blocks": blocks,
    }
