"""What a customer's organization sync changed, posted once to its channel::

    🏢 Aryanoble's AWS organization · synced 06:00 WIB
    🆕 2 new accounts, checked from now on like the listed ones
    • `payments-prod` Payments Prod (111122223333) · ap-southeast-3
    👋 1 gone, no longer checked
    • `old-sandbox` Old Sandbox (444455556666): no longer in the organization or the OUs …
    ⏸️ 1 suspended, skipped
    • `closing` Closing (777788889999)
    ⚠️ 1 problem
    • account 222233334444 (Shared) is skipped: its tag … — change the tag

The same words go to the log and ``mhub accounts sync``'s output (:func:`lines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from blocks import text as t
from blocks.marks import clock

if TYPE_CHECKING:
    from app.accounts.found import Known, News, SyncState
    from app.accounts.sync import Outcome
    from app.config import Customer

MAX_LISTED = 20
"""Accounts named per kind of change; the rest are counted (a first sync may find hundreds)."""


def _account(known: Known, *, regions: bool = False) -> str:
    line = f"`{t.escape(known.alias)}` {t.escape(known.name)} ({known.account_id})"
    if regions and known.regions:
        line += " · " + ", ".join(known.regions)
    return line


def _listed(items: list[str]) -> list[str]:
    shown = [f"• {item}" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        shown.append(f"… and {len(items) - MAX_LISTED} more (`mhub accounts list`)")
    return shown


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def lines(news: News) -> list[tuple[str, list[str]]]:
    """(heading, items) of each kind of change, as mrkdwn."""
    out: list[tuple[str, list[str]]] = []
    if news.new:
        new = _plural(len(news.new), "new account")
        head = f"🆕 *{new}*, checked from now on like the listed ones"
        out.append((head, [_account(k, regions=True) for k in news.new]))
    if news.gone:
        head = f"👋 *{len(news.gone)} gone*, no longer checked"
        out.append((head, [f"{_account(k)}: {t.escape(why)}" for k, why in news.gone]))
    if news.suspended:
        head = f"⏸️ *{len(news.suspended)} suspended*, skipped"
        out.append((head, [_account(k) for k in news.suspended]))
    if news.problems:
        head = f"⚠️ *{_plural(len(news.problems), 'problem')}*"
        out.append((head, [t.escape(p) for p in news.problems]))
    return out


def news_message(customer: Customer, news: News, tz: tzinfo) -> dict[str, Any]:
    """The message for ``customer``'s channel; times in ``tz`` (the customer's zone)."""
    title = (
        f"🏢 *{t.escape(customer.name)}'s AWS organization* · synced {clock(news.at, tz, news.at)}"
    )
    blocks: list[dict[str, Any]] = [t.section(title, "accounts_title")]
    for index, (head, items) in enumerate(lines(news)):
        body = t.fit_lines([head, *_listed(items)])
        blocks.append(t.section(body, f"accounts_{index}"))
    counts = [
        _plural(len(news.new), "new account"),
        f"{len(news.gone)} gone",
        f"{len(news.suspended)} suspended",
    ]
    fallback = f"{t.escape(customer.name)}'s AWS organization: " + ", ".join(counts)
    return {"text": t.fallback(fallback), "blocks": blocks[: t.MAX_BLOCKS]}


# -- the terminal (mhub accounts sync / list) ---------------------------------------------------


def _when(moment: datetime | None, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if moment else "never"


def sync_text(customer: Customer, outcome: Outcome, tz: tzinfo) -> str:
    """What ``mhub accounts sync`` prints for one customer: what was found, what changed,
    what was skipped and why."""
    head = f"{customer.id} ({customer.name})"
    if outcome.problem is not None or outcome.found is None or outcome.stored is None:
        return f"{head}: sync failed: {outcome.problem}"
    found, stored = outcome.found, outcome.stored
    by_state: dict[str, list[Known]] = {}
    for known in stored.rows:
        by_state.setdefault(known.state, []).append(known)
    active = by_state.get("active", [])
    out = [
        f"{head}: organization {found.organization_id}, {_plural(len(active), 'account')} "
        f"monitored (synced {_when(stored.news.at, tz)})"
    ]
    for known in active:
        regions = ", ".join(known.regions or ())
        out.append(f"  {known.alias:<24} {known.account_id}  {known.name}  [{regions}]")
    for state, words in (
        ("suspended", "skipped, suspended"),
        ("explicit", "listed under accounts: (explicit wins)"),
        ("skipped", "skipped"),
    ):
        for known in by_state.get(state, []):
            out.append(f"  {words}: {known.account_id} {known.name}")
    for account_id in found.excluded:
        out.append(f"  excluded: {account_id}")
    news = stored.news
    out.append(f"  changed: {news}" if news else "  changed: nothing since the last sync")
    out.extend(f"  problem: {problem}" for problem in stored.notes)
    return "\n".join(out)


def list_text(
    customer: Customer, known: Sequence[Known], sync: SyncState | None, tz: tzinfo
) -> str:
    """What ``mhub accounts list`` prints for one customer: every account the syncs found, where
    it stands, and when the last sync ran."""
    when = _when(sync.synced_at if sync else None, tz)
    out = [f"{customer.id} ({customer.name}): last synced {when}"]
    if sync is not None and sync.problem:
        out.append(f"  last sync failed: {sync.problem}")
    if not known:
        out.append("  nothing discovered yet; `mhub accounts sync` reads the organization now")
    for k in known:
        regions = ", ".join(k.regions) if k.regions is not None else "every configured region"
        line = f"  {k.alias:<24} {k.account_id}  {k.state:<9}  {k.name}  [{regions}]"
        out.append(line + (f"  — {k.note}" if k.note and k.state != "active" else ""))
    return "\n".join(out)
