"""Sparklines and bars drawn on the server as inline SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from aiohttp.test_utils import TestClient

from app.models import Result
from app.web.present import chart
from app.web.svg import Threshold, bar, sparkline
from app.web.thresholds import limits
from tests.web.sample import RDS_THRESHOLDS, Estate

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


def limit_marks(svg: ET.Element) -> list[tuple[str, str, float, float, str]]:
    """(tooltip, text, line y, text y, text anchor) of each labelled threshold, top down."""
    texts = {}
    for text in svg.iter(f"{NS}text"):
        tip = text.find(f"{NS}title")
        texts[tip.text] = (tip.tail, float(text.attrib["y"]), text.attrib["text-anchor"])
    found = []
    for line in svg.iter(f"{NS}line"):
        tip = line.find(f"{NS}title")
        if tip is not None:
            found.append(
                (tip.text, texts[tip.text][0], float(line.attrib["y1"]), *texts[tip.text][1:])
            )
    return found


def test_it_labels_each_threshold_line_beside_it_and_as_its_tooltip() -> None:
    svg = parse(
        sparkline(
            [40, 60, 93],
            thresholds=[Threshold(80, "warn", "warn ≥ 80 %"), Threshold(90, "crit", "crit ≥ 90 %")],
            height=40,
        )
    )
    marks = limit_marks(svg)
    assert [(title, text) for title, text, *_ in marks] == [
        ("crit ≥ 90 %", "crit ≥ 90 %"),
        ("warn ≥ 80 %", "warn ≥ 80 %"),
    ]
    for _, _, line_y, text_y, _ in marks:
        assert abs(text_y - line_y) <= 12 and 0 <= text_y <= 40
    (*_, crit_y, crit_end), (*_, warn_y, warn_end) = marks
    assert crit_end != warn_end or abs(crit_y - warn_y) >= 9  # close lines, labels apart
    labels = [t for t in svg.iter(f"{NS}text")]
    assert {t.attrib["class"] for t in labels} == {
        "limit-label limit-label-crit",
        "limit-label limit-label-warn",
    }
    assert "style=" not in str(sparkline([1, 2], thresholds=[Threshold(1.5, "warn", "<b>")]))
    assert "&lt;b&gt;" in str(sparkline([1, 2], thresholds=[Threshold(1.5, "warn", "<b>")]))


def storage(**extra: object) -> tuple[dict[str, object], Result]:
    key = "shop-staging-db:free_storage_gib"
    res = {
        "id": "shop-staging-db",
        "severity": "warn",
        "summary": "free 7.5 GiB (7.5 %) (warn ≤ 10 %)",
        "series": key,
        **extra,
    }
    result = Result(
        check="rds",
        severity="warn",
        details={"resources": [res], "thresholds": RDS_THRESHOLDS},
        series={key: [12.0, 11.0, 9.6, 8.2, 7.5]},
    )
    return res, result


def test_it_draws_free_storage_thresholds_in_gib_saying_both_units() -> None:
    res, result = storage(allocated_gib=100)
    lines, extreme = limits(res, result, str(res["series"]))
    assert [(t.value, t.severity, t.label) for t in lines] == [
        (10.0, "warn", "warn ≤ 10 % = 10 GiB"),
        (5.0, "crit", "crit ≤ 5 % = 5 GiB"),
    ]
    assert extreme == "min"
    svg = parse(chart(res, result))
    marks = {title: line_y for title, _, line_y, *_ in limit_marks(svg)}
    points = svg.find(f"{NS}polyline").attrib["points"].split()
    ys = [float(p.split(",")[1]) for p in points]
    # 9.6 GiB has fallen past the 10 GiB line, 11 GiB has not (y grows downwards)
    assert ys[1] < marks["warn ≤ 10 % = 10 GiB"] < ys[2]
    assert marks["crit ≤ 5 % = 5 GiB"] > max(ys)


def test_it_works_out_the_allocated_size_of_runs_recorded_before_it_was_kept() -> None:
    res, result = storage()
    result.details = {
        **result.details,
        "metrics": {"shop-staging-db": {"free_gib": 7.5, "free_pct": 3.75}},
    }
    lines, _ = limits(res, result, str(res["series"]))
    assert [t.label for t in lines] == ["warn ≤ 10 % = 20 GiB", "crit ≤ 5 % = 10 GiB"]
    unknown, _ = storage()
    assert limits(unknown, storage()[1], str(unknown["series"]))[0] == []


def test_it_labels_the_other_rds_series_in_their_own_units() -> None:
    key = "shop-prod-db:freeable_memory_mib"
    res = {"id": "shop-prod-db", "severity": "crit", "summary": "memory min 100 MiB", "series": key}
    result = Result(check="rds", details={"thresholds": RDS_THRESHOLDS}, series={key: [300, 100]})
    assert [t.label for t in limits(res, result, key)[0]] == [
        "warn ≤ 256 MiB",
        "crit ≤ 128 MiB",
    ]
    cpu = "shop-prod-db:cpu"
    lines, extreme = limits({**res, "series": cpu}, result, cpu)
    assert [t.label for t in lines] == ["warn ≥ 80 %", "crit ≥ 90 %"] and extreme == "max"
    own = {"limits": {"warn": 5, "direction": "low", "unit": " d"}}
    assert [t.label for t in limits(own, result, "x:days")[0]] == ["warn ≤ 5 d"]


async def test_it_draws_the_free_storage_lines_on_the_run_page(
    client: TestClient, estate: Estate
) -> None:
    html = await (await client.get(f"/runs/{estate.hot}")).text()
    assert "<title>warn ≤ 10 % = 10.7 GiB</title>" in html
    assert ">crit ≥ 90 %</text>" in html  # the hot CPU's line, labelled
