"""``/monitor report CUSTOMER [YYYY-MM]`` through the fake Slack: whoever may list a customer's
runs gets its month's two-line headline, to them alone, with links to the page and the PDF (or,
without a public URL, the command that writes the PDF); an outsider is told the same about a
customer as about nothing; a month that cannot be reported on is answered with what to ask
instead and nothing is written; a slow report still gets its ack in time."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from app.models import Outbox, Run
from app.reports.gather import Reports
from app.reports.model import Period, Report
from blocks import messages
from blocks.ids import ActionId, BlockId
from tests.handlers.conftest import Harness
from tests.reports.seed import History

WIB = ZoneInfo("Asia/Jakarta")
USAGE = "Use `/monitor report CUSTOMER [YYYY-MM]`"


def last_month() -> date:
    """The first day of the last whole month in Jakarta (the harness's clock is the real one)."""
    today = datetime.now(WIB).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def months_before(first: date, n: int = 1) -> date:
    index = first.year * 12 + first.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


async def seed(hub: Harness, first: date) -> int:
    """Aryanoble's daily run at 07:00 WIB from the 2nd of ``first``'s month to its end (RDS
    on both accounts, budgets on arbel): monitoring began on the 2nd. The checks run."""
    history = History("aryanoble")
    day = datetime(first.year, first.month, 2, 7, tzinfo=WIB)
    while day.month == first.month:
        looks = [
            ("arbel", "rds", "ok", {}),
            ("arbel-dr", "rds", "ok", {}),
            ("arbel", "budget", "ok", {}),
        ]
        history.run(day, looks, schedule="daily")
        day += timedelta(days=1)
    await history.write(hub.db)
    return len(history.results)


async def written(hub: Harness) -> tuple[int, int]:
    """Runs and outbox rows: what a report asked for in Slack must never add."""
    async with hub.db.read() as session:
        runs = await session.scalar(select(func.count()).select_from(Run))
        rows = await session.scalar(select(func.count()).select_from(Outbox))
    return int(runs or 0), int(rows or 0)


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        e["action_id"]: e["url"]
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


async def test_a_granted_user_gets_the_months_headline_and_links_to_its_page_and_pdf(
    harness: Harness,
) -> None:
    first = last_month()
    looks = await seed(harness, first)
    before = await written(harness)

    ack = await harness.fake.acommand(f"report aryanoble {first:%Y-%m}")

    assert ack.latency_s is not None and ack.latency_s < 3
    assert ack.payload is not None and ack.payload["response_type"] == "ephemeral"
    assert harness.fake.replies(ack) == []  # one answer: the ack itself
    reply = ack.read()
    assert f"*Monthly report for Aryanoble, {first:%B %Y}.*\n{looks:,} checks run; " in reply
    assert f"{first:%B %Y} · times in Asia/Jakarta" in reply
    assert f"Monitoring began on 2 {first:%b %Y} 07:00 WIB; the figures start there." in reply
    assert "mhub report" not in reply
    page = f"https://hub.example/customers/aryanoble/reports/{first:%Y-%m}"
    assert buttons(ack.payload) == {
        ActionId.REPORT_PAGE: page,
        ActionId.REPORT_PDF: f"{page}.pdf",
    }
    assert await written(harness) == before
    [decision] = await harness.audit()
    assert (decision["actor"], decision["action"], decision["allowed"], decision["reason"]) == (
        "U0ALICE",
        "report",
        True,
        "user",
    )
    assert decision["customer"] == "aryanoble"

    for link in (ActionId.REPORT_PAGE, ActionId.REPORT_PDF):  # Slack sends the click too
        click = await harness.fake.aclick(ack.payload, link)
        assert click.latency_s is not None and click.latency_s < 3


async def test_without_a_month_it_is_the_last_whole_month_and_a_channel_grant_may_ask(
    harness: Harness,
) -> None:
    first = last_month()
    await seed(harness, first)

    ack = await harness.fake.acommand("report aryanoble", user="U0CAROL", channel="C0SHARED")

    assert ack.payload is not None
    assert ack.payload["blocks"][0]["block_id"] == BlockId.REPORT_HEADLINE
    assert f"Monthly report for Aryanoble, {first:%B %Y}." in ack.read()
    [decision] = await harness.audit()
    assert (decision["actor"], decision["reason"]) == ("U0CAROL", "channel")


async def test_an_account_alias_names_its_customers_report(harness: Harness) -> None:
    first = last_month()
    await seed(harness, first)

    ack = await harness.fake.acommand(f"report arbel {first:%Y-%m}")

    assert f"Monthly report for Aryanoble, {first:%B %Y}." in ack.read()
    assert f"/customers/aryanoble/reports/{first:%Y-%m}" in str(ack.payload)


@pytest.mark.parametrize("harness", [None], indirect=True, ids=["no public URL"])
async def test_without_a_public_url_it_says_the_command_that_writes_the_pdf(
    harness: Harness,
) -> None:
    first = last_month()
    await seed(harness, first)

    ack = await harness.fake.acommand(f"report aryanoble {first:%Y-%m}")

    assert ack.payload is not None
    assert buttons(ack.payload) == {}
    month = f"{first:%Y-%m}"
    assert f"`mhub report aryanoble --month {month} --pdf aryanoble-{month}.pdf`" in ack.read()
    assert f"Monthly report for Aryanoble, {first:%B %Y}." in ack.read()


async def test_an_outsider_is_told_the_same_about_a_customer_as_about_nothing(
    harness: Harness,
) -> None:
    first = last_month()
    await seed(harness, first)
    said = {}
    for name in ("aryanoble", "arbel", "locked", "nosuch"):
        ack = await harness.fake.acommand(f"report {name} {first:%Y-%m}", user="U0MALLORY")
        assert ack.payload is not None and ack.payload["response_type"] == "ephemeral"
        said[name] = ack.payload["text"].replace(f'"{name}"', '"…"')

    assert len(set(said.values())) == 1, said
    assert said["aryanoble"].startswith('I don\'t know "…", or you may not see it.')
    for secret in ("Aryanoble", "Locked", "arbel", "vault", "Monthly report", "hub.example"):
        assert secret not in said["aryanoble"]
    decisions = await harness.audit()
    assert [(d["asked"], d["action"], d["allowed"], d["reason"]) for d in decisions] == [
        ("aryanoble", "report", False, "denied"),
        ("arbel", "report", False, "denied"),
        ("locked", "report", False, "denied"),
        ("nosuch", "report", False, "unknown"),
    ]


async def test_a_month_that_cannot_be_reported_on_is_answered_with_what_to_ask_instead(
    harness: Harness,
) -> None:
    first = last_month()
    await seed(harness, first)
    before = await written(harness)
    today = datetime.now(WIB).date()
    future = date(today.year + 1, 1, 1)
    earlier = months_before(first)

    asked = {
        f"report aryanoble {future:%Y-%m}": (
            f"{future:%B %Y} has not begun yet in Aryanoble's time zone (Asia/Jakarta; today "
            f"is {today.isoformat()}): choose a period that has"
        ),
        f"report aryanoble {earlier:%Y-%m}": (
            f"monitoring of Aryanoble began on 2 {first:%b %Y}: choose {first:%B %Y} or later"
        ),
        "report aryanoble 2026-13": (
            '"2026-13" is not a month: give it as YYYY-MM, such as 2026-11. ' + USAGE
        ),
        "report aryanoble 11/2026": '"11/2026" is not a month: give it as YYYY-MM',
        "report": f"Which customer? {USAGE}",
        "report aryanoble --month 2026-11": f'There is no option "--month". {USAGE}',
    }
    for text, says in asked.items():
        ack = await harness.fake.acommand(text)
        assert ack.latency_s is not None and ack.latency_s < 3
        assert ack.payload is not None and ack.payload["response_type"] == "ephemeral"
        assert says in ack.payload["text"], (text, ack.payload["text"])
        assert "Something went wrong" not in ack.payload["text"]
        assert "Monthly report" not in ack.read()

    assert await written(harness) == before
    decisions = await harness.audit()  # only the well-formed two were looked up
    assert [(d["action"], d["allowed"]) for d in decisions] == [("report", True)] * 2


async def test_a_slow_report_is_acknowledged_in_time_and_answered_through_the_response_url(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = last_month()
    await seed(harness, first)
    build = Reports.build

    async def slow(self: Reports, customer_id: str, period: Period) -> Report:
        await asyncio.sleep(2.5)  # past the 2 s the listener waits before acking anyway
        return await build(self, customer_id, period)

    monkeypatch.setattr(Reports, "build", slow)

    ack = await harness.fake.acommand(f"report aryanoble {first:%Y-%m}")

    assert ack.latency_s is not None and ack.latency_s < 3
    assert ack.payload == messages.working()
    [answer] = await harness.fake.await_(lambda: harness.fake.replies(ack), 15, "the report")
    assert answer["response_type"] == "ephemeral"
    assert f"Monthly report for Aryanoble, {first:%B %Y}." in answer["text"]
    assert ActionId.REPORT_PDF in buttons(answer)


async def test_help_lists_the_command(harness: Harness) -> None:
    ack = await harness.fake.acommand("help")

    assert "`/monitor report CUSTOMER [YYYY-MM]` — a customer's monthly report" in ack.read()
