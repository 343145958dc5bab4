"""Logging: one line per event — JSON when not on a terminal, readable text on one.

Context (run id, customer, Slack user) is carried in a contextvar and added to every line logged
inside :func:`context`. Every line passes through :func:`redact`, so Slack tokens, response
URLs and AWS credentials never reach the log, whoever logged them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_CONTEXT: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039
_SECRETS = [
    (re.compile(r"xox[abposr]-[A-Za-z0-9-]+"), "xox?-***"),
    (re.compile(r"xapp-[A-Za-z0-9-]+"), "xapp-***"),
    (re.compile(r"https://hooks\.slack(?:-gov)?\.com/\S+"), "https://hooks.slack.com/***"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "AKIA***"),
    (
        re.compile(
            r"(?i)(secret_?access_?key|session_?token|password|authorization)"
            r"([\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
        ),
        r"\1\2***",
    ),
]
NOISY = (
    "botocore",
    "boto3",
    "urllib3",
    "aiosqlite",
    "asyncio",
    "slack_sdk",
    "slack_bolt",
    "aiohttp.access",
    "alembic.runtime.migration",
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Add fields (run_id, customer, user, …) to every line logged inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        fields = {**_CONTEXT.get(), **getattr(record, "fields", {})}
        if self.as_json:
            line = {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
                **fields,
            }
            return redact(json.dumps(line, default=str, ensure_ascii=False))
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        return redact(
            f"{stamp} {record.levelname:<7} {record.name}: {message}"
            + (f"  [{extra}]" if extra else "")
        )


def setup(verbose: bool = False, as_json: bool | None = None) -> None:
    """Configure the root logger once, for the CLI and ``serve``."""
    if as_json is None:
        as_json = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
