"""``mhub serve`` end to end through Slack: commands, cards, buttons, access, Slack misbehaving."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from blocks.ids import ActionId
from tests.e2e.conftest import Served, hub_env, start, stop
from tests.fakeslack import FakeSlack, Posted

FINISHED = ("🔴", "🟠", "✅", "⚠️", "✖️ Cancelled")


def final(hub: Served, run_id: int, within: float = 60) -> Posted:
    def done() -> Posted | None:
        cards = hub.fake.cards(run_id)
        return cards[0] if cards and cards[0].text.startswith(FINISHED) else None

    card: Posted = hub.fake.wait(done, within, f"the final card of run #{run_id}")
    return card


def test_it_acknowledges_at_once_and_fills_in_one_card(hub: Served) -> None:
    ack = hub.fake.command("run arbel rds --window 12h")
    assert ack.latency_s is not None and ack.latency_s < 3
    assert "Queued *#" in ack.read() and "window 12h" in ack.read()
    run_id = hub.run_id(ack)
    card = final(hub, run_id)
    assert card.text.startswith(("🔴", "🟠")), card.text
    assert "shop-prod-db" in card.read() and any(s in card.read() for s in "▁▂▃▄▅▆▇█")
    assert "Open in browser" in card.read()
    assert len(hub.fake.cards(run_id)) == 1


def test_it_cancels_a_slow_run_from_its_card(hub: Served) -> None:
    hub.edge.inject(latency_ms=30_000, operations=["GetMetricData"])
    run_id = hub.run_id(hub.fake.command("run arbel rds"))
    card = hub.fake.wait(
        lambda: next((c for c in hub.fake.cards(run_id) if c.text.startswith("▶")), None),
        20,
        "the running card",
    )
    ack = hub.fake.click(card, ActionId.CANCEL_RUN, user="U0ALICE")
    assert ack.latency_s is not None and ack.latency_s < 3
    [reply] = hub.fake.wait(lambda: hub.fake.replies(ack), 10, "the reply")
    assert f"Cancelling run #{run_id}" in reply["text"]
    assert final(hub, run_id, 20).text.startswith("✖️ Cancelled by <@U0ALICE>")


def test_it_retries_a_run_whose_check_failed_as_a_linked_run(hub: Served) -> None:
    hub.edge.inject(error="access-denied", operations=["ListBackupJobs"])
    run_id = hub.run_id(hub.fake.command("run arbel backup"))
    card = final(hub, run_id)
    assert card.text.startswith("⚠️") and "Retry" in card.read()
    hub.edge.clear_faults()
    ack = hub.fake.click(card, ActionId.RETRY_RUN)
    [reply] = hub.fake.wait(lambda: hub.fake.replies(ack), 10, "the reply")
    assert f"Retrying #{run_id} as *#{run_id + 1}*" in reply["text"]
    assert f"retry of #{run_id}" in final(hub, run_id + 1).read()


def test_it_refuses_an_unauthorised_user_on_the_command_and_on_the_button(hub: Served) -> None:
    refused = hub.fake.command("run arbel budget", user="U0MALLORY")
    assert 'I don\'t know "arbel", or you may not see it.' in refused.read()
    assert "Aryanoble" not in refused.read()
    hub.edge.inject(latency_ms=30_000, operations=["GetMetricData"])
    run_id = hub.run_id(hub.fake.command("run arbel rds"))
    card = hub.fake.wait(lambda: hub.fake.cards(run_id), 20, "the card")[0]
    ack = hub.fake.click(card, ActionId.CANCEL_RUN, user="U0MALLORY")
    [reply] = hub.fake.wait(lambda: hub.fake.replies(ack), 10, "the refusal")
    assert f"There is no run #{run_id} that you can see." in reply["text"]
    assert not card.text.startswith("✖️")
    hub.fake.click(card, ActionId.CANCEL_RUN, user="U0ADMIN")  # tidy up
    final(hub, run_id, 20)


def test_it_delivers_the_card_once_through_a_429_storm(hub: Served) -> None:
    hub.fake.rate_limit(["chat.postMessage", "chat.update"], times=6, retry_after=1)
    run_id = hub.run_id(hub.fake.command("run arbel budget"))
    card = final(hub, run_id)
    assert len(hub.fake.cards(run_id)) == 1
    assert [c for c in hub.fake.calls if c.status == 429]
    assert card.text.startswith(("🔴", "🟠", "✅"))  # and nothing came back early: no violations


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_it_delivers_the_card_once_after_a_sixty_second_outage(hub: Served) -> None:
    hub.fake.outage(60)
    began = time.monotonic()
    ack = hub.fake.command("run arbel budget")  # Socket Mode stays up; the Web API does not
    assert ack.latency_s is not None and ack.latency_s < 3
    run_id = hub.run_id(ack)
    card = final(hub, run_id, 150)
    assert time.monotonic() - began >= 59
    failed = [c for c in hub.fake.calls if c.status in (0, 503)]
    assert len(failed) >= 3
    assert len(hub.fake.cards(run_id)) == 1
    assert card.text.startswith(("🔴", "🟠", "✅"))


def test_it_reconnects_after_a_disconnect_and_keeps_answering(hub: Served) -> None:
    opened = hub.fake.connections_opened
    hub.fake.disconnect("refresh_requested")
    hub.fake.wait(lambda: hub.fake.connections_opened > opened, 20, "a new connection")
    assert "Queued *#" in hub.fake.command("run arbel budget").read()
    opened = hub.fake.connections_opened
    hub.fake.drop()
    hub.fake.wait(lambda: hub.fake.connections_opened > opened, 40, "a reconnection")
    ack = hub.fake.command("help")
    assert ack.latency_s is not None and ack.latency_s < 3
    assert "/monitor run" in ack.read()


def test_it_never_logs_tokens_response_urls_or_aws_credentials(hub: Served) -> None:
    """Runs after the tests above in this module: their whole serve log is scanned."""
    ack = hub.fake.command("run arbel rds")
    final(hub, hub.run_id(ack))
    text = hub.log.read_text(errors="replace")
    assert "run_id" in text and '"level"' in text  # JSON lines with context, not silence
    for secret in (
        "xoxb-test",
        "xapp-test",
        "/hooks/",
        "response_url",
        "SecretAccessKey",
        "aws_secret_access_key",
        "X-Amz-Security-Token",
    ):
        assert secret not in text, f"{secret!r} leaked into the log"
    assert not re.search(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", text), "an AWS access key id leaked"


def test_it_runs_with_slack_off_and_says_so_once_without_tokens(
    moto_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    proc = start(hub_env(tmp_path, moto_url, None), log)
    try:
        deadline = time.monotonic() + 30
        while "serving as" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        stop(proc)
    text = log.read_text(errors="replace")
    assert text.count("Slack is off: SLACK_BOT_TOKEN and SLACK_APP_TOKEN are not both set") == 1
    assert "slack" not in text.split("serving as", 1)[1].splitlines()[0]
    assert proc.returncode == 0


def test_it_stops_with_what_to_do_when_slack_refuses_the_app_token(
    moto_url: str, tmp_path: Path
) -> None:
    with FakeSlack() as fake:
        env = hub_env(tmp_path, moto_url, fake)
        env["SLACK_APP_TOKEN"] = "xapp-revoked"
        log = tmp_path / "serve.log"
        proc = start(env, log)
        try:
            proc.wait(60)
        finally:
            stop(proc)
    assert proc.returncode != 0
    text = log.read_text(errors="replace")
    assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in text and "xapp-revoked" not in text
