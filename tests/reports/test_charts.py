"""The report's charts: SVG that says its figures in words, scales, and draws what it should."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from app.reports import charts
from tests.reports.sample import sample_report

NS = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    svg = ET.fromstring(str(markup))
    assert svg.tag == f"{NS}svg"
    assert svg.attrib["role"] == "img"
    assert svg.attrib["viewBox"].startswith("0 0 ")
    title = svg.find(f"{NS}title")
    assert title is not None and title.text == svg.attrib["aria-label"]
    assert "style=" not in markup
    return svg


def rects(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [r for r in svg.iter(f"{NS}rect") if cls in r.attrib["class"].split()]


def end(rect: ET.Element) -> float:
    return float(rect.attrib["x"]) + float(rect.attrib["width"])


def test_it_draws_a_bar_a_day_and_says_the_uptime_and_the_worst_day() -> None:
    report = sample_report()
    svg = parse(charts.daily_uptime(report.availability[0], report.period))
    label = svg.attrib["aria-label"]
    assert "shop" in label and "November 2026" in label
    assert "99.5 % overall" in label and "lowest 85.0 % on 10 Nov 2026" in label
    assert len(svg.findall(f"{NS}g")) == 30
    full = [float(r.attrib["height"]) for r in rects(svg, "up")]
    assert full[9] < full[0] == max(full)  # the day at 85 % is shorter
    assert len(rects(svg, "lost")) == 1


def test_it_leaves_a_day_without_a_look_as_a_gap() -> None:
    report = sample_report()
    daily = list(report.availability[0].daily_uptime)
    daily[3] = daily[4] = None
    endpoint = dataclasses.replace(report.availability[0], daily_uptime=tuple(daily))
    svg = parse(charts.daily_uptime(endpoint, report.period))
    days = svg.findall(f"{NS}g")
    assert len(days) == 28
    said = [d.find(f"{NS}title").text for d in days]  # type: ignore[union-attr]
    assert not any(t.startswith(("4 Nov", "5 Nov")) for t in said)
    assert "no look on 2 days" in svg.attrib["aria-label"]
    nothing = dataclasses.replace(endpoint, daily_uptime=(None,) * 30)
    assert charts.daily_uptime(nothing, report.period) == ""


def test_it_draws_a_databases_cpu_and_free_storage_with_their_extremes_in_words() -> None:
    report = sample_report()
    database = report.databases[0]
    cpu = parse(charts.database_cpu(database, report.period))
    assert "orders-db" in cpu.attrib["aria-label"]
    assert "highest 69.0 % on 30 Nov 2026" in cpu.attrib["aria-label"]
    free = parse(charts.database_storage(database, report.period))
    assert "41.0 % on 1 Nov 2026 to 33.8 % on 30 Nov 2026" in free.attrib["aria-label"]
    assert len(free.findall(f"{NS}polyline")) == 1


def test_it_breaks_a_database_line_where_a_day_had_no_figure() -> None:
    report = sample_report()
    values = [50.0, 60.0, None, 70.0, 80.0, None, 90.0]
    database = dataclasses.replace(report.databases[0], daily_cpu_peak=tuple(values))
    svg = parse(charts.database_cpu(database, report.period))
    lines = svg.findall(f"{NS}polyline")
    assert [len(p.attrib["points"].split()) for p in lines] == [2, 2]
    assert len(svg.findall(f"{NS}circle")) == 2  # the lone day, and the highest
    assert "no look on 2 days" in svg.attrib["aria-label"]
    empty = dataclasses.replace(database, daily_free_pct=(None, None))
    assert charts.database_storage(empty, report.period) == ""


def test_it_draws_a_budget_over_its_limit_past_the_limit_mark() -> None:
    budget = sample_report().cost[0]
    svg = parse(charts.budget(budget))
    label = svg.attrib["aria-label"]
    assert "actual $5,200, 104 % of the $5,000 limit" in label
    assert "forecast $5,200, 104 %" in label
    limit = svg.find(f"{NS}line")
    assert limit is not None and limit.attrib["class"] == "limit"
    mark = float(limit.attrib["x1"])
    over = rects(svg, "over")
    assert len(over) == 2 and all(end(r) > mark for r in over)
    assert all(end(r) <= mark + 0.01 for r in rects(svg, "within"))


def test_it_draws_a_budget_within_its_limit_short_of_the_mark() -> None:
    budget = dataclasses.replace(sample_report().cost[0], actual=2_500.0, forecast=None)
    svg = parse(charts.budget(budget))
    assert "50 % of the $5,000 limit" in svg.attrib["aria-label"]
    assert "forecast" not in svg.attrib["aria-label"]
    mark = float(svg.find(f"{NS}line").attrib["x1"])  # type: ignore[union-attr]
    (within,) = rects(svg, "within")
    assert end(within) < mark and not rects(svg, "over")


def test_it_escapes_names_in_the_text() -> None:
    budget = dataclasses.replace(sample_report().cost[0], name='<b>"x" & y</b>')
    markup = charts.budget(budget)
    assert "<b>" not in markup
    assert parse(markup).attrib["aria-label"].startswith('Budget <b>"x" & y</b>')
