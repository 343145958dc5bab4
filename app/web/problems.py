"""Problem details (RFC 9457): how every ``/api/`` error is answered.

``{"type": "about:blank", "title": "Not Found", "status": 404, "detail": "…what to do…"}``
with ``Content-Type: application/problem+json``; members beyond those (``errors``,
``retry_after``) say more where a client can act on it. ``type`` stays ``about:blank``: the
status says what kind of problem it is, ``detail`` what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

CONTENT_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    """One field of a request that could not be used."""

    model_config = ConfigDict(frozen=True)

    field: str = Field(description="The field, as ``checks`` or ``checks.1``.")
    message: str
    allowed: list[str] | None = Field(
        default=None, description="The values it may take, where there is a short list."
    )


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="Always about:blank: see status.")
    title: str = Field(description="The HTTP status's phrase, as Not Found.")
    status: int
    detail: str = Field(description="What went wrong, and what to do about it.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="On 422: each field that could not be used, and why."
    )


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A problem-details response; ``extra`` members are added to the body as given."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.json_response(body, status=status, headers=headers, content_type=CONTENT_TYPE)


def phrase(status: int) -> str:
    """The standard phrase of ``status`` (``Unprocessable Content`` for 422, as RFC 9110 names
    it), the ``title`` of an ``about:blank`` problem."""
    if status == 422:
        return "Unprocessable Content"
    return HTTPStatus(status).phrase
