"""``mhub`` end to end as a subprocess, against a moto server holding the demo estate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks import kinds
from tests.conftest import demo_env, mhub


@pytest.fixture
def env(estate: str, tmp_path: Path) -> dict[str, str]:
    return demo_env(estate, tmp_path)


def test_it_runs_rds_on_an_account_and_prints_json(env: dict[str, str]) -> None:
    done = mhub(env, "run", "shop-prod", "rds", "--window", "12h", "--json")
    assert done.returncode == 1, done.stderr  # findings: the hot database
    body = json.loads(done.stdout)
    assert body["status"] == "completed" and body["outcome"] == "crit"
    assert body["customer"] == "demo" and body["requested_by"] == "cli"
    assert body["attempts"] == 1 and body["finished_at"]
    [result] = body["results"]
    assert (result["account"], result["check"], result["severity"]) == ("shop-prod", "rds", "crit")
    hot = [r for r in result["details"]["resources"] if r["id"] == "shop-prod-db"]
    assert hot and hot[0]["severity"] == "crit"


def test_it_prints_a_readable_card_with_sparklines(env: dict[str, str]) -> None:
    done = mhub(env, "run", "shop-staging", "rds")
    assert done.returncode == 1, done.stderr
    assert "🟠" in done.stdout and "shop-staging-db" in done.stdout
    assert any(ch in done.stdout for ch in "▁▂▃▄▅▆▇█")
    assert "#1" in done.stdout


def test_it_exits_zero_when_everything_is_ok(env: dict[str, str]) -> None:
    done = mhub(env, "run", "analytics", "rds", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["outcome"] == "ok"


def test_it_queues_without_waiting_and_shows_status_later(env: dict[str, str]) -> None:
    queued = mhub(env, "run", "demo", "--no-wait", "--json")
    assert queued.returncode == 0, queued.stderr
    run_id = json.loads(queued.stdout)["id"]
    status = mhub(env, "status", f"#{run_id}", "--json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["status"] == "queued"


def test_it_names_the_account_it_does_not_know(env: dict[str, str]) -> None:
    done = mhub(env, "run", "shop-prd", "rds")
    assert done.returncode == 2
    assert "Did you mean `shop-prod`" in done.stderr


def test_it_explains_a_bad_window_and_queues_nothing(env: dict[str, str]) -> None:
    done = mhub(env, "run", "shop-prod", "rds", "--window", "12 hours")
    assert done.returncode == 2
    assert "30m, 12h or 7d" in done.stderr
    listed = mhub(env, "status", "1")
    assert "no run #1" in listed.stderr


def test_it_says_which_run_is_missing(env: dict[str, str]) -> None:
    done = mhub(env, "status", "99")
    assert done.returncode == 2 and "There is no run #99" in done.stderr


def test_it_lists_every_check_kind_in_the_run_help(env: dict[str, str]) -> None:
    done = mhub(env, "run", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "The checks: backup (AWS Backup jobs" in text
    assert all(f"{kind.name} (" in text for kind in kinds.KINDS)


def test_it_keeps_findings_across_runs_and_lists_them(env: dict[str, str]) -> None:
    nothing = mhub(env, "findings", "demo")
    assert nothing.returncode == 0 and "No findings for Demo Retail." in nothing.stdout
    assert mhub(env, "run", "shop-prod", "rds").returncode == 1
    assert mhub(env, "run", "shop-prod", "rds").returncode == 1
    listed = mhub(env, "findings", "shop-prod", "--json")
    assert listed.returncode == 1, listed.stderr  # open findings, like a run with problems
    body = json.loads(listed.stdout)
    [hot] = [f for f in body["findings"] if f["resource"] == "shop-prod-db"]
    assert (hot["account"], hot["check"], hot["severity"], hot["state"]) == (
        "shop-prod",
        "rds",
        "crit",
        "open",
    )
    assert hot["fingerprint"].startswith("rds:") and hot["last_run_id"] == 2
    assert hot["first_seen"] < hot["last_seen"] and hot["change"] is None  # seen twice
    text = mhub(env, "findings", "demo", "--state", "open")
    assert "🔴 shop-prod · RDS · shop-prod-db" in text.stdout and "(open " in text.stdout
    assert hot["fingerprint"] in text.stdout
    resolved = mhub(env, "findings", "demo", "--state", "resolved", "--json")
    assert json.loads(resolved.stdout)["findings"] == []
    wrong = mhub(env, "findings", "demo", "--state", "closed")
    assert wrong.returncode == 2
    assert "'closed' is not one of 'open', 'acknowledged', 'snoozed', 'muted'" in wrong.stderr
