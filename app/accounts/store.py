"""What the organization syncs found, kept in the database (migration 0015).

- ``org_accounts``: one row per (customer, account id) ever discovered, with its alias, name,
  the configured regions it has enabled and where it stands (:class:`~app.accounts.found.State`).
  An alias is unique among the active rows of every customer (a partial UNIQUE index), so two
  customers syncing at once cannot both take it: the second transaction fails and is tried
  again, and then sees the alias taken.
- ``org_syncs``: one row per customer: when a sync last started (``tried_at``: the guard that
  lets one replica talk to AWS per due sync) and last succeeded, its summary, the last failure
  (``problem``, cleared by the next success) and ``version``, counting stored syncs.

:func:`store` compares what a sync found with the rows, in one transaction that first locks the
customer's ``org_syncs`` row (``FOR UPDATE`` on PostgreSQL; SQLite has one writer), writes the
new rows and, when something changed (new, gone, suspended), the announcement through the
``announce`` callable the composition root gives (an outbox row): two syncs racing — two
replicas, or ``mhub accounts sync`` beside ``mhub serve`` — each compare with what the other
committed, so a change is announced exactly once. A sync that fails stores nothing but its
``problem``: the accounts discovered before stay as they were.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts import aliases
from app.accounts.found import Discovery, Known, Member, News, State, SyncState
from app.config import Customer
from app.db import Database
from app.models import Base, BigId

Announce = Callable[[AsyncSession, Customer, News], Awaitable[None]]
"""Writes a sync's news in the sync's own transaction (Slack's side: an outbox row)."""
ATTEMPTS = 3
"""Transactions tried when an alias was taken by another customer's sync meanwhile."""
ACTIVE = text("state = 'active'")


class OrgAccount(Base):
    __tablename__ = "org_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(12))
    alias: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    regions: Mapped[list[Any] | None] = mapped_column(JSON)
    """The configured regions it has enabled; NULL: not known (every configured one is used)."""
    parent: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    """Why it is skipped or gone, or that it is listed explicitly too."""
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    changed_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_org_accounts_account", "customer_id", "account_id", unique=True),
        Index(
            "uq_org_accounts_alias",
            "alias",
            unique=True,
            sqlite_where=ACTIVE,
            postgresql_where=ACTIVE,
        ),
    )


class OrgSync(Base):
    __tablename__ = "org_syncs"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    tried_at: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]
    problem: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


@dataclass(frozen=True)
class Stored:
    """What :func:`store` kept."""

    news: News
    rows: tuple[Known, ...]

    @property
    def notes(self) -> tuple[str, ...]:
        """Problems found while storing (an alias refused), each saying what to do."""
        return self.news.problems


def _known(row: OrgAccount) -> Known:
    return Known(
        row.account_id,
        row.alias,
        row.name,
        row.state,
        tuple(row.regions) if row.regions is not None else None,
        row.note,
    )


async def known(db: Database, customer_id: str | None = None) -> dict[str, tuple[Known, ...]]:
    """Every stored account (or ``customer_id``'s), by customer (all states), in account id
    order."""
    query = select(OrgAccount).order_by(OrgAccount.customer_id, OrgAccount.account_id)
    if customer_id is not None:
        query = query.where(OrgAccount.customer_id == customer_id)
    async with db.read() as session:
        rows = (await session.execute(query)).scalars()
        out: dict[str, list[Known]] = {}
        for row in rows:
            out.setdefault(row.customer_id, []).append(_known(row))
    return {customer: tuple(found) for customer, found in out.items()}


async def syncs(db: Database) -> dict[str, SyncState]:
    async with db.read() as session:
        rows = (await session.execute(select(OrgSync))).scalars()
        return {
            r.customer_id: SyncState(r.customer_id, r.version, r.synced_at, r.problem) for r in rows
        }


def _insert(db: Database) -> Any:
    return sqlite_insert if db.is_sqlite else pg_insert


async def claim(db: Database, customer_id: str, every_s: float | None) -> bool:
    """Start a sync of ``customer_id`` if one is due (none started in the last ``every_s``
    seconds; None: always): one guarded UPDATE, so of several replicas asking at once exactly
    one is told yes."""
    async with db.write() as session:
        await session.execute(
            _insert(db)(OrgSync)
            .values(customer_id=customer_id, version=0)
            .on_conflict_do_nothing(index_elements=["customer_id"])
        )
        due = (
            or_(OrgSync.tried_at.is_(None), OrgSync.tried_at <= db.now_plus(-every_s))
            if every_s is not None
            else text("1 = 1")
        )
        done = await session.execute(
            update(OrgSync)
            .where(OrgSync.customer_id == customer_id, due)
            .values(tried_at=db.now())
            .execution_options(synchronize_session=False)
        )
    return getattr(done, "rowcount", 0) == 1


async def release(db: Database, customer_id: str) -> None:
    """A sync cut short (the process is stopping): due again at once, for another replica."""
    async with db.write() as session:
        await session.execute(
            update(OrgSync)
            .where(OrgSync.customer_id == customer_id)
            .values(tried_at=None)
            .execution_options(synchronize_session=False)
        )


async def failed(db: Database, customer_id: str, problem: str) -> None:
    """Keep why the last sync failed; the accounts discovered before stay as they are."""
    async with db.write() as session:
        await session.execute(
            update(OrgSync)
            .where(OrgSync.customer_id == customer_id)
            .values(problem=problem[:2000])
            .execution_options(synchronize_session=False)
        )


async def store(
    db: Database,
    customer: Customer,
    found: Discovery,
    taken: Mapping[str, str],
    announce: Announce | None = None,
) -> Stored:
    """Compare ``found`` with the stored accounts and keep it, announcing what changed, in one
    transaction (see the module's docstring). ``taken``: aliases held outside the organization
    (customer ids, listed accounts) → what holds each, in words."""
    for attempt in range(ATTEMPTS):
        try:
            async with db.write() as session:
                return await _store_in(session, db, customer, found, taken, announce)
        except IntegrityError:  # an alias taken by another customer's sync meanwhile
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _store_in(
    session: AsyncSession,
    db: Database,
    customer: Customer,
    found: Discovery,
    taken: Mapping[str, str],
    announce: Announce | None,
) -> Stored:
    org = customer.organization
    assert org is not None
    await session.execute(
        _insert(db)(OrgSync)
        .values(customer_id=customer.id, version=0)
        .on_conflict_do_nothing(index_elements=["customer_id"])
    )
    sync = (
        await session.execute(
            select(OrgSync).where(OrgSync.customer_id == customer.id).with_for_update()
        )
    ).scalar_one()
    rows = {
        row.account_id: row
        for row in (
            await session.execute(select(OrgAccount).where(OrgAccount.customer_id == customer.id))
        ).scalars()
    }
    others = await session.execute(
        select(OrgAccount.alias, OrgAccount.customer_id).where(
            OrgAccount.customer_id != customer.id, ACTIVE
        )
    )
    held = dict(taken)
    for alias, owner in others:
        held.setdefault(alias, f"account {alias}, discovered for customer {owner}")
    plan = _Plan(customer, found, rows, held)
    now = datetime.now(UTC)
    news = plan.news(customer.id, now, sync.version + 1)  # before the rows change
    await _write(session, customer.id, plan, rows, now)
    sync.version += 1
    sync.synced_at = now
    sync.problem = None
    sync.summary = plan.summary()
    if news and announce is not None:
        await announce(session, customer, news)
    stored = tuple(
        sorted(
            (
                Known(a, alias, name, state, regions, note)
                for a, (alias, name, state, regions, note, _) in plan.target.items()
            ),
            key=lambda k: k.account_id,
        )
    )
    return Stored(news, stored)


Target = tuple[str, str, str, tuple[str, ...] | None, str | None, str | None]
"""(alias, name, state, regions, note, parent) an account should have after the sync."""


class _Plan:
    """What each account's row should become (pure, given the rows and what was found)."""

    def __init__(
        self,
        customer: Customer,
        found: Discovery,
        rows: Mapping[str, OrgAccount],
        taken: Mapping[str, str],
    ) -> None:
        org = customer.organization
        assert org is not None
        self.rows = rows
        explicit = {a.account_id: a.id for a in customer.accounts}
        candidates = [
            m
            for m in found.members
            if m.active and m.account_id not in explicit and m.regions != ()
        ]
        previous = {a: row.alias for a, row in rows.items()}
        steady = {a for a, row in rows.items() if row.state == State.ACTIVE}
        decided = aliases.assign(
            candidates, previous=previous, taken=taken, tag=org.alias_from_tag, steady=steady
        )
        self.notes = [*found.problems, *decided.notes]
        self.target: dict[str, Target] = {}
        wanted = ", ".join(org.defaults.regions)
        for m in found.members:
            old = previous.get(m.account_id) or aliases.slug(m.name) or f"aws-{m.account_id}"
            if m.account_id in explicit:
                alias = explicit[m.account_id]
                note = f"listed under accounts: as {alias}; the listed account is used"
                self._set(m, alias, State.EXPLICIT, note)
            elif not m.active:
                self._set(m, old, State.SUSPENDED, f"{m.status.lower()} in AWS Organizations")
            elif m.regions == ():
                note = (
                    f"none of the configured regions ({wanted}) is enabled in it; enable one "
                    "there, add one it has to defaults.regions, or exclude the account"
                )
                self.notes.append(f"account {m.account_id} ({m.name}) is skipped: {note}")
                self._set(m, old, State.SKIPPED, note)
            elif m.account_id in decided.refused:
                why = decided.refused[m.account_id]
                self.notes.append(why)
                self._set(m, old, State.SKIPPED, why.split(" is skipped: ", 1)[-1])
            else:
                self._set(m, decided.given[m.account_id], State.ACTIVE, None)
        self.excluded = set(found.excluded)
        for account_id, row in rows.items():
            if account_id in self.target:
                continue
            why = (
                "excluded (exclude_accounts)"
                if account_id in self.excluded
                else "no longer in the organization or the OUs included"
            )
            note = (row.note or why) if row.state == State.GONE else why
            regions = tuple(row.regions) if row.regions is not None else None
            self.target[account_id] = (row.alias, row.name, State.GONE, regions, note, row.parent)
        self.found = found

    def _set(self, m: Member, alias: str, state: State, note: str | None) -> None:
        self.target[m.account_id] = (alias, m.name, state, m.regions, note, m.parent)

    def news(self, customer_id: str, now: datetime, version: int) -> News:
        new: list[Known] = []
        gone: list[tuple[Known, str]] = []
        suspended: list[Known] = []
        for account_id, (alias, name, state, regions, note, _) in sorted(self.target.items()):
            was = self.rows[account_id].state if account_id in self.rows else None
            known = Known(account_id, alias, name, state, regions, note)
            if state == State.ACTIVE and was != State.ACTIVE:
                new.append(known)
            elif state == State.SUSPENDED and was != State.SUSPENDED:
                suspended.append(known)
            elif was == State.ACTIVE and state in (State.GONE, State.SKIPPED):
                gone.append((known, note or "gone"))
        return News(
            customer_id, now, version, tuple(new), tuple(gone), tuple(suspended), tuple(self.notes)
        )

    def summary(self) -> dict[str, Any]:
        states = [target[2] for target in self.target.values()]
        return {
            "organization": self.found.organization_id,
            "active": states.count(State.ACTIVE),
            "suspended": states.count(State.SUSPENDED),
            "skipped": states.count(State.SKIPPED),
            "explicit": states.count(State.EXPLICIT),
            "excluded": list(self.found.excluded),
            "problems": self.notes,
        }


async def _write(
    session: AsyncSession,
    customer_id: str,
    plan: _Plan,
    rows: Mapping[str, OrgAccount],
    now: datetime,
) -> None:
    """Rows as ``plan`` says: those leaving an alias first, so that aliases can move between
    accounts within one sync without tripping the UNIQUE index."""
    changed: list[tuple[OrgAccount, Target]] = []
    for account_id, target in plan.target.items():
        row = rows.get(account_id)
        if row is None:
            alias, name, state, regions, note, parent = target
            session.add(
                OrgAccount(
                    customer_id=customer_id,
                    account_id=account_id,
                    alias=alias,
                    name=name[:255],
                    state=state,
                    regions=list(regions) if regions is not None else None,
                    parent=parent,
                    note=note,
                    first_seen=now,
                    last_seen=now,
                    changed_at=now,
                )
            )
            continue
        if (row.alias, row.state) != (target[0], target[2]) and row.state == State.ACTIVE:
            row.state = State.SKIPPED  # out of the index until its final values below
        changed.append((row, target))
    await session.flush()
    for row, (alias, name, state, regions, note, parent) in changed:
        if row.state != state or row.alias != alias:
            row.changed_at = now
        if state != State.GONE:
            row.last_seen = now
        row.alias, row.name, row.state, row.note, row.parent = (
            alias,
            name[:255],
            state,
            note,
            parent,
        )
        row.regions = list(regions) if regions is not None else None
    await session.flush()
