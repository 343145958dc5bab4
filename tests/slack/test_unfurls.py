"""Web-view links posted in Slack, through the fake Slack's Socket Mode and the real app: the
``link_shared`` event is acked at once; a run, customer, findings or report link gets its
status card in one ``chat.unfurl`` when the person who posted it may see the customer from
where they posted it; anything else — no access, nothing there, another site — gets no card at
all, and every decision is audited; Slack refusing the cards leaves the listener working."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.slack.unfurls import CustomerLink, ReportLink, RunLink, Target, parse
from tests.fakeslack.server import LinkShare, Unfurled
from tests.handlers.conftest import Harness, harness, hub_catalog
from tests.test_manifest import manifest

__all__ = ["harness", "hub_catalog"]  # the handlers harness, reused here

HUB = "https://hub.example.com"
"""HUB_PUBLIC_URL: on the host manifest.yml's ``unfurl_domains`` names."""
WIB = ZoneInfo("Asia/Jakarta")

on_hub = pytest.mark.parametrize("harness", [HUB], indirect=True)
"""The handlers harness with HUB as its HUB_PUBLIC_URL."""


@pytest.fixture
async def hub(harness: Harness) -> AsyncIterator[Harness]:
    """The handlers harness with the fake Slack told the app's unfurl domains (the manifest's)."""
    harness.fake.set_unfurl_domains(manifest()["features"]["unfurl_domains"])
    yield harness


async def finished_run(hub: Harness) -> int:
    """Run #1 (arbel · RDS, which the stand-in finds critical), once it has finished."""
    ack = await hub.fake.acommand("run arbel rds")
    assert "Queued *#1*" in ack.read()
    await hub.fake.await_(
        lambda: [c for c in hub.fake.cards(1) if c.text.startswith("🔴")], 20, "run #1's end"
    )
    return 1


async def share(
    hub: Harness, urls: list[str], user: str = "U0ALICE", channel: str = "C0OPS"
) -> LinkShare:
    shared = await hub.fake.ashare_links(user, channel, urls)
    assert shared.ack is not None and shared.ack.latency_s is not None
    assert shared.ack.latency_s < 3 and shared.ack.payload is None
    return shared


async def unfurled(hub: Harness, shared: LinkShare) -> Unfurled:
    [done] = await hub.fake.await_(lambda: hub.fake.unfurled(shared), 15, "the unfurl")
    return done


async def decision(hub: Harness, actor: str, asked: str) -> dict[str, Any]:
    """The audit row of ``actor``'s link to ``asked`` (a path), once it is written."""
    rows: list[dict[str, Any]] = await hub.await_audit(
        lambda rows: [r for r in rows if r["actor"] == actor and r.get("asked") == asked]
    )
    [row] = rows
    return row


@on_hub
async def test_a_run_link_posted_by_someone_who_may_see_it_unfurls_into_its_status(
    hub: Harness,
) -> None:
    run_id = await finished_run(hub)
    url = f"{HUB}/runs/{run_id}"

    shared = await share(hub, [url])

    done = await unfurled(hub, shared)
    assert list(done.unfurls) == [url] and done.by == "unfurl_id"
    card = done.read(url)
    assert "*🔴 Critical · Aryanoble · #1*" in card
    assert "1 check: RDS · arbel" in card and "🔴 1 critical" in card
    assert "WIB" in card and "requested by <@U0ALICE>" in card
    row = await decision(hub, "U0ALICE", f"/runs/{run_id}")
    assert (row["run_id"], row["action"], row["allowed"], row["reason"]) == (
        run_id,
        "list",
        True,
        "user",
    )
    assert row["channel"] == "C0OPS"


@on_hub
async def test_someone_without_access_gets_no_card_at_all_and_the_refusal_is_audited(
    hub: Harness,
) -> None:
    run_id = await finished_run(hub)
    url = f"{HUB}/runs/{run_id}"

    await share(hub, [url], user="U0MALLORY")
    row = await decision(hub, "U0MALLORY", f"/runs/{run_id}")
    # The same link from Alice afterwards: by the time it is unfurled Mallory's is long done.
    await unfurled(hub, await share(hub, [url]))

    assert (row["run_id"], row["allowed"], row["reason"], row["customer"]) == (
        run_id,
        False,
        "denied",
        "aryanoble",
    )
    assert [u.share.user for u in hub.fake.unfurls] == ["U0ALICE"]
    assert len(hub.fake.calls_of("chat.unfurl")) == 1


@on_hub
async def test_a_channel_grant_unfurls_in_that_channel_only(hub: Harness) -> None:
    url = f"{HUB}/customers/aryanoble"

    done = await unfurled(hub, await share(hub, [url], user="U0CAROL", channel="C0SHARED"))
    elsewhere = await share(hub, [url], user="U0CAROL", channel="C0OPS")
    denied = await hub.await_audit(
        lambda rows: [r for r in rows if r["actor"] == "U0CAROL" and not r["allowed"]]
    )
    await unfurled(hub, await share(hub, [url]))

    assert "*Aryanoble*" in done.read(url)
    reasons = [(r["channel"], r["reason"]) for r in await hub.audit() if r["actor"] == "U0CAROL"]
    assert reasons == [("C0SHARED", "channel"), ("C0OPS", "denied")] and len(denied) == 1
    assert hub.fake.unfurled(elsewhere) == []


@on_hub
async def test_links_that_are_not_hub_pages_are_left_alone(hub: Harness) -> None:
    run_id = await finished_run(hub)
    before = await hub.audit()
    others = [
        "https://example.org/runs/1",  # not in the app's unfurl domains: Slack sends nothing
        "https://docs.hub.example.com/runs/1",  # a subdomain: sent, but not HUB_PUBLIC_URL
        f"{HUB}/metrics",
        f"{HUB}/runs",
        f"{HUB}/customers/aryanoble/reports/2026-11.pdf",
    ]
    url = f"{HUB}/runs/{run_id}"

    nothing = await hub.fake.ashare_links("U0ALICE", "C0OPS", others[:1])
    shared = await share(hub, [*others, url])

    assert nothing.ack is None  # no link_shared at all
    done = await unfurled(hub, shared)
    assert shared.urls == (*others[1:], url)
    assert list(done.unfurls) == [url]
    after = [r for r in await hub.audit() if r not in before]
    assert [r["asked"] for r in after] == [f"/runs/{run_id}"]


@on_hub
async def test_a_customer_its_findings_and_a_months_report_unfurl_together(
    hub: Harness,
) -> None:
    await finished_run(hub)
    month = f"{datetime.now(WIB):%Y-%m}"
    customer = f"{HUB}/customers/aryanoble"
    findings = f"{HUB}/customers/aryanoble/findings?group=open"
    report = f"{HUB}/customers/aryanoble/reports/{month}"

    done = await unfurled(hub, await share(hub, [customer, findings, report]))

    assert list(done.unfurls) == [customer, findings, report]
    card = done.read(customer)
    assert "Latest run: 🔴 Critical · #1 ·" in card
    assert "🔴 1 open finding, 1 critical" in card
    assert "Next digest: daily ·" in card and "07:00 WIB" in card
    assert "*Findings · Aryanoble*" in done.read(findings)
    label = f"{datetime.now(WIB):%B %Y}"
    assert f"*Monthly report for Aryanoble, {label}.*" in done.read(report)
    assert f"{label} · times in Asia/Jakarta" in done.read(report)
    asked = {r["asked"] for r in await hub.audit() if r.get("action") == "list"}
    assert asked == {
        "/customers/aryanoble",
        "/customers/aryanoble/findings",
        f"/customers/aryanoble/reports/{month}",
    }


@on_hub
async def test_a_run_or_customer_that_does_not_exist_gets_no_card(hub: Harness) -> None:
    missing = [f"{HUB}/runs/999", f"{HUB}/customers/nobody", f"{HUB}/customers/locked"]
    asked = ("/runs/999", "/customers/nobody", "/customers/locked")

    await share(hub, missing)
    rows = await hub.await_audit(
        lambda rows: (
            found if len(found := [r for r in rows if r.get("asked") in asked]) == 3 else []
        )
    )
    await unfurled(hub, await share(hub, [f"{HUB}/customers/aryanoble"]))

    assert [(r["asked"], r["reason"]) for r in rows] == [
        ("/runs/999", "unknown"),
        ("/customers/nobody", "unknown"),
        ("/customers/locked", "denied"),
    ]
    assert len(hub.fake.unfurls) == 1


@on_hub
async def test_slack_refusing_the_cards_is_logged_once_and_the_listener_goes_on(
    hub: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{HUB}/customers/aryanoble?token=s3cret"
    hub.fake.refuse("C0OPS", "cannot_unfurl_url", methods=["chat.unfurl"])

    with caplog.at_level(logging.INFO, logger="app.slack.unfurls"):
        await share(hub, [url])
        await hub.fake.await_(lambda: hub.fake.calls_of("chat.unfurl"), 15, "the chat.unfurl")
        refused = await hub.fake.await_(
            lambda: [r for r in caplog.records if "refused" in r.getMessage()], 5, "the log"
        )
        hub.fake.reset()
        again = await unfurled(hub, await share(hub, [url]))

    assert [c.error for c in hub.fake.calls_of("chat.unfurl")] == ["cannot_unfurl_url", None]
    [line] = refused
    said = line.getMessage()
    assert "/customers/aryanoble" in said and "cannot_unfurl_url" in said
    assert "s3cret" not in caplog.text and "token=" not in caplog.text
    assert "*Aryanoble*" in again.read(url)


@on_hub
async def test_after_a_429_no_cards_go_out_until_its_retry_after_has_passed(
    hub: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{HUB}/customers/aryanoble"
    hub.fake.rate_limit(["chat.unfurl"], times=1, retry_after=30)

    with caplog.at_level(logging.INFO, logger="app.slack.unfurls"):
        await share(hub, [url])
        await hub.fake.await_(lambda: hub.fake.calls_of("chat.unfurl"), 15, "the chat.unfurl")
        await share(hub, [url], channel="C0SHARED")
        await hub.fake.await_(
            lambda: [r for r in caplog.records if "asked to wait" in r.getMessage()], 15, "skip"
        )

    assert [c.status for c in hub.fake.calls_of("chat.unfurl")] == [429]
    assert hub.fake.unfurls == []


@pytest.mark.parametrize(
    ("url", "page"),
    [
        (f"{HUB}/runs/1842", RunLink(1842)),
        ("http://HUB.example.com/runs/1842/", RunLink(1842)),
        (f"{HUB}/runs/1842?tab=events#top", RunLink(1842)),
        (f"{HUB}/customers/acme%20co", CustomerLink("acme co")),
        (f"{HUB}/customers/aryanoble/findings?group=open&amp;x=1", CustomerLink("aryanoble", True)),
        (f"{HUB}/customers/aryanoble/reports/2026-11", ReportLink("aryanoble", "2026-11")),
        (f"{HUB}/customers/aryanoble/reports/2026-11.pdf", None),
        (f"{HUB}/runs/18x2", None),
        (f"{HUB}/runs", None),
        (f"{HUB}/", None),
        ("https://hub.example.com.evil.org/runs/1", None),
        ("https://docs.hub.example.com/runs/1", None),
        ("ftp://hub.example.com/runs/1", None),
        ("https://example.org/runs/1", None),
    ],
)
def test_a_link_names_a_hub_page_only_under_the_public_url(url: str, page: Target | None) -> None:
    assert parse(url, HUB) == page
    assert parse(url, HUB + "/") == page


def test_a_public_url_with_a_path_prefix_keeps_to_it() -> None:
    assert parse("https://example.org/hub/runs/7", "https://example.org/hub") == RunLink(7)
    assert parse("https://example.org/runs/7", "https://example.org/hub") is None
    assert parse("https://example.org/hubby/runs/7", "https://example.org/hub") is None
