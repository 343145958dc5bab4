"""The answer to ``/monitor report``: the headline, the month and its zone, and where to get the
whole report — within Slack's limits, with what came from outside escaped."""

from __future__ import annotations

from typing import Any

from blocks.ids import ActionId, BlockId
from blocks.report import AskedReport, cli_hint, report_answer, report_links
from tests.fakeslack.validate import all_text, message_problems

ASKED = AskedReport(
    customer_id="arbel",
    month="2026-11",
    label="November 2026",
    timezone="Asia/Jakarta",
    headline=(
        "Monthly report for Arbel Retail, November 2026.",
        "3,774 checks run; 29 of 30 scheduled runs (96.7 %); problems on 10 days of 30.",
    ),
)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_it_shows_the_headline_the_month_and_its_zone_and_links_to_the_page_and_pdf() -> None:
    message = report_answer(ASKED, "https://hub.example/")

    assert message_problems(message) == []
    assert message["response_type"] == "ephemeral"
    assert message["blocks"][0] == {
        "type": "section",
        "block_id": BlockId.REPORT_HEADLINE,
        "text": {"type": "mrkdwn", "text": f"*{ASKED.headline[0]}*\n{ASKED.headline[1]}"},
    }
    assert "November 2026 · times in Asia/Jakarta" in all_text(message)
    assert message["text"].startswith("Monthly report for Arbel Retail, November 2026.")
    page = "https://hub.example/customers/arbel/reports/2026-11"
    assert [(b["action_id"], b["url"]) for b in buttons(message)] == [
        (ActionId.REPORT_PAGE, page),
        (ActionId.REPORT_PDF, page + ".pdf"),
    ]
    assert "mhub report" not in all_text(message)


def test_without_a_public_url_it_says_the_command_that_writes_the_pdf() -> None:
    message = report_answer(ASKED, None)

    assert message_problems(message) == [] and buttons(message) == []
    assert "`mhub report arbel --month 2026-11 --pdf arbel-2026-11.pdf`" in all_text(message)
    assert report_links(None, "arbel", "2026-11") is None
    assert cli_hint("arbel", "2026-11") == (
        "mhub report arbel --month 2026-11 --pdf arbel-2026-11.pdf"
    )


def test_it_escapes_what_came_from_outside_and_keeps_within_slacks_limits() -> None:
    asked = AskedReport(
        customer_id="acme",
        month="2026-12",
        label="December 2026",
        timezone="Europe/Berlin",
        headline=("Monthly report for <!channel> & Co, December 2026.", "x" * 5000),
        began="1 Dec 2026 <b>",
        notes=("December 2026 is not over: this report covers it up to 3 Dec 2026 10:00 CET.",),
    )
    for url in ("https://hub.example", None):
        message = report_answer(asked, url)
        assert message_problems(message) == []
        body = all_text(message)
        assert "<!channel>" not in body and "&lt;!channel&gt; &amp; Co" in body
        assert "is not over: this report covers it up to 3 Dec 2026 10:00 CET." in body
        assert "Monitoring began on 1 Dec 2026 &lt;b&gt;; the figures start there." in body
