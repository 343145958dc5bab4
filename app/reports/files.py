"""A report's PDF, made on demand. fpdf2 takes about a second to import (fontTools), which
every ``mhub`` command, the web view and the Slack side would otherwise pay at start: it is
loaded with the first PDF, in the thread that makes it."""

from __future__ import annotations

from app.reports.model import Report


def pdf_bytes(report: Report) -> bytes:
    from app.reports.pdf import render_pdf

    return render_pdf(report)
