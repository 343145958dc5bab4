"""Environment settings: the only place that reads ``os.environ``.

Secrets (Slack tokens, web auth) come only from here. ``Settings.from_env()`` is called once,
by the composition root or the CLI; importing this module reads nothing.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/hub.db"


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
    max_concurrent_targets: int = Field(default=16, alias="HUB_MAX_TARGETS", ge=1)
    aws_threads: int = Field(default=32, alias="HUB_AWS_THREADS", ge=1)
    check_timeout_s: float = Field(default=120.0, alias="HUB_CHECK_TIMEOUT", gt=0)
    lease_s: float = Field(default=30.0, alias="HUB_LEASE_SECONDS", gt=0)
    heartbeat_s: float = Field(default=5.0, alias="HUB_HEARTBEAT_SECONDS", gt=0)
    poll_s: float = Field(default=0.5, alias="HUB_POLL_SECONDS", gt=0)
    max_attempts: int = Field(default=3, alias="HUB_MAX_ATTEMPTS", ge=1)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        return cls(**overrides)  # type: ignore[arg-type]

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self.slack_app_token is not None
