"""What makes the web view safe to expose: read-only pages, strict headers, and a refusal to
listen beyond loopback without a password or Sign in with Slack.

Order of the middlewares (outermost first): errors → methods → host (only in operator mode
without a password) → identity (:mod:`app.web.identity`) → the API's rate limit → view.
Headers are added to every response, error pages and static files included, in
``on_response_prepare``.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from app.errors import HubError

ALLOWED_METHODS = frozenset({"GET", "HEAD"})
WRITES = re.compile(r"/api/runs(/[0-9]{1,15}/(cancel|retry))?|/auth/logout")
"""The only paths that take a POST: the API's run requests (a token with the ``run`` scope)
and signing out. Every page stays read-only."""
OPEN_PATHS = frozenset({"/healthz"})
"""Paths the host guard lets through: the liveness probe."""
REALM = "Monitoring Hub"

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


class WebRefused(HubError):
    """The web view would be exposed unsafely; the message says how to fix the settings."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``; anything else (names, 0.0.0.0, "") is not."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, port: int, auth: str | None, *, sign_in: bool = False) -> None:
    """Refuse to start on a non-loopback host without auth (a password or Sign in with
    Slack), or with malformed auth."""
    user, _, password = (auth or "").partition(":")
    if auth is not None and not (user and password):
        raise WebRefused(
            "HUB_WEB_AUTH must be user:password (both non-empty), for example "
            "ops:a-long-random-password."
        )
    if auth is None and not sign_in and not is_loopback(host):
        raise WebRefused(
            f"refusing to serve the web view on {host or 'every interface'}:{port} without a "
            "password: anyone who can reach that address would see every customer's results. "
            "Set up Sign in with Slack (HUB_WEB_SLACK_CLIENT_ID and _SECRET, docs/web.md), or "
            "set HUB_WEB_AUTH=user:password, or set HUB_WEB_HOST=127.0.0.1 and put an "
            "authenticating proxy in front, or start with --no-web."
        )


async def add_headers(_request: web.BaseRequest, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def only_reads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """GET and HEAD only, but for :data:`WRITES`: the web view's pages never change anything."""
    allowed = ALLOWED_METHODS | ({"POST"} if WRITES.fullmatch(request.path) else set())
    if request.method not in allowed:
        raise web.HTTPMethodNotAllowed(
            request.method,
            sorted(allowed),
            text="This is a read-only view: only GET and HEAD are allowed."
            if "POST" not in allowed
            else "Use POST here (docs/api.md).",
        )
    return await handler(request)


def known_hosts(public_url: str | None) -> frozenset[str]:
    """The host names a loopback-only view answers to: loopback, and HUB_PUBLIC_URL's host."""
    hosts = {"localhost", "127.0.0.1", "::1"}
    if public_url:
        name = urlsplit(public_url).hostname
        if name:
            hosts.add(name.lower())
    return frozenset(hosts)


def host_guard(hosts: frozenset[str] | None) -> Middleware:
    """Without a password, answer only to known host names. A web page elsewhere could
    otherwise point its own name at 127.0.0.1 (DNS rebinding) and read the view through the
    browser of anyone who has it open on their machine."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if hosts is None or request.path in OPEN_PATHS:
            return await handler(request)
        name = (request.url.host or "").lower().strip("[]")
        if name not in hosts and not is_loopback(name):
            raise web.HTTPMisdirectedRequest(
                text=f'This view does not answer to "{name}". Use 127.0.0.1, or set '
                "HUB_PUBLIC_URL to the address people use (with a proxy in front)."
            )
        return await handler(request)

    return middleware
