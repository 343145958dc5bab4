"""What the configuration still covers: the (account, check) pairs a customer runs today.

The ``sights`` table keeps a row for every pair that was ever looked at, and nothing removes a
row when an account or a check leaves the YAML. A pair that is no longer configured is never
looked at again, so it would stay blind for ever. So a pair counts only while its account is
among the customer's accounts and the check among that account's checks, asked of many pairs
and customers at once with one set per customer. Every surface filters through
:func:`configured`: the digest, the App Home, routing, the web view and ``/metrics``.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from app.catalog import Catalog
from app.config import Customer


class Pair(Protocol):
    """Anything about one account × check of a customer (a :class:`~app.engine.blind.BlindSpot`
    has these)."""

    @property
    def customer(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def check(self) -> str: ...


P = TypeVar("P", bound=Pair)
Scope = Catalog | Customer | Iterable[Customer]
"""Whose configuration counts: a catalog, one customer, or some customers."""


def pairs(customer: Customer) -> frozenset[tuple[str, str]]:
    """The (account, check) pairs ``customer`` runs: each account with each of its checks."""
    return frozenset(
        (account.id, check) for account in customer.accounts for check in account.checks
    )


def covered(scope: Scope) -> dict[str, frozenset[tuple[str, str]]]:
    """Customer id → the (account, check) pairs it runs, for every customer in ``scope``."""
    if isinstance(scope, Catalog):
        customers: Iterable[Customer] = scope.customers.values()
    elif isinstance(scope, Customer):
        customers = (scope,)
    else:
        customers = scope
    return {customer.id: pairs(customer) for customer in customers}


def configured(scope: Scope, spots: Iterable[P]) -> list[P]:
    """The ``spots`` whose customer is in ``scope`` and still runs that check on that account,
    in their order. A customer outside ``scope`` has none."""
    known = covered(scope)
    return [s for s in spots if (s.account, s.check) in known.get(s.customer, ())]
