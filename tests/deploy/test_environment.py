"""`mhub config check` validates the environment and never echoes a secret."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

SECRET = "xapp-1-A0SECRET-9999-abcdef"


def config_check(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HUB_", "DATABASE"))}
    return subprocess.run(
        [sys.executable, "-m", "app", "config", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_names_each_bad_variable_and_what_to_do_without_echoing_secrets() -> None:
    done = config_check(
        SLACK_BOT_TOKEN=SECRET,
        SLACK_APP_TOKEN="xoxb-also-secret",
        DATABASE_URL="mysql://db/hub",
        HUB_WEB_AUTH="admin",
        HUB_PUBLIC_URL="hub.example.com",
    )
    assert done.returncode == 1
    err = done.stderr
    assert "SLACK_BOT_TOKEN must start with xoxb-" in err
    assert "SLACK_APP_TOKEN must start with xapp-" in err
    assert "DATABASE_URL has mysql; use sqlite+aiosqlite://" in err
    assert "HUB_WEB_AUTH must be user:password" in err
    assert "HUB_PUBLIC_URL" in err and "https://hub.example.com" in err
    assert SECRET not in err + done.stdout and "also-secret" not in err + done.stdout
    assert "admin" not in err.replace("HUB_WEB_AUTH", "")


def test_it_accepts_a_good_environment() -> None:
    done = config_check(
        SLACK_BOT_TOKEN="xoxb-1-2-3",
        SLACK_APP_TOKEN="xapp-1-2-3",
        HUB_WEB_AUTH="ops:pa55word",
        HUB_PUBLIC_URL="https://hub.example.com/",
        HUB_CONFIG_DIR=str(ROOT / "configs"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK:")
