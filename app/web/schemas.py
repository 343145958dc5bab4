"""What the API takes and gives, as pydantic models: the one source of both the validation of
a request and the JSON Schemas of the OpenAPI document (:mod:`app.web.openapi`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.config import MAX_WINDOW, format_window
from app.web.problems import Problem

KEY_HEADER = "Idempotency-Key"
MAX_KEY = 200
MAX_CHECKS = 20
WINDOWS = f"1m to {format_window(MAX_WINDOW)}, as 30m, 12h or 7d"


class RunRequest(BaseModel):
    """Start a run: the slash command's ``run TARGET [CHECK ...] [--window 12h]`` as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(
        min_length=1,
        max_length=64,
        description="A customer id (all its accounts) or an account alias (that account).",
        examples=["acme-prod"],
    )
    checks: list[str] | None = Field(
        default=None,
        max_length=MAX_CHECKS,
        description="Check kinds to run (default: each account's configured checks).",
        examples=[["rds", "backup"]],
    )
    window: str | None = Field(
        default=None,
        description=f"How far back to look: {WINDOWS} (default: per check).",
        examples=["12h"],
    )


class RunAccepted(BaseModel):
    """A run started, cancelled or retried: where it stands now, and where to follow it."""

    id: int
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    customer: str
    checks: list[str]
    url: str = Field(description="GET it to follow the run: ``/api/runs/{id}``.")
    retry_of: int | None = Field(default=None, description="The run this one retries.")
    message: str


class ResultOut(BaseModel):
    account: str
    check: str
    severity: Literal["ok", "warn", "crit", "error", "skipped"]
    summary: str
    details: dict[str, Any]


class RunOut(BaseModel):
    """A run with its results (``mhub status --json``'s shape)."""

    id: int
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    outcome: str | None = Field(description="The worst result's severity, once it ran.")
    customer: str
    requested_by: str
    attempts: int
    created_at: str | None
    finished_at: str | None
    results: list[ResultOut]


class RunPage(BaseModel):
    runs: list[RunOut]
    older: int | None = Field(description="Pass as ``before`` for older runs; None: no more.")
    newer: int | None = Field(description="Pass as ``after`` for newer runs; None: no more.")


class FindingOut(BaseModel):
    """A finding (``mhub findings --json``); ``by``, ``at``, ``reason`` and ``until`` are
    there when it was answered (acknowledged, snoozed, muted, in maintenance)."""

    model_config = ConfigDict(extra="allow")

    id: int
    fingerprint: str
    account: str
    check: str
    region: str
    resource: str
    severity: str
    state: str
    summary: str
    first_seen: str
    last_seen: str
    resolved_at: str | None
    returns: int
    flips: int
    change: str | None
    last_run_id: int
    acknowledged_by: str | None
    rule: dict[str, Any] | None
    back: str | None


class FindingList(BaseModel):
    customer: str
    findings: list[FindingOut]


class BlindSpotOut(BaseModel):
    """An account × check that could not look, and why."""

    customer: str
    account: str
    check: str
    since: str | None
    last_ok_at: str | None
    failing_since: str | None
    failed: int
    reason: str
    call: str | None
    why: str
    detail: str


class BlindSpotList(BaseModel):
    blind_spots: list[BlindSpotOut]


class WindowOut(BaseModel):
    """A maintenance window: from a customer's YAML (``source: config``) or started from Slack
    or the CLI."""

    customer: str
    id: int | None
    name: str
    accounts: list[str] | None
    checks: list[str] | None
    starts_at: str
    ends_at: str
    reason: str | None
    by: str | None
    source: str


class MaintenanceList(BaseModel):
    active: list[WindowOut]
    upcoming: list[WindowOut]


MODELS: tuple[type[BaseModel], ...] = (
    RunRequest,
    RunAccepted,
    Problem,
    RunOut,
    RunPage,
    FindingList,
    BlindSpotList,
    MaintenanceList,
)
"""Every model the OpenAPI document describes."""
