"""The alerts channel: one thread per finding that turns crit, in the customer's
``routing.alerts_channel`` (docs/routing.md).

The router (:class:`app.engine.alerts.Router`) decides, in the transaction that changes a
finding (a run's end, an answer, the sweep), that its thread starts or gets a reply; this
writes the messages in that same transaction, as outbox rows (:mod:`app.slack.outbox`):

- the thread's first message, ``alert:<finding id>.<episode>`` (a finding that resolves and
  comes back gets a new thread), posted once and then edited in place to show what the finding
  is now;
- a blind spot's thread, ``alert:blind:<sight id>.<episode>`` (when its failing began), with
  one reply when it looks again;
- one reply per change (worse, better, acknowledged, snoozed, snooze ended, muted, resolved),
  ``<first message's key>:<answers>.<run>:<was>><now>``: a change decided twice (two replicas,
  or a run's end and the sweep at once) is queued once.

The deliverer posts a reply only after its thread's first message and every earlier reply, and
sends at most one alert message a second per channel (:mod:`app.slack.deliverer`).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Customer
from app.engine.answers import Standing
from app.engine.blind import BlindSpot
from app.models import Finding, Sight
from app.slack.outbox import Outgoing
from blocks import alert
from checks import console


def thread_key(found: Finding) -> str:
    """The key of the first message of ``found``'s thread for its current episode."""
    return f"alert:{found.id}.{found.returns}"


def _channel(customer: Customer) -> str | None:
    """The customer's alerts channel, if it has one."""
    return customer.routing.alerts_channel if customer.routing is not None else None


class AlertsChannel:
    """Writes findings' threads into the outbox (:class:`app.engine.alerts.Channel`)."""

    def __init__(self, outgoing: Outgoing) -> None:
        self.outgoing = outgoing

    async def tell(
        self,
        session: AsyncSession,
        customer: Customer,
        found: Finding,
        now_is: Standing,
        told: str | None,
        news: str,
        now: datetime,
    ) -> None:
        channel = _channel(customer)
        if channel is None:
            return
        tz = ZoneInfo(customer.timezone)
        href = console.link(customer, found.account, found.check, found.region, found.resource)
        first = alert.first(customer, found, now_is, tz, now, href)
        key = thread_key(found)
        if told is None or told == "resolved":
            await self.outgoing.put_alert_in(session, key, channel, first)
            return
        message = alert.reply(found, now_is, told, news, tz, now)
        change = f"{key}:{found.answers}.{found.looked_run_id}:{told}>{news}"
        await self.outgoing.put_alert_in(session, change, channel, message, thread=key)
        await self.outgoing.revise_in(session, key, first)

    async def tell_blind(
        self,
        session: AsyncSession,
        customer: Customer,
        sight: Sight,
        spot: BlindSpot | None,
        told: str,
        now: datetime,
    ) -> None:
        channel = _channel(customer)
        if channel is None:
            return
        tz = ZoneInfo(customer.timezone)
        key = f"alert:blind:{sight.id}.{told.partition(':')[2]}"
        first = alert.blind_first(customer, sight, spot, tz, now)
        if spot is not None:
            await self.outgoing.put_alert_in(session, key, channel, first)
            return
        reply = alert.blind_reply(sight, tz, now)
        await self.outgoing.put_alert_in(session, f"{key}:seen", channel, reply, thread=key)
        await self.outgoing.revise_in(session, key, first)
