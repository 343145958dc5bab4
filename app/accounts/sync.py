"""A sync: read a customer's organization, store what was found, announce what changed — for
``mhub accounts sync`` and, every ``HUB_ORG_SYNC_HOURS``, for ``mhub serve``
(:func:`keep_synced`), where one replica talks to AWS per due sync and every replica swaps the
stored result into its catalog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.accounts import merge, store
from app.accounts.discover import DiscoveryError, Options, Stopped, discover
from app.accounts.found import Discovery, State
from app.accounts.merge import Discovered
from app.accounts.store import Announce, Stored
from app.catalog import Catalog
from app.config import Customer
from app.db import DB_TROUBLE, Database

log = logging.getLogger(__name__)

LOOK_S = 120.0
"""How often ``mhub serve`` looks for a due sync and for accounts another replica (or ``mhub
accounts sync``) stored."""


@dataclass(frozen=True)
class Outcome:
    """One customer's sync: what was found and stored, or why nothing was."""

    customer_id: str
    found: Discovery | None = None
    stored: Stored | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class Syncer:
    """Syncs customers' organizations into the database."""

    def __init__(
        self, db: Database, announce: Announce | None = None, options: Options | None = None
    ) -> None:
        self.db = db
        self.announce = announce
        self.options = options

    async def sync(
        self, customer: Customer, base: Catalog, stopped: Callable[[], bool] = lambda: False
    ) -> Outcome:
        """Sync ``customer`` (it must have an organization); ``base``: the YAML's catalog, whose
        customer ids and listed aliases a discovered alias may not take. A sync that fails
        changes nothing but the reason kept for ``mhub accounts list``; one cut short by
        ``stopped()`` (a shutdown) is due again at once, for another replica."""
        try:
            found = await discover(customer, self.options, stopped)
        except Stopped:
            await store.release(self.db, customer.id)
            return Outcome(customer.id, problem="stopped before it finished; due again")
        except DiscoveryError as exc:
            return await self._failed(customer, str(exc))
        except Exception as exc:  # a bug, or botocore raising what it should not
            log.exception("organization sync of %s crashed", customer.id)
            return await self._failed(customer, f"the sync crashed ({type(exc).__name__})")
        stored = await store.store(self.db, customer, found, merge.taken(base), self.announce)
        news = stored.news
        if news:
            log.info("organization of %s: %s", customer.id, news)
        for note in stored.notes:
            log.warning("organization of %s: %s", customer.id, note)
        return Outcome(customer.id, found, stored)

    async def _failed(self, customer: Customer, why: str) -> Outcome:
        known = (await store.known(self.db, customer.id)).get(customer.id, ())
        kept = sum(1 for k in known if k.state == State.ACTIVE)
        problem = (
            f"{why}. Nothing changed: the listed accounts keep working, and the {kept} "
            "account(s) discovered before are kept"
        )
        log.warning("organization sync of %s failed: %s", customer.id, problem)
        await store.failed(self.db, customer.id, problem)
        return Outcome(customer.id, problem=problem)


async def keep_synced(
    syncer: Syncer,
    discovered: Discovered,
    every_hours: float,
    stop: asyncio.Event,
    changed: Callable[[], None],
    look_s: float = LOOK_S,
) -> None:
    """``mhub serve``'s loop: every ``look_s``, sync each customer whose sync is due (claimed
    in the database, so one replica does it; ``every_hours`` 0: never) and swap the stored
    accounts into the catalog when they changed, then call ``changed`` (what derives from the
    catalog: the scheduler's jobs, the Home tabs)."""
    every_s = every_hours * 3600
    while not stop.is_set():
        for customer in list(discovered.base.customers.values()):
            if stop.is_set() or customer.organization is None or not every_s:
                continue
            try:
                if await store.claim(syncer.db, customer.id, every_s):
                    await syncer.sync(customer, discovered.base, stop.is_set)
            except DB_TROUBLE as exc:
                log.warning(
                    "organization sync of %s: the database is unavailable: %s", customer.id, exc
                )
        try:
            changes = await discovered.refresh()
        except DB_TROUBLE as exc:
            log.warning("discovered accounts: could not read them again: %s", exc)
        else:
            if changes:
                log.info("discovered accounts changed the catalog: %s", changes)
                changed()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), look_s)
