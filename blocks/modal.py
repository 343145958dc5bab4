"""The "Run checks" modal: customer, accounts, checks, window.

Pure builders. The customer select is a static select when the person may run checks for at most
``MAX_OPTIONS`` customers and an external select (options from ``block_suggestion``) above that;
choosing a customer dispatches a ``block_actions`` so the view can be rebuilt with that
customer's accounts and checks. The accounts block's id carries the customer id, so Slack does
not carry one customer's chosen accounts over to another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from blocks import text as t
from blocks.ids import ActionId, BlockId, CallbackId

MAX_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
TITLE = "Run checks"


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


def option(choice: Choice) -> dict[str, Any]:
    return {"text": t.plain(choice.label, OPTION_TEXT), "value": choice.value[:OPTION_VALUE]}


def options(choices: Sequence[Choice]) -> list[dict[str, Any]]:
    return [option(c) for c in choices[:MAX_OPTIONS]]


def accounts_block_id(customer_id: str) -> str:
    return f"{BlockId.MODAL_ACCOUNTS}.{customer_id}"


def run_modal(
    *,
    customers: Sequence[Choice],
    external: bool,
    chosen: Choice | None,
    accounts: Sequence[Choice],
    checks: Sequence[Choice],
    metadata: str,
) -> dict[str, Any]:
    """The modal; ``customers`` are those the person may run (ignored when ``external``)."""
    select: dict[str, Any] = {
        "type": "external_select" if external else "static_select",
        "action_id": ActionId.MODAL_CUSTOMER,
        "placeholder": t.plain("Choose a customer", OPTION_TEXT),
    }
    if external:
        select["min_query_length"] = 0
    else:
        select["options"] = options(customers)
    if chosen is not None:
        select["initial_option"] = option(chosen)
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": BlockId.MODAL_CUSTOMER,
            "dispatch_action": True,
            "label": t.plain("Customer", 2000),
            "element": select,
        }
    ]
    if chosen is None:
        blocks.append(
            t.context(["Choose a customer to see its accounts and checks."], BlockId.MODAL_HINT)
        )
    else:
        blocks += _targets(chosen, accounts, checks)
    blocks.append(
        {
            "type": "input",
            "block_id": BlockId.MODAL_WINDOW,
            "optional": True,
            "label": t.plain("Window", 2000),
            "hint": t.plain("30m, 12h or 7d. Empty: each check's own window.", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": ActionId.MODAL_WINDOW,
                "placeholder": t.plain("12h", 150),
                "max_length": 16,
            },
        }
    )
    return _modal(blocks, metadata, submit=True)


def _targets(
    chosen: Choice, accounts: Sequence[Choice], checks: Sequence[Choice]
) -> list[dict[str, Any]]:
    more = len(accounts) - MAX_OPTIONS
    hint = "Empty: all accounts." + (
        f" {more} more accounts are not listed; leave empty to run them all." if more > 0 else ""
    )
    return [
        {
            "type": "input",
            "block_id": accounts_block_id(chosen.value),
            "optional": True,
            "label": t.plain("Accounts", 2000),
            "hint": t.plain(hint, 2000),
            "element": {
                "type": "multi_static_select",
                "action_id": ActionId.MODAL_ACCOUNTS,
                "placeholder": t.plain("All accounts", 150),
                "options": options(accounts),
            },
        },
        {
            "type": "input",
            "block_id": BlockId.MODAL_CHECKS,
            "optional": True,
            "label": t.plain("Checks", 2000),
            "hint": t.plain("Empty: each account's configured checks.", 2000),
            "element": {
                "type": "multi_static_select",
                "action_id": ActionId.MODAL_CHECKS,
                "placeholder": t.plain("Configured checks", 150),
                "options": options(checks),
            },
        },
    ]


def no_access_modal(metadata: str) -> dict[str, Any]:
    """What someone who may not run checks for any customer sees: why, and no submit button."""
    text = (
        "You can't run checks for any customer. "
        "Ask an admin to add you to a customer's access list."
    )
    return _modal([t.section(text, BlockId.MODAL_HINT)], metadata, submit=False)


def notice_modal(problems: Sequence[str], metadata: str) -> dict[str, Any]:
    """What a submission that cannot run turns into when its problems concern no field of the
    view (a stale or forged view): the problems, and no submit button."""
    text = "\n".join(t.escape(p) for p in problems) + "\nClose this and open the form again."
    return _modal([t.section(text, BlockId.MODAL_HINT)], metadata, submit=False)


def _modal(blocks: list[dict[str, Any]], metadata: str, *, submit: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": CallbackId.RUN_MODAL,
        "title": t.plain(TITLE, 24),
        "close": t.plain("Close" if not submit else "Cancel", 24),
        "private_metadata": metadata,
        "blocks": blocks[: t.MAX_VIEW_BLOCKS],
    }
    if submit:
        view["submit"] = t.plain("Run", 24)
    return view
