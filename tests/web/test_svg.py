"""Sparklines and bars drawn on the server as inline SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from app.web.svg import Threshold, bar, sparkline

NS = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup).replace("<svg ", f'<svg xmlns="{NS[1:-1]}" ', 1))


def test_it_draws_a_series_as_a_line_with_its_threshold_as_a_dashed_line() -> None:
    svg = parse(
        sparkline(
            [40, 60, 93],
            thresholds=[Threshold(90, "crit")],
            severity="crit",
            extreme="max",
            label="CPU max 93 % (crit ≥ 90 %)",
        )
    )
    assert "sev-crit" in svg.attrib["class"]
    line = svg.find(f"{NS}polyline")
    assert line is not None
    points = [tuple(map(float, p.split(","))) for p in line.attrib["points"].split()]
    assert len(points) == 3
    limit = svg.find(f"{NS}line")
    assert limit.attrib["class"] == "limit limit-crit"
    y90 = float(limit.attrib["y1"])
    assert points[2][1] < y90 < points[1][1]  # 93 above the line, 60 below (y grows down)
    dot = svg.find(f"{NS}circle")
    assert (float(dot.attrib["cx"]), float(dot.attrib["cy"])) == points[2]
    assert svg.find(f"{NS}title").text == "CPU max 93 % (crit ≥ 90 %)"


def test_it_keeps_a_far_threshold_on_the_chart() -> None:
    svg = parse(sparkline([10, 12, 11], thresholds=[Threshold(90, "crit")], height=40))
    y = float(svg.find(f"{NS}line").attrib["y1"])
    assert 0 <= y <= 40


def test_it_draws_nothing_for_an_empty_series_and_a_flat_line_for_a_constant_one() -> None:
    assert sparkline([]) == ""
    assert sparkline([None, float("nan")]) == ""
    flat = parse(sparkline([5, 5, 5]))
    ys = {p.split(",")[1] for p in flat.find(f"{NS}polyline").attrib["points"].split()}
    assert len(ys) == 1


def test_it_escapes_the_label() -> None:
    markup = sparkline([1, 2], label='<script>alert("x")</script>')
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert "style=" not in markup


def test_it_fills_a_bar_to_its_fraction_with_a_forecast_tick() -> None:
    svg = parse(bar(0.78, severity="warn", marker=1.06, width=100))
    fill = next(r for r in svg.iter(f"{NS}rect") if r.attrib["class"] == "fill")
    assert float(fill.attrib["width"]) == 78
    assert float(svg.find(f"{NS}line").attrib["x1"]) == 99  # past 100 %: pinned to the end
    over = parse(bar(1.7, width=100))
    assert (
        float(
            next(r for r in over.iter(f"{NS}rect") if r.attrib["class"] == "fill").attrib["width"]
        )
        == 100
    )
    assert re.search(r'class="bar sev-ok"', bar(0.1))
