"""The alias of each discovered account (pure).

An alias names the account in commands (``mhub run ALIAS``) and is unique across customers,
customer ids included. It is, in order:

1. the value of the organization's ``alias_from_tag`` tag on the account, when it has one: the
   customer chose it, so when it is taken (or not a valid alias) it is *refused* — the account
   keeps the alias it had, or is skipped when it had none — and the message says what to do;
2. the alias it had at the last sync (aliases do not move when an account is renamed);
3. a slug of the account's name (``Prod Payments`` → ``prod-payments``), with the last four
   digits of its id added when that is taken, or ``aws-<account id>`` as the last resort.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from app.accounts.found import Member
from app.config import clip

_ALIAS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}\Z", re.ASCII)
_NOT_SLUG = re.compile(r"[^a-z0-9]+", re.ASCII)
MAX_ALIAS = 40


def slug(name: str) -> str:
    """``Prod — Payments (ID)`` → ``prod-payments-id``: lowercase ASCII letters and digits
    joined by ``-``, at most 40 characters; empty when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")[:MAX_ALIAS].rstrip("-")


def valid(alias: str) -> bool:
    return bool(_ALIAS.match(alias))


@dataclass
class Aliases:
    """What :func:`assign` decided."""

    given: dict[str, str] = field(default_factory=dict)
    """Account id → its alias."""
    refused: dict[str, str] = field(default_factory=dict)
    """Account id → why it has no alias (it is skipped), saying what to do."""
    notes: list[str] = field(default_factory=list)
    """Tag aliases refused for accounts that keep their old alias, each saying what to do."""


def assign(
    members: Sequence[Member],
    *,
    previous: Mapping[str, str],
    taken: Mapping[str, str],
    tag: str | None,
    steady: Collection[str] = (),
) -> Aliases:
    """Aliases for ``members`` (active ones), given the alias each had (``previous``, by
    account id), those taken by something else (alias → what holds it, as words) and the
    accounts active until now (``steady``), whose aliases are settled first so that they do not
    move."""
    out = Aliases()
    used: dict[str, str] = {}

    def free(alias: str) -> bool:
        return alias not in taken and alias not in used

    def holder(alias: str) -> str:
        return taken.get(alias) or f"discovered account {used[alias]}"

    # Accounts monitored until now first, then tagged ones (an alias chosen on purpose beats
    # one made from a name).
    settled = set(steady)
    ordered = sorted(
        members, key=lambda m: (m.account_id not in settled, m.tag_alias is None, m.account_id)
    )
    for member in ordered:
        who = f"account {member.account_id} ({clip(member.name)})"
        old = previous.get(member.account_id)
        wanted = member.tag_alias.strip().lower() if member.tag_alias is not None else None
        if wanted is not None and (not valid(wanted) or not free(wanted)):
            why = (
                f'its tag {tag}="{clip(member.tag_alias)}" is not a valid alias (lowercase '
                "letters, digits, - and _, at most 40)"
                if not valid(wanted)
                else f'its tag {tag}="{wanted}" is already {holder(wanted)}; aliases are '
                "unique across customers"
            )
            fix = "change the tag, or add the account to exclude_accounts"
            if old is not None and free(old):
                out.notes.append(f"{who}: {why}; it keeps the alias {old} — {fix}")
                wanted = old
            else:
                out.refused[member.account_id] = f"{who} is skipped: {why} — {fix}"
                continue
        alias = wanted or (old if old is not None and free(old) else _made(member, free))
        used[alias] = member.account_id
        out.given[member.account_id] = alias
    return out


def _made(member: Member, free: Callable[[str], bool]) -> str:
    """A free alias made from the account's name (``free`` tells what is free)."""
    base = slug(member.name)
    tail = member.account_id[-4:]
    for alias in (base, f"{base[: MAX_ALIAS - 5].rstrip('-')}-{tail}" if base else ""):
        if alias and valid(alias) and free(alias):
            return alias
    return f"aws-{member.account_id}"
