"""The OpenAPI 3.1 document of the API (``GET /api/openapi.json``): the JSON Schemas of the
models in :mod:`app.web.schemas` (the same ones that validate requests), the paths, bearer
security, and each error status as a problem document."""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from app.engine import findings
from app.reports.model import Report
from app.web.params import OUTCOMES, STATUSES
from app.web.problems import CONTENT_TYPE as PROBLEM_TYPE
from app.web.schemas import KEY_HEADER, MAX_KEY, MODELS, RunRequest
from checks import kinds

API_VERSION = "1.0"
"""The version of the API this document describes (changes when a client would notice)."""


_STATUSES = {
    400: "Malformed: the detail says what to send.",
    401: "No token, or one that is unknown, revoked or expired.",
    403: "The token's scope does not allow it (or a person, not a token, asked).",
    404: "Not there, or not one of the token's customers: the same answer.",
    409: "The run is not in a state that allows it.",
    422: "Well-formed but not usable: ``errors`` names each field, and what it allows.",
    429: "Too many requests from this token: wait ``Retry-After`` seconds.",
}


@functools.cache
def document_bytes() -> bytes:
    return json.dumps(openapi(), ensure_ascii=False).encode()


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document: the models' JSON Schemas, the paths, bearer security."""
    _, top = models_json_schema(
        [(m, "validation" if m is RunRequest else "serialization") for m in MODELS],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(top["$defs"])
    report = TypeAdapter(Report).json_schema(
        mode="serialization", ref_template="#/components/schemas/{model}"
    )
    for name, schema in report.pop("$defs", {}).items():
        if name in schemas:
            raise RuntimeError(f"two schemas named {name} in the OpenAPI document")
        schemas[name] = schema
    schemas["Report"] = report
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Monitoring Hub API",
            "version": API_VERSION,
            "description": "Start, cancel and retry runs and read their results, with a token "
            "from `mhub token create`. See docs/api.md.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `mhub token create` (mhub_…).",
                }
            },
            "responses": {
                str(status): _problem_response(about) for status, about in _STATUSES.items()
            },
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _ok(schema: str, description: str, status: int = 200) -> dict[str, Any]:
    return {
        str(status): {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{s}"} for s in (401, *statuses)}


def _query(name: str, description: str, *, choices: Any = None, **schema: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "string", **schema}
    if choices is not None:
        body["enum"] = list(choices)
    return {"name": name, "in": "query", "description": description, "schema": body}


def _path_param(name: str, description: str, **schema: Any) -> dict[str, Any]:
    about = schema or {"type": "string"}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": about,
    }


DIGITS = "^[0-9]+$"
MONTH = r"^[0-9]{4}-[0-9]{2}$"
RUN_ID = _path_param("id", "The run id (1842 for #1842).", type="integer", minimum=1)
CUSTOMER = _query("customer", "One customer's id (default: every customer the token sees).")


def _paths() -> dict[str, Any]:
    accepted = {**_ok("RunAccepted", "Accepted: the run, and where to follow it.", 202)}
    accepted["202"]["headers"] = {
        "Location": {"schema": {"type": "string"}, "description": "The run's URL."},
        "Idempotent-Replayed": {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "Present when this answers a request made before.",
        },
    }
    return {
        "/api/runs": {
            "get": {
                "summary": "Runs, newest first, 50 a page",
                "operationId": "listRuns",
                "parameters": [
                    _query("customer", "Only this customer's runs."),
                    _query("status", "Only runs in this status.", choices=STATUSES),
                    _query(
                        "outcome",
                        "Only runs with this outcome (the worst result's severity); with check, "
                        "runs where that check had this outcome in some account.",
                        choices=OUTCOMES,
                    ),
                    _query("check", "Only runs that ran this check.", choices=kinds.NAMES),
                    _query("from", "Created on or after this day (YYYY-MM-DD).", format="date"),
                    _query("to", "Created on or before this day (YYYY-MM-DD).", format="date"),
                    _query("before", "Older than this run id (a page's older).", pattern=DIGITS),
                    _query("after", "Newer than this run id (a page's newer).", pattern=DIGITS),
                ],
                "responses": {**_ok("RunPage", "A page of runs."), **_errors(400, 429)},
            },
            "post": {
                "summary": "Start a run",
                "operationId": "startRun",
                "description": "Needs scope run. Answers at once; follow the run at its url.",
                "parameters": [
                    {
                        "name": KEY_HEADER,
                        "in": "header",
                        "required": True,
                        "description": "A new value (a UUID) per run; the same one again "
                        "answers with the same run.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}}
                    },
                },
                "responses": {**accepted, **_errors(400, 403, 404, 422, 429)},
            },
        },
        "/api/runs/{id}": {
            "get": {
                "summary": "One run with its results",
                "operationId": "getRun",
                "parameters": [RUN_ID],
                "responses": {**_ok("RunOut", "The run."), **_errors(404, 429)},
            }
        },
        "/api/runs/{id}/cancel": {
            "post": {
                "summary": "Cancel a run",
                "operationId": "cancelRun",
                "description": "Needs scope run. A queued run is cancelled at once, a running "
                "one stops after the checks under way.",
                "parameters": [RUN_ID],
                "responses": {**accepted, **_errors(403, 404, 409, 429)},
            }
        },
        "/api/runs/{id}/retry": {
            "post": {
                "summary": "Retry a finished run",
                "operationId": "retryRun",
                "description": "Needs scope run. A new run with the same targets and window; "
                "a run is retried once (asking again answers with that retry).",
                "parameters": [RUN_ID],
                "responses": {**accepted, **_errors(403, 404, 409, 429)},
            }
        },
        "/api/findings": {
            "get": {
                "summary": "A customer's findings, problems first",
                "operationId": "listFindings",
                "parameters": [
                    {**_query("customer", "The customer's id."), "required": True},
                    _query("state", "Only findings in this state.", choices=findings.STATES),
                ],
                "responses": {**_ok("FindingList", "The findings."), **_errors(400, 404, 429)},
            }
        },
        "/api/blind-spots": {
            "get": {
                "summary": "What could not be checked, oldest first",
                "operationId": "listBlindSpots",
                "parameters": [CUSTOMER],
                "responses": {**_ok("BlindSpotList", "The blind spots."), **_errors(400, 404, 429)},
            }
        },
        "/api/maintenance": {
            "get": {
                "summary": "Maintenance windows open now or within 7 days",
                "operationId": "listMaintenance",
                "parameters": [CUSTOMER],
                "responses": {
                    **_ok("MaintenanceList", "The windows."),
                    **_errors(400, 404, 429),
                },
            }
        },
        "/api/customers/{id}/reports/{month}": {
            "get": {
                "summary": "A customer's report for a calendar month",
                "operationId": "getReport",
                "parameters": [
                    _path_param("id", "The customer's id."),
                    _path_param("month", "The month, YYYY-MM.", type="string", pattern=MONTH),
                ],
                "responses": {**_ok("Report", "The report."), **_errors(400, 404, 429)},
            }
        },
        "/api/customers/{id}/reports": {
            "get": {
                "summary": "A customer's report for a range of days",
                "operationId": "getReportRange",
                "parameters": [
                    _path_param("id", "The customer's id."),
                    {**_query("from", "The first day.", format="date"), "required": True},
                    {**_query("to", "The last day (included).", format="date"), "required": True},
                ],
                "responses": {**_ok("Report", "The report."), **_errors(400, 404, 429)},
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "getOpenApi",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI 3.1 document."}},
            }
        },
    }
