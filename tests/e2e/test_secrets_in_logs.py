"""``mhub -vv serve`` (every logger at DEBUG: the app's, slack_bolt, slack_sdk, aiohttp,
botocore, urllib3, SQLAlchemy, aiosqlite) against the fake Slack and moto: after a command, a
button click answered through its response_url and finished runs, the whole log holds none of
the secrets the fake handed out, nor AWS credentials, and no Socket Mode ticket was minted
without being used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.sandbox import moto
from app.sandbox.edge import Edge
from app.sandbox.seed import seed
from blocks.ids import ActionId
from tests.conftest import ROOT
from tests.e2e.conftest import Served, hub_env, stop
from tests.e2e.test_serve_slack import final
from tests.fakeslack import FakeSlack

AWS_LEAKS = {
    "an AWS access key id": r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
    "a moto session token": "FQoGZXIvYXdzEBYaD",
    "an AWS secret in XML": r"<(?:SecretAccessKey|SessionToken)>(?!\*\*\*)",
    "an AWS secret in a dict": r"""["'](?:SecretAccessKey|SessionToken)["']:\s*["'](?!\*\*\*)""",
    "a security token header": r"(?i)x-amz-security-token['\"]?:\s*(?!b?['\"]?\*\*\*)\S",
    "a SigV4 signature": r"Signature=[0-9a-f]{16}",
}


@pytest.mark.timeout(240)
def test_no_secret_reaches_the_debug_log_of_any_logger(moto_url: str, tmp_path: Path) -> None:
    moto.reset(moto_url)
    with Edge(moto_url) as edge, FakeSlack(channels=["C0OPS"]) as fake:
        seed(moto_url, edge)
        log = tmp_path / "serve.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "-vv", "serve", "--no-web"],
                env=hub_env(tmp_path, edge.url, fake),
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        hub = Served(fake, edge, proc, log)
        try:

            def up() -> bool:
                hub.alive()
                return fake.connected()

            fake.wait(up, 60, "the Socket Mode connection")
            final(hub, hub.run_id(fake.command("run arbel budget")))  # a run that finishes

            edge.inject(latency_ms=30_000, operations=["GetMetricData"])
            run_id = hub.run_id(fake.command("run arbel rds"))
            card = fake.wait(
                lambda: next((c for c in fake.cards(run_id) if c.text.startswith("▶")), None),
                30,
                "the running card",
            )
            ack = fake.click(card, ActionId.CANCEL_RUN)  # answered through its response_url
            fake.wait(lambda: fake.replies(ack), 15, "the reply through the response_url")
            final(hub, run_id, 30)
            edge.clear_faults()
            hub.alive()
        finally:
            stop(proc)
            moto.reset(moto_url)
        secrets = fake.secrets()
        opened = len(fake.calls_of("apps.connections.open", ok=True))
        used = fake.connections_opened
        assert fake.violations == [], fake.violations

    text = log.read_text(errors="replace")
    loggers = set(re.findall(r'"logger": "([^"]+)"', text))
    for wanted in ("app.slack", "slack_sdk", "botocore", "urllib3", "sqlalchemy", "aiosqlite"):
        assert any(name.startswith(wanted) for name in loggers), (wanted, sorted(loggers))
    assert "Received message" in text and "Sending a request" in text  # the payloads were logged
    assert len(secrets) >= 10, secrets
    leaked = [secret for secret in secrets if secret in text]
    assert leaked == [], f"{len(leaked)} secret(s) the fake issued are in the log: {leaked}"
    for what, pattern in AWS_LEAKS.items():
        found = re.search(pattern, text)
        assert found is None, (
            f"{what} leaked into the log: …{text[found.start() - 80 : found.end() + 40]}…"
        )
    assert opened == used, f"{opened} Socket Mode ticket(s) minted, {used} used"
