"""Environment settings: the only place that reads ``os.environ``.

Secrets (Slack tokens, web auth) come only from here. ``Settings.from_env()`` is called once,
by the composition root or the CLI; importing this module reads nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config import WindowError, parse_window
from app.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/hub.db"


def _grace(value: Any) -> timedelta:
    """``HUB_MISFIRE_GRACE``: seconds (``900``) or a window (``15m``, ``1h``)."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        return parse_window(text)
    except WindowError:
        raise ValueError(
            f'"{value}" is not a misfire grace; use seconds (900) or a window such as 15m'
        ) from None


class EnvironmentInvalid(ConfigError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid environment:\n" + "\n".join(f"  {p}" for p in problems))


def environment_problems(exc: ValidationError) -> list[str]:
    """One line per bad variable: its name and what to do — never the value it had."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(message if message.startswith(name) else f"{name}: {message}")
    return problems


def _token(value: SecretStr | None, prefix: str, name: str, what: str) -> SecretStr | None:
    if value is not None and not value.get_secret_value().startswith(prefix):
        # Never echo the value: it is a secret even when it is the wrong one.
        raise ValueError(f"{name} must start with {prefix} ({what}); the value set does not")
    return value


class Settings(BaseSettings):
    """Everything the process reads from its environment, with the documented defaults."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    database_url: str = Field(default=DEFAULT_DATABASE_URL, alias="DATABASE_URL")
    config_dir: Path = Field(default=Path("./configs"), alias="HUB_CONFIG_DIR")
    web_host: str = Field(default="127.0.0.1", alias="HUB_WEB_HOST")
    web_port: int = Field(default=8080, alias="HUB_WEB_PORT")
    web_auth: SecretStr | None = Field(default=None, alias="HUB_WEB_AUTH")
    public_url: str | None = Field(default=None, alias="HUB_PUBLIC_URL")

    # Executor tuning. Defaults suit one machine; see docs/architecture.md.
    max_concurrent_runs: int = Field(default=4, alias="HUB_MAX_RUNS", ge=1)
    max_concurrent_targets: int = Field(default=32, alias="HUB_MAX_TARGETS", ge=1)
    aws_threads: int = Field(default=32, alias="HUB_AWS_THREADS", ge=1)
    check_timeout_s: float = Field(default=120.0, alias="HUB_CHECK_TIMEOUT", gt=0)
    lease_s: float = Field(default=30.0, alias="HUB_LEASE_SECONDS", gt=0)
    heartbeat_s: float = Field(default=5.0, alias="HUB_HEARTBEAT_SECONDS", gt=0)
    poll_s: float = Field(default=0.5, alias="HUB_POLL_SECONDS", gt=0)
    cancel_poll_s: float = Field(default=1.0, alias="HUB_CANCEL_POLL_SECONDS", gt=0)
    sweep_s: float = Field(default=5.0, alias="HUB_SWEEP_SECONDS", gt=0)
    grace_s: float = Field(default=20.0, alias="HUB_GRACE_SECONDS", ge=0)
    max_attempts: int = Field(default=3, alias="HUB_MAX_ATTEMPTS", ge=1)

    # Schedules (docs/schedules.md).
    misfire_grace: Annotated[timedelta, BeforeValidator(_grace)] = Field(
        default=timedelta(minutes=15), alias="HUB_MISFIRE_GRACE"
    )
    test_slot_s: int | None = Field(default=None, alias="HUB_TEST_SLOT_SECONDS", ge=1)
    """Tests only: every schedule fires every N seconds instead of on its cron."""

    @field_validator("slack_bot_token", "slack_app_token", "web_auth", mode="before")
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
