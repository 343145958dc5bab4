"""``/monitor maintenance TARGET DURATION [reason]`` as a service: who may start a window
(audited), what it covers, and the window it started.

Starting a window quiets a customer's problems for everyone who watches it, like an answer to
a finding, so it takes the same grant (:data:`~app.access.Action.ANSWER`): the
customer's ``users`` and ``admins``, never a channel grant. A TARGET that does not exist and
one the person may not see get the same answer, which names nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from app.access import Access, Action, Who, hidden_target
from app.catalog import Catalog
from app.config import Customer
from app.db import Database
from app.engine import maintenance
from app.engine.maintenance import Window
from app.errors import NotFound
from app.slack.grammar import MaintenanceCommand

NAMED_ONLY = (
    "Starting a maintenance window needs a named grant: the customer's `users` or `admins`. "
    "A channel grant lets you run checks, not quiet problems for everyone."
)


@dataclass(frozen=True)
class Started:
    """A window started now, and the customer it is for (its zone shows the times)."""

    window: Window
    customer: Customer


class Maintaining:
    def __init__(
        self,
        db: Database,
        access: Access,
        catalog: Catalog,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        started: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.access = access
        self.catalog = catalog
        self.clock = clock
        self.started = started
        """Called after a window is started: the App Home tabs show it."""

    async def start(self, command: MaintenanceCommand, who: Who) -> Started:
        """Start a window now over the command's TARGET: every account of a customer, or one
        account; every check. NotFound (nothing changed) when ``who`` may not."""
        customer = self.catalog.find(command.target)
        decision = await self.access.check(customer, who, Action.ANSWER, asked=command.target)
        if customer is None or not decision.allowed:
            if customer is not None and self.access.allowed([customer], who, Action.RUN):
                raise NotFound(NAMED_ONLY)
            visible = self.access.allowed(self.catalog.customers.values(), who, Action.ANSWER)
            raise NotFound(
                hidden_target(command.target, self.catalog.suggest(command.target, visible))
            )
        account = customer.account(command.target.strip().lower())
        now = self.clock()
        window = await maintenance.start(
            self.db,
            customer.id,
            name=f"Maintenance of {account.id if account else customer.id}",
            accounts=(account.id,) if account else None,
            checks=None,
            starts_at=now,
            ends_at=now + command.length,
            reason=command.reason,
            by=who.user,
            audit={"via": "slack", "channel": who.channel},
        )
        self.started()
        return Started(window, customer)
