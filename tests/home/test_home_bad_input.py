"""Bad input on the Home tab and in the modal: answered in time, where the person looks, and
nothing changes; an unexpected error in the ack path still answers, with a logged reference."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from app.models import Run
from blocks.ids import ActionId, BlockId
from tests.fakeslack import validate
from tests.handlers.conftest import Harness
from tests.handlers.test_bad_input import NOT_A_RUN_ID
from tests.home.conftest import HomeFake


async def run_count(hub: Harness) -> int:
    async with hub.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(Run))).scalar_one())


async def test_a_tampered_home_button_is_answered_on_the_home_tab(home: Harness) -> None:
    fake = home.fake
    assert isinstance(fake, HomeFake)
    home.rds.gate.clear()
    await fake.aopen_home("U0ALICE")
    await fake.acommand("run arbel rds")

    def with_cancel() -> dict[str, Any] | None:
        views = fake.publishes("U0ALICE")
        return views[-1] if views and ActionId.HOME_CANCEL in str(views[-1]) else None

    view = await fake.await_(with_cancel, 10, "a runboard with a Cancel button")
    latency, _ = await fake.apress(view, ActionId.HOME_CANCEL, "U0ALICE", value="³")
    assert latency is not None and latency < 3

    def told() -> str | None:
        text = validate.all_text(fake.publishes("U0ALICE")[-1])
        return text if NOT_A_RUN_ID in text else None

    assert '"³"' in await fake.await_(told, 10, "the notice on the Home tab")
    assert [r.status for r in await home.runs.recent(limit=5)] == ["running"]


async def test_an_overflowing_window_in_the_modal_is_an_inline_error(home: Harness) -> None:
    fake = home.fake
    assert isinstance(fake, HomeFake)
    await fake.acommand("", channel="C0OPS")
    form = await fake.await_(lambda: fake.opened and fake.opened[0], 3, "the modal to open")
    values = {
        BlockId.MODAL_CUSTOMER: {
            ActionId.MODAL_CUSTOMER: {"selected_option": {"value": "aryanoble"}}
        },
        BlockId.MODAL_WINDOW: {ActionId.MODAL_WINDOW: {"value": "1000000000d"}},
    }
    latency, answer = await fake.asubmit(form, "U0ALICE", values)
    assert latency is not None and latency < 3
    assert answer["response_action"] == "errors"
    assert "window" in answer["errors"][BlockId.MODAL_WINDOW]
    assert await run_count(home) == 0


async def test_an_unexpected_error_in_the_ack_path_still_answers_with_a_logged_reference(
    home: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fake = home.fake
    assert isinstance(fake, HomeFake)

    async def broken(ack: Any, body: dict[str, Any]) -> None:
        raise RuntimeError("a bug")

    home.slack.slack.app.view("broken_form")(broken)
    form = {
        "type": "modal",
        "callback_id": "broken_form",
        "title": {"type": "plain_text", "text": "Broken"},
        "blocks": [],
    }
    with caplog.at_level(logging.ERROR, logger="handlers.guard"):
        latency, answer = await fake.asubmit(form, "U0ALICE", {})
    assert latency is not None and latency < 3
    assert answer["response_action"] == "update"
    said = validate.all_text(answer["view"])
    ref = re.search(r"error ([0-9a-f]{8})", said)
    assert ref is not None, said
    assert f"unexpected error {ref[1]}" in caplog.text and "a bug" in caplog.text
