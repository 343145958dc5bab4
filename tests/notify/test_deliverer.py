"""The notifier against the fake PagerDuty and a webhook receiver, on each database: one
incident per finding from trigger to resolve, Retry-After, backoff, refusals that fail for good
and say which variable to fix, order per finding, two replicas sharing the work, and logs that
never hold a secret."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.catalog import Catalog
from app.db import Database
from app.models import Notice
from app.notify.deliverer import Notifier, failed_count, failures
from tests.fakehooks import FakePagerDuty, FakeReceiver
from tests.notify.support import (
    FAST,
    HOOK_PATH,
    HOOK_SECRET,
    KEY_ENV,
    PD_KEY,
    SECRET_ENV,
    UNKNOWN_KEY,
    URL_ENV,
    add_many,
    add_notice,
    all_notices,
    catalog,
    customer,
    notice,
    notifier,
    routing,
    serving,
    settled,
)

ENV = {KEY_ENV: PD_KEY}


async def test_trigger_acknowledge_resolve_make_one_incident(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    ids = [await add_notice(db, 1, action) for action in ("trigger", "acknowledge", "resolve")]
    async with notifier(db, ENV, pagerduty.events_url) as sender:
        assert await sender.deliver_due() == 3
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in pagerduty.events} == {"mhub:acme:1"}
    incident = pagerduty.incidents["mhub:acme:1"]
    assert incident.status == "resolved"
    assert incident.actions == ["trigger", "acknowledge", "resolve"]
    assert incident.severity == "critical" and incident.summary.startswith("Acme · acme-prod")
    for notice_id in ids:
        row = await notice(db, notice_id)
        assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
        assert row.sent_at is not None and row.lease_until is None


async def test_a_notice_sent_is_never_sent_again(db: Database, pagerduty: FakePagerDuty) -> None:
    await add_notice(db, 1)
    async with notifier(db, ENV, pagerduty.events_url) as sender:
        assert await sender.deliver_due() == 1
        assert await sender.deliver_due() == 0
    async with db.write() as session:  # even if its next_attempt_at says it is due
        await session.execute(
            update(Notice).values(next_attempt_at=datetime(2000, 1, 1, tzinfo=UTC))
        )
    async with notifier(db, ENV, pagerduty.events_url) as again:
        assert await again.deliver_due() == 0
    assert len(pagerduty.requests) == 1


async def test_429_waits_for_retry_after_then_sends_once(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    notice_id = await add_notice(db, 1)
    pagerduty.fail_next(429, retry_after=1)
    async with serving(notifier(db, ENV, pagerduty.events_url)):
        [row] = await settled(db)
    assert (row.id, row.status, row.attempts) == (notice_id, "sent", 2)
    first, second = pagerduty.requests
    assert (first.status, second.status) == (429, 202)
    assert second.at - first.at >= 0.95  # Retry-After: 1, not the 0.1 s backoff
    assert len(pagerduty.events) == 1


async def test_5xx_backs_off_exponentially_and_stays_pending(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    notice_id = await add_notice(db, 1)
    pagerduty.fail_next(500, times=1)
    pagerduty.fail_next(503, times=1)
    async with notifier(db, ENV, pagerduty.events_url) as sender:
        assert await sender.deliver_due() == 0  # retried later: neither sent nor failed
        row = await notice(db, notice_id)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
        assert row.lease_until is None and row.next_attempt_at > datetime.now(UTC)
    async with serving(notifier(db, ENV, pagerduty.events_url)):
        [row] = await settled(db)
    assert (row.status, row.attempts) == ("sent", 3)
    statuses = [r.status for r in pagerduty.requests]
    assert statuses == [500, 503, 202]
    gaps = [b.at - a.at for a, b in zip(pagerduty.requests, pagerduty.requests[1:], strict=False)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19  # 0.1 s, then 0.2 s: doubling


async def test_one_call_tries_each_notice_once_however_long_it_takes(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    # One notice fails at once and is due again 0.1 s later; the other's answer takes 0.4 s,
    # so the call outlives the backoff. The retry waits for the next call (CI once saw a
    # slow database make one call try a notice twice).
    await add_notice(db, 1)
    await add_notice(db, 2)
    pagerduty.fail_next(500, times=1)  # whichever asks first
    pagerduty.stall_next(0.4)
    async with notifier(db, ENV, pagerduty.events_url) as sender:
        assert await sender.deliver_due() == 1
    assert sorted(r.status for r in pagerduty.requests) == [202, 500]
    rows = await all_notices(db)
    assert sorted((r.status, r.attempts, r.last_error) for r in rows) == [
        ("pending", 1, "HTTP 500"),
        ("sent", 1, None),
    ]


async def test_no_answer_or_no_connection_is_tried_again(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    notice_id = await add_notice(db, 1)
    async with notifier(db, ENV, "http://127.0.0.1:9/v2/enqueue") as nowhere:
        assert await nowhere.deliver_due() == 0
    row = await notice(db, notice_id)
    assert row.status == "pending" and row.last_error == "cannot connect (ClientConnectorError)"
    pagerduty.stall_next(0.8)  # handled, but the answer comes after the 0.4 s timeout
    quick = replace(FAST, http_timeout_s=0.4)
    async with serving(notifier(db, ENV, pagerduty.events_url, options=quick)):
        [row] = await settled(db)
    assert row.status == "sent" and row.attempts >= 3  # refused, no answer, …, sent
    # The lost answer's trigger was sent again, and PagerDuty folded it into the incident.
    await pagerduty.wait_for(
        lambda: any(r.stalled_s for r in pagerduty.requests), what="the stalled request"
    )
    assert {e["dedup_key"] for e in pagerduty.events} == {"mhub:acme:1"}
    incident = pagerduty.incidents["mhub:acme:1"]
    assert len(pagerduty.events) >= 2 and incident.dedups == len(pagerduty.events) - 1


async def test_a_refused_key_fails_for_good_naming_the_variable(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    notice_id = await add_notice(db, 1)
    async with notifier(db, {KEY_ENV: UNKNOWN_KEY}, pagerduty.events_url) as sender:
        assert await sender.deliver_due() == 1
        assert await sender.deliver_due() == 0
    row = await notice(db, notice_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == (
        "PagerDuty refused the event (400: Invalid routing key): check the integration key in "
        "PD_KEY_ACME"
    )
    [request] = pagerduty.requests
    assert request.status == 400
    [failure] = await failures(db, datetime.now(UTC) - timedelta(minutes=1))
    assert (failure.id, failure.customer_id, failure.destination, failure.action) == (
        notice_id, "acme", "pagerduty", "trigger",
    )  # fmt: skip
    assert failure.error == row.last_error
    assert await failed_count(db, datetime.now(UTC) - timedelta(minutes=1)) == 1
    assert await failures(db, datetime.now(UTC) + timedelta(minutes=1)) == []


async def test_a_malformed_key_fails_with_pagerduty_s_reason(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    notice_id = await add_notice(db, 1)
    async with notifier(db, {KEY_ENV: "short-key"}, pagerduty.events_url) as sender:
        assert await sender.deliver_due() == 1
    error = (await notice(db, notice_id)).last_error or ""
    assert "Length of 'routing_key' is incorrect" in error and "PD_KEY_ACME" in error
    assert "short-key" not in error


@pytest.mark.parametrize("environ", [{}, {KEY_ENV: ""}, {KEY_ENV: "   "}])
async def test_an_unset_variable_fails_without_sending(
    db: Database, pagerduty: FakePagerDuty, environ: dict[str, str]
) -> None:
    notice_id = await add_notice(db, 1)
    async with notifier(db, environ, pagerduty.events_url) as sender:
        assert await sender.deliver_due() == 1
    row = await notice(db, notice_id)
    assert row.status == "failed"
    assert (row.last_error or "").startswith("set PD_KEY_ACME to the PagerDuty integration key")
    assert pagerduty.requests == []


async def test_a_destination_no_longer_configured_fails_saying_so(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    gone = await add_notice(db, 1, customer_id="globex")
    unrouted = await add_notice(db, 2)
    no_hook = await add_notice(db, 3, destination="webhook:3")
    nonsense = await add_notice(db, 4, destination="carrier-pigeon")
    quiet = catalog(customer(route=routing(pagerduty=None, hooks=[(URL_ENV, SECRET_ENV)])))
    async with notifier(db, ENV, pagerduty.events_url, cat=quiet) as sender:
        assert await sender.deliver_due() == 4
    errors = {row.id: row.last_error or "" for row in await all_notices(db)}
    assert 'customer "globex" is no longer configured' in errors[gone]
    assert "no longer sends to PagerDuty" in errors[unrouted]
    assert "no longer has webhook 3 (routing.webhooks lists 1)" in errors[no_hook]
    assert "unknown destination" in errors[nonsense]
    assert pagerduty.requests == []


async def test_an_old_notice_is_retried_unless_a_max_age_is_set(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    old = await add_notice(db, 1, age=timedelta(days=3))
    pagerduty.fail_next(503, times=2)
    async with notifier(db, ENV, pagerduty.events_url) as sender:
        assert await sender.deliver_due() == 0  # by default an outage loses nothing
    assert (await notice(db, old)).status == "pending"
    await asyncio.sleep(0.15)
    day = replace(FAST, max_age_s=24 * 3600)
    async with notifier(db, ENV, pagerduty.events_url, options=day) as sender:
        assert await sender.deliver_due() == 1
    row = await notice(db, old)
    assert (row.status, row.last_error) == ("failed", "gave up after 24 h: HTTP 503")


async def test_a_notice_waits_behind_the_older_one_of_its_finding(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    trigger = await add_notice(db, 1, "trigger")
    ack = await add_notice(db, 1, "acknowledge")
    pagerduty.fail_next(500)
    slower = replace(FAST, backoff_base_s=60)
    async with notifier(db, ENV, pagerduty.events_url, options=slower) as sender:
        assert await sender.deliver_due() == 0  # the trigger failed once and waits a minute
        other = await add_notice(db, 2, "trigger")
        assert await sender.deliver_due() == 1  # another finding is not held back
        assert (await notice(db, other)).status == "sent"
        assert (await notice(db, ack)).attempts == 0  # not tried while the trigger is pending
        async with db.write() as session:  # the minute passes
            await session.execute(
                update(Notice)
                .where(Notice.id == trigger)
                .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert await sender.deliver_due() == 2
    assert pagerduty.actions("mhub:acme:1") == ["trigger", "acknowledge"]
    assert (await notice(db, trigger)).attempts == 2


async def test_order_per_finding_holds_across_two_replicas(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    actions = ("trigger", "acknowledge", "resolve")
    await add_many(db, [(f, a) for a in actions for f in range(1, 31)], "pagerduty")
    pagerduty.fail_next(500, times=5)
    pagerduty.fail_next(429, times=2)  # no Retry-After: the backoff
    other = Database(db.url)
    try:
        async with serving(
            notifier(db, ENV, pagerduty.events_url, owner="one"),
            notifier(other, ENV, pagerduty.events_url, owner="two"),
        ):
            rows = await settled(db)
    finally:
        await other.close()
    assert {row.status for row in rows} == {"sent"}
    for finding in range(1, 31):
        assert pagerduty.actions(f"mhub:acme:{finding}") == list(actions)
        assert pagerduty.incidents[f"mhub:acme:{finding}"].status == "resolved"


async def test_two_replicas_send_each_of_200_notices_exactly_once(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    await add_many(db, [(finding, "trigger") for finding in range(1, 201)], "pagerduty")
    other = Database(db.url)
    try:
        first = notifier(db, ENV, f"{pagerduty.events_url}?by=one", owner="one")
        second = notifier(other, ENV, f"{pagerduty.events_url}?by=two", owner="two")
        async with serving(first, second):
            rows = await settled(db, within_s=60)
    finally:
        await other.close()
    shares = Counter(request.query for request in pagerduty.requests)
    assert shares["by=one"] + shares["by=two"] == 200
    assert shares["by=one"] > 0 and shares["by=two"] > 0  # both replicas took part
    keys = [event["dedup_key"] for event in pagerduty.events]
    assert len(keys) == 200 and len(set(keys)) == 200
    assert all(incident.dedups == 0 for incident in pagerduty.incidents.values())
    assert {(row.status, row.attempts) for row in rows} == {("sent", 1)}


async def test_a_claim_taken_over_cannot_record_its_outcome(
    db: Database, pagerduty: FakePagerDuty
) -> None:
    notice_id = await add_notice(db, 1)
    async with (
        notifier(db, ENV, pagerduty.events_url, owner="slow") as slow,
        notifier(db, ENV, pagerduty.events_url, owner="fast") as fast,
    ):
        [claimed] = await slow._claim(1)
        assert await fast.deliver_due() == 0  # leased: left alone
        async with db.write() as session:  # the slow one's lease runs out
            await session.execute(
                update(Notice).values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert await fast.deliver_due() == 1
        assert await slow._deliver(claimed) is False  # sent late; its outcome is refused
    row = await notice(db, notice_id)
    assert (row.id, row.status, row.attempts) == (notice_id, "sent", 2)
    assert pagerduty.incidents["mhub:acme:1"].dedups == 1  # PagerDuty folded the repeat


async def test_poke_wakes_the_loop_at_once(db: Database, pagerduty: FakePagerDuty) -> None:
    sender = notifier(db, ENV, pagerduty.events_url)
    async with serving(sender, poll_s=30):
        await asyncio.sleep(0.1)  # asleep for up to 30 s
        await add_notice(db, 1)
        sender.poke()
        await pagerduty.wait_for(lambda: pagerduty.events, within_s=5, what="the poked notice")


async def test_logs_say_what_was_sent_and_never_a_secret(
    db: Database,
    pagerduty: FakePagerDuty,
    receiver: FakeReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    both = catalog(
        customer(route=routing(hooks=[(URL_ENV, SECRET_ENV)])),
        customer("globex", routing(pagerduty="PD_KEY_GLOBEX")),
    )
    url = receiver.url_for(HOOK_PATH)
    environ = {KEY_ENV: PD_KEY, URL_ENV: url, SECRET_ENV: HOOK_SECRET, "PD_KEY_GLOBEX": UNKNOWN_KEY}
    sent = await add_notice(db, 1)
    refused = await add_notice(db, 2, customer_id="globex")
    hooked = await add_notice(db, 3, destination="webhook:0")
    retried = await add_notice(db, 4)
    pagerduty.fail_next(502)  # the first request (notice 1) is retried
    async with notifier(db, environ, pagerduty.events_url, cat=both) as sender:
        await sender.deliver_due()
        receiver.answer_with(410)
        gone = await add_notice(db, 5, destination="webhook:0")
        await sender.deliver_due()
        await asyncio.sleep(0.15)
        await sender.deliver_due()
    states = {row.id: row.status for row in await all_notices(db)}
    assert states == {
        sent: "sent",
        refused: "failed",
        hooked: "sent",
        retried: "sent",
        gone: "failed",
    }
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    signatures = [r.headers["X-Mhub-Signature-256"] for r in receiver.requests]
    for secret in (PD_KEY, UNKNOWN_KEY, HOOK_SECRET, HOOK_PATH, url, *signatures):
        assert secret not in text
        for row in await all_notices(db):
            assert secret not in (row.last_error or "")
    assert f"notice {hooked} → webhook:0 trigger: 200, sent" in caplog.text
    assert f"notice {refused} → pagerduty trigger: 400, failed for good" in caplog.text
    assert f"notice {gone} → webhook:0 trigger: 410, failed for good" in caplog.text
    assert "pagerduty trigger: 502, HTTP 502; next try in" in caplog.text
    assert "PD_KEY_GLOBEX" in caplog.text  # the variable to fix is named


async def test_a_bug_while_sending_backs_off_and_is_logged(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    notice_id = await add_notice(db, 1)

    def broken() -> Catalog:
        raise RuntimeError("the catalog is broken")

    async with Notifier(db, broken, ENV, options=FAST) as sender:
        assert await sender.deliver_due() == 0
    row = await notice(db, notice_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "the hub crashed sending it (RuntimeError)"
    assert row.lease_until is None  # backing off, not waiting for its lease
    assert "the catalog is broken" in caplog.text  # with its traceback
