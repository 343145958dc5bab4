"""Every id Slack sends back to us, in one place: action ids, callback ids, block ids, the
message metadata event type. Handlers match on these; builders emit them; nothing else types
the strings."""

from __future__ import annotations

from enum import StrEnum

COMMAND = "/monitor"
"""The slash command, as registered in manifest.yml."""


class ActionId(StrEnum):
    """``action_id`` of interactive elements."""

    CANCEL_RUN = "run_cancel"
    RETRY_RUN = "run_retry"
    OPEN_WEB = "run_open_web"
    HOME_RUN_CHECKS = "home_run_checks"
    HOME_CANCEL = "home_cancel"
    HOME_RETRY = "home_retry"
    MODAL_CUSTOMER = "modal_customer"
    MODAL_ACCOUNTS = "modal_accounts"
    MODAL_CHECKS = "modal_checks"
    MODAL_WINDOW = "modal_window"
    ANSWER = "finding_answer"
    """The ``⋯`` menu beside a problem line (blocks/findings.py)."""
    REPORT_PAGE = "report_open_web"
    REPORT_PDF = "report_open_pdf"
    """The link buttons of a ``/monitor report`` answer (blocks/report.py)."""


class CallbackId(StrEnum):
    """``callback_id`` of modals."""

    RUN_MODAL = "run_modal"
    ANSWER_MODAL = "answer_modal"


class BlockId(StrEnum):
    """``block_id`` prefixes; a row's id adds its index so ids stay unique in a message."""

    TITLE = "card_title"
    META = "card_meta"
    ROW = "card_row"
    FOLDED = "card_folded"
    PENDING = "card_pending"
    PROBLEM = "card_problem"
    ACTIONS = "card_actions"
    TEXT = "text"
    LIST = "list"
    HOME_TITLE = "home_title"
    HOME_NOTICE = "home_notice"
    HOME_SUMMARY = "home_summary"
    HOME_BUTTONS = "home_buttons"
    HOME_SECTION = "home_section"
    HOME_RUNNING = "home_running"
    HOME_STEPS = "home_steps"
    HOME_RECENT = "home_recent"
    HOME_MORE = "home_more"
    HOME_CUSTOMERS = "home_customers"
    HOME_NEXT = "home_next"
    HOME_FINDINGS = "home_findings"
    HOME_BLIND = "home_blind"
    HOME_MAINTENANCE = "home_maintenance"
    MODAL_CUSTOMER = "modal_customer"
    MODAL_ACCOUNTS = "modal_accounts"
    MODAL_CHECKS = "modal_checks"
    MODAL_WINDOW = "modal_window"
    MODAL_HINT = "modal_hint"
    REPORT_HEADLINE = "report_headline"
    REPORT_ABOUT = "report_about"
    REPORT_LINKS = "report_links"


CARD_EVENT = "mhub_run_card"
"""``metadata.event_type`` of a result card; its payload names the outbox key, so a card whose
post had an unknown outcome can be found again in the channel's history."""
