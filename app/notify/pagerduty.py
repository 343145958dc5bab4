"""PagerDuty's Events API v2: the event a notice becomes, and what PagerDuty's refusals mean.

One incident per finding: every event of a finding carries its ``dedup_key`` (stable per
customer and finding), so a trigger sent twice (the hub is at-least-once: a lost answer is
sent again) is folded into the open incident by PagerDuty, and ``acknowledge`` / ``resolve``
reach the incident the trigger opened. The routing key (the integration key of an "Events API
v2" integration on a PagerDuty service) is read from the customer's ``routing_key_env``
variable when sending and is never stored or logged.

The address is ``HUB_PAGERDUTY_EVENTS_URL`` (default
``https://events.pagerduty.com/v2/enqueue``; ``https://events.eu.pagerduty.com/v2/enqueue``
for an EU account).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.settings import PAGERDUTY_EVENTS_URL

EVENTS_URL = PAGERDUTY_EVENTS_URL
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = {"crit": "critical", "warn": "warning"}
"""The hub's severities → PagerDuty's (critical, error, warning, info)."""
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
MAX_LINKS = 10
CLIENT = "Monitoring Hub"


def event(action: str, payload: Mapping[str, Any], routing_key: str) -> dict[str, Any]:
    """The Events API v2 body for ``action`` on the finding ``payload`` describes.

    Raises ValueError when the notice cannot become a valid event (an unknown action, no
    ``dedup_key``): a bug in whatever wrote the notice, not something retrying can cure.
    """
    if action not in ACTIONS:
        raise ValueError(f'"{action}" is not a PagerDuty event action ({", ".join(ACTIONS)})')
    dedup_key = str(payload.get("dedup_key") or "")
    if not dedup_key or len(dedup_key) > MAX_DEDUP_KEY:
        raise ValueError(f"the notice needs a dedup_key of 1 to {MAX_DEDUP_KEY} characters")
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
    }
    if action != "trigger":
        return body
    summary = (
        f"{payload.get('customer_name')} · {payload.get('account')} · "
        f"{payload.get('check')}: {payload.get('summary')}"
    )
    body["payload"] = {
        "summary": _cut(summary, MAX_SUMMARY),
        "source": str(payload.get("account") or payload.get("customer") or "monitoring-hub"),
        "severity": SEVERITIES.get(str(payload.get("severity")), "error"),
        "component": str(payload.get("resource") or ""),
        "group": str(payload.get("customer") or ""),
        "class": str(payload.get("check") or ""),
        "custom_details": {
            key: payload.get(key)
            for key in ("region", "fingerprint", "first_seen", "last_seen", "run_id", "state")
        },
    }
    if payload.get("kind") == "blind_spot":  # not a finding: an account × check not checked
        body["payload"]["custom_details"]["kind"] = "blind_spot"
    links = [
        {"href": str(link["href"]), "text": str(link.get("text") or link["href"])}
        for link in payload.get("links") or ()
        if isinstance(link, Mapping) and link.get("href")
    ]
    if links:
        body["links"] = links[:MAX_LINKS]
    body["client"] = CLIENT
    return body


def refusal(text: str) -> str:
    """PagerDuty's own words from an error answer (``message`` and ``errors``), one line."""
    try:
        answer = json.loads(text)
    except ValueError:
        return _cut(" ".join(text.split()), 200)
    if not isinstance(answer, dict):
        return _cut(" ".join(text.split()), 200)
    message = str(answer.get("message") or answer.get("status") or "").strip()
    errors = answer.get("errors")
    details = [str(e) for e in errors] if isinstance(errors, list) else []
    details = [d for d in details if d and d != message]
    words = "; ".join(details)
    if message:
        words = f"{message}: {words}" if words else message
    return _cut(" ".join(words.split()), 300)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
