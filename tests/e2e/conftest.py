"""End to end: ``mhub serve`` as a subprocess against the fake Slack and a moto server (behind
the AWS edge, which adds latency and faults on demand)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.sandbox import moto
from app.sandbox.edge import Edge
from app.sandbox.seed import seed
from tests.conftest import ROOT
from tests.fakeslack import Ack, FakeSlack

CUSTOMER_YAML = """\
id: aryanoble
name: Aryanoble
timezone: Asia/Jakarta
slack:
  channel: C0OPS
  access:
    users: [U0ALICE]
    admins: [U0ADMIN]
accounts:
  - id: arbel
    name: Arbel Production
    account_id: "111111111111"
    regions: [ap-southeast-3]
    role_arn: arn:aws:iam::111111111111:role/MonitoringReadOnly
    checks: [rds, budget, backup]
schedules:
  - name: daily
    cron: "0 7 * * *"
    checks: [rds]
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes a minute or more (deselect: -m 'not slow')")


@dataclass
class Served:
    fake: FakeSlack
    edge: Edge
    proc: subprocess.Popen[bytes]
    log: Path

    def run_id(self, ack: Ack) -> int:
        found = re.search(r"#(\d+)", ack.read())
        assert found, f"no run id in the ack: {ack.read()!r}"
        return int(found.group(1))

    def alive(self) -> None:
        assert self.proc.poll() is None, f"mhub serve exited:\n{self.tail()}"

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def hub_env(tmp: Path, aws_url: str, fake: FakeSlack | None) -> dict[str, str]:
    config = tmp / "config"
    (config / "customers").mkdir(parents=True, exist_ok=True)
    (config / "customers" / "aryanoble.yaml").write_text(CUSTOMER_YAML)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "HUB_"))}
    env.update(moto.FAKE_ENV)
    env.update(
        {
            "AWS_ENDPOINT_URL": aws_url,
            "HUB_CONFIG_DIR": str(config),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/hub.db",
            "HUB_PUBLIC_URL": "https://hub.example",
            "HUB_CHECK_TIMEOUT": "60",
        }
    )
    if fake is not None:
        env.update(
            {
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_APP_TOKEN": "xapp-test",
                "SLACK_API_URL": fake.api_url,
            }
        )
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--no-web"],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def served(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    moto.reset(moto_url)
    seed(moto_url)
    tmp = tmp_path_factory.mktemp("serve")
    with Edge(moto_url) as edge, FakeSlack(channels=["C0OPS"]) as fake:
        log = tmp / "serve.log"
        proc = start(hub_env(tmp, edge.url, fake), log)
        hub = Served(fake, edge, proc, log)
        try:
            deadline = time.monotonic() + 60
            while not fake.connected():
                hub.alive()
                assert time.monotonic() < deadline, f"mhub serve never connected:\n{hub.tail()}"
                time.sleep(0.1)
            yield hub
        finally:
            stop(proc)
            moto.reset(moto_url)
        assert fake.violations == [], fake.violations


@pytest.fixture
def hub(served: Served) -> Iterator[Served]:
    served.alive()
    served.fake.reset()
    served.edge.clear_faults()
    yield served
    served.fake.reset()
    served.edge.clear_faults()
    assert served.fake.violations == [], served.fake.violations
