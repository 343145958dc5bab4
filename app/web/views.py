"""The views: parse the request, ask one query, hand the page its context. Nothing else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast
from zoneinfo import ZoneInfo

from aiohttp import web

from app.catalog import Catalog
from app.config import Customer
from app.engine import findings, runboard
from app.engine.runs import RunView, run_json
from app.errors import NotFound, quoted
from app.models import Finding
from app.reports.csvs import zip_bytes
from app.reports.files import pdf_bytes
from app.reports.model import Report
from app.reports.period import ReportError
from app.version import current
from app.web import pages, params, present, queries, render, scoping, standings
from app.web.keys import (
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
)
from app.web.metrics import CONTENT_TYPE
from app.web.names import named
from app.web.viewer import viewer

ROUTES = web.RouteTableDef()


def _json(data: Any, status: int = 200) -> web.Response:
    """Compact JSON: ``indent`` would turn off the C encoder, five times slower on a list of
    500 findings (a browser or ``jq`` shows it indented)."""
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


@ROUTES.get("/", name="runboard")
async def board(request: web.Request) -> web.Response:
    app, catalog, now = request.app, scoping.catalog_of(request), request.app[CLOCK]()
    who = viewer(request)
    await scoping.audited(request, catalog.customers)
    cache, scope = app[BOARD_CACHE], _scope_key(who.customers)
    if (
        cache.ttl_s > 0
        and (body := cache.get(f"{await runboard.version(app[DB])}|{scope}")) is not None
    ):
        return web.Response(body=body, content_type="text/html", charset="utf-8")
    board = await runboard.read(app[DB], catalog.customers, now)
    if who.customers is not None:
        board = board.visible_to(who.customers)
    spots = await queries.blind_spots(app[DB], catalog.customers.values(), now)
    windows = await queries.maintenance_windows(app[DB], catalog.customers.values(), now)
    context = await named(
        app.get(NAMES), lambda names: pages.runboard(board, catalog, now, spots, windows, names)
    )
    response = render.page("runboard.html", request, context)
    if isinstance(response.body, bytes):
        cache.put(f"{board.version}|{scope}", response.body)
    return response


def _scope_key(customers: frozenset[str] | None) -> str:
    """The render cache's key part for who is looking: boards differ by their customers."""
    return "*" if customers is None else ",".join(sorted(customers))


@ROUTES.get("/runs", name="runs")
async def runs(request: web.Request) -> web.Response:
    catalog, query = scoping.catalog_of(request), request.query
    flt, tz = _run_filter(request, catalog)
    before, after = params.cursor(query, "before"), params.cursor(query, "after")
    page = await queries.runs_page(request.app[DB], flt, before=before, after=after)
    await scoping.audited(request, (r.customer_id for r in page.runs))
    filters = params.filter_query(query)
    now = request.app[CLOCK]()
    context = await named(
        request.app.get(NAMES),
        lambda names: pages.runs_list(page, catalog, query, filters, tz, now, names),
    )
    return render.page("runs.html", request, context)


@ROUTES.get(r"/runs/{id:[0-9]{1,15}}", name="run")
async def run(request: web.Request) -> web.Response:
    view = await scoping.run_of(request, int(request.match_info["id"]), events=True)
    customer = request.app[CATALOG].customers.get(view.run.customer_id)
    version = "" if view.terminal else await runboard.version(request.app[DB])
    now = request.app[CLOCK]()
    context = await named(
        request.app.get(NAMES), lambda names: pages.run_page(view, customer, now, version, names)
    )
    return render.page("run.html", request, context)


@ROUTES.get(r"/customers/{id}", name="customer")
async def customer(request: web.Request) -> web.Response:
    found = await scoping.customer_of(request, request.match_info["id"])
    now = request.app[CLOCK]()
    page = await queries.runs_page(request.app[DB], queries.RunFilter(customer=found.id), limit=10)
    spots = await queries.blind_spots(request.app[DB], [found], now)
    windows = await queries.maintenance_windows(request.app[DB], [found], now)
    context = await named(
        request.app.get(NAMES),
        lambda names: pages.customer_page(found, page, now, spots, windows, names),
    )
    return render.page("customer.html", request, context)


@ROUTES.get(r"/customers/{id}/findings", name="customer_findings")
async def customer_findings(request: web.Request) -> web.Response:
    """A customer's findings by standing, with the mute rules beside them."""
    found = await scoping.customer_of(request, request.match_info["id"])
    show = params.findings_group(request.query)
    now = request.app[CLOCK]()
    rules = await request.app[ANSWERS].rules(found.id)
    shown = {show: findings.LIST_LIMIT} if show else standings.SHOWN
    board = await standings.board(request.app[DB], found.id, rules, now, shown)
    spots = await queries.blind_spots(request.app[DB], [found], now)
    context = await named(
        request.app.get(NAMES),
        lambda names: pages.findings_page(found, board, rules, now, show, spots, names),
    )
    return render.page("findings.html", request, context)


_MONTH = "{month:[^/.]+}"
"""A month in a report's path: no dot, so ``2026-11.pdf`` is the PDF's and not a page's."""


@ROUTES.get(f"/customers/{{id}}/reports/{_MONTH}", name="report")
async def report(request: web.Request) -> web.Response:
    """A customer's report for a calendar month (``2026-11``)."""
    built = await _report(request, request.match_info["month"])
    return render.page("report.html", request, pages.report_page(built))


@ROUTES.get("/customers/{id}/reports", name="report_range")
async def report_range(request: web.Request) -> web.Response:
    """A customer's report for ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (both days included)."""
    built = await _report(request, None)
    return render.page("report.html", request, pages.report_page(built))


@ROUTES.get(f"/customers/{{id}}/reports/{_MONTH}.pdf", name="report_pdf")
async def report_pdf(request: web.Request) -> web.Response:
    return await _download(request, pdf_bytes, "pdf", "application/pdf")


@ROUTES.get(f"/customers/{{id}}/reports/{_MONTH}.zip", name="report_zip")
async def report_zip(request: web.Request) -> web.Response:
    """One CSV file per section, zipped."""
    return await _download(request, zip_bytes, "zip", "application/zip")


@ROUTES.get("/customers/{id}/reports.pdf", name="report_range_pdf")
async def report_range_pdf(request: web.Request) -> web.Response:
    """The PDF of ``?from=YYYY-MM-DD&to=YYYY-MM-DD``."""
    return await _download(request, pdf_bytes, "pdf", "application/pdf")


@ROUTES.get("/customers/{id}/reports.zip", name="report_range_zip")
async def report_range_zip(request: web.Request) -> web.Response:
    """The CSV files of ``?from=YYYY-MM-DD&to=YYYY-MM-DD``, zipped."""
    return await _download(request, zip_bytes, "zip", "application/zip")


@ROUTES.get(f"/api/customers/{{id}}/reports/{_MONTH}", name="api_report")
async def api_report(request: web.Request) -> web.Response:
    return _json((await _report(request, request.match_info["month"])).as_json())


@ROUTES.get("/api/customers/{id}/reports", name="api_report_range")
async def api_report_range(request: web.Request) -> web.Response:
    """The report of ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` as JSON."""
    return _json((await _report(request, None)).as_json())


@ROUTES.get("/api/runs", name="api_runs")
async def api_runs(request: web.Request) -> web.Response:
    flt, _ = _run_filter(request, scoping.catalog_of(request))
    before, after = params.cursor(request.query, "before"), params.cursor(request.query, "after")
    page = await queries.runs_page(request.app[DB], flt, before=before, after=after)
    await scoping.audited(request, (r.customer_id for r in page.runs))
    results = await queries.results_of(request.app[DB], [r.id for r in page.runs])
    return _json(
        {
            "runs": [run_json(RunView(r, results.get(r.id, []))) for r in page.runs],
            "older": page.older,
            "newer": page.newer,
        }
    )


@ROUTES.get(r"/api/runs/{id:[0-9]{1,15}}", name="api_run")
async def api_run(request: web.Request) -> web.Response:
    return _json(run_json(await scoping.run_of(request, int(request.match_info["id"]))))


@ROUTES.get("/api/findings", name="api_findings")
async def api_findings(request: web.Request) -> web.Response:
    """A customer's findings, open first (``mhub findings --json``'s shape)."""
    customer_id, state = params.findings_query(request.query)
    customer = await scoping.customer_of(request, customer_id)
    now = request.app[CLOCK]()
    rules = await request.app[ANSWERS].rules(customer.id)
    found = await standings.listing(request.app[DB], customer.id, rules, now, state)
    # finding_json reads attributes only, and a Line has every column it reads.
    shown = [findings.finding_json(cast(Finding, line), s) for line, s in found]
    return _json({"customer": customer.id, "findings": shown})


@ROUTES.get("/api/blind-spots", name="api_blind_spots")
async def api_blind_spots(request: web.Request) -> web.Response:
    """The blind spots of the customers the view shows (or of ``?customer=ID``), oldest first."""
    shown = await _customers(request)
    spots = await queries.blind_spots(request.app[DB], shown, request.app[CLOCK]())
    return _json({"blind_spots": [present.blind_json(s) for s in spots]})


@ROUTES.get("/api/maintenance", name="api_maintenance")
async def api_maintenance(request: web.Request) -> web.Response:
    """The maintenance windows of the customers the view shows (or of ``?customer=ID``): open
    now, and opening within 7 days; each by start."""
    shown = await _customers(request)
    windows = await queries.maintenance_windows(request.app[DB], shown, request.app[CLOCK]())
    return _json(
        {
            "active": [present.window_json(w, c) for c, w in windows.active],
            "upcoming": [present.window_json(w, c) for c, w in windows.upcoming],
        }
    )


@ROUTES.get("/api/version", name="version")
async def version(request: web.Request) -> web.Response:
    """The live-update token; pages poll it and reload their content when it changes."""
    return _json({"version": await runboard.version(request.app[DB])})


@ROUTES.get("/healthz", name="healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


@ROUTES.get("/readyz", name="readyz")
async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    for name, probe in request.app[PROBES].items():
        checks[name] = await probe() or "ok"
    ready = all(v == "ok" for v in checks.values())
    notes = {name: said for name, note in request.app[NOTES].items() if (said := await note())}
    body: dict[str, Any] = {"ready": ready, "version": current(), "checks": checks}
    if notes:
        body["notes"] = notes
    return _json(body, status=200 if ready else 503)


@ROUTES.get("/metrics", name="metrics")
async def metrics(request: web.Request) -> web.Response:
    app = request.app
    body = await app[METRICS].render(app[DB], app[CLOCK](), app[CATALOG])
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


def _run_filter(request: web.Request, catalog: Catalog) -> tuple[queries.RunFilter, ZoneInfo]:
    """The runs filter of the query, kept to the customers the viewer may see."""
    flt, tz = params.run_filter(request.query, catalog)
    among = viewer(request).customers
    return (flt if among is None else replace(flt, among=among)), tz


async def _customers(request: web.Request) -> list[Customer]:
    """``?customer=ID`` (a 404 when the viewer may not see it), else every customer they may
    see; the read audited."""
    one = params.one_customer(request.query)
    if one is not None:
        return [await scoping.customer_of(request, one)]
    shown = list(scoping.catalog_of(request).customers.values())
    await scoping.audited(request, (c.id for c in shown))
    return shown


async def _report(request: web.Request, month: str | None) -> Report:
    """The report the request asks for: a 404 for a customer the view does not show, a 400
    saying what to ask instead for a period that cannot be reported on."""
    customer = await scoping.customer_of(request, request.match_info["id"])
    period = params.report_period(customer, month, request.query, request.app[CLOCK]())
    try:
        return await request.app[REPORTS].build(customer.id, period)
    except ReportError as exc:
        raise params.BadParam(str(exc)) from None
    except NotFound:
        raise web.HTTPNotFound(text=f"There is no customer {quoted(customer.id)}.") from None


async def _download(
    request: web.Request, render: Callable[[Report], bytes], ext: str, content_type: str
) -> web.Response:
    """A report rendered off the event loop, as a file to save."""
    built = await _report(request, request.match_info.get("month"))
    body = await asyncio.to_thread(render, built)
    p = built.period
    name = f"{built.customer_id}-{p.month or f'{p.first.isoformat()}_{p.last.isoformat()}'}.{ext}"
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
