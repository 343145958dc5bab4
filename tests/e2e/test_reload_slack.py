"""``mhub serve`` with Slack, reloaded by SIGHUP: Slack's commands see a customer added to the
YAML at once, with its schedule, and the connection stays up."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sandbox import moto
from app.sandbox.edge import Edge
from app.sandbox.seed import seed
from tests.e2e.conftest import Served, hub_env, start, stop
from tests.fakeslack import FakeSlack

GLOBEX = """\
id: globex
name: Globex
timezone: Asia/Jakarta
slack:
  channel: C0OPS
  access:
    users: [U0ALICE]
accounts:
  - id: globex-prod
    name: Globex Production
    account_id: "222222222222"
    regions: [ap-southeast-3]
    checks: [budget]
schedules:
  - name: weekly
    cron: "0 8 * * 1"
"""


@pytest.fixture
def served(moto_url: str, tmp_path: Path) -> Iterator[Served]:
    moto.reset(moto_url)
    seed(moto_url)
    with Edge(moto_url) as edge, FakeSlack(channels=["C0OPS"]) as fake:
        log = tmp_path / "serve.log"
        proc = start(hub_env(tmp_path, edge.url, fake), log)
        hub = Served(fake, edge, proc, log)
        try:
            fake.wait(lambda: hub.alive() or fake.connected(), 60, "the Socket Mode connection")
            yield hub
        finally:
            stop(proc)
            moto.reset(moto_url)
        assert fake.violations == [], fake.violations


def logged(hub: Served, text: str) -> None:
    hub.fake.wait(lambda: hub.alive() or text in hub.log.read_text(errors="replace"), 60, text)


def test_a_customer_added_to_the_yaml_answers_in_slack_after_sighup(
    served: Served, tmp_path: Path
) -> None:
    before = served.fake.command("customers", user="U0ALICE").read()
    assert "Aryanoble" in before and "Globex" not in before

    (tmp_path / "config" / "customers" / "globex.yaml").write_text(GLOBEX)
    served.proc.send_signal(signal.SIGHUP)
    logged(served, "customers added: globex; schedules added: globex/weekly")

    after = served.fake.command("customers", user="U0ALICE").read()
    assert "Aryanoble" in after and "Globex" in after
    schedules = served.fake.command("schedules", user="U0ALICE").read()
    assert "weekly" in schedules
    served.alive()
    assert served.fake.connected()
