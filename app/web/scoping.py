"""What the viewer may see, and the audit row saying they saw it.

Views reach customers and runs only through here: :func:`catalog_of` is the configuration cut
to the viewer's customers (so every list, filter and suggestion is too), :func:`customer_of`
and :func:`run_of` answer 404 for what the viewer may not see exactly as for what does not
exist, and :func:`audited` records a read. Every read of a customer's data is an audit row (a
``read`` event with no run, action ``read``) naming the viewer (Slack user id,
``token:<name>`` or ``operator``), the customers shown, what was asked (path and query) and
``via`` web or api; a refusal is one too, ``denied``, naming what was asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from aiohttp import web

from app.access import Action, Decision, Who
from app.catalog import Catalog
from app.config import Customer
from app.engine.events import Event
from app.engine.runs import RunView
from app.errors import NotFound, quoted
from app.web.keys import ACCESS, CATALOG, RUNS
from app.web.viewer import Viewer, viewer


def catalog_of(request: web.Request) -> Catalog:
    """The customers the viewer may see, as a catalog."""
    catalog = request.app[CATALOG]
    return _narrowed(catalog, catalog.generation, viewer(request).customers)


@lru_cache(maxsize=256)
def _narrowed(catalog: Catalog, generation: int, customers: frozenset[str] | None) -> Catalog:
    """``generation``: a reload swaps customers into the same catalog, so it is in the key."""
    if customers is None:
        return catalog
    return Catalog(c for c in catalog.customers.values() if c.id in customers)


async def customer_of(request: web.Request, customer_id: str) -> Customer:
    """A customer the viewer may see (the read audited), else a 404."""
    found = catalog_of(request).customers.get(customer_id)
    if found is None:
        await refused(request, customer_id)
        raise web.HTTPNotFound(text=f"There is no customer {quoted(customer_id)}.")
    await audited(request, [found.id])
    return found


async def run_of(request: web.Request, run_id: int, *, events: bool = False) -> RunView:
    """A run of a customer the viewer may see (the read audited), else a 404."""
    who = viewer(request)
    try:
        view = await request.app[RUNS].get(run_id, events=events)
    except NotFound:
        view = None
    if view is None or not who.sees(view.run.customer_id):
        await refused(request, f"run {run_id}")
        raise web.HTTPNotFound(text=f"There is no run #{run_id}.")
    await audited(request, [view.run.customer_id])
    return view


async def audited(request: web.Request, customers: Iterable[str]) -> None:
    """Record that the viewer was shown ``customers``' data."""
    who = viewer(request)
    shown = ",".join(sorted(set(customers))) or None
    await _record(request, who, Decision(True, who.via.value), shown, None)


async def refused(request: web.Request, asked: str) -> None:
    """Record that the viewer asked for something they may not see (or that is not there)."""
    await _record(request, viewer(request), Decision(False, "denied"), None, asked)


async def _record(
    request: web.Request, who: Viewer, decision: Decision, customer: str | None, asked: str | None
) -> None:
    via = "api" if request.path.startswith("/api/") else "web"
    what = f"{request.method} {request.path_qs}"
    await request.app[ACCESS].record(
        Who(who.actor),
        Action.READ,
        decision,
        customer,
        None,  # never on a run's timeline: its page would show every look at it
        asked=f"{what} ({asked})" if asked else what,
        via=via,
        kind=Event.READ,
    )
