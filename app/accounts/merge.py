"""Discovered accounts in the catalog, as plain :class:`~app.config.Account`\\ s.

:func:`merged` adds each customer's active discovered accounts to the accounts its YAML lists:
the role is ``arn:…:iam::<id>:role/<account_role>`` with the organization's ``external_id``,
the checks are ``defaults.checks`` and the regions those of ``defaults.regions`` the account
has enabled. Everything downstream — plans, runs, cards, digests, findings, the web view —
sees no difference. The YAML is read again for each merge, so a reload that changes
``account_role`` or ``defaults`` applies at once, without a sync. A listed account wins over a
discovered one with the same account id; a discovered alias that a reload made collide with a
listed one (or a customer id) is left out: :func:`clashes` says so for ``mhub config check``.

:class:`Discovered` keeps the YAML's catalog beside the merged one every service holds, and
swaps a new merge in with :meth:`~app.catalog.Catalog.replace` when the YAML is reloaded or the
stored accounts change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from app.accounts import store
from app.accounts.found import Known, State
from app.catalog import Catalog, Changes
from app.config import Account, Customer
from app.db import Database
from checks.aws import OPT_IN_REGIONS


def discovers(catalog: Catalog) -> bool:
    """Whether any customer discovers accounts from an organization."""
    return any(c.organization is not None for c in catalog.customers.values())


def taken(base: Catalog) -> dict[str, str]:
    """Aliases held by the YAML (customer ids and listed accounts) → what holds each."""
    out = {c.id: f"customer {c.id}" for c in base.customers.values()}
    for customer in base.customers.values():
        for account in customer.accounts:
            out.setdefault(account.id, f"account {account.id} of customer {customer.id}")
    return out


def accounts_of(
    customer: Customer, found: Sequence[Known], held: Mapping[str, str]
) -> list[Account]:
    """``customer``'s active discovered accounts as it configures them now, leaving out those
    listed explicitly, excluded since, whose alias is ``held`` or with no configured region."""
    org = customer.organization
    if org is None:
        return []
    listed = {a.account_id for a in customer.accounts}
    out = []
    for known in found:
        if known.state != State.ACTIVE or known.account_id in listed:
            continue
        if known.account_id in org.exclude_accounts or known.alias in held:
            continue
        enabled = known.regions  # None: not known; a region needing no opt-in always is
        regions = tuple(
            r
            for r in org.defaults.regions
            if enabled is None or r in enabled or r not in OPT_IN_REGIONS
        )
        if not regions:
            continue
        try:
            account = Account(
                id=known.alias,
                name=known.name,
                account_id=known.account_id,
                regions=regions,
                role_arn=org.member_role_arn(known.account_id),
                external_id=org.external_id,
                checks=org.defaults.checks,
            )
        except ValidationError:
            continue  # the stored row is not an account this configuration can reach
        out.append(account)
    return out


def merged(base: Catalog, found: Mapping[str, Sequence[Known]]) -> Catalog:
    """``base`` with each customer's discovered accounts added (customers in id order, so a
    clash between two customers' discovered aliases always goes to the same one)."""
    held = taken(base)
    customers = []
    for customer in base.customers.values():
        known = found.get(customer.id, ())
        added = accounts_of(customer, known, held)
        for account in added:
            held[account.id] = f"account {account.id}, discovered for customer {customer.id}"
        if added:
            customer = customer.model_copy(update={"accounts": (*customer.accounts, *added)})
        customers.append(customer)
    return Catalog(customers)


def clashes(base: Catalog, found: Mapping[str, Sequence[Known]]) -> tuple[list[str], list[str]]:
    """What ``mhub config check`` says of the last stored sync, as (problems, notes).
    Problems: discovered accounts not monitored — their alias is taken (by a listed account or
    a customer id since the sync, or by another account at the sync), or no configured region
    is enabled in them. Notes: listed accounts the organization also holds (the listed one is
    used)."""
    held = taken(base)
    problems: list[str] = []
    notes: list[str] = []
    for customer in sorted(base.customers.values(), key=lambda c: c.id):
        org = customer.organization
        if org is None:
            continue
        listed = {a.account_id: a.id for a in customer.accounts}
        for known in found.get(customer.id, ()):
            who = f"{customer.id}: account {known.account_id} ({known.name})"
            if known.state == State.SKIPPED and known.account_id not in org.exclude_accounts:
                problems.append(f"{who} is not monitored: {known.note}")
            if known.state not in (State.ACTIVE, State.EXPLICIT):
                continue
            if known.account_id in listed:
                notes.append(
                    f"{who} is listed under accounts: as {listed[known.account_id]} and is in "
                    "the organization too; the listed one is used (explicit wins). Remove it "
                    "from accounts: to use the discovered one, or add it to exclude_accounts"
                )
            elif known.alias in held and known.account_id not in org.exclude_accounts:
                problems.append(
                    f"{who} has the alias {known.alias}, which is already {held[known.alias]}; "
                    "aliases are unique across customers — rename the listed account, change "
                    f"the account's {org.alias_from_tag or 'name'} in AWS, or add it to "
                    "exclude_accounts. It is not monitored until then"
                )
            else:
                held[known.alias] = f"account {known.alias}, discovered for customer {customer.id}"
    return problems, notes


class Discovered:
    """The catalog every service holds (``live``), kept equal to the YAML's customers
    (``base``) plus the accounts stored by the last syncs."""

    def __init__(self, db: Database, live: Catalog) -> None:
        self.db = db
        self.live = live
        self.base = Catalog(live.customers.values())
        self.found: dict[str, tuple[Known, ...]] = {}

    @property
    def wanted(self) -> bool:
        """Whether any customer discovers accounts."""
        return discovers(self.base)

    async def refresh(self) -> Changes:
        """Read the stored accounts again and swap in a new merge if that changes anything
        (``live`` is always the merge of ``base`` and ``found``: the same rows, the same
        catalog)."""
        found = await store.known(self.db) if self.wanted else {}
        if found == self.found:
            return Changes()
        self.found = found
        return self._swap()

    def rebase(self, base: Catalog) -> Changes:
        """A reloaded YAML: merge the stored accounts into it and swap it in."""
        self.base = base
        return self._swap(always=True)

    def _swap(self, *, always: bool = False) -> Changes:
        fresh = merged(self.base, self.found)
        changes = Changes.between(self.live, fresh)
        if changes or always:
            return self.live.replace(fresh)
        return changes
