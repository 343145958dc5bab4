"""A fake PagerDuty Events API v2 at ``POST /v2/enqueue``, validating like PagerDuty.

- A JSON object body; ``routing_key`` of 32 characters, and one of the fake's known keys;
  ``event_action`` one of trigger, acknowledge, resolve; ``dedup_key`` (at most 255
  characters) required for acknowledge and resolve; for trigger a ``payload`` with ``summary``
  (at most 1024 characters), ``source`` and ``severity`` (critical, error, warning, info);
  ``links`` a list of objects with an ``href``.
- Valid: 202 ``{"status": "success", "message": "Event processed", "dedup_key": …}`` (a
  trigger without ``dedup_key`` gets a new one). Invalid: 400 ``{"status": "invalid event",
  "message": "Event object is invalid", "errors": [...]}``; a well-formed key the fake does not
  know: 400 with the message ``Invalid routing key``.
- Incidents by ``dedup_key``: a trigger opens one (or is folded into the open one: ``dedups``),
  acknowledge and resolve move an open one; a trigger after resolve opens a new incident.

Scripts: :meth:`fail_next` (a status, ``times``, ``Retry-After``), :meth:`stall_next`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakehooks.server import Served

PATH = "/v2/enqueue"
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
INVALID = "Event object is invalid"


@dataclass
class Incident:
    dedup_key: str
    status: str
    """``triggered``, ``acknowledged`` or ``resolved``."""
    summary: str
    severity: str
    actions: list[str] = field(default_factory=list)
    """Every event that reached it, in order (deduplicated triggers included)."""
    dedups: int = 0
    """Triggers folded into it while it was open."""
    opened: int = 1
    """How many times a trigger opened it (again after a resolve)."""


class FakePagerDuty(Served):
    def __init__(self, keys: Iterable[str] = ()) -> None:
        super().__init__()
        self.keys: set[str] = set(keys)
        """The integration keys it knows; any other well-formed key is refused."""
        self.events: list[dict[str, Any]] = []
        """Every event it accepted, in order."""
        self.incidents: dict[str, Incident] = {}

    @property
    def events_url(self) -> str:
        """What ``HUB_PAGERDUTY_EVENTS_URL`` is set to."""
        return f"{self.url}{PATH}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._enqueue)

    def limit_key(self, request: web.Request, parsed: Any) -> str:
        return str(parsed.get("routing_key")) if isinstance(parsed, dict) else ""

    def actions(self, dedup_key: str) -> list[str]:
        """The accepted events' actions for ``dedup_key``, in order."""
        return [e["event_action"] for e in self.events if e.get("dedup_key") == dedup_key]

    async def _enqueue(self, request: web.Request) -> web.Response:
        return await self._take(request, lambda body, event: self._handle(request, event))

    def _handle(self, request: web.Request, event: Any) -> tuple[int, dict[str, Any], None]:
        if request.content_type != "application/json":
            return 400, _invalid(["Content-Type must be application/json"]), None
        if not isinstance(event, dict):
            return 400, _invalid(["Event object is not a JSON object"]), None
        errors = _validate(event)
        if errors:
            return 400, _invalid(errors), None
        if event["routing_key"] not in self.keys:
            return (
                400,
                {"status": "invalid event", "message": "Invalid routing key",
                 "errors": ["Invalid routing key"]},
                None,
            )  # fmt: skip
        dedup_key = str(event.get("dedup_key") or uuid.uuid4().hex)
        event = {**event, "dedup_key": dedup_key}
        self.events.append(event)
        self._apply(event)
        answer = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        return 202, answer, None

    def _apply(self, event: dict[str, Any]) -> None:
        key, action = event["dedup_key"], event["event_action"]
        incident = self.incidents.get(key)
        if action == "trigger":
            payload = event["payload"]
            if incident is None:
                incident = self.incidents[key] = Incident(
                    key, "triggered", payload["summary"], payload["severity"]
                )
            elif incident.status == "resolved":
                incident.status, incident.opened = "triggered", incident.opened + 1
                incident.summary, incident.severity = payload["summary"], payload["severity"]
            else:
                incident.dedups += 1
            incident.actions.append(action)
            return
        if incident is None:
            return  # PagerDuty accepts it and does nothing: no incident has that key
        incident.actions.append(action)
        if incident.status == "resolved":
            return
        incident.status = "acknowledged" if action == "acknowledge" else "resolved"


def _invalid(errors: list[str]) -> dict[str, Any]:
    return {"status": "invalid event", "message": INVALID, "errors": errors}


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def _validate(event: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    key = event.get("routing_key")
    if _blank(key):
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("Length of 'dedup_key' is too long (maximum is 255 characters)")
    if action in ("acknowledge", "resolve") and _blank(dedup_key):
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        errors.extend(_validate_payload(event.get("payload")))
    links = event.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(link, dict) and not _blank(link.get("href")) for link in links
    ):
        errors.append("'links' must be a list of objects with an 'href'")
    return errors


def _validate_payload(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or blank"]
    errors: list[str] = []
    summary = payload.get("summary")
    if _blank(summary):
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("Length of 'payload.summary' is too long (maximum is 1024 characters)")
    if _blank(payload.get("source")):
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append(
            "'payload.severity' is invalid (must be one of: critical, error, warning, info)"
        )
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict | str):
        errors.append("'payload.custom_details' must be an object")
    return errors
