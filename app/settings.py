"""Environment settings: the only place that reads ``os.environ``.

Secrets (Slack tokens, web auth) come only from here. ``Settings.from_env()`` is called once,
by the composition root or the CLI; importing this module reads nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import logs
from app.config import WindowError, parse_window
from app.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/hub.db"
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
"""PagerDuty's Events API v2 (``HUB_PAGERDUTY_EVENTS_URL`` points elsewhere: EU, a fake)."""


MAX_SECONDS = 3600
"""The most any seconds setting (lease, heartbeat, polls, sweep, timeout, grace) may be: longer
than an hour is a typo (minutes for seconds), and would leave a dead replica's runs, a cancel or
a shutdown waiting that long."""
MAX_MISFIRE_GRACE = timedelta(days=1)
"""A schedule slot older than this is logged as missed at start-up, whatever the grace."""
_SECONDS = re.compile(r"\d{1,9}", re.ASCII)
_GRACE_ADVICE = (
    "not a misfire grace; use seconds (900) or a window such as 15m, from 0 to a day (86400 or 1d)"
)


def _grace(value: Any) -> timedelta:
    """``HUB_MISFIRE_GRACE``: seconds (``900``) or a window (``15m``, ``1h``), at most a day."""
    if isinstance(value, timedelta):
        grace: timedelta | None = value
    elif _SECONDS.fullmatch(text := str(value).strip()):
        grace = timedelta(seconds=int(text))
    else:
        try:
            grace = parse_window(text)
        except WindowError:
            grace = None
    if grace is None or not timedelta(0) <= grace <= MAX_MISFIRE_GRACE:
        raise ValueError(f"HUB_MISFIRE_GRACE: {_GRACE_ADVICE}")
    return grace


def _log_format(value: Any) -> str:
    """``HUB_LOG_FORMAT``: auto, text or json, in any case."""
    text = str(value).strip().lower()
    if text not in logs.FORMATS:
        raise ValueError("HUB_LOG_FORMAT: use auto (text on a terminal, else JSON), text or json")
    return text


def _log_level(value: Any) -> str:
    """``HUB_LOG_LEVEL``: DEBUG, INFO, WARNING or ERROR, in any case."""
    text = str(value).strip().upper()
    if text not in logs.LEVELS:
        raise ValueError("HUB_LOG_LEVEL: use DEBUG, INFO, WARNING or ERROR, such as INFO")
    return text


def _count(default: int, alias: str, most: int) -> Any:
    """A whole number from 1 to ``most``."""
    return Field(
        default=default,
        alias=alias,
        ge=1,
        le=most,
        description=f"use a whole number from 1 to {most:,}, such as {default}",
    )


def _seconds(default: float, alias: str, *, zero: bool = False) -> Any:
    """Seconds: finite, above 0 (or from 0 when ``zero``), at most ``MAX_SECONDS``."""
    low = "from 0 to" if zero else "more than 0 and at most"
    return Field(
        default=default,
        alias=alias,
        ge=0 if zero else None,
        gt=None if zero else 0,
        le=MAX_SECONDS,
        description=f"use seconds, {low} {MAX_SECONDS} (an hour), such as {default:g}",
    )


class EnvironmentInvalid(ConfigError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid environment:\n" + "\n".join(f"  {p}" for p in problems))


_NUMBER_ERRORS = frozenset(
    {
        "int_parsing",
        "int_type",
        "int_from_float",
        "float_parsing",
        "float_type",
        "finite_number",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
    }
)


def environment_problems(exc: ValidationError) -> list[str]:
    """One line per bad variable, ``NAME: what to do`` — never the value it had."""
    advice = {field.alias: field.description for field in Settings.model_fields.values()}
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] in _NUMBER_ERRORS and advice.get(name):
            message = str(advice[name])
        problems.append(message if message.startswith(name) else f"{name}: {message}")
    return problems


def _token(value: SecretStr | None, prefix: str, name: str, what: str) -> SecretStr | None:
    if value is not None and not value.get_secret_value().startswith(prefix):
        # Never echo the value: it is a secret even when it is the wrong one.
        raise ValueError(f"{name} must start with {prefix} ({what}); the value set does not")
    return value


class Settings(BaseSettings):
    """Everything the process reads from its environment, with the documented defaults."""

    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    database_url: str = Field(default=DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    config_dir: Path = Field(default=Path("./configs"), alias="HUB_CONFIG_DIR")
    web_host: str = Field(default="127.0.0.1", alias="HUB_WEB_HOST")
    web_port: int = Field(
        default=8080,
        alias="HUB_WEB_PORT",
        ge=1,
        le=65535,
        description="use a port number from 1 to 65535, such as 8080",
    )
    web_auth: SecretStr | None = Field(default=None, alias="HUB_WEB_AUTH")
    public_url: str | None = Field(default=None, alias="HUB_PUBLIC_URL")
    web_slack_client_id: str | None = Field(default=None, alias="HUB_WEB_SLACK_CLIENT_ID")
    """Sign in with Slack (docs/web.md): the app's client id; with the secret below, every
    web page asks who is looking and shows only the customers that person may see."""
    web_slack_client_secret: SecretStr | None = Field(
        default=None, alias="HUB_WEB_SLACK_CLIENT_SECRET"
    )
    pagerduty_events_url: str = Field(
        default=PAGERDUTY_EVENTS_URL, alias="HUB_PAGERDUTY_EVENTS_URL"
    )
    notify_socket: str | None = Field(default=None, alias="NOTIFY_SOCKET")
    """Set by systemd for ``Type=notify`` units: where to say ready and reloading."""
    log_format: Annotated[str, BeforeValidator(_log_format)] = Field(
        default="auto", alias="HUB_LOG_FORMAT"
    )
    """``text``, ``json``, or ``auto``: text when stderr is a terminal, JSON otherwise."""
    log_level: Annotated[str, BeforeValidator(_log_level)] = Field(
        default="INFO", alias="HUB_LOG_LEVEL"
    )
    """The least severe record logged: DEBUG, INFO, WARNING or ERROR (``-v``: DEBUG)."""

    # Executor tuning. Defaults suit one machine; see docs/architecture.md.
    max_concurrent_runs: int = _count(4, "HUB_MAX_RUNS", 1000)
    max_concurrent_targets: int = _count(32, "HUB_MAX_TARGETS", 10_000)
    aws_threads: int = _count(32, "HUB_AWS_THREADS", 1000)
    check_timeout_s: float = _seconds(120.0, "HUB_CHECK_TIMEOUT")
    lease_s: float = _seconds(30.0, "HUB_LEASE_SECONDS")
    heartbeat_s: float = _seconds(5.0, "HUB_HEARTBEAT_SECONDS")
    poll_s: float = _seconds(0.5, "HUB_POLL_SECONDS")
    cancel_poll_s: float = _seconds(1.0, "HUB_CANCEL_POLL_SECONDS")
    sweep_s: float = _seconds(5.0, "HUB_SWEEP_SECONDS")
    grace_s: float = _seconds(20.0, "HUB_GRACE_SECONDS", zero=True)
    max_attempts: int = _count(3, "HUB_MAX_ATTEMPTS", 100)

    # Schedules (docs/schedules.md).
    misfire_grace: Annotated[timedelta, BeforeValidator(_grace)] = Field(
        default=timedelta(minutes=15), alias="HUB_MISFIRE_GRACE"
    )
    test_slot_s: int | None = Field(
        default=None,
        alias="HUB_TEST_SLOT_SECONDS",
        ge=1,
        le=86400,
        description="use a whole number of seconds from 1 to 86,400, or leave it unset",
    )
    """Tests only: every schedule fires every N seconds instead of on its cron."""
    retention_days: int | None = Field(
        default=None,
        alias="HUB_RETENTION_DAYS",
        ge=1,
        le=36500,
        description="use a whole number of days from 1 to 36,500 (90 is a good start), or "
        "leave it unset to keep everything",
    )
    """Delete runs, reads and notices older than this many days, keeping what digests,
    findings and reports need (app.engine.retention); None: keep everything."""
    org_sync_hours: float = Field(
        default=6.0,
        alias="HUB_ORG_SYNC_HOURS",
        ge=0,
        le=168,
        description="use hours from 0 (no automatic sync; `mhub accounts sync` still works) "
        "to 168 (a week), such as 6",
    )
    """How often each customer's AWS organization is synced (docs/organizations.md); 0: never
    automatically."""

    @field_validator(
        "slack_bot_token",
        "slack_app_token",
        "web_auth",
        "web_slack_client_id",
        "web_slack_client_secret",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _token(value, "xoxb-", "SLACK_BOT_TOKEN", "the Bot User OAuth Token")

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        return _token(
            value, "xapp-", "SLACK_APP_TOKEN", "an app-level token with the connections:write scope"
        )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            scheme = value.split("://", 1)[0] if "://" in value else "no scheme"
            raise ValueError(
                f"DATABASE_URL has {scheme}; use sqlite+aiosqlite:///path/hub.db or "
                "postgresql+asyncpg://user:password@host:5432/db"
            )
        return value

    @field_validator("web_auth")
    @classmethod
    def _web_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            user, colon, password = value.get_secret_value().partition(":")
            if not (user and colon and password):
                raise ValueError("HUB_WEB_AUTH must be user:password (both non-empty)")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url(cls, value: str) -> str:
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                "SLACK_API_URL: not a URL; leave it unset for https://slack.com/api/ "
                "or write it like https://slack-gov.com/api/"
            )
        return value.strip()

    @field_validator("pagerduty_events_url")
    @classmethod
    def _pagerduty_events_url(cls, value: str) -> str:
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                f"HUB_PAGERDUTY_EVENTS_URL: not a URL; leave it unset for {PAGERDUTY_EVENTS_URL} "
                "or write it like https://events.eu.pagerduty.com/v2/enqueue"
            )
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                f'HUB_PUBLIC_URL "{value}" is not a URL; write it like https://hub.example.com'
            )
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> Settings:
        if self.lease_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"HUB_LEASE_SECONDS: use at least twice HUB_HEARTBEAT_SECONDS "
                f"({2 * self.heartbeat_s:g}), or lower HUB_HEARTBEAT_SECONDS: a lease shorter "
                "than two heartbeats loses every run to one slow heartbeat"
            )
        return self

    @model_validator(mode="after")
    def _sign_in_complete(self) -> Settings:
        given = [self.web_slack_client_id is not None, self.web_slack_client_secret is not None]
        if any(given) and not all(given):
            raise ValueError(
                "HUB_WEB_SLACK_CLIENT_ID and HUB_WEB_SLACK_CLIENT_SECRET: set both (the app's "
                "Basic Information page shows them), or neither to keep HUB_WEB_AUTH"
            )
        if all(given) and self.public_url is None:
            raise ValueError(
                "HUB_PUBLIC_URL: Sign in with Slack needs it, to send people back to "
                "<HUB_PUBLIC_URL>/auth/callback; write it like https://hub.example.com"
            )
        if all(given) and self.slack_bot_token is None:
            raise ValueError(
                "SLACK_BOT_TOKEN: Sign in with Slack needs it, to learn the app's team and who "
                "is in the channels that grant access"
            )
        return self

    @property
    def sign_in(self) -> bool:
        """Sign in with Slack is configured (else HUB_WEB_AUTH or loopback: operator mode)."""
        return self.web_slack_client_id is not None and self.web_slack_client_secret is not None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """The settings, or EnvironmentInvalid naming each bad variable (never its value)."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise EnvironmentInvalid(environment_problems(exc)) from None

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self.slack_app_token is not None
