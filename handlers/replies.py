"""From a command or a click to the message Slack shows: who asked, what the desk answered, and
which ``blocks`` builder renders it. Never raises: an unexpected error becomes a short reply
with an id that is also in the log."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import singledispatch
from typing import Any

from app.engine.runs import parse_run_id
from app.errors import HubError, UsageError
from app.slack import grammar
from app.slack.desk import (
    Asker,
    Cancelled,
    CustomerList,
    Desk,
    Help,
    Listed,
    Outcome,
    Queued,
    Reported,
    Retried,
    ScheduleList,
    Shown,
)
from app.slack.reports import asked_report
from blocks import messages
from blocks.card import run_card, web_link
from blocks.report import report_answer
from handlers.guard import new_ref

log = logging.getLogger(__name__)

Message = dict[str, Any]


async def answer(desk: Desk, asker: Asker, text: str, public_url: str | None) -> Message:
    """The reply to ``/monitor <text>``: never raises."""
    try:
        command = grammar.parse(text)
    except UsageError as exc:
        return messages.usage(str(exc))
    except Exception:
        return _unexpected()
    return await _safely(lambda: desk.handle(command, asker), public_url)


async def press(
    action: Callable[[int, Asker], Awaitable[Outcome]],
    body: dict[str, Any],
    public_url: str | None,
) -> Message:
    """The reply to a card button. The button's value only names a run; the run itself, and
    whether this person may touch it, come from the database."""
    asker = asker_from_action(body)
    value = str(((body.get("actions") or [{}])[0]).get("value") or "")
    try:
        run_id = parse_run_id(value)
    except UsageError as exc:
        return messages.error(str(exc))
    except Exception:
        return _unexpected()
    return await _safely(lambda: action(run_id, asker), public_url)


def asker_from_command(command: dict[str, Any]) -> Asker:
    return Asker(
        user=str(command.get("user_id") or ""),
        channel=command.get("channel_id"),
        trigger_id=command.get("trigger_id"),
        response_url=command.get("response_url"),
    )


def asker_from_action(body: dict[str, Any]) -> Asker:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    return Asker(
        user=str((body.get("user") or {}).get("id") or ""),
        channel=channel,
        trigger_id=body.get("trigger_id"),
        response_url=body.get("response_url"),
    )


async def _safely(work: Callable[[], Awaitable[Outcome]], public_url: str | None) -> Message:
    try:
        return render(await work(), public_url)
    except HubError as exc:
        return messages.error(str(exc))
    except Exception:
        return _unexpected()


def _unexpected() -> Message:
    """Logged with a reference the person is shown (call only while handling an error)."""
    ref = new_ref()
    log.exception("unexpected error %s while answering Slack", ref)
    return messages.unexpected(ref)


@singledispatch
def render(outcome: Any, public_url: str | None = None) -> Message:
    raise TypeError(f"no rendering for {type(outcome).__name__}")


@render.register
def _(outcome: Queued, public_url: str | None = None) -> Message:
    plan = outcome.plan
    return messages.queued(
        outcome.run.id,
        plan.customer.name,
        plan.accounts,
        plan.checks,
        outcome.window,
        outcome.created,
    )


@render.register
def _(outcome: Shown, public_url: str | None = None) -> Message:
    card = run_card(
        outcome.view,
        customer_name=outcome.customer.name,
        tz=outcome.customer.tz,
        now=datetime.now(UTC),
        web_url=web_link(public_url, outcome.view.run.id),
    )
    return {"response_type": "ephemeral", **card}


@render.register
def _(outcome: Listed, public_url: str | None = None) -> Message:
    rows = []
    for run in outcome.runs:
        customer = outcome.customers.get(run.customer_id)
        rows.append(
            messages.ListedRun(
                id=run.id,
                status=run.status,
                outcome=run.outcome,
                customer_name=customer.name if customer else run.customer_id,
                accounts=list(dict.fromkeys(t["account"] for t in run.targets)),
                checks=list(dict.fromkeys(t["check"] for t in run.targets)),
                requested_by=run.requested_by,
                created_at=run.created_at,
                tz=customer.tz if customer else UTC,
            )
        )
    return messages.run_list(rows, datetime.now(UTC), outcome.scope)


@render.register
def _(outcome: Cancelled, public_url: str | None = None) -> Message:
    return messages.notice(outcome.message)


@render.register
def _(outcome: Retried, public_url: str | None = None) -> Message:
    return messages.retried(outcome.original, outcome.run.id, outcome.created)


@render.register
def _(outcome: CustomerList, public_url: str | None = None) -> Message:
    return messages.customers(
        [
            messages.ListedCustomer(
                id=c.id,
                name=c.name,
                timezone=c.timezone,
                accounts=[messages.ListedAccount(a.id, a.name, a.checks) for a in c.accounts],
            )
            for c in outcome.customers
        ]
    )


@render.register
def _(outcome: ScheduleList, public_url: str | None = None) -> Message:
    return messages.schedules(
        [
            messages.ListedSchedule(
                customer_id=customer.id,
                customer_name=customer.name,
                name=schedule.name,
                cron=schedule.cron,
                checks=schedule.checks,
                next_fire=fire,
                kind=schedule.kind,
            )
            for customer, schedule, fire in outcome.items
        ]
    )


@render.register
def _(outcome: Help, public_url: str | None = None) -> Message:
    return messages.help_message()


@render.register
def _(outcome: Reported, public_url: str | None = None) -> Message:
    return report_answer(asked_report(outcome.report), public_url)
