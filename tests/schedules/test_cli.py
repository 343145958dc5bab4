"""``mhub digest send`` as a subprocess against a moto server holding the demo estate: it runs
the schedule now and posts the digest once, or prints it when Slack is off."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import demo_env, mhub
from tests.fakeslack import FakeSlack


@pytest.fixture
def env(estate: str, tmp_path: Path) -> dict[str, str]:
    return demo_env(estate, tmp_path, HUB_PUBLIC_URL="https://hub.example")


def test_it_prints_the_digest_and_says_slack_is_off_without_tokens(env: dict[str, str]) -> None:
    done = mhub(env, "digest", "send", "demo")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("☀️ Demo Retail — daily digest · ")
    assert lines[1].startswith("🔴 Critical — ")
    assert "🔴 shop-prod · shop-prod-db CPU max" in done.stdout
    assert any(ch in done.stdout for ch in "▁▂▃▄▅▆▇█")
    # Ten kinds fill the digest: what does not fit is counted and linked, never dropped.
    assert "more in 1 account in Budgets — all in the web view" in done.stdout
    assert lines[-1].endswith("Full report ↗: https://hub.example/runs/1")
    assert "Slack is off" in done.stderr and "printed, not posted" in done.stderr


def test_it_runs_the_schedule_now_and_posts_its_digest_once(env: dict[str, str]) -> None:
    with FakeSlack(channels=["C0DEMO0001"]) as fake:
        env = {
            **env,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_APP_TOKEN": "xapp-test",
            "SLACK_API_URL": fake.api_url,
        }
        done = mhub(env, "digest", "send", "demo", "daily")
        assert done.returncode == 0, done.stderr
        assert "Posted the digest of run #1 to C0DEMO0001." in done.stderr
        [posted] = fake.posted
        assert posted.key == "digest:1" and posted.channel == "C0DEMO0001"
        assert posted.text.startswith("☀️ *Demo Retail — daily digest*")
        assert "sent by cli with mhub digest send" in posted.read()
        assert fake.violations == []


def test_it_names_the_schedules_when_asked_for_one_that_does_not_exist(
    env: dict[str, str],
) -> None:
    done = mhub(env, "digest", "send", "demo", "weekly")
    assert done.returncode == 2
    assert 'Demo Retail has no schedule "weekly"; its schedules: daily.' in done.stderr
