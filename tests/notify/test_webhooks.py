"""Signed webhooks: the body and headers a receiver gets, the signature scheme, and delivery to
a receiver that checks it."""

from __future__ import annotations

import json
import time

from app.db import Database
from app.notify import webhooks
from tests.fakehooks import FakeReceiver
from tests.notify.support import (
    HOOK_PATH,
    HOOK_SECRET,
    SECRET_ENV,
    URL_ENV,
    add_notice,
    catalog,
    customer,
    notice,
    notifier,
    payload,
    routing,
)

HOOKED = catalog(customer(route=routing(pagerduty=None, hooks=[(URL_ENV, SECRET_ENV)])))


def env(receiver: FakeReceiver, secret: str = HOOK_SECRET) -> dict[str, str]:
    return {URL_ENV: receiver.url_for(HOOK_PATH), SECRET_ENV: secret}


def test_the_body_is_compact_sorted_json_with_the_action() -> None:
    body = webhooks.body("resolve", {"b": 1, "a": "é"})
    assert body == '{"a":"é","action":"resolve","b":1}'.encode()


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body() -> None:
    body = webhooks.body("trigger", payload(1))
    headers = webhooks.headers(17, "s3cret", body, 1_800_000_000)
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Mhub-Timestamp"] == "1800000000"
    assert headers["X-Mhub-Delivery"] == "17"
    signature = headers["X-Mhub-Signature-256"]
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    # The documented recipe, spelled out independently.
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"


def test_verify_takes_only_the_right_secret_body_and_a_fresh_timestamp() -> None:
    body = webhooks.body("trigger", payload(1))
    now = int(time.time())
    signature = webhooks.sign("s3cret", now, body)
    assert webhooks.verify("s3cret", now, body, signature)
    assert webhooks.verify("s3cret", str(now), body, signature)
    assert not webhooks.verify("other", now, body, signature)
    assert not webhooks.verify("s3cret", now, body + b" ", signature)
    assert not webhooks.verify("s3cret", now + 1, body, signature)
    assert not webhooks.verify("s3cret", now, body, signature.upper())
    assert not webhooks.verify("s3cret", now, body, None)
    assert not webhooks.verify("s3cret", "12ab", body, signature)
    assert not webhooks.verify("", now, body, signature)
    old = now - 3600
    stale = webhooks.sign("s3cret", old, body)
    assert not webhooks.verify("s3cret", old, body, stale)  # a replay, an hour later
    assert webhooks.verify("s3cret", old, body, stale, tolerance_s=None)


async def test_a_notice_reaches_the_receiver_signed(db: Database, receiver: FakeReceiver) -> None:
    notice_id = await add_notice(db, action="acknowledge", destination="webhook:0", by="U0ALICE")
    async with notifier(db, env(receiver), cat=HOOKED) as sender:
        assert await sender.deliver_due() == 1
    [request] = receiver.requests
    assert request.path == HOOK_PATH and request.status == 200 and request.verified
    assert request.headers["X-Mhub-Delivery"] == str(notice_id)
    assert abs(int(request.headers["X-Mhub-Timestamp"]) - time.time()) < 10
    assert webhooks.verify(
        HOOK_SECRET,
        request.headers["X-Mhub-Timestamp"],
        request.body,
        request.headers["X-Mhub-Signature-256"],
    )
    assert json.loads(request.body) == {"action": "acknowledge", **payload(1, by="U0ALICE")}
    assert request.body == webhooks.body("acknowledge", payload(1, by="U0ALICE"))
    row = await notice(db, notice_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None and row.lease_until is None


async def test_410_gone_fails_the_notice_for_good(db: Database, receiver: FakeReceiver) -> None:
    notice_id = await add_notice(db, destination="webhook:0")
    receiver.answer_with(410)
    async with notifier(db, env(receiver), cat=HOOKED) as sender:
        assert await sender.deliver_due() == 1
        assert await sender.deliver_due() == 0
    row = await notice(db, notice_id)
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error is not None
    assert "410" in row.last_error and URL_ENV in row.last_error
    assert "routing.webhooks" in row.last_error
    assert HOOK_PATH not in row.last_error and receiver.url not in row.last_error
    assert len(receiver.requests) == 1


async def test_a_wrong_secret_fails_naming_the_secret_variable(
    db: Database, receiver: FakeReceiver
) -> None:
    notice_id = await add_notice(db, destination="webhook:0")
    async with notifier(db, env(receiver, secret="not-the-secret"), cat=HOOKED) as sender:
        assert await sender.deliver_due() == 1
    [request] = receiver.requests
    assert request.verified is False and request.status == 401
    row = await notice(db, notice_id)
    assert row.status == "failed" and row.last_error is not None
    assert SECRET_ENV in row.last_error and "not-the-secret" not in row.last_error


async def test_an_unset_secret_or_a_url_that_is_not_one_fails_before_sending(
    db: Database, receiver: FakeReceiver
) -> None:
    no_url = await add_notice(db, finding_id=1, destination="webhook:0")
    async with notifier(db, {SECRET_ENV: HOOK_SECRET}, cat=HOOKED) as sender:
        assert await sender.deliver_due() == 1
    no_secret = await add_notice(db, finding_id=2, destination="webhook:0")
    async with notifier(
        db, {URL_ENV: receiver.url_for(HOOK_PATH), SECRET_ENV: " "}, cat=HOOKED
    ) as sender:
        assert await sender.deliver_due() == 1
    not_a_url = await add_notice(db, finding_id=3, destination="webhook:0")
    async with notifier(db, {URL_ENV: "ftp://x/y", SECRET_ENV: HOOK_SECRET}, cat=HOOKED) as sender:
        assert await sender.deliver_due() == 1
    plain = await add_notice(db, finding_id=4, destination="webhook:0")
    environ = {URL_ENV: "http://hooks.example.com/in", SECRET_ENV: HOOK_SECRET}
    async with notifier(db, environ, cat=HOOKED) as sender:
        assert await sender.deliver_due() == 1
    assert receiver.requests == []
    ids = (no_url, no_secret, not_a_url, plain)
    errors = {i: (await notice(db, i)).last_error or "" for i in ids}
    assert errors[no_url].startswith(f"set {URL_ENV} ")
    assert errors[no_secret].startswith(f"set {SECRET_ENV} ")
    assert URL_ENV in errors[not_a_url] and "ftp://" not in errors[not_a_url]
    assert "unencrypted" in errors[plain] and "hooks.example.com" not in errors[plain]
