"""The web view: an aiohttp app built by :func:`create_app` from the services it needs.

Pages (``/``, ``/runs``, ``/runs/{id}``, ``/customers/{id}``, ``/customers/{id}/findings``,
``/customers/{id}/reports/{month}`` with its ``.pdf`` and ``.zip``), JSON (``/api/runs``,
``/api/runs/{id}``, ``/api/findings``, ``/api/blind-spots``, ``/api/maintenance``,
``/api/customers/{id}/reports/{month}``), the API's writes (``POST /api/runs``, cancel, retry;
``/api/openapi.json``), Sign in with Slack (``/auth/…``) and operations (``/healthz``,
``/readyz``, ``/metrics``). Every request has a viewer (:mod:`app.web.identity`) and sees only
their customers (:mod:`app.web.scoping`). See docs/web.md and docs/api.md. Nothing here reads
the environment or holds global state.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from app.access import Access
from app.catalog import Catalog
from app.db import Database
from app.engine.answers import Answers, rules_from
from app.engine.changes import Change, RunChanges
from app.engine.runs import RunService
from app.engine.tokens import Tokens
from app.reports.gather import Reports
from app.web import api, identity, limits, problems, render, security, signin, views
from app.web.cache import PageCache
from app.web.keys import (
    ACCESS,
    ANSWERS,
    BOARD_CACHE,
    CATALOG,
    CLOCK,
    DB,
    METRICS,
    NAMES,
    NOTES,
    PROBES,
    REPORTS,
    RUNS,
    TOKENS,
    Probe,
)
from app.web.metrics import HubMetrics, RunObserver
from app.web.names import Names
from app.web.people import People
from app.web.signin import SIGNIN, SlackSignIn

__all__ = ["HubMetrics", "Probe", "create_app"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    *,
    db: Database,
    runs: RunService,
    catalog: Catalog,
    metrics: HubMetrics,
    auth: str | None = None,
    public_url: str | None = None,
    probes: Mapping[str, Probe] | None = None,
    notes: Mapping[str, Probe] | None = None,
    changes: RunChanges | None = None,
    answers: Answers | None = None,
    reports: Reports | None = None,
    access: Access | None = None,
    tokens: Tokens | None = None,
    sign_in: tuple[SlackSignIn, People] | None = None,
    names: Names | None = None,
    clock: Callable[[], datetime] = _utcnow,
    board_cache_s: float = 5.0,
) -> web.Application:
    """The web view.

    ``auth`` is ``user:password`` for HTTP Basic (None: no auth; the caller decides whether
    that is safe, see :func:`security.check_exposure`); without it the view answers only to
    loopback names and ``public_url``'s host. ``probes`` are the readiness checks
    behind ``/readyz``; ``notes`` are shown there too without making it fail (events that
    PagerDuty refused: a setting to fix, not a replica to take out). ``changes`` are this
    process's run changes, followed to record run and check durations. ``answers`` gives
    each customer's mute rules (the YAML's and those made from Slack or the CLI); without it,
    one is built on ``db``, the catalog's YAML and ``clock``. ``reports`` builds the customer
    reports (without it, one is built on ``db``, the catalog and ``clock``). ``board_cache_s``
    is how long an unchanged runboard may be served from its render cache (0 turns it off).
    ``access`` records every read (without it, one is built on ``db``); ``tokens`` are the
    API tokens (without it, one store is built on ``db`` and ``clock``). ``sign_in`` turns on
    Sign in with Slack: every page then shows only the customers the signed-in person may see
    (``People``), and ``auth`` answers for ``/readyz`` and ``/metrics`` only. ``names``
    shows people and channels by their Slack names (without it, by their ids).
    """
    hosts = security.known_hosts(public_url) if auth is None and sign_in is None else None
    tokens = tokens if tokens is not None else Tokens(db, clock)
    flow, people = sign_in if sign_in is not None else (None, None)
    app = web.Application(
        middlewares=[
            errors,
            security.only_reads,
            security.host_guard(hosts),
            identity.identify(
                auth=auth,
                tokens=tokens,
                signin=flow,
                sessions=flow.sessions if flow is not None else None,
                people=people,
            ),
            limits.per_token(),
        ],
    )
    app[DB] = db
    app[ACCESS] = access if access is not None else Access(db)
    app[TOKENS] = tokens
    app[RUNS] = runs
    app[ANSWERS] = answers if answers is not None else Answers(db, rules_from(catalog), clock)
    app[REPORTS] = reports if reports is not None else Reports(db, catalog, clock)
    app[CATALOG] = catalog
    app[METRICS] = metrics
    app[PROBES] = dict(probes or {})
    app[NOTES] = dict(notes or {})
    app[CLOCK] = clock
    app[BOARD_CACHE] = PageCache(board_cache_s)
    if names is not None:
        app[NAMES] = names
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.router.add_routes(views.ROUTES)
    app.router.add_routes(api.ROUTES)
    if flow is not None:
        app[SIGNIN] = flow
        app.router.add_routes(signin.ROUTES)
        app.on_cleanup.append(lambda _app: flow.close())
    app.router.add_static("/static/", HERE / "static", name="static")
    app.on_response_prepare.append(security.add_headers)
    if changes is not None:
        app.cleanup_ctx.append(_observer(db, metrics, changes))
    return app


def _observer(
    db: Database, metrics: HubMetrics, changes: RunChanges
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def observe(_app: web.Application) -> AsyncIterator[None]:
        observer = RunObserver(db, metrics)
        # The runs this process executes: not a submission or a cancel request made here.
        changes.subscribe(observer.changed, only=(Change.PROGRESSED,))
        stop = asyncio.Event()
        task = asyncio.create_task(observer.serve(stop), name="web-metrics")
        yield
        changes.unsubscribe(observer.changed)
        stop.set()
        await task

    return observe


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors as a short page (JSON under /api/); anything unexpected as a 500 with an
    id that is also in the log."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else ""
        return _error(request, exc.status, exc.reason, message, exc.headers)
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("web: %s %s failed [%s]", request.method, request.path, ref)
        return _error(
            request,
            500,
            "Internal Server Error",
            f"Something went wrong on our side (error {ref}; it is in the hub's log).",
            {},
        )


def _error(
    request: web.Request, status: int, reason: str, message: str, headers: Mapping[str, str]
) -> web.StreamResponse:
    keep = {k: v for k, v in headers.items() if k in ("Allow", "WWW-Authenticate", "Retry-After")}
    if request.path.startswith("/api/") or request.path in ("/readyz", "/metrics", "/healthz"):
        response: web.StreamResponse = problems.problem(status, reason, message or reason)
    else:
        response = render.page(
            "error.html",
            request,
            {"title": reason, "status": status, "message": message, "nav": "", "live": False},
            status=status,
        )
    response.headers.update(keep)
    return response
