"""Typed application keys: how views reach the services ``create_app`` was given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from aiohttp import web

from app.access import Access
from app.catalog import Catalog
from app.db import Database
from app.engine.answers import Answers
from app.engine.runs import RunService
from app.engine.tokens import Tokens
from app.reports.gather import Reports
from app.web.cache import PageCache
from app.web.metrics import HubMetrics
from app.web.names import Names

Probe = Callable[[], Awaitable[str | None]]
"""A readiness probe: None when fine, else a short reason."""

DB = web.AppKey("db", Database)
RUNS = web.AppKey("runs", RunService)
ANSWERS = web.AppKey("answers", Answers)
METRICS = web.AppKey("metrics", HubMetrics)
CATALOG = web.AppKey("catalog", Catalog)
PROBES: web.AppKey[Mapping[str, Probe]] = web.AppKey("probes")
NOTES: web.AppKey[Mapping[str, Probe]] = web.AppKey("notes")
"""Shown by ``/readyz`` beside the probes, never making it fail."""
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
BOARD_CACHE = web.AppKey("board_cache", PageCache)
REPORTS = web.AppKey("reports", Reports)
ACCESS = web.AppKey("access", Access)
"""Access decisions and their audit rows: every web read of a customer's data is recorded."""
TOKENS = web.AppKey("tokens", Tokens)
"""The API tokens (``Authorization: Bearer``), checked by the identity middleware."""
NAMES = web.AppKey("names", Names)
"""Slack names for the ids the pages show (absent without Slack: the pages show the ids)."""
