"""The result card: what an engineer sees, and that Slack would accept it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.engine.runs import RunView
from app.models import RunEvent
from blocks import delivery
from blocks.card import run_card
from blocks.ids import ActionId
from blocks.terminal import render_run
from tests.blocks.support import BUDGET, HOT_DB, NOW, WIB, result, run, view
from tests.fakeslack.validate import all_text, message_problems


def card(the_view: Any, web_url: str | None = None) -> dict[str, Any]:
    message = run_card(the_view, customer_name="Aryanoble", tz=WIB, now=NOW, web_url=web_url)
    assert message_problems(message) == []
    return message


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]


def test_it_shows_a_running_card_with_progress_problems_first_and_what_is_left() -> None:
    message = card(view(run("running"), BUDGET, HOT_DB))
    text = all_text(message)
    assert text.index("▶ Running · Aryanoble / arbel") < text.index("arbel · RDS")
    assert "#1842 · <@U0ALICE> · 07:03 WIB · 2 of 3 checks" in text
    assert text.index("🔴 *arbel · RDS*") < text.index("🟠 *arbel · Budget*")
    assert "▁" in text and "█" in text  # the CPU sparkline
    assert "▕████████░░▏" in text  # the budget bar
    assert "arbel-quiet-db" not in text  # OK resources are not listed
    assert "⏳ arbel · Backup — running…" in text
    assert buttons(message) == [ActionId.CANCEL_RUN]


def test_it_folds_ok_results_into_a_count_and_titles_the_outcome() -> None:
    done = run("completed", outcome="crit")
    message = card(
        view(done, HOT_DB, result("arbel", "budget", "ok"), result("arbel", "backup", "ok"))
    )
    text = all_text(message)
    assert message["text"].startswith(
        "🔴 Critical · Aryanoble / arbel · 3 checks in 2 min · window 12h"
    )
    assert "✅ 2 OK: arbel · Backup, arbel · Budget" in text
    assert "running" not in text and buttons(message) == []


def test_it_offers_retry_when_a_check_could_not_look_and_links_the_web_view() -> None:
    errored = result("arbel", "backup", "error", "AccessDenied: add backup:ListBackupJobs")
    message = card(
        view(run("completed", outcome="error"), errored), web_url="https://hub/runs/1842"
    )
    assert buttons(message) == [ActionId.RETRY_RUN, ActionId.OPEN_WEB]
    link = message["blocks"][-1]["elements"][1]
    assert link["url"] == "https://hub/runs/1842"


def test_it_offers_retry_after_a_failed_run_but_not_after_a_clean_one() -> None:
    assert ActionId.RETRY_RUN in buttons(card(view(run("failed", error="worker died 3 times"))))
    assert buttons(card(view(run("completed", outcome="ok"), result("arbel", "rds", "ok")))) == []


def test_it_says_who_cancelled_and_keeps_the_partial_rows() -> None:
    message = card(view(run("cancelled", cancel_requested_by="U0BOB"), HOT_DB))
    text = all_text(message)
    assert "✖️ Cancelled by <@U0BOB> after 1 of 3 checks" in text
    assert "arbel-prod-db" in text and "not run: arbel · Budget, arbel · Backup" in text


def test_it_shows_cancelling_without_a_second_cancel_button() -> None:
    message = card(view(run("running", cancel_requested_by="U0BOB")))
    assert "Cancelling" in message["text"] and "<@U0BOB>" in all_text(message)
    assert buttons(message) == []


def test_it_escapes_untrusted_text_so_nobody_is_pinged() -> None:
    nasty = result(
        "arbel",
        "http",
        "crit",
        "<!channel> down & <!here> <https://evil|click>",
        [{"id": "<!everyone>", "severity": "crit", "summary": "@channel look"}],
    )
    message = card(view(run("running"), nasty))
    text = all_text(message)
    assert "<!channel>" not in text and "<!here>" not in text and "<!everyone>" not in text
    assert "&lt;!channel&gt; down &amp; &lt;!here&gt;" in text
    assert "@channel" not in text  # a word joiner keeps it from notifying


def test_it_fits_a_huge_run_in_one_message() -> None:
    accounts = [f"account-{i:03d}" for i in range(120)]
    targets = [(a, c) for a in accounts for c in ("rds", "alarms", "budget", "backup")]
    resources = [
        {"id": f"db-{i}-" + "x" * 80, "severity": "crit", "summary": "y" * 400, "series": "s"}
        for i in range(30)
    ]
    results = [
        result(a, c, "crit", "z" * 5000, resources, {"s": list(range(300))})
        for a, c in targets[:300]
    ]
    message = card(view(run("running", targets=targets), *results), web_url="https://hub/runs/1")
    assert len(message["blocks"]) <= 50
    assert "more problems" in all_text(message)
    assert buttons(message) == [ActionId.CANCEL_RUN, ActionId.OPEN_WEB]


def refused(
    minutes_ago: int, error: str = "channel_not_found", what: str = "card post"
) -> RunEvent:
    words = delivery.explain(error, what=what, ref="card:1842", run_id=1842)
    data = {"what": what, "channel": "C0GONE", "error": error, "ref": "card:1842"}
    data |= {"reason": words.reason, "fix": words.fix, "told": "dm"}
    return RunEvent(
        run_id=1842,
        type="delivery_failed",
        actor="slack",
        data=data,
        created_at=NOW - timedelta(minutes=minutes_ago),
    )


def test_it_says_when_and_why_slack_refused_the_runs_card_with_what_to_do() -> None:
    done = run("completed", outcome="warn")
    the_view = RunView(done, [BUDGET], [refused(2)])
    text = all_text(card(the_view))
    assert (
        "⚠️ 07:03 WIB · Delivery failed · card post to C0GONE · channel_not_found — the channel "
        "no longer exists or the app can't see it: check `slack.channel` in the customer's config"
    ) in text
    printed = render_run(the_view, WIB, "Aryanoble")  # mhub status: the same line
    assert printed.splitlines()[-1].startswith(
        "⚠️ 2026-11-21 07:03 WIB · Delivery failed · card post to C0GONE · channel_not_found — "
    )
    assert "Delivery failed" not in all_text(card(view(done, BUDGET)))  # read without a timeline


def test_it_lists_the_newest_failed_deliveries_and_counts_the_rest() -> None:
    events = [refused(30 - n, "invalid_blocks", "card update") for n in range(5)]
    text = all_text(card(RunView(run("completed", outcome="warn"), [BUDGET], events)))
    assert "… 2 earlier failed deliveries" in text and text.count("Delivery failed") == 3
    assert "report it with ref `card:1842`" in text
