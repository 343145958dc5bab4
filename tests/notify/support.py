"""Helpers for the notifier's tests: a customer routed to PagerDuty and webhooks through
environment variables, notices written the way the engine writes them, and the notifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.catalog import Catalog
from app.config import Account, Customer, PagerDutyRoute, Routing, WebhookRoute
from app.db import Database
from app.models import Notice
from app.notify.deliverer import Notifier, NotifyOptions

PD_KEY = "0123456789abcdef0123456789abcdef"
"""A key the fake PagerDuty knows (32 characters, like an integration key)."""
UNKNOWN_KEY = "fedcba9876543210fedcba9876543210"
"""Well-formed, but no PagerDuty service has it."""
HOOK_PATH = "/hooks/T0PRIVATE/b7f1c2d3e4-secret-path"
HOOK_SECRET = "whsec_4f0c9e1d2b3a-very-secret"
KEY_ENV = "PD_KEY_ACME"
URL_ENV = "HOOK_URL_ACME"
SECRET_ENV = "HOOK_SECRET_ACME"
FAST = NotifyOptions(
    lease_s=60, http_timeout_s=2, backoff_base_s=0.1, backoff_cap_s=0.5, jitter=0.0
)
"""Backoff in tenths of a second, no jitter: the suite never sleeps for long."""


def routing(pagerduty: str | None = KEY_ENV, hooks: Sequence[tuple[str, str]] = ()) -> Routing:
    """Routing to PagerDuty through ``pagerduty`` (a variable name) and to webhooks through
    (URL variable, secret variable) pairs."""
    route = PagerDutyRoute(routing_key_env=pagerduty) if pagerduty else None
    webhooks = tuple(WebhookRoute(url_env=url, secret_env=secret) for url, secret in hooks)
    return Routing(pagerduty=route, webhooks=webhooks)


def customer(customer_id: str = "acme", route: Routing | None = None) -> Customer:
    return Customer(
        id=customer_id,
        name=customer_id.title(),
        accounts=(
            Account(
                id=f"{customer_id}-prod",
                name="Production",
                account_id="111122223333",
                regions=("us-east-1",),
                checks=("rds",),
            ),
        ),
        routing=route if route is not None else routing(),
    )


def catalog(*customers: Customer) -> Catalog:
    return Catalog(customers or (customer(),))


def payload(finding_id: int, customer_id: str = "acme", **extra: Any) -> dict[str, Any]:
    """A notice payload as the engine writes it (no secrets)."""
    return {
        "customer": customer_id,
        "customer_name": customer_id.title(),
        "account": f"{customer_id}-prod",
        "region": "us-east-1",
        "check": "rds",
        "resource": f"db-{finding_id}",
        "fingerprint": f"rds:us-east-1:db-{finding_id}:cpu",
        "severity": "crit",
        "state": "open",
        "summary": f"CPU max 93.2 % (crit ≥ 90 %) on db-{finding_id}",
        "first_seen": "2026-12-01T07:00:00+00:00",
        "last_seen": "2026-12-01T08:00:00+00:00",
        "run_id": 42,
        "dedup_key": f"mhub:{customer_id}:{finding_id}",
        "by": None,
        "links": [{"href": "https://hub.example.com/runs/42", "text": "Run #42"}],
        **extra,
    }


async def add_notice(
    db: Database,
    finding_id: int | None = 1,
    action: str = "trigger",
    destination: str = "pagerduty",
    customer_id: str = "acme",
    age: timedelta = timedelta(0),
    **extra: Any,
) -> int:
    """Write one pending notice, due now, as the engine does; its id."""
    now = datetime.now(UTC)
    async with db.write() as session:
        notice = Notice(
            dedupe_key=f"{customer_id}:{finding_id}:{destination}:{action}:{now.timestamp()}",
            customer_id=customer_id,
            destination=destination,
            action=action,
            finding_id=finding_id,
            payload=payload(finding_id or 0, customer_id, **extra),
            status="pending",
            attempts=0,
            next_attempt_at=now - timedelta(seconds=1),
            created_at=now - age,
        )
        session.add(notice)
        await session.flush()
        return notice.id


async def add_many(db: Database, rows: Sequence[tuple[int, str]], destination: str) -> None:
    """Pending notices for (finding, action) pairs, written in that order in one go."""
    now = datetime.now(UTC)
    async with db.write() as session:
        session.add_all(
            Notice(
                dedupe_key=f"acme:{finding}:{destination}:{action}",
                customer_id="acme",
                destination=destination,
                action=action,
                finding_id=finding,
                payload=payload(finding),
                status="pending",
                attempts=0,
                next_attempt_at=now - timedelta(seconds=1),
                created_at=now,
            )
            for finding, action in rows
        )


async def notice(db: Database, notice_id: int) -> Notice:
    async with db.read() as session:
        return (await session.execute(select(Notice).where(Notice.id == notice_id))).scalar_one()


async def all_notices(db: Database) -> list[Notice]:
    async with db.read() as session:
        return list((await session.execute(select(Notice).order_by(Notice.id))).scalars())


def notifier(
    db: Database,
    environ: Mapping[str, str],
    pagerduty_url: str = "http://127.0.0.1:9/v2/enqueue",
    cat: Catalog | None = None,
    options: NotifyOptions = FAST,
    owner: str = "test",
) -> Notifier:
    found = cat or catalog()
    return Notifier(
        db, lambda: found, environ, pagerduty_url=pagerduty_url, owner=owner, options=options
    )


@asynccontextmanager
async def serving(*notifiers: Notifier, poll_s: float = 0.05) -> AsyncIterator[None]:
    """Each notifier's :meth:`Notifier.serve` running until the block ends."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(n.serve(stop, poll_s)) for n in notifiers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def settled(db: Database, within_s: float = 20.0) -> list[Notice]:
    """Every notice, once none is pending (or fail after ``within_s``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        rows = await all_notices(db)
        if all(row.status != "pending" for row in rows):
            return rows
        if loop.time() > deadline:
            pending = [
                (r.id, r.destination, r.action, r.last_error) for r in rows if r.status == "pending"
            ]
            raise AssertionError(f"still pending after {within_s:g} s: {pending[:5]}")
        await asyncio.sleep(0.05)
