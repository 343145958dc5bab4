"""Properties of ``mhub config check`` over generated input: whatever is written in a customer
file or the environment, the operator gets ``file:line: what to do`` (or ``VARIABLE: what to
do``) lines and exit 1, or OK and exit 0 — never a traceback; and whatever it accepts, the parts
``mhub serve`` builds from the settings accept too."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import config_check
from app.engine.executor import ExecutorOptions
from app.loader import load_catalog
from app.main import build, tasks_of
from app.settings import Settings
from app.web.security import check_exposure
from tests.conftest import ROOT

# A customer with every key the config knows, one scalar per line, so a generated value can
# stand in for any one of them.
TEMPLATE = """\
id: acme
name: Acme
timezone: Asia/Jakarta
slack:
  channel: C0123456789
  access:
    users: [U0123ABCD]
    channels: [C0123456789]
    admins: [U0ADMIN01]
accounts:
  - id: acme-prod
    name: Acme Production
    account_id: "123456789012"
    regions: [eu-west-1, us-east-1]
    role_arn: arn:aws:iam::123456789012:role/Monitoring
    external_id: acme-monitoring
    checks: [backup, rds, alarms, budget]
checks:
  rds:
    window: 12h
    cpu_warn_pct: 80
    cpu_crit_pct: 90
    free_storage_warn_pct: 10
    free_storage_crit_pct: 5
    freeable_memory_warn_mib: 256
    connections_warn: 100
    connections_crit: 200
    no_data: warn
  backup:
    window: 24h
    expect_jobs: true
  alarms:
    labels:
      "acme-*": Acme
    severity: crit
  budget:
    actual_warn_pct: 80
    forecast_crit_pct: 150
schedules:
  - name: daily
    cron: "0 7 * * *"
    checks: [backup, rds]
    channel: C0123456789
"""
LINES = TEMPLATE.splitlines()
VALUE_LINES = [
    index for index, line in enumerate(LINES) if re.match(r"\s*(- )?[\w\"*-]+: \S", line)
]

TRICKY = [
    ".nan",
    ".NaN",
    ".inf",
    "-.inf",
    "1.0e+999",
    "1e400",
    '"nan"',
    '"-inf"',
    "2027-02-30",
    "2027-13-01 25:61:00",
    "1" * 5000,
    "-1",
    "0",
    "99999999999999999999",
    "0x1F",
    "0o17",
    "1_000",
    "12:30:00",
    "190:20:30.15",
    '"١٢٣٤٥٦٧٨٩٠١٢"',
    '"123456789012\\n"',
    '"eu-west-1\\n"',
    '"12h\\n"',
    "1000000000d",
    "9" * 5000 + "m",
    "١٢h",
    "[" * 60 + "]" * 60,
    "[" * 3000,
    "{a: " * 40 + "}" * 40,
    "&a [*a]",
    "&b {k: *b}",
    "*undefined",
    "!!binary xyz=",
    "!!python/object:os.system x",
    "!!float x",
    "!!int x",
    "!!timestamp x",
    "!!set {a, b}",
    "!!omap [a: 1, b: 2]",
    "!!str 12",
    "? [a]\n  : b",
    "{",
    "[",
    '"',
    "'",
    "\t",
    "~",
    "null",
    "yes",
    "|\n  text",
    ">-\n  text",
    "--- \n...",
    "x\n---\ny: 1",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.text(max_size=30),
    st.dates(),
)
data = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)
snippets = st.one_of(
    st.sampled_from(TRICKY),
    data.map(lambda value: yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()),
    st.text(max_size=40),
)


def config_check_in_process(config_dir: Path, **env: str) -> Result:
    """``mhub config check`` as the operator runs it, with only ``env`` of the hub's variables."""
    unset = {k: None for k in os.environ if k.startswith(("SLACK_", "HUB_", "DATABASE"))}
    return CliRunner().invoke(
        config_check, [], env={**unset, "HUB_CONFIG_DIR": str(config_dir), **env}
    )


def assert_answered(result: Result) -> list[str]:
    """Exit 0 with OK, or exit 1 with problem lines and their count: never an exception."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert result.stdout.startswith("OK: ")
        return []
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"\d+ problem\(s\) found(; fix the environment first)?\.", lines[-1])
    assert lines[-1].startswith(f"{len(lines) - 1} ")
    return lines[:-1]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "customers").mkdir()
    return directory


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(where=st.sampled_from(VALUE_LINES), snippet=snippets)
def test_any_value_anywhere_gives_a_valid_customer_or_file_and_line_problems(
    config_dir: Path, where: int, snippet: str
) -> None:
    key, _, _ = LINES[where].partition(": ")
    lines = [*LINES[:where], f"{key}: {snippet}", *LINES[where + 1 :]]
    path = config_dir / "customers" / "acme.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    problems = assert_answered(config_check_in_process(config_dir))

    for problem in problems:
        match = re.fullmatch(rf"{re.escape(str(path))}:(\d+): (.+)", problem)
        assert match, problem
        assert 1 <= int(match.group(1)) <= len("\n".join(lines).splitlines()) + 1, problem
    if not problems:
        assert load_catalog(config_dir).customer("acme").accounts


VARIABLES = [
    "HUB_WEB_PORT",
    "HUB_MAX_RUNS",
    "HUB_MAX_TARGETS",
    "HUB_AWS_THREADS",
    "HUB_CHECK_TIMEOUT",
    "HUB_LEASE_SECONDS",
    "HUB_HEARTBEAT_SECONDS",
    "HUB_POLL_SECONDS",
    "HUB_CANCEL_POLL_SECONDS",
    "HUB_SWEEP_SECONDS",
    "HUB_GRACE_SECONDS",
    "HUB_MAX_ATTEMPTS",
    "HUB_MISFIRE_GRACE",
    "HUB_TEST_SLOT_SECONDS",
]
NUMBERS = [
    "1e400",
    "-1e400",
    "nan",
    "inf",
    "1e-400",
    "99999",
    "65535",
    "65536",
    "0",
    "-0",
    "3600",
    "3600.0001",
    "86400",
    "1d",
    "1000000000d",
    "15m",
    "٨٠٨٠",
    "²",
    "0x10",
    "1_000",
    " 30 ",
    "30s",
    "",
    "9" * 5000,
]
values = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers(min_value=-10, max_value=10**6).map(str),
    st.floats(min_value=-10, max_value=10**5).map(repr),
    st.text(max_size=12).filter(lambda text: "\x00" not in text),
)


@settings(max_examples=400, deadline=None, database=None)
@given(env=st.dictionaries(st.sampled_from(VARIABLES), values, min_size=1, max_size=4))
def test_whatever_config_check_accepts_the_parts_serve_builds_accept(env: dict[str, str]) -> None:
    problems = assert_answered(config_check_in_process(ROOT / "configs", **env))

    if problems:
        for problem in problems:
            assert re.match(rf"({'|'.join(VARIABLES)}): ", problem), problem
        return
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HUB_", "DATA"))}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        hub_settings = Settings.from_env()
    options = ExecutorOptions.from_settings(hub_settings)  # refuses a lease under 2 heartbeats
    check_exposure(hub_settings.web_host, hub_settings.web_port, None)
    assert 1 <= hub_settings.web_port <= 65535
    now = datetime.now(UTC)
    for seconds in (
        options.check_timeout_s,
        options.lease_s,
        options.heartbeat_s,
        options.poll_s,
        options.cancel_poll_s,
        options.sweep_s,
        options.grace_s,
        options.recovery_s,
    ):
        assert now + timedelta(seconds=seconds) > now - timedelta(seconds=1)
    assert now - hub_settings.misfire_grace <= now


@pytest.fixture
def extreme_env() -> Iterator[dict[str, str]]:
    yield {
        "HUB_WEB_PORT": "65535",
        "HUB_LEASE_SECONDS": "3600",
        "HUB_HEARTBEAT_SECONDS": "1800",
        "HUB_CHECK_TIMEOUT": "3600",
        "HUB_POLL_SECONDS": "3600",
        "HUB_CANCEL_POLL_SECONDS": "3600",
        "HUB_SWEEP_SECONDS": "3600",
        "HUB_GRACE_SECONDS": "3600",
        "HUB_MAX_RUNS": "1000",
        "HUB_MAX_TARGETS": "10000",
        "HUB_AWS_THREADS": "1000",
        "HUB_MAX_ATTEMPTS": "100",
        "HUB_MISFIRE_GRACE": "1d",
    }


async def test_serve_starts_with_the_largest_values_config_check_accepts(
    tmp_path: Path, extreme_env: dict[str, str]
) -> None:
    assert assert_answered(config_check_in_process(ROOT / "configs", **extreme_env)) == []
    hub_settings = Settings(
        **extreme_env,  # type: ignore[arg-type]
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        HUB_CONFIG_DIR=str(ROOT / "configs"),
    )

    async with build(hub_settings, slack=False) as hub:
        stop = asyncio.Event()
        tasks = tasks_of(hub, stop)
        running = [asyncio.create_task(tasks[name]()) for name in ("executor", "sweeper")]
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), timeout=30)
