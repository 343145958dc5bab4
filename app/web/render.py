"""Render a page: its template, its context, and what every page shows besides (the name of
the person signed in with Slack, with a way to sign out; the hub's version in the footer; the
words a screen reader says for each mark)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from app import version
from app.web.present import SAID
from app.web.viewer import VIEWER, Via


@cache
def _version() -> str:
    return version.current()


def page(
    template: str, request: web.Request, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    who = request.get(VIEWER)
    signed_in = who.label if who is not None and who.via == Via.SLACK else ""
    extra = {"signed_in": signed_in, "hub_version": _version(), "said": SAID}
    return aiohttp_jinja2.render_template(template, request, {**context, **extra}, status=status)
