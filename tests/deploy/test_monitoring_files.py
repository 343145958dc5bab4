"""The Prometheus alert rules and the Grafana dashboard in ``deploy/``: every metric they use is
one a running hub exports, the rules pass ``promtool`` (and their unit tests), each alert says
what to do in the operations guide, and the dashboard is a Grafana dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT
from tests.deploy.running import serve
from tests.fakeslack import FakeSlack

RULES = ROOT / "deploy" / "prometheus" / "monitoring-hub.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "monitoring-hub.rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "monitoring-hub.json"
OPERATIONS = ROOT / "docs" / "operations.md"

MADE_BY_PROMETHEUS = {"up"}
"""Series Prometheus writes itself for every scrape target."""
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "info": ("_info",),
}
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan",
}  # fmt: skip


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return found


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, ``by (…)`` lists, ranges,
    strings and Grafana's ``$variables`` taken out first)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def used() -> dict[str, set[str]]:
    """``{metric name: {where it is used}}`` over the rules and the dashboard."""
    found: dict[str, set[str]] = {}
    for rule in rules():
        for name in metric_names(rule["expr"]):
            found.setdefault(name, set()).add(f"rule {rule['alert']}")
    for panel in panels():
        for target in panel["targets"]:
            for name in metric_names(target["expr"]):
                found.setdefault(name, set()).add(f"panel {panel['title']!r}")
    return found


def exported(exposition: str) -> set[str]:
    """Every sample name the exposition declares, with the suffixes its types add (a labelled
    histogram nothing has observed yet still declares its ``_bucket``)."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``/metrics`` of ``mhub serve`` running with Slack (the fake) and the web view."""
    tmp = tmp_path_factory.mktemp("metrics")
    with (
        FakeSlack(channels=["C0DEMO0001"]) as fake,
        serve(
            tmp,
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_APP_TOKEN="xapp-test",
            SLACK_API_URL=fake.api_url,
        ) as hub,
    ):
        assert "READY=1" in hub.next_state().splitlines()
        with urllib.request.urlopen(f"{hub.url}/metrics", timeout=10) as response:
            yield response.read().decode()


def test_the_metric_name_reader_finds_names_not_functions_labels_or_variables() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, check) (rate(mhub_check_duration_seconds_bucket"
        '{job="$job",severity="error"}[$__rate_interval]))) > 60 and on(job) up == 0'
    )
    assert metric_names(expr) == {"mhub_check_duration_seconds_bucket", "up"}


def test_every_metric_the_rules_and_the_dashboard_use_is_exported(scraped: str) -> None:
    names = exported(scraped)
    uses = used()
    assert {"mhub_queue_depth", "mhub_schedule_late_seconds", "mhub_slack_connected"} <= set(uses)
    missing = {
        name: sorted(where)
        for name, where in uses.items()
        if name not in names and name not in MADE_BY_PROMETHEUS
    }
    assert missing == {}


def test_the_running_hub_exports_its_version_and_the_process_series(scraped: str) -> None:
    names = exported(scraped)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert "mhub_build_info" in names
    assert "mhub_slack_enabled 1.0" in scraped


def test_every_alert_waits_has_a_severity_and_says_what_to_do() -> None:
    headings = {anchor(line) for line in OPERATIONS.read_text().splitlines() if line[:1] == "#"}
    guide = OPERATIONS.read_text()
    for rule in rules():
        name = rule["alert"]
        assert rule["for"], name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name
        page, _, fragment = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md" and fragment in headings, name
        assert f"`{name}`" in guide, f"{name} is not described in docs/operations.md"


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=120, cwd=RULES.parent
    )


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_unit_tests_pass() -> None:
    done = promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each panel's PromQL, Grafana's variables filled in, as a recording rule promtool checks."""
    filled = {"$__rate_interval": "5m", "$job": "mhub"}
    records = []
    for number, panel in enumerate(panels()):
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in filled.items():
                expr = expr.replace(variable, value)
            records.append({"record": f"dashboard:panel{number}:{target['refId']}", "expr": expr})
    check = tmp_path / "dashboard.rules.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    done = promtool("check", "rules", str(check))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"] == "monitoring-hub" and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"] and t["datasource"] == panel["datasource"] for t in panel["targets"])
