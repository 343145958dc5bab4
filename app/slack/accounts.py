"""A customer's organization sync, told in its channel: one outbox row per sync that changed
something (new, gone or suspended accounts), written in the sync's own transaction
(:mod:`app.accounts.store`), keyed ``accounts:<customer>:<sync version>`` — so a change is
posted once however many replicas sync. A customer without ``slack.channel`` is only logged.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.found import News
from app.config import Customer
from app.slack.outbox import Outgoing
from blocks import accounts

KIND = "accounts"
"""The outbox kind: posted once, like a notice."""


def key(customer_id: str, version: int) -> str:
    return f"accounts:{customer_id}:{version}"


class AccountsChannel:
    """Writes a sync's news into the outbox (:data:`app.accounts.store.Announce`)."""

    def __init__(self, outgoing: Outgoing) -> None:
        self.outgoing = outgoing

    async def __call__(self, session: AsyncSession, customer: Customer, news: News) -> None:
        channel = customer.slack.channel
        if channel is None:
            return
        message = accounts.news_message(customer, news, customer.tz)
        payload = {"message": message}
        await self.outgoing.put_in(
            session, key(customer.id, news.version), KIND, payload, None, channel
        )
