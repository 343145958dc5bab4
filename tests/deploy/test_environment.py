"""`mhub config check` validates the environment and never echoes a secret."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner, Result

from app.cli import config_check as config_check_command
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


def test_it_answers_values_that_used_to_crash_it_with_one_line_per_variable() -> None:
    done = config_check(
        HUB_WEB_PORT="99999",
        HUB_LEASE_SECONDS="1e400",
        HUB_MISFIRE_GRACE="1000000000d",
        HUB_POLL_SECONDS="nan",
        HUB_MAX_RUNS="١٢",
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.splitlines() == [
        "HUB_WEB_PORT: use a port number from 1 to 65535, such as 8080",
        "HUB_MAX_RUNS: use a whole number from 1 to 1,000, such as 4",
        "HUB_LEASE_SECONDS: use seconds, more than 0 and at most 3600 (an hour), such as 30",
        "HUB_POLL_SECONDS: use seconds, more than 0 and at most 3600 (an hour), such as 0.5",
        "HUB_MISFIRE_GRACE: not a misfire grace; use seconds (900) or a window such as 15m, "
        "from 0 to a day (86400 or 1d)",
        "5 problem(s) found; fix the environment first.",
    ]


def check_in_process(**env: str) -> Result:
    """``mhub config check`` in this process, with only ``env`` set of the hub's variables."""
    unset = {k: None for k in os.environ if k.startswith(("SLACK_", "HUB_", "DATABASE"))}
    runner = CliRunner()
    return runner.invoke(
        config_check_command, [], env={**unset, "HUB_CONFIG_DIR": str(ROOT / "configs"), **env}
    )


SECONDS = "use seconds, more than 0 and at most 3600 (an hour)"


@pytest.mark.parametrize(
    ("name", "value", "advice"),
    [
        ("HUB_WEB_PORT", "0", "use a port number from 1 to 65535, such as 8080"),
        ("HUB_WEB_PORT", "65536", "use a port number from 1 to 65535, such as 8080"),
        ("HUB_WEB_PORT", "http", "use a port number from 1 to 65535, such as 8080"),
        ("HUB_LEASE_SECONDS", "inf", f"{SECONDS}, such as 30"),
        ("HUB_LEASE_SECONDS", "3601", f"{SECONDS}, such as 30"),
        ("HUB_HEARTBEAT_SECONDS", "0", f"{SECONDS}, such as 5"),
        ("HUB_CHECK_TIMEOUT", "-inf", f"{SECONDS}, such as 120"),
        ("HUB_CANCEL_POLL_SECONDS", "1e-400", f"{SECONDS}, such as 1"),
        ("HUB_SWEEP_SECONDS", "5s", f"{SECONDS}, such as 5"),
        (
            "HUB_GRACE_SECONDS",
            "-1",
            "use seconds, from 0 to 3600 (an hour), such as 20",
        ),
        (
            "HUB_MAX_TARGETS",
            "99999999999999999999",
            "use a whole number from 1 to 10,000, such as 32",
        ),
        ("HUB_AWS_THREADS", "2.5", "use a whole number from 1 to 1,000, such as 32"),
        ("HUB_MAX_ATTEMPTS", "0", "use a whole number from 1 to 100, such as 3"),
        (
            "HUB_TEST_SLOT_SECONDS",
            "0",
            "use a whole number of seconds from 1 to 86,400, or leave it unset",
        ),
        *(
            (
                "HUB_MISFIRE_GRACE",
                value,
                "not a misfire grace; use seconds (900) or a window such as 15m, from 0 to a day "
                "(86400 or 1d)",
            )
            for value in ("2d", "86401", "٩٠٠", "²", "-5", "9" * 5000, "15 m")
        ),
    ],
    ids=lambda value: str(value)[:20],
)
def test_it_says_what_to_write_for_a_number_out_of_range(
    name: str, value: str, advice: str
) -> None:
    result = check_in_process(**{name: value})

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{name}: {advice}",
        "1 problem(s) found; fix the environment first.",
    ]


def test_it_refuses_a_lease_that_one_slow_heartbeat_would_lose() -> None:
    result = check_in_process(HUB_LEASE_SECONDS="30", HUB_HEARTBEAT_SECONDS="20")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "HUB_LEASE_SECONDS: use at least twice HUB_HEARTBEAT_SECONDS (40), or lower "
        "HUB_HEARTBEAT_SECONDS: a lease shorter than two heartbeats loses every run to one slow "
        "heartbeat",
        "1 problem(s) found; fix the environment first.",
    ]


def test_it_refuses_a_slack_api_url_that_is_not_a_url() -> None:
    result = check_in_process(SLACK_API_URL="slack.com/api")

    assert result.stderr.splitlines()[0] == (
        "SLACK_API_URL: not a URL; leave it unset for https://slack.com/api/ "
        "or write it like https://slack-gov.com/api/"
    )


def test_it_says_serve_would_refuse_a_public_web_view_without_a_password() -> None:
    result = check_in_process(HUB_WEB_HOST="0.0.0.0")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "HUB_WEB_HOST: refusing to serve the web view on 0.0.0.0:8080 without a password: "
        "anyone who can reach that address would see every customer's results. Set up Sign in "
        "with Slack (HUB_WEB_SLACK_CLIENT_ID and _SECRET, docs/web.md), or set "
        "HUB_WEB_AUTH=user:password, or set HUB_WEB_HOST=127.0.0.1 and put an authenticating "
        "proxy in front, or start with --no-web.",
        "1 problem(s) found.",
    ]


SIGN_IN = {
    "HUB_WEB_SLACK_CLIENT_ID": "1111.2222",
    "HUB_WEB_SLACK_CLIENT_SECRET": "5ecret-client-5ecret",
    "HUB_PUBLIC_URL": "https://hub.example.com",
    "SLACK_BOT_TOKEN": "xoxb-1-2-3",
}


def test_sign_in_with_slack_serves_a_public_web_view_without_a_password() -> None:
    result = check_in_process(HUB_WEB_HOST="0.0.0.0", **SIGN_IN)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("OK:")


@pytest.mark.parametrize(
    ("left_out", "says"),
    [
        (
            "HUB_WEB_SLACK_CLIENT_SECRET",
            "HUB_WEB_SLACK_CLIENT_ID and HUB_WEB_SLACK_CLIENT_SECRET: set both",
        ),
        (
            "HUB_WEB_SLACK_CLIENT_ID",
            "HUB_WEB_SLACK_CLIENT_ID and HUB_WEB_SLACK_CLIENT_SECRET: set both",
        ),
        ("HUB_PUBLIC_URL", "HUB_PUBLIC_URL: Sign in with Slack needs it"),
        ("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN: Sign in with Slack needs it"),
    ],
)
def test_half_a_sign_in_setup_says_what_is_missing_and_never_the_secret(
    left_out: str, says: str
) -> None:
    env = {k: v for k, v in SIGN_IN.items() if k != left_out}
    result = check_in_process(**env)
    assert result.exit_code == 1
    assert says in result.stderr
    assert "5ecret-client-5ecret" not in result.stderr + result.stdout


def test_it_accepts_every_limit_it_documents() -> None:
    result = check_in_process(
        HUB_WEB_PORT="65535",
        HUB_LEASE_SECONDS="3600",
        HUB_HEARTBEAT_SECONDS="1800",
        HUB_CHECK_TIMEOUT="3600",
        HUB_POLL_SECONDS="0.001",
        HUB_GRACE_SECONDS="0",
        HUB_MAX_RUNS="1000",
        HUB_MAX_TARGETS="10000",
        HUB_AWS_THREADS="1",
        HUB_MAX_ATTEMPTS="100",
        HUB_MISFIRE_GRACE="1d",
        HUB_TEST_SLOT_SECONDS="86400",
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("OK: ")
