"""The PDF report, read back the way a customer's viewer would: its text, taken out with pypdf."""

from __future__ import annotations

import dataclasses
import io
import re

import pypdf

from app.reports.model import Report
from app.reports.pdf import latin, render_pdf
from tests.reports.sample import at, sample_report

SECTIONS = [
    "Summary",
    "Availability",
    "Backups",
    "Databases",
    "Alarms",
    "Cost",
    "Findings",
    "Could not check",
]


def pages(report: Report) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(report)))
    return [page.extract_text() for page in reader.pages]


def text(report: Report) -> str:
    return "\n".join(pages(report))


def long_report() -> Report:
    r = sample_report()
    return dataclasses.replace(
        r,
        availability=tuple(
            dataclasses.replace(r.availability[0], name=f"endpoint-{i}") for i in range(50)
        ),
        databases=tuple(dataclasses.replace(r.databases[0], name=f"db-{i}") for i in range(50)),
        alarms=tuple(dataclasses.replace(r.alarms[0], name=f"alarm-{i}") for i in range(100)),
        cost=tuple(dataclasses.replace(r.cost[0], name=f"budget-{i}") for i in range(50)),
        gaps=tuple(dataclasses.replace(r.gaps[0], check=f"check-{i}") for i in range(30)),
    )


def test_it_says_the_figures_a_customer_looks_for() -> None:
    said = text(sample_report())

    assert "99.5 %" in said
    assert "2 of 62 backup jobs failed" in said
    assert "104 %" in said
    assert "$5,200 of $5,000" in said
    assert "Problem days 4 of 30 -2" in said
    assert "Against October 2026" in said


def test_it_gives_the_outage_in_the_customers_zone() -> None:
    said = text(sample_report())

    assert "10 Nov 2026 02:00 WIB – 10 Nov 2026 05:36 WIB (3 h 36 min)" in said
    assert "Times are in Asia/Jakarta (WIB)" in said


def test_it_has_the_sections_in_the_page_order() -> None:
    lines = text(sample_report()).splitlines()

    found = [lines.index(heading) for heading in SECTIONS]

    assert found == sorted(found)


def test_it_speaks_in_words_not_codes() -> None:
    said = text(sample_report())

    assert not re.search(r"\b(crit|warn|ok|None)\b", said)


def test_it_says_when_monitoring_began_and_the_notes() -> None:
    report = dataclasses.replace(
        sample_report(), began=at(12, 10), notes=("The month is not over yet.",)
    )

    said = text(report)

    assert "Monitoring began on 12 Nov 2026 10:00 WIB" in said
    assert "The month is not over yet." in said


def test_it_says_an_empty_month_had_nothing_in_it() -> None:
    said = text(sample_report(empty=True))

    assert "No check ran in November 2026." in said
    for line in (
        "No endpoint was checked.",
        "No backup job ran.",
        "No database was checked.",
        "No alarm fired.",
        "No budget was checked.",
    ):
        assert line in said
    assert "No comparison with October 2026" in said
    assert [h for h in SECTIONS if h not in said.splitlines()] == []


def test_it_never_calls_a_month_with_blind_spots_clear() -> None:
    empty, full = sample_report(empty=True), sample_report()
    quiet = dataclasses.replace(empty, summary=dataclasses.replace(empty.summary, looks=120))

    blind = text(dataclasses.replace(quiet, gaps=full.gaps))

    assert "No problem was found where the hub could look" in blind
    assert "the monitoring role could not be assumed" in blind
    assert "No problem was found in November 2026." not in blind
    assert "all clear" not in blind.lower()
    assert "No problem was found in November 2026." in text(quiet)


def test_it_prints_names_the_font_cannot() -> None:
    r = sample_report()
    odd = dataclasses.replace(r.cost[0], name="Büdget → ő 中")
    report = dataclasses.replace(r, customer="Ünïcødé ≥ 😀 Kft", cost=(odd,))

    said = text(report)

    assert "Ünïcødé >= Kft" in said
    assert "Büdget -> o ?" in said


def test_a_very_long_reason_is_cut_rather_than_breaking_the_page() -> None:
    r = sample_report()
    endless = dataclasses.replace(r.gaps[0], why="AccessDenied " * 2_000)

    said = text(dataclasses.replace(r, gaps=(endless,)))

    assert "AccessDenied AccessDenied" in said
    assert said.count("AccessDenied") < 100


def test_latin_keeps_what_the_font_has_and_spells_out_the_rest() -> None:
    assert latin("— € “quoted” … · Ünïcødé") == "— € “quoted” … · Ünïcødé"
    assert latin("≥ 90 %, ≤ 10 %, −2, a → b") == ">= 90 %, <= 10 %, -2, a -> b"
    assert latin("Kőbánya 👍🏽 e\u0301 中") == "Kobánya é ?"


def test_a_long_report_runs_over_pages_with_headings_repeated() -> None:
    texts = pages(long_report())

    assert len(texts) > 5
    assert f"page 1 of {len(texts)}" in texts[0]
    assert f"Arbel Retail · November 2026 · page {len(texts)} of {len(texts)}" in texts[-1]
    alarm_pages = [t for t in texts if "alarm-" in t]
    assert len(alarm_pages) > 1
    assert all("Times fired" in t or "Alarm Account" in t for t in alarm_pages)


def test_it_is_the_same_bytes_each_time_with_its_metadata() -> None:
    report = sample_report()

    first = render_pdf(report)

    assert render_pdf(report) == first
    info = pypdf.PdfReader(io.BytesIO(first)).metadata
    assert info is not None
    assert info.author == "Monitoring Hub"
    assert info.title == "Arbel Retail: monitoring report, November 2026"
    assert info.creation_date == report.generated_at
