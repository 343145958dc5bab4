"""The cards under a web-view link posted in Slack: a run's status, a customer's standing, a
month's report — each a section and a context line, times in the customer's zone, what came
from outside escaped, within Slack's limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from blocks.report import AskedReport
from blocks.unfurl import CustomerGlance, customer_unfurl, report_unfurl, run_unfurl
from tests.blocks.support import BUDGET, HOT_DB, NOW, WIB, result, run, view
from tests.fakeslack.validate import all_text, blocks_problems, message_problems

NO_LOOK = result("arbel", "backup", "error", "AccessDenied on backup:ListBackupJobs")


def problems(card: dict[str, Any]) -> list[str]:
    """What Slack would refuse in a card given to chat.unfurl."""
    return message_problems(card, require_text=False) + blocks_problems(card["blocks"], 2)


def lines(card: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The section's lines and the context's elements."""
    section, context = card["blocks"]
    assert (section["type"], context["type"]) == ("section", "context")
    return section["text"]["text"].split("\n"), [e["text"] for e in context["elements"]]


def glance(**fields: Any) -> CustomerGlance:
    values: dict[str, Any] = {
        "name": "Aryanoble",
        "tz": WIB,
        "latest": run("completed", outcome="crit"),
        "steps": {("arbel", "rds"): "crit", ("arbel", "budget"): "warn", ("arbel", "x"): "ok"},
        "open": 3,
        "critical": 1,
        "quiet": 2,
        "blind": 0,
        "next_digest": ("daily", NOW + timedelta(days=1) - timedelta(minutes=5)),
    }
    values.update(fields)
    return CustomerGlance(**values)


def test_a_finished_runs_card_shows_its_outcome_checks_problems_and_times() -> None:
    card = run_unfurl(
        view(run("completed", outcome="crit"), HOT_DB, BUDGET, NO_LOOK),
        customer_name="Aryanoble",
        tz=WIB,
        now=NOW,
    )

    assert problems(card) == []
    text, about = lines(card)
    assert text == [
        "*🔴 Critical · Aryanoble · #1842*",
        "3 checks: RDS, Budget, Backup · arbel",
        "🔴 1 critical · ⚠️ 1 could not check · 🟠 1 warning",
    ]
    assert about == ["Started 07:03 WIB · finished 07:05 WIB (2 min) · requested by <@U0ALICE>"]


def test_a_running_runs_card_says_how_far_it_got_and_a_queued_one_when_it_was_queued() -> None:
    running = run_unfurl(view(run("running"), HOT_DB), customer_name="A", tz=WIB, now=NOW)
    queued = run_unfurl(view(run("queued", started_at=None)), customer_name="A", tz=WIB, now=NOW)

    text, about = lines(running)
    assert text[0] == "*⏳ Running · A · #1842*"
    assert text[1].endswith(" · 1 of 3 done")
    assert text[2] == "🔴 1 critical"
    assert about == ["Started 07:03 WIB · requested by <@U0ALICE>"]
    text, about = lines(queued)
    assert text == ["*⏸️ Queued · A · #1842*", "3 checks: RDS, Budget, Backup · arbel · 0 of 3 done"]
    assert about == ["Queued at 07:03 WIB · requested by <@U0ALICE>"]


def test_a_failed_or_cancelled_run_says_so_and_why() -> None:
    failed = run_unfurl(
        view(run("failed", error="the role <arn> could not be assumed")),
        customer_name="A",
        tz=WIB,
        now=NOW,
    )
    cancelled = run_unfurl(
        view(run("cancelled", cancel_requested_by="U0BOB"), BUDGET),
        customer_name="A",
        tz=WIB,
        now=NOW - timedelta(days=2),
    )

    text, _ = lines(failed)
    assert text[0] == "*⚠️ Failed · A · #1842*"
    assert text[-1] == "⚠️ the role &lt;arn&gt; could not be assumed"
    text, about = lines(cancelled)
    assert text[0] == "*✖️ Cancelled · A · #1842*"
    assert about[0].startswith("Started Sat 21 Nov 07:03 WIB · cancelled Sat 21 Nov 07:05 WIB")


def test_a_customers_card_shows_its_latest_run_open_findings_and_next_digest() -> None:
    card = customer_unfurl(glance(), NOW)

    assert problems(card) == []
    text, about = lines(card)
    assert text == [
        "*Aryanoble*",
        "Latest run: 🔴 Critical · #1842 · 07:05 WIB · 🔴 1 critical · 🟠 1 warning · ✅ 1 OK",
        "🔴 3 open findings, 1 critical · 💤 2 snoozed or muted",
    ]
    assert about == ["Next digest: daily · Sun 22 Nov 07:00 WIB"]
    assert lines(customer_unfurl(glance(), NOW, findings=True))[0][0] == "*Findings · Aryanoble*"


def test_a_customer_that_cannot_look_never_reads_ok() -> None:
    ok = run("completed", outcome="ok")
    text, _ = lines(customer_unfurl(glance(latest=ok, steps={}, open=0, critical=0, quiet=0,
                                           blind=2), NOW))  # fmt: skip

    assert "✅" not in "\n".join(text)
    assert text[1] == "Latest run: 🕳️ OK · #1842 · 07:05 WIB"
    assert text[2] == "No open findings · 🕳️ 2 not checked"


def test_a_quiet_new_customer_says_there_is_nothing_yet() -> None:
    card = customer_unfurl(
        glance(latest=None, steps={}, open=0, critical=0, quiet=0, next_digest=None), NOW
    )

    text, about = lines(card)
    assert text[1:] == ["Latest run: none finished yet", "✅ No open findings"]
    assert about == ["No digest scheduled"]


def test_counts_beyond_what_was_read_say_so() -> None:
    text, _ = lines(customer_unfurl(glance(open=5000, critical=0, quiet=1, more=True), NOW))

    assert text[2] == "🟠 5,000+ open findings · 💤 1+ snoozed or muted"


def test_a_reports_card_is_its_headline_month_and_zone() -> None:
    asked = AskedReport(
        customer_id="aryanoble",
        month="2026-11",
        label="November 2026",
        timezone="Asia/Jakarta",
        headline=(
            "Monthly report for Aryanoble, November 2026.",
            "3,774 checks run; 29 of 30 scheduled runs (96.7 %); problems on 10 days of 30.",
        ),
        began="2 Nov 2026 07:00 WIB",
        notes=("November 2026 is not over yet: these are the figures so far.",),
    )

    card = report_unfurl(asked)

    assert problems(card) == []
    text, about = lines(card)
    assert text == [f"*{asked.headline[0]}*", asked.headline[1]]
    assert about == [
        "November 2026 · times in Asia/Jakarta",
        "Monitoring began on 2 Nov 2026 07:00 WIB; the figures start there.",
        "November 2026 is not over yet: these are the figures so far.",
    ]


def test_names_from_outside_are_escaped_and_a_huge_run_stays_within_slacks_limits() -> None:
    targets = [(f"account-{i:03d}-<!channel>", f"check{i}") for i in range(400)]
    huge = run("failed", targets=targets, error="x" * 10_000, requested_by="<!here>")
    card = run_unfurl(view(huge), customer_name="<!everyone> & co " * 300, tz=WIB, now=NOW)
    customer = customer_unfurl(glance(name="@channel <b>", next_digest=("<!here>", NOW)), NOW)

    assert problems(card) == [] and problems(customer) == []
    text = all_text(card) + all_text(customer)
    assert "<!" not in text and "@channel" not in text
    title, checks, *_ = lines(card)[0]
    assert title.startswith("*⚠️ Failed · &lt;!everyone&gt; &amp; co") and title.endswith("#1842*")
    assert "(+395)" in checks
