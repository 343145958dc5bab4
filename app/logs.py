"""Logging: one line per event — readable text on a terminal, JSON otherwise (files, journald).

``HUB_LOG_FORMAT`` (``auto``, ``text``, ``json``) and ``HUB_LOG_LEVEL`` (``DEBUG`` … ``ERROR``)
choose otherwise; ``-v`` shows the app's DEBUG lines whatever the level.

Context (run id, customer, Slack user) is carried in a contextvar and added to every line logged
inside :func:`context`.

No secret reaches the log, whoever logged it and at whatever level: :func:`setup` puts a
:class:`Redact` filter on the root handler, so every record of every logger that propagates to
it (the app's, and slack_bolt's, slack_sdk's, aiohttp's, botocore's, SQLAlchemy's …) has its
final message — the arguments already formatted in — and its traceback text passed through
:func:`redact` before any formatter sees it; the formatter redacts what it adds again. Redacted:
Slack tokens (``xox?-``, ``xapp-``), Socket Mode tickets, response URLs and other webhook URLs,
the ``token`` (verification token), ``trigger_id`` and ``response_url`` fields of payloads,
``Authorization`` headers and every other field whose name says token, secret, password,
signature, credential or key (JSON, dicts, ``key=value``, headers, XML), AWS access key ids,
and passwords in URLs.
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
from typing import Any, TextIO

_CONTEXT: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039
_QUOTE = r"""\\*["']"""  # a quote, maybe escaped (JSON inside a string, or its repr)
_SECRET_KEY = r"""(?<![\w-])(?>
    [\w-]*?(?:secret|passw(?:or)?d|signature|authorization)[\w-]*+
  | [\w-]*?tokens?(?![\w-])
  | (?:credential|cookie|ticket|(?:response|upload)_?url|trigger_?id
      |(?:api|routing|integration|private)_?key)
    (?![\w-])
)"""
"""A field name that says its value is a secret. Matched from the start of a name only and
atomically, so a long run of letters and dashes costs linear time, never quadratic."""
_SECRETS: list[tuple[re.Pattern[str], Any]] = [
    # Slack tokens: bot, user, app-level, refresh (xoxe.xoxb-…), configuration tokens.
    (re.compile(r"\bxox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]+"), "xox?-***"),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), "xapp-***"),
    # Response URLs (whoever holds one can answer as the app), slashes maybe JSON-escaped.
    (
        re.compile(r"https?:(?:\\*/){2}hooks\.slack(?:-gov)?\.com(?:\\*/|[^\s\"'<>\\])*"),
        "https://hooks.slack.com/***",
    ),
    # File upload URLs (files.getUploadURLExternal): whoever holds one can upload as the app.
    (
        re.compile(r"https?:(?:\\*/){2}files\.slack\.com\\*/upload(?:\\*/|[^\s\"'<>\\])*"),
        "https://files.slack.com/upload/***",
    ),
    # Any other webhook URL (…/hooks/…): a password in its path.
    (
        re.compile(r"(?i)\b((?:https?|wss?)://[^\s/\"'<>\\]+)\\*/hooks\\*/(?:\\*/|[^\s\"'<>\\])*"),
        r"\1/hooks/***",
    ),
    # user:password@ in a URL (database URLs).
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,20}://[^\s:/@\"'<>]+:)[^\s@/\"'<>]+@"),
        r"\1***@",
    ),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "AKIA***"),
    # <SecretAccessKey>…</SecretAccessKey>, <SessionToken>…: STS answers, logged by botocore.
    (
        re.compile(rf"(?ix)(<{_SECRET_KEY}>)[^<]*"),
        r"\1***",
    ),
    # "token": "…", 'response_url': '…', ticket=…, Authorization: Bearer …, x-amz-security-token:…
    (
        re.compile(
            rf"""(?ix)
            (?P<key>{_SECRET_KEY}{_QUOTE}?\s*[:=]\s*)
            (?:
                (?P<b>b?)(?P<q>{_QUOTE})(?:(?!(?P=q))[^\n])*(?P=q)?
              | (?P<scheme>(?:Bearer|Basic|Token|AWS4-HMAC-SHA256)\s+)?[^\s"',;&{{}}\[\]()<>\\]+
            )
            """
        ),
        lambda m: (
            f"{m['key']}{m['b']}{m['q']}***{m['q']}"
            if m["q"]
            else f"{m['key']}{m['scheme'] or ''}***"
        ),
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
"""Libraries kept to warnings unless ``-vv``."""
EVERYTHING = 2
"""The verbosity (``-vv``) at which every library logs at DEBUG too."""


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by ``***``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class Redact(logging.Filter):
    """Put on a handler: every record it emits, from any logger, leaves with its message (the
    arguments formatted in), traceback and stack text redacted. The record is changed in place,
    so the handlers after this one get it redacted too."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit: keep the line, never fail the caller
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        record.exc_info = None  # a formatter formats record.exc_text instead, now redacted
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._redacted = True
        return True


_REDACT = Redact()


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
        _REDACT.filter(record)  # a no-op behind the handler's filter; there for any other way in
        message = record.getMessage()
        for text in (record.exc_text, record.stack_info):
            if text:
                message += "\n" + text
        fields = {
            k: v if v is None or isinstance(v, bool | int | float) else redact(str(v))
            for k, v in {**_CONTEXT.get(), **getattr(record, "fields", {})}.items()
        }
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
            return json.dumps(line, ensure_ascii=False)
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{stamp} {record.levelname:<7} {record.name}: {message}" + (
            f"  [{extra}]" if extra else ""
        )


FORMATS = ("auto", "text", "json")
"""``HUB_LOG_FORMAT``: ``auto`` is text when stderr is a terminal and JSON otherwise."""
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""``HUB_LOG_LEVEL``: the least severe record logged (``-v`` lowers it to DEBUG)."""


def wants_json(log_format: str, stream: TextIO | None = None) -> bool:
    """Whether to log JSON lines for ``log_format`` (one of :data:`FORMATS`) to ``stream``
    (stderr): ``auto`` means JSON unless it is a terminal."""
    if log_format == "auto":
        stream = stream if stream is not None else sys.stderr
        return not (hasattr(stream, "isatty") and stream.isatty())
    return log_format == "json"


def setup(verbose: int = 0, as_json: bool | None = None, level: str = "INFO") -> None:
    """Configure the root logger once, for the CLI and ``serve``: ``level`` (INFO); the app's
    DEBUG too when ``verbose`` (``-v``); every library's DEBUG too from :data:`EVERYTHING`
    (``-vv``). JSON lines when ``as_json``, text when False, and when None text on a terminal.
    Every line is redacted (:class:`Redact`), whatever logged it."""
    if as_json is None:
        as_json = wants_json("auto")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(as_json))
    handler.addFilter(Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.getLevelNamesMapping()[level.upper()])
    for name in NOISY:
        logging.getLogger(name).setLevel(
            logging.NOTSET if verbose >= EVERYTHING else logging.WARNING
        )
    if verbose >= EVERYTHING:
        logging.getLogger("sqlalchemy").setLevel(logging.NOTSET)  # it sets WARNING on import


def at_least(level: int) -> None:
    """Log nothing below ``level`` from now on (``mhub demo``: its card reads alone)."""
    root = logging.getLogger()
    root.setLevel(max(root.level, level))
