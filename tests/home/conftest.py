"""The Home tab and the modal in-process: the handlers harness (real Bolt app, desk, outbox and
executor on a real database, the fake Slack over Socket Mode) with the Home publisher wired to
run changes the way ``app.main`` wires it, and a fake Slack that also sends Events API
envelopes, view interactions and block suggestions, and holds ``views.open`` to Slack's
trigger rules (3 s, single use)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from app.db import Database
from app.models import Result, Run
from tests.fakeslack import FakeSlack, validate
from tests.fakeslack import server as fake_server
from tests.handlers.conftest import Harness, harness, hub_catalog

__all__ = ["harness", "hub_catalog"]  # the handlers harness, reused here

TEAM = fake_server.TEAM
APP_ID = fake_server.APP_ID
TRIGGER_LIFE_S = 3.0


class HomeFake(FakeSlack):
    """The fake Slack plus what a person does on the Home tab and in a modal."""

    def __init__(self, channels: tuple[str, ...]) -> None:
        super().__init__(channels)
        self.expire_triggers = False
        self.used_triggers: set[str] = set()
        self.opened: list[dict[str, Any]] = []
        """Every view opened or updated, as Slack answered it (with its ``id`` and ``hash``)."""

    def publishes(self, user: str) -> list[dict[str, Any]]:
        with self._lock:
            return [
                p["view"]
                for p in self.views
                if p.get("user_id") == user and p["view"].get("type") == "home"
            ]

    def publish_times(self, user: str) -> list[float]:
        with self._lock:
            return [
                c.at
                for c in self.calls
                if c.method == "views.publish" and c.params.get("user_id") == user
            ]

    async def aopen_home(self, user: str) -> tuple[float | None, Any]:
        payload = {
            "type": "event_callback",
            "team_id": TEAM,
            "api_app_id": APP_ID,
            "event": {
                "type": "app_home_opened",
                "user": user,
                "channel": "D0HOME",
                "tab": "home",
                "event_ts": f"{time.time():.6f}",
            },
            "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            "event_time": int(time.time()),
        }
        return await self._arun(self._raw("events_api", payload))

    async def apress(
        self, view: dict[str, Any], action_id: str, user: str, value: str | None = None
    ) -> tuple[float | None, Any]:
        """Press a button (``action_id``) on a Home view."""
        element = _find(view, action_id)
        action = {
            "action_id": action_id,
            "block_id": element["_block_id"],
            "type": "button",
            "value": element.get("value") if value is None else value,
            "action_ts": f"{time.time():.6f}",
        }
        return await self._arun(self._raw("interactive", self._actions(view, user, action)))

    async def achoose(
        self, view: dict[str, Any], action_id: str, user: str, value: str, label: str
    ) -> tuple[float | None, Any]:
        """Choose an option of a select in a modal."""
        element = _find(view, action_id)
        action = {
            "action_id": action_id,
            "block_id": element["_block_id"],
            "type": element["type"],
            "selected_option": {"text": {"type": "plain_text", "text": label}, "value": value},
            "action_ts": f"{time.time():.6f}",
        }
        return await self._arun(self._raw("interactive", self._actions(view, user, action)))

    async def asuggest(
        self, view: dict[str, Any], action_id: str, user: str, query: str
    ) -> tuple[float | None, Any]:
        payload = {
            "type": "block_suggestion",
            "user": _user(user),
            "team": {"id": TEAM, "domain": "fake"},
            "api_app_id": APP_ID,
            "action_id": action_id,
            "block_id": _find(view, action_id)["_block_id"],
            "value": query,
            "view": view,
        }
        return await self._arun(self._raw("interactive", payload))

    async def asubmit(
        self, view: dict[str, Any], user: str, values: Mapping[str, Any]
    ) -> tuple[float | None, Any]:
        payload = {
            "type": "view_submission",
            "user": _user(user),
            "team": {"id": TEAM, "domain": "fake"},
            "api_app_id": APP_ID,
            "trigger_id": self._trigger(),
            "view": {**view, "state": {"values": dict(values)}},
        }
        took, answer = await self._arun(self._raw("interactive", payload))
        for problem in submission_answer_problems(view, answer):
            self._violation(problem)
        return took, answer

    def _actions(self, view: dict[str, Any], user: str, action: dict[str, Any]) -> dict[str, Any]:
        container = (
            {"type": "view", "view_id": view.get("id")} if view.get("id") else {"type": "view"}
        )
        return {
            "type": "block_actions",
            "user": _user(user),
            "api_app_id": APP_ID,
            "team": {"id": TEAM, "domain": "fake"},
            "container": container,
            "trigger_id": self._trigger(),
            "view": view,
            "actions": [action],
        }

    def _trigger(self) -> str:
        return f"{time.time():.3f}.{next(self._seq)}.{uuid.uuid4().hex[:8]}"

    async def _raw(self, kind: str, payload: dict[str, Any]) -> tuple[float | None, Any]:
        """Send an envelope and return (seconds to its ack, the ack's payload); None seconds
        when it was not acknowledged within Slack's 3 s."""
        loop = asyncio.get_running_loop()
        envelope_id = str(uuid.uuid4())
        future: asyncio.Future[tuple[float, Any]] = loop.create_future()
        conn = await self._socket(15)
        self._pending[envelope_id] = future
        started = loop.time()
        await conn.ws.send_json(
            {
                "envelope_id": envelope_id,
                "payload": payload,
                "type": kind,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        try:
            arrived, body = await asyncio.wait_for(asyncio.shield(future), fake_server.ACK_LIMIT_S)
        except TimeoutError:
            self._violation(f"{kind} envelope was not acknowledged within 3 s")
            return None, None
        return arrived - started, body


def submission_answer_problems(view: Mapping[str, Any], answer: Any) -> list[str]:
    """What Slack refuses in an answer to a ``view_submission`` (the person then sees Slack's
    generic error instead): ``errors`` keyed to anything but an input block of the submitted
    view, or an ``update``/``push`` whose view Slack would not accept."""
    if not isinstance(answer, Mapping) or "response_action" not in answer:
        return []
    action = answer["response_action"]
    if action == "errors":
        inputs = {b.get("block_id") for b in view.get("blocks") or [] if b.get("type") == "input"}
        errors = answer.get("errors")
        if not isinstance(errors, Mapping) or not errors:
            return ["response_action errors without errors"]
        return [
            f"errors keyed to {key!r}, which is not an input block of the view"
            for key in errors
            if key not in inputs
        ]
    if action in ("update", "push"):
        return validate.view_problems(answer.get("view") or {})
    return [] if action == "clear" else [f"unknown response_action {action!r}"]


def _user(user: str) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM}


def _find(view: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in view.get("blocks") or []:
        elements = [block.get("accessory"), block.get("element"), *(block.get("elements") or [])]
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return {**element, "_block_id": block.get("block_id")}
    raise AssertionError(f"there is no {action_id} on that view")


def _views_open(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """``views.open`` with Slack's trigger rules: issued within 3 s, used once."""
    assert isinstance(fake, HomeFake)
    trigger = str(params.get("trigger_id") or "")
    issued = _issued(trigger)
    if fake.expire_triggers or time.time() - issued > TRIGGER_LIFE_S:
        return {"ok": False, "error": "expired_trigger_id"}
    if trigger in fake.used_triggers:
        return {"ok": False, "error": "invalid_trigger_id"}
    fake.used_triggers.add(trigger)
    return _kept(fake, params)


def _issued(trigger: str) -> float:
    """When a trigger of :class:`HomeFake` was issued (those of slash commands count as now)."""
    parts = trigger.split(".")
    try:
        return float(f"{parts[0]}.{parts[1]}") if len(parts) == 4 else time.time()
    except ValueError:
        return time.time()


def _kept(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    answer = fake_server._view(fake, params)
    if answer.get("ok"):
        view = dict(answer["view"])
        view.setdefault("hash", f"h{uuid.uuid4().hex[:6]}")
        if params.get("view_id"):
            view["id"] = params["view_id"]
        assert isinstance(fake, HomeFake)
        fake.opened.append(view)
        answer["view"] = view
    return answer


@pytest.fixture
def home_fake(monkeypatch: pytest.MonkeyPatch) -> HomeFake:
    monkeypatch.setitem(fake_server._METHODS, "views.open", _views_open)
    monkeypatch.setitem(fake_server._METHODS, "views.update", _kept)
    fake = HomeFake(("C0OPS", "C0SHARED"))
    monkeypatch.setattr("tests.handlers.conftest.FakeSlack", lambda channels: fake)
    return fake


@pytest.fixture
async def home(home_fake: HomeFake, harness: Harness) -> AsyncIterator[Harness]:
    """The handlers harness (the Home publisher follows run changes, as app.main wires it)."""
    yield harness


async def seed_history(db: Database, count: int, customers: tuple[str, ...]) -> None:
    """``count`` finished runs (with results) spread over ``customers``, oldest first."""
    start = datetime.now(UTC) - timedelta(days=30)
    outcomes = itertools.cycle(["ok", "ok", "warn", "crit", "error"])
    rows: list[dict[str, Any]] = []
    for i in range(count):
        at = start + timedelta(minutes=i)
        rows.append(
            {
                "customer_id": customers[i % len(customers)],
                "requested_by": "U0ALICE" if i % 3 else "schedule:daily",
                "channel_id": "C0OPS",
                "source": "slash",
                "targets": [{"account": "arbel", "check": "rds"}],
                "params": {},
                "status": "completed" if i % 17 else "failed",
                "outcome": next(outcomes),
                "attempt": 1,
                "max_attempts": 3,
                "created_at": at,
                "started_at": at,
                "finished_at": at + timedelta(seconds=14),
            }
        )
    async with db.write() as session:
        ids = list((await session.execute(insert(Run).returning(Run.id), rows)).scalars())
        await session.execute(
            insert(Result),
            [
                {
                    "run_id": run_id,
                    "account": "arbel",
                    "check": "rds",
                    "severity": "crit" if run_id % 5 == 4 else "ok",
                    "summary": "seeded",
                    "details": {},
                    "series": {},
                    "attempt": 1,
                    "finished_at": start,
                }
                for run_id in ids
            ],
        )
