"""What a sync found and what it changed, as plain values (no I/O): the organization's
accounts (:class:`Member`), a customer's read of its organization (:class:`Discovery`), the
accounts as stored (:class:`Known`) and the news a sync announces (:class:`News`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class State(StrEnum):
    """Where a discovered account stands (``org_accounts.state``)."""

    ACTIVE = "active"
    """In scope and monitored like a listed account."""
    SUSPENDED = "suspended"
    """Suspended or closing in AWS: skipped."""
    GONE = "gone"
    """No longer in scope: left the organization or the OUs included, or excluded."""
    EXPLICIT = "explicit"
    """Also listed under ``accounts:``: the listed one is used (explicit wins)."""
    SKIPPED = "skipped"
    """In scope but not monitored: its alias is taken, or no configured region is enabled."""


@dataclass(frozen=True)
class Member:
    """One account of the organization, as read."""

    account_id: str
    name: str
    status: str
    """``ACTIVE``, ``SUSPENDED``, ``PENDING_CLOSURE``… (the account's State, else Status)."""
    parent: str
    """The OU (or root) it sits in directly."""
    tag_alias: str | None = None
    """The value of the organization's ``alias_from_tag`` tag on it, if any."""
    regions: tuple[str, ...] | None = None
    """The configured regions it has enabled; None: could not be read (all are used)."""

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


@dataclass(frozen=True)
class Discovery:
    """A customer's organization as read by one sync."""

    customer_id: str
    organization_id: str
    members: tuple[Member, ...]
    """The accounts in scope (the OUs included, less those excluded), active or not."""
    excluded: tuple[str, ...] = ()
    """Account ids in scope that ``exclude_accounts`` leaves out."""
    problems: tuple[str, ...] = ()
    """What went wrong with single accounts (their role, their regions); each says what to do."""


@dataclass(frozen=True)
class Known:
    """A discovered account as stored (``org_accounts``)."""

    account_id: str
    alias: str
    name: str
    state: str
    regions: tuple[str, ...] | None = None
    note: str | None = None


@dataclass(frozen=True)
class News:
    """What one sync changed for a customer: announced once, in the transaction that stores
    it."""

    customer_id: str
    at: datetime
    version: int
    """The customer's sync count after this one (unique per customer: the message's key)."""
    new: tuple[Known, ...] = ()
    gone: tuple[tuple[Known, str], ...] = ()
    """Each with why: ``left the organization``, ``excluded``, its alias taken…"""
    suspended: tuple[Known, ...] = ()
    problems: tuple[str, ...] = field(default=())
    """Not announced on their own; shown beside news when there is some."""

    def __bool__(self) -> bool:
        return bool(self.new or self.gone or self.suspended)

    def __str__(self) -> str:
        parts = [
            f"{words} {', '.join(names)}"
            for words, names in (
                (f"{len(self.new)} new:", [k.alias for k in self.new]),
                (f"{len(self.gone)} gone:", [f"{k.alias} ({why})" for k, why in self.gone]),
                (f"{len(self.suspended)} suspended:", [k.alias for k in self.suspended]),
            )
            if names
        ]
        return "; ".join(parts) or "nothing changed"


@dataclass(frozen=True)
class SyncState:
    """A customer's ``org_syncs`` row."""

    customer_id: str
    version: int
    synced_at: datetime | None
    problem: str | None
