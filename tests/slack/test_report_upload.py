"""A month's report through the outbox and the fake Slack, on each database: its PDF uploaded
with Slack's external upload and shared once in the channel with its two lines; an unknown
outcome of the share is looked for before sharing again; a refusal for good fails the row with
what to do; 429s are waited out; the upload URL and the token stay out of the log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update

from app.db import Database
from app.models import Outbox
from app.reports.period import ReportError
from app.schedules.slots import ReportDue, Slot
from app.slack.deliverer import Deliverer, DeliveryOptions
from app.slack.outbox import Outgoing, Status
from app.slack.reports import ReportFile, ReportMaker, report_poster
from tests.fakeslack import FakeSlack

KEY = "report:acme:monthly:2026-11"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
LINES = (
    "Monthly report for Acme, November 2026.",
    "1,240 checks run; 30 of 30 scheduled runs (100 %); problems on 2 days of 30.",
)
FAST = DeliveryOptions(
    backoff_base_s=0.2,
    backoff_cap_s=1.0,
    unknown_min_s=0.3,
    lease_s=3,
    poll_s=0.2,
    http_timeout_s=2,
)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(channels=["C0OPS"]) as slack:
        yield slack
        assert slack.violations == []


def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.api_url, timeout=2, retry_handlers=[])


class Maker:
    """A fake :data:`ReportMaker`: the same PDF every time, counting the calls."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.error = error

    async def __call__(self, customer_id: str, month: str) -> ReportFile:
        self.calls.append((customer_id, month))
        if self.error is not None:
            raise self.error
        return ReportFile(PDF, f"{customer_id}-{month}.pdf", "Acme monthly report", LINES)


async def queue(db: Database, channel: str = "C0OPS") -> bool:
    slot = Slot("acme", "monthly", datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    return await report_poster(Outgoing(db))(ReportDue(slot, "2026-11", channel))


@asynccontextmanager
async def delivering(
    db: Database, fake: FakeSlack, maker: ReportMaker | None = None, replicas: int = 1
) -> AsyncIterator[list[Deliverer]]:
    stop = asyncio.Event()
    make = maker or Maker()
    deliverers = [Deliverer(db, client(fake), FAST, make_report=make) for _ in range(replicas)]
    tasks = [asyncio.create_task(d.serve(stop)) for d in deliverers]
    try:
        yield deliverers
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def settled(db: Database, within: float = 15) -> Outbox:
    """The report row once it is posted or failed."""
    outgoing = Outgoing(db)
    deadline = asyncio.get_running_loop().time() + within
    while True:
        row = await outgoing.row(KEY)
        if row is not None and row.status in (Status.POSTED, Status.FAILED):
            return row
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the report row never settled: {row and row.status}")
        await asyncio.sleep(0.05)


async def test_it_shares_the_pdf_once_with_its_two_lines(db: Database, fake: FakeSlack) -> None:
    maker = Maker()
    assert await queue(db)
    assert not await queue(db)  # the same month again: queued once
    async with delivering(db, fake, maker):
        row = await settled(db)
    [message] = fake.shares("C0OPS")
    [file] = message.files
    assert message.text == "\n".join(LINES)
    assert fake.files[file["id"]].content == PDF  # every byte arrived
    assert file["title"] == "Acme monthly report" and file["name"] == "acme-2026-11.pdf"
    assert row.status == Status.POSTED and row.payload["file_ids"] == [file["id"]]
    assert maker.calls == [("acme", "2026-11")]
    # The row names what to make, never the PDF.
    assert len(json.dumps(row.payload)) < 600 and "PDF" not in json.dumps(row.payload)
    assert [len(fake.calls_of(m)) for m in ("files.getUploadURLExternal", "upload")] == [1, 1]
    assert len(fake.calls_of("files.completeUploadExternal")) == 1


async def test_the_fake_takes_slack_sdks_own_upload(fake: FakeSlack) -> None:
    """The fake's shapes are the ones slack_sdk sends (files_upload_v2 does all three steps)."""
    answer = await client(fake).files_upload_v2(
        content=PDF, filename="x.pdf", title="X", channel="C0OPS", initial_comment="two\nlines"
    )
    [message] = fake.shares("C0OPS")
    assert answer["files"][0]["id"] == message.files[0]["id"]
    assert fake.files[message.files[0]["id"]].content == PDF


@pytest.mark.parametrize("failure", ["connection reset", "HTTP 500", "timeout"])
async def test_it_does_not_share_twice_when_the_answer_to_the_share_is_lost(
    db: Database, fake: FakeSlack, failure: str
) -> None:
    method = "files.completeUploadExternal"
    if failure == "connection reset":
        fake.lose_responses(method)
    elif failure == "HTTP 500":
        fake.fail_after(method, status=500)
    else:
        fake.fail_after(method, status=200, delay_s=FAST.http_timeout_s + 1)
    await queue(db)
    async with delivering(db, fake):
        row = await settled(db, 20)
    assert row.status == Status.POSTED
    assert len(fake.shares()) == 1
    assert len(fake.calls_of(method)) == 1  # Slack's share was found, not made again
    assert fake.calls_of("conversations.history", ok=True)  # by looking in the channel
    assert row.message_ts == fake.shares()[0].ts


async def test_it_reuses_the_file_a_sender_uploaded_before_it_died(
    db: Database, fake: FakeSlack
) -> None:
    await queue(db)
    # A previous process uploaded the PDF, wrote its file id and died before sharing it.
    slack = client(fake)
    asked = await slack.files_getUploadURLExternal(filename="acme-2026-11.pdf", length=len(PDF))
    await slack._upload_file(  # the SDK's own upload step
        url=asked["upload_url"], data=PDF, logger=logging.getLogger("t"), timeout=2,
        proxy=None, ssl=None,
    )  # fmt: skip
    file_id = asked["file_id"]
    payload = {"customer": "acme", "month": "2026-11", "schedule": "monthly", "channel": "C0OPS"}
    state = {"file_id": file_id, "file_ids": [file_id], "title": "T", "comment": "\n".join(LINES)}
    async with db.write() as session:
        await session.execute(
            update(Outbox).values(
                payload={**payload, **state},
                status=Status.POSTING,
                attempts=1,
                next_attempt_at=db.now_plus(-1),
            )
        )
    maker = Maker()
    async with delivering(db, fake, maker):
        row = await settled(db)
    assert row.status == Status.POSTED
    [message] = fake.shares()
    assert [f["id"] for f in message.files] == [file_id] and message.text == "\n".join(LINES)
    assert maker.calls == [] and len(fake.calls_of("upload")) == 1  # no second upload


async def test_it_uploads_anew_when_slack_no_longer_has_the_upload(
    db: Database, fake: FakeSlack
) -> None:
    fake.refuse("C0OPS", "file_not_found", methods=["files.completeUploadExternal"])
    await queue(db)
    async with delivering(db, fake):
        await fake.await_(lambda: fake.calls_of("files.completeUploadExternal"), 10, "a share")
        fake.reset()
        row = await settled(db)
    assert row.status == Status.POSTED
    [message] = fake.shares()
    first, second = row.payload["file_ids"]
    assert [f["id"] for f in message.files] == [second] and first != second
    assert fake.calls_of("conversations.history", ok=True)  # looked before uploading again
    assert len(fake.calls_of("upload")) == 2


@pytest.mark.parametrize(
    ("error", "says"),
    [
        ("not_in_channel", "invite it with `/invite @Monitoring Hub`"),
        ("channel_not_found", "check the schedule's `channel` (or `slack.channel`)"),
        ("invalid_auth", "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token"),
        ("missing_scope", "add it (manifest.yml) and reinstall the app"),
    ],
)
async def test_it_fails_a_report_slack_refuses_for_good_and_says_what_to_do(
    db: Database, fake: FakeSlack, error: str, says: str
) -> None:
    if error == "not_in_channel":
        fake.leave("C0OPS")
    else:
        fake.refuse("C0OPS", error, methods=["files.completeUploadExternal"])
    await queue(db)
    async with delivering(db, fake):
        row = await settled(db)
        await asyncio.sleep(0.5)
    assert row.status == Status.FAILED and row.last_error is not None
    assert row.last_error.startswith(f"{error}: ") and says in row.last_error
    assert "`mhub report acme --month 2026-11 --pdf report.pdf`" in row.last_error
    assert fake.shares() == []
    assert len(fake.calls_of("files.completeUploadExternal")) == 1  # not tried again


async def test_it_fails_a_report_that_cannot_be_made(db: Database, fake: FakeSlack) -> None:
    maker = Maker(ReportError("November 2026 is before monitoring of Acme began"))
    await queue(db)
    async with delivering(db, fake, maker):
        row = await settled(db)
    assert row.status == Status.FAILED and row.last_error is not None
    assert row.last_error.startswith("report_unavailable: the report could not be made")
    assert "before monitoring of Acme began" in row.last_error
    assert fake.calls == [] and maker.calls == [("acme", "2026-11")]


async def test_it_waits_out_retry_after_at_each_step(db: Database, fake: FakeSlack) -> None:
    fake.rate_limit(["files.getUploadURLExternal"], times=2, retry_after=0.5)
    fake.rate_limit(["files.completeUploadExternal"], times=2, retry_after=0.5)
    await queue(db)
    async with delivering(db, fake):
        row = await settled(db, 20)
    assert row.status == Status.POSTED and len(fake.shares()) == 1
    for method in ("files.getUploadURLExternal", "files.completeUploadExternal"):
        assert [c.status for c in fake.calls_of(method)] == [429, 429, 200]
    # One upload: a 429 on the share keeps the uploaded file (no call came back early either:
    # the fake would have recorded a violation).
    assert len(fake.calls_of("upload")) == 1


async def test_it_shares_once_with_two_replicas_delivering(db: Database, fake: FakeSlack) -> None:
    fake.lose_responses("files.completeUploadExternal")
    await queue(db)
    async with delivering(db, fake, replicas=2):
        row = await settled(db, 20)
        await asyncio.sleep(0.5)
    assert row.status == Status.POSTED and len(fake.shares()) == 1


async def test_it_keeps_the_upload_url_and_the_token_out_of_the_log(
    db: Database, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, slack_sdk's included
    fake.fail_after("files.completeUploadExternal", status=500)
    await queue(db)
    async with delivering(db, fake):
        await settled(db, 20)
    assert len(fake.files) == 1
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in fake.secrets():
        assert secret not in logged, secret
