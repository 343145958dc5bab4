"""The front desk: what each ``/monitor`` command and each card button does.

One method per command, each access-checked and audited (see :mod:`app.access`), each
returning a typed outcome that ``handlers/`` renders with ``blocks/``. Expected failures are
:class:`~app.errors.HubError` with a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.access import Access, Action, Who, hidden_run, hidden_target
from app.batch import GroupCommit
from app.catalog import Catalog, Plan
from app.config import Customer, Schedule
from app.engine.runs import RunService, RunView, Submit
from app.errors import HubError, NotFound
from app.models import Run, Source
from app.reports.gather import Reports
from app.reports.model import Report
from app.reports.period import last_month, month_of
from app.schedules.slots import next_fire
from app.slack.cards import Cards
from app.slack.grammar import (
    CancelCommand,
    Command,
    CustomersCommand,
    HelpCommand,
    ListCommand,
    OpenModal,
    ReportCommand,
    RetryCommand,
    RunCommand,
    SchedulesCommand,
    StatusCommand,
)

LIST_LIMIT = 15
LIST_SCAN = 200


@dataclass(frozen=True)
class Asker:
    """Who asked, from where, and how to answer them later."""

    user: str
    channel: str | None = None
    trigger_id: str | None = None
    response_url: str | None = field(default=None, repr=False)  # never logged

    @property
    def who(self) -> Who:
        return Who(self.user, self.channel)


# -- outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    run: Run
    plan: Plan
    created: bool
    window: str | None


@dataclass(frozen=True)
class Shown:
    view: RunView
    customer: Customer


@dataclass(frozen=True)
class Listed:
    runs: Sequence[Run]
    customers: dict[str, Customer]
    scope: str | None


@dataclass(frozen=True)
class Cancelled:
    message: str
    changed: bool


@dataclass(frozen=True)
class Retried:
    original: int
    run: Run
    created: bool


@dataclass(frozen=True)
class CustomerList:
    customers: Sequence[Customer]


@dataclass(frozen=True)
class ScheduleList:
    items: Sequence[tuple[Customer, Schedule, datetime]]


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Reported:
    """A customer's monthly report, made for the person who asked (and only shown to them)."""

    report: Report
    customer: Customer


Outcome = (
    Queued | Shown | Listed | Cancelled | Retried | CustomerList | ScheduleList | Help | Reported
)

NO_REPORTS = "Monthly reports are not set up on this hub; `mhub report CUSTOMER` makes one."


class Desk:
    def __init__(
        self,
        runs: RunService,
        access: Access,
        cards: Cards,
        catalog: Catalog,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        reports: Reports | None = None,
    ) -> None:
        self.runs = runs
        self._submits: GroupCommit[Submit, tuple[Run, bool]] = GroupCommit(
            runs.submit_many, settle_s=0.002
        )
        self.access = access
        self.cards = cards
        self.catalog = catalog
        self.clock = clock
        self.reports = reports

    async def handle(self, command: Command, asker: Asker) -> Outcome:
        """Do what ``command`` asks, for ``asker``."""
        handlers: dict[type, Callable[[Any, Asker], Any]] = {
            RunCommand: self.run,
            StatusCommand: self.status,
            ListCommand: self.list,
            CancelCommand: lambda c, a: self.cancel(c.run_id, a),
            RetryCommand: lambda c, a: self.retry(c.run_id, a, Source.SLASH),
            CustomersCommand: self.customers,
            SchedulesCommand: self.schedules,
            ReportCommand: self.report,
        }
        handler = handlers.get(type(command))
        if handler is None:  # help, and the modal until it exists
            assert isinstance(command, HelpCommand | OpenModal), command
            return Help()
        result: Outcome = await handler(command, asker)
        return result

    async def run(self, command: RunCommand, asker: Asker) -> Queued:
        customer = self.catalog.find(command.target)
        grant = await self.access.admit(customer, asker.who, Action.RUN, asked=command.target)
        if customer is None or grant is None:
            raise NotFound(self._hidden(command.target, asker, Action.RUN))
        # Only now, for someone who may see it, may the answer name the accounts' checks.
        plan = self.catalog.plan(command.target, command.checks)
        run, created = await self._submits.add(
            Submit(
                plan=plan,
                access=grant,
                requested_by=asker.user,
                source=Source.SLASH,
                window=command.window,
                channel_id=asker.channel,
                idempotency_key=f"slash:{asker.trigger_id}" if asker.trigger_id else None,
            )
        )
        if created:
            self.cards.expect_reply(run.id, asker.response_url)
        return Queued(run, plan, created, command.window_text)

    async def status(self, command: StatusCommand, asker: Asker) -> Shown:
        view, customer = await self._run_for(command.run_id, asker, Action.STATUS, events=True)
        return Shown(view, customer)

    async def list(self, command: ListCommand, asker: Asker) -> Listed:
        catalog = self.catalog
        if command.customer is not None:
            customer = catalog.customers.get(command.customer)
            decision = await self.access.check(
                customer, asker.who, Action.LIST, asked=command.customer
            )
            if customer is None or not decision.allowed:
                raise NotFound(self._hidden(command.customer, asker, Action.LIST))
            runs = await self.runs.recent(customer.id, limit=LIST_LIMIT)
            return Listed(runs, {customer.id: customer}, customer.name)
        visible = await self.access.visible(catalog.customers.values(), asker.who, Action.LIST)
        allowed = {c.id: c for c in visible}
        recent = await self.runs.recent(limit=LIST_SCAN) if allowed else []
        return Listed([r for r in recent if r.customer_id in allowed][:LIST_LIMIT], allowed, None)

    async def cancel(self, run_id: int, asker: Asker) -> Cancelled:
        await self._run_for(run_id, asker, Action.CANCEL)
        outcome = await self.runs.cancel(run_id, asker.user)
        return Cancelled(outcome.message, outcome.changed)

    async def retry(self, run_id: int, asker: Asker, source: Source) -> Retried:
        view, customer = await self._run_for(run_id, asker, Action.RETRY)
        original = view.run
        plan = Plan(customer, tuple((t["account"], t["check"]) for t in original.targets))
        run, created = await self.runs.retry(
            run_id, plan, asker.user, source, channel_id=asker.channel or original.channel_id
        )
        return Retried(run_id, run, created)

    async def customers(self, _: CustomersCommand, asker: Asker) -> CustomerList:
        customers = self.catalog.customers.values()
        return CustomerList(await self.access.visible(customers, asker.who, Action.CUSTOMERS))

    async def schedules(self, _: SchedulesCommand, asker: Asker) -> ScheduleList:
        customers = self.catalog.customers.values()
        visible = await self.access.visible(customers, asker.who, Action.SCHEDULES)
        now = self.clock()
        items = [
            (customer, schedule, next_fire(schedule, customer, now))
            for customer in visible
            for schedule in customer.schedules
        ]
        return ScheduleList(sorted(items, key=lambda item: item[2]))

    async def report(self, command: ReportCommand, asker: Asker) -> Reported:
        """The customer's report for the command's month (default: the last whole month in the
        customer's zone). A customer ``asker`` may not see reads as one that does not exist;
        a month that cannot be reported on is a ``ReportError`` saying what to ask instead."""
        customer = self.catalog.find(command.customer)
        decision = await self.access.check(
            customer, asker.who, Action.REPORT, asked=command.customer
        )
        if customer is None or not decision.allowed:
            raise NotFound(self._hidden(command.customer, asker, Action.REPORT))
        if self.reports is None:
            raise HubError(NO_REPORTS)
        now = self.reports.clock()  # the clock the report is made by says which months exist
        period = (
            month_of(customer, command.month, now) if command.month else last_month(customer, now)
        )
        return Reported(await self.reports.build(customer.id, period), customer)

    async def _run_for(
        self, run_id: int, asker: Asker, action: Action, *, events: bool = False
    ) -> tuple[RunView, Customer]:
        """Run ``run_id`` and its customer, if ``asker`` may do ``action`` to it; the decision
        is recorded, and a run that does not exist, belongs to a customer no longer configured
        or that they may not touch gets one answer that tells them nothing."""
        try:
            view: RunView | None = await self.runs.get(run_id, events=events)
        except NotFound:
            view = None
        run = view.run if view else None
        customer = self.catalog.customers.get(run.customer_id) if run else None
        decision = await self.access.check(customer, asker.who, action, run, asked=f"#{run_id}")
        if view is None or customer is None or not decision.allowed:
            raise NotFound(hidden_run(run_id))
        return view, customer

    def _hidden(self, name: str, asker: Asker, action: Action) -> str:
        """The answer for a name that matches nothing ``asker`` may see for ``action``."""
        visible = self.access.allowed(self.catalog.customers.values(), asker.who, action)
        return hidden_target(name, self.catalog.suggest(name, visible))
