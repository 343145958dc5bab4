"""The API for automation: start, cancel and retry runs with a token (docs/api.md).

``POST /api/runs`` takes ``{"target", "checks", "window"}`` — the slash command's grammar as
JSON — with an ``Idempotency-Key`` header, and answers 202 with the run, at once (the executor
runs it; ``GET /api/runs/{id}`` follows it). ``POST /api/runs/{id}/cancel`` and ``…/retry`` do
what the card's buttons do. Only an API token with scope ``run`` may: web pages stay read-only
for people. A token sees its customers only, and anything else reads exactly as if it did not
exist. Every decision is audited (``token:<name>``, ``via: api``); errors are problem details
(:mod:`app.web.problems`). ``GET /api/openapi.json`` describes all of it and the read endpoints
of :mod:`app.web.views`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from app.access import Action, Decision, Who, audit_data
from app.catalog import Catalog, Plan
from app.config import Customer, WindowError, parse_window
from app.engine.runs import RunView, Submit
from app.errors import NotFound, UsageError, quoted
from app.models import TERMINAL_STATUSES, Run, RunStatus, Source
from app.web import openapi
from app.web.keys import ACCESS, CATALOG, RUNS
from app.web.problems import phrase, problem
from app.web.schemas import KEY_HEADER, MAX_KEY, WINDOWS, RunAccepted, RunRequest
from app.web.viewer import Via, Viewer, viewer
from checks import kinds

ROUTES = web.RouteTableDef()

GRANTED = Decision(True, "token")
"""A token's own customer, with scope ``run``."""
SCOPE = Decision(False, "scope")
"""A token with scope ``read``."""
NO_TOKEN = Decision(False, "no-token")
"""A signed-in person or the operator: web pages are read-only; automation uses a token."""
HIDDEN = Decision(False, "denied")
"""Something the token may not see, or that does not exist: one answer for both."""


# -- the endpoints -----------------------------------------------------------------------------


class _Refused(Exception):
    """An answer that ends the request: a problem document."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra

    def response(self) -> web.Response:
        return problem(self.status, phrase(self.status), self.detail, **self.extra)


Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _problems(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await endpoint(request)
        except _Refused as refused:
            return refused.response()

    return answer


@ROUTES.post("/api/runs", name="api_run_start")
@_problems
async def start_run(request: web.Request) -> web.StreamResponse:
    """Queue a run for one of the token's customers; the same key again: the same run."""
    who = await _runner(request, Action.RUN)
    key = _idempotency_key(request)
    asked = await _run_request(request)
    window = _window(asked.window)
    wanted = _check_names(asked.checks or ())
    catalog = request.app[CATALOG]
    customer = catalog.find(asked.target)
    if customer is None or not who.sees(customer.id):
        await _record(request, who, Action.RUN, HIDDEN, customer, None, asked.target)
        shown = [c for c in catalog.customers.values() if who.sees(c.id)]
        hint = catalog.suggest(asked.target, shown)
        also = f" Did you mean {hint}?" if hint else ""
        raise _Refused(
            404,
            f"There is no customer or account {quoted(asked.target)} that this token can see."
            f"{also} A token sees the customers it was made for (`mhub token list`).",
        )
    plan = _plan(catalog, customer, asked.target, wanted)
    grant = audit_data(Who(who.actor), Action.RUN, GRANTED, customer.id, via="api")
    run, created = await request.app[RUNS].submit(
        Submit(
            plan=plan,
            requested_by=who.actor,
            source=Source.WEB,
            window=window,
            idempotency_key=f"api:{who.token_id}:{key}",
            access=grant,
        )
    )
    if not created and not _same(run, plan, window):
        raise _Refused(
            422,
            f"This {KEY_HEADER} was already used for a different request (run #{run.id}). "
            "Send a new key for a new run; resend the same request to get that run back.",
            errors=[{"field": KEY_HEADER, "message": "already used for another request"}],
        )
    said = f"Queued run #{run.id}." if created else f"Run #{run.id} (this key's run)."
    return _accepted(run, said, replayed=not created)


@ROUTES.post(r"/api/runs/{id:[0-9]{1,15}}/cancel", name="api_run_cancel")
@_problems
async def cancel_run(request: web.Request) -> web.StreamResponse:
    """Cancel a queued run at once, or ask a running one to stop; cancelling a cancelled run
    again is answered as the first time."""
    who = await _runner(request, Action.CANCEL)
    view, _ = await _own_run(request, who, Action.CANCEL)
    run = view.run
    if run.status in (RunStatus.COMPLETED, RunStatus.FAILED):
        raise _Refused(
            409,
            f"Run #{run.id} has already {run.status}; nothing to cancel. "
            f"POST /api/runs/{run.id}/retry runs it again.",
        )
    if run.status == RunStatus.CANCELLED or run.cancel_requested_by is not None:
        return _accepted(run, f"Run #{run.id} is already {_cancelling(run)}.")
    outcome = await request.app[RUNS].cancel(run.id, who.actor)
    return _accepted(outcome.run, outcome.message)


@ROUTES.post(r"/api/runs/{id:[0-9]{1,15}}/retry", name="api_run_retry")
@_problems
async def retry_run(request: web.Request) -> web.StreamResponse:
    """A new run with the finished run's targets and window. A run is retried once: asking
    again gives that retry back."""
    who = await _runner(request, Action.RETRY)
    view, customer = await _own_run(request, who, Action.RETRY)
    original = view.run
    if original.status not in TERMINAL_STATUSES:
        raise _Refused(409, _still(original))
    plan = Plan(customer, tuple((t["account"], t["check"]) for t in original.targets))
    try:
        run, created = await request.app[RUNS].retry(original.id, plan, who.actor, Source.WEB)
    except UsageError:  # it was requeued meanwhile (a lost worker's lease)
        raise _Refused(409, _still(original)) from None
    said = f"Retrying run #{original.id} as #{run.id}."
    if not created:
        said = f"Run #{original.id} was retried already, as #{run.id}."
    return _accepted(run, said, replayed=not created)


@ROUTES.get("/api/openapi.json", name="api_openapi")
async def openapi_json(_request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of the API (served to anyone: it names no customer)."""
    return web.Response(body=openapi.document_bytes(), content_type="application/json")


# -- the steps ---------------------------------------------------------------------------------


async def _runner(request: web.Request, action: Action) -> Viewer:
    """The viewer, if it is a token that may start, cancel and retry runs; else a 403."""
    who = viewer(request)
    if who.via != Via.TOKEN:
        await _record(request, who, action, NO_TOKEN, None, None, None)
        raise _Refused(
            403,
            "Use an API token: starting, cancelling and retrying runs over HTTP is for "
            "automation (`mhub token create --scope run`); the web pages are read-only. "
            "People use Slack or `mhub run`.",
        )
    if not who.may_run:
        await _record(request, who, action, SCOPE, None, None, None)
        raise _Refused(
            403,
            f"The token {who.label} may only read (scope read). Make one with scope run to "
            "start, cancel or retry runs: `mhub token create --scope run`.",
        )
    return who


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get(KEY_HEADER, "")
    if not 0 < len(key) <= MAX_KEY or not key.isprintable():
        given = "was empty or missing" if not key else "is not 1 to 200 printable characters"
        raise _Refused(
            400,
            f"Send an {KEY_HEADER} header (yours {given}): a new value, such as a UUID, for "
            "each run you mean to start. Sending the same request with the same key again "
            "returns the same run, so a retried request never starts a second one.",
        )
    return key


async def _run_request(request: web.Request) -> RunRequest:
    body = await request.read()
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Refused(
            400,
            'The body is not JSON. Send an object such as {"target": "acme-prod", '
            '"checks": ["rds"], "window": "12h"} with Content-Type: application/json.',
        ) from None
    try:
        return RunRequest.model_validate(parsed)
    except ValidationError as exc:
        errors = [_field_error(e) for e in exc.errors(include_url=False, include_input=False)]
        shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise _Refused(
            422,
            f"The request could not be used ({shown}). It takes target (required), checks "
            "and window; see /api/openapi.json.",
            errors=errors,
        ) from None


def _field_error(error: Mapping[str, Any]) -> dict[str, Any]:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "not a field of this request; the fields are target, checks and window"
    return {"field": field, "message": message}


def _window(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_window(text)
    except WindowError as exc:
        raise _Refused(
            422,
            str(exc),
            errors=[{"field": "window", "message": str(exc), "allowed": [WINDOWS]}],
        ) from None


def _check_names(checks: Iterable[str]) -> tuple[str, ...]:
    """The check kinds asked for, each one that exists (a question about no customer)."""
    wanted = tuple(dict.fromkeys(c.strip().lower() for c in checks))
    for index, check in enumerate(wanted):
        if check not in kinds.NAMES:
            message = f"There is no check {quoted(check)}. The checks are {', '.join(kinds.NAMES)}."
            raise _Refused(
                422,
                message,
                errors=[{"field": f"checks.{index}", "message": message, "allowed": kinds.NAMES}],
            )
    return wanted


def _plan(catalog: Catalog, customer: Customer, target: str, wanted: tuple[str, ...]) -> Plan:
    """The run's targets; a check the target's accounts do not run is a 422 naming the ones
    they do (asked only once the token may see the customer)."""
    try:
        return catalog.plan(target, wanted)
    except UsageError:
        alias = target.strip().lower()
        accounts = [a for a in customer.accounts if alias in (customer.id, a.id)]
        configured = list(dict.fromkeys(c for a in accounts for c in a.checks))
        missing = [c for c in wanted if c not in configured]
        message = (
            f"{quoted(target)} runs none of {', '.join(missing)}; it runs "
            f"{', '.join(configured)}. Leave checks out to run them all."
            if configured
            else f"{quoted(target)} has no checks configured; see its YAML file."
        )
        raise _Refused(
            422, message, errors=[{"field": "checks", "message": message, "allowed": configured}]
        ) from None


def _same(run: Run, plan: Plan, window: timedelta | None) -> bool:
    """Whether the run an idempotency key found is the one this request asks for."""
    targets = [{"account": a, "check": c} for a, c in plan.targets]
    window_s = int(window.total_seconds()) if window is not None else None
    return (
        run.customer_id == plan.customer.id
        and run.targets == targets
        and run.params.get("window_s") == window_s
    )


async def _own_run(request: web.Request, who: Viewer, action: Action) -> tuple[RunView, Customer]:
    """The run in the path, if it is one of the token's customers' (the decision audited);
    one that is not, or is missing, is the same 404."""
    run_id = int(request.match_info["id"])
    try:
        view: RunView | None = await request.app[RUNS].get(run_id)
    except NotFound:
        view = None
    run = view.run if view is not None else None
    customer = request.app[CATALOG].customers.get(run.customer_id) if run is not None else None
    if view is None or customer is None or not who.sees(customer.id):
        await _record(request, who, action, HIDDEN, customer, run, f"#{run_id}")
        raise _Refused(
            404,
            f"There is no run #{run_id} that this token can see. "
            "GET /api/runs lists the runs it can.",
        )
    await _record(request, who, action, GRANTED, customer, run, None)
    return view, customer


async def _record(
    request: web.Request,
    who: Viewer,
    action: Action,
    decision: Decision,
    customer: Customer | None,
    run: Run | None,
    asked: str | None,
) -> None:
    await request.app[ACCESS].record(
        Who(who.actor),
        action,
        decision,
        customer.id if customer is not None else (run.customer_id if run is not None else None),
        run.id if run is not None else None,
        asked,
        via="api",
    )


def _accepted(run: Run, message: str, *, replayed: bool = False) -> web.Response:
    url = f"/api/runs/{run.id}"
    body = RunAccepted(
        id=run.id,
        status=run.status,  # type: ignore[arg-type]  # a RunStatus value
        customer=run.customer_id,
        checks=list(dict.fromkeys(t["check"] for t in run.targets)),
        url=url,
        retry_of=run.retry_of,
        message=message,
    )
    headers = {"Location": url}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.json_response(body.model_dump(), status=202, headers=headers)


def _still(run: Run) -> str:
    return (
        f"Run #{run.id} is still {run.status}; retry it once it ends "
        f"(GET /api/runs/{run.id} shows it, POST /api/runs/{run.id}/cancel stops it)."
    )


def _cancelling(run: Run) -> str:
    return "cancelled" if run.status == RunStatus.CANCELLED else "being cancelled"
