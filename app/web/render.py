"""Render a page: its template, its context, and what every page's header shows (the name of
the person signed in with Slack, with a way to sign out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from app.web.viewer import VIEWER, Via


def page(
    template: str, request: web.Request, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    who = request.get(VIEWER)
    signed_in = who.label if who is not None and who.via == Via.SLACK else ""
    return aiohttp_jinja2.render_template(
        template, request, {**context, "signed_in": signed_in}, status=status
    )
