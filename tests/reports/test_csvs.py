"""The CSV files, read back with the csv module the way a spreadsheet would."""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from datetime import date, datetime
from pathlib import Path

from app.reports.csvs import tables, write_csvs, zip_bytes
from app.reports.model import Report
from tests.reports.sample import TZ, at, sample_report

SECTIONS = [
    "summary",
    "availability",
    "backups",
    "backup_rpo",
    "databases",
    "alarms",
    "cost",
    "findings",
    "findings_longest",
    "could_not_check",
]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def written(tmp_path: Path, report: Report | None = None) -> dict[str, list[dict[str, str]]]:
    paths = write_csvs(report or sample_report(), tmp_path)
    return {p.name.removeprefix("arbel-2026-11-").removesuffix(".csv"): read(p) for p in paths}


def test_it_writes_a_file_per_section_named_by_customer_and_month(tmp_path: Path) -> None:
    paths = write_csvs(sample_report(), tmp_path)

    assert [p.name for p in paths] == [f"arbel-2026-11-{s}.csv" for s in SECTIONS]
    assert all(p.parent == tmp_path for p in paths)


def test_a_range_of_days_is_named_by_its_first_and_last_day(tmp_path: Path) -> None:
    r = sample_report()
    period = dataclasses.replace(
        r.period, last=date(2026, 11, 15), end=at(16), month=None, label="1 Nov 2026 – 15 Nov 2026"
    )

    paths = write_csvs(dataclasses.replace(r, period=period), tmp_path)

    assert paths[0].name == "arbel-2026-11-01_2026-11-15-summary.csv"


def test_it_writes_plain_numbers_a_spreadsheet_can_add_up(tmp_path: Path) -> None:
    got = written(tmp_path)

    shop = got["availability"][0]
    assert float(shop["Uptime (%)"]) == 99.5
    assert float(shop["Worst latency (ms)"]) == 2350
    assert float(shop["Longest outage (minutes)"]) == 216
    assert sum(int(a["Failed"]) for a in got["backups"]) == 2
    assert sum(int(a[k]) for a in got["backups"] for k in ("Completed", "Failed")) == 62
    assert float(got["backup_rpo"][0]["Duration (hours)"]) == 24.5
    budget = got["cost"][0]
    assert (budget["Unit"], float(budget["Actual"]), float(budget["Limit"])) == ("USD", 5200, 5000)
    assert float(budget["Actual (% of limit)"]) == 104
    assert float(got["alarms"][0]["Time in alarm (minutes)"]) == 90
    findings = {row["Figure"]: row for row in got["findings"]}
    assert float(findings["Mean time to resolve (hours)"]["Value"]) == 9
    assert findings["Snoozed"]["Reason"] == "vendor fix due Monday"
    summary = {row["Figure"]: row for row in got["summary"]}
    assert (summary["Problem days"]["This period"], summary["Problem days"]["Previous period"]) == (
        "4",
        "6",
    )


def test_it_writes_times_with_the_customers_offset(tmp_path: Path) -> None:
    got = written(tmp_path)

    shop = got["availability"][0]
    assert shop["Longest outage start"] == "2026-11-10T02:00:00+07:00"
    assert datetime.fromisoformat(shop["Longest outage end"]) == datetime(
        2026, 11, 10, 5, 36, tzinfo=TZ
    )
    assert got["findings_longest"][0]["Resolved"] == ""


def test_an_empty_month_has_headings_and_no_rows() -> None:
    got = tables(sample_report(empty=True))

    assert list(got) == SECTIONS
    assert all(rows == [] for name, (_, rows) in got.items() if name not in ("summary", "findings"))
    assert all(headings for headings, _ in got.values())


def test_odd_names_commas_and_line_breaks_come_back_exactly(tmp_path: Path) -> None:
    r = sample_report()
    why = 'AccessDenied, "sts:AssumeRole"\nsecond line'
    report = dataclasses.replace(
        r,
        cost=(dataclasses.replace(r.cost[0], name="Büdget ≥ 😀 中"),),
        gaps=(dataclasses.replace(r.gaps[0], why=why),),
    )

    got = written(tmp_path, report)

    assert got["cost"][0]["Budget"] == "Büdget ≥ 😀 中"
    assert got["could_not_check"][0]["Why"] == why


def test_the_zip_holds_every_file_and_is_the_same_each_time(tmp_path: Path) -> None:
    report = sample_report()
    paths = write_csvs(report, tmp_path)

    data = zip_bytes(report)

    assert zip_bytes(report) == data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == [p.name for p in paths]
        for p in paths:
            assert archive.read(p.name) == p.read_bytes()
        assert {i.date_time for i in archive.infolist()} == {(2026, 12, 1, 9, 0, 0)}


def test_a_name_a_spreadsheet_would_run_is_written_inert(tmp_path: Path) -> None:
    from dataclasses import replace

    report = sample_report()
    [budget] = report.cost
    evil = replace(budget, name='=HYPERLINK("http://x.example","click")', actual=-5.0)
    written = write_csvs(replace(report, cost=(evil,)), tmp_path)
    [cost] = [p for p in written if p.name.endswith("-cost.csv")]
    with cost.open(newline="") as f:
        [row] = list(csv.DictReader(f))
    assert any(v.startswith("'=HYPERLINK") for v in row.values())
    assert "-5" in row.values()  # a negative number is still a number
