"""The loaded customers, and turning a TARGET and CHECKs into the list of things to run.

A reload (SIGHUP) swaps a freshly loaded catalog into the one every service already holds
(:meth:`Catalog.replace`), and says what changed (:class:`Changes`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.config import Account, Customer, Schedule
from app.errors import Hint, NotFound, UsageError
from checks import kinds


@dataclass(frozen=True)
class Plan:
    """What a run will do: one customer, and (account, check) pairs in a stable order."""

    customer: Customer
    targets: tuple[tuple[str, str], ...]

    @property
    def checks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(check for _, check in self.targets))

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(account for account, _ in self.targets))


@dataclass(frozen=True)
class Changes:
    """What a reload changed: customer ids, and schedules as ``customer/name`` (a schedule is
    changed when its cron, checks or channel changed, or its customer's time zone did)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    schedules_added: tuple[str, ...] = ()
    schedules_removed: tuple[str, ...] = ()
    schedules_changed: tuple[str, ...] = ()

    @classmethod
    def between(cls, old: Catalog, new: Catalog) -> Changes:
        before, after = _schedules(old), _schedules(new)
        return cls(
            added=tuple(sorted(new.customers.keys() - old.customers.keys())),
            removed=tuple(sorted(old.customers.keys() - new.customers.keys())),
            changed=tuple(
                sorted(
                    key
                    for key in old.customers.keys() & new.customers.keys()
                    if old.customers[key] != new.customers[key]
                )
            ),
            schedules_added=tuple(sorted(after.keys() - before.keys())),
            schedules_removed=tuple(sorted(before.keys() - after.keys())),
            schedules_changed=tuple(
                sorted(key for key in before.keys() & after.keys() if before[key] != after[key])
            ),
        )

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in self.__dataclass_fields__)

    def __str__(self) -> str:
        parts = [
            f"{words} {', '.join(names)}"
            for words, names in (
                ("customers added:", self.added),
                ("customers removed:", self.removed),
                ("customers changed:", self.changed),
                ("schedules added:", self.schedules_added),
                ("schedules removed:", self.schedules_removed),
                ("schedules changed:", self.schedules_changed),
            )
            if names
        ]
        return "; ".join(parts) or "nothing changed"


def _schedules(catalog: Catalog) -> dict[str, tuple[Schedule, str]]:
    return {
        f"{c.id}/{s.name}": (s, c.timezone) for c in catalog.customers.values() for s in c.schedules
    }


class Catalog:
    def __init__(self, customers: Iterable[Customer]) -> None:
        self.customers: dict[str, Customer] = {c.id: c for c in customers}
        self._accounts: dict[str, tuple[Customer, Account]] = {
            a.id: (c, a) for c in self.customers.values() for a in c.accounts
        }
        self.generation = 0
        """How many times :meth:`replace` has swapped customers in (caches keyed on a catalog
        key on this too)."""

    def replace(self, other: Catalog) -> Changes:
        """Take ``other``'s customers in place of these (a reload): everyone holding this
        catalog sees them from now on. The swap is two assignments on the event loop, so a
        reader sees the old customers or the new ones, never a mix; a run already planned
        keeps its plan (its targets are in its row)."""
        changes = Changes.between(self, other)
        self.customers, self._accounts = other.customers, other._accounts
        self.generation += 1
        return changes

    def __len__(self) -> int:
        return len(self.customers)

    def customer(self, customer_id: str) -> Customer:
        found = self.customers.get(customer_id.strip().lower())
        if found is None:
            raise self._unknown(customer_id)
        return found

    def find(self, name: str) -> Customer | None:
        """The customer ``name`` is (its id) or owns (an account alias); None if neither."""
        key = name.strip().lower()
        if key in self.customers:
            return self.customers[key]
        found = self._accounts.get(key)
        return found[0] if found else None

    def suggest(self, name: str, among: Iterable[Customer]) -> str | None:
        """The closest customer id or account alias to ``name`` among ``among`` only, as
        like ```arbel` (Aryanoble)``; None when nothing is close."""
        names: dict[str, str] = {}
        for customer in among:
            names[customer.id] = customer.name
            names.update((account.id, customer.name) for account in customer.accounts)
        hint = difflib.get_close_matches(name.strip().lower(), list(names), n=1, cutoff=0.6)
        return f"`{hint[0]}` ({names[hint[0]]})" if hint else None

    def resolve(self, target: str) -> tuple[Customer, tuple[Account, ...]]:
        """A customer id (all its accounts) or an account alias (that account)."""
        name = target.strip().lower()
        if name in self.customers:
            customer = self.customers[name]
            return customer, customer.accounts
        if name in self._accounts:
            customer, account = self._accounts[name]
            return customer, (account,)
        raise self._unknown(target)

    def plan(self, target: str, checks: Sequence[str] = ()) -> Plan:
        """The (account, check) pairs for TARGET: the accounts' configured checks, or only
        ``checks``. Naming a check that none of the target's accounts runs is a UsageError;
        with a customer, accounts that do not run a named check are left out."""
        customer, accounts = self.resolve(target)
        wanted = tuple(dict.fromkeys(check.strip().lower() for check in checks))
        for check in wanted:
            if check not in kinds.NAMES:
                hint = difflib.get_close_matches(check, kinds.NAMES, n=1)
                also = f" Did you mean `{hint[0]}`?" if hint else ""
                raise UsageError(
                    f'There is no check "{check}".{also} The checks are {", ".join(kinds.NAMES)}.'
                )
        configured = tuple(dict.fromkeys(c for a in accounts for c in a.checks))
        missing = [check for check in wanted if check not in configured]
        if missing or not configured:
            who = accounts[0].id if len(accounts) == 1 else f"No account of {customer.name}"
            verb = "does not run" if len(accounts) == 1 else "runs"
            raise UsageError(
                f"{who} {verb} {', '.join(missing) or 'any checks'}; configured: "
                f"{', '.join(configured) or 'none'}.",
                Hint("customers", "See "),
            )
        pairs = tuple(
            (account.id, check)
            for account in accounts
            for check in (
                account.checks if not wanted else [c for c in wanted if c in account.checks]
            )
        )
        return Plan(customer, pairs)

    def _unknown(self, name: str) -> NotFound:
        """For the operator (CLI, API), who may see every customer."""
        hint = self.suggest(name, self.customers.values())
        also = f" Did you mean {hint}?" if hint else ""
        return NotFound(
            f'I don\'t know "{name}".{also}',
            Hint("customers", after=" lists the customers and their accounts"),
        )
