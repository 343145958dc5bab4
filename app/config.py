"""Customer configuration: frozen pydantic models, validated once at the edge.

The YAML files are read by :mod:`app.loader`, which turns every problem into a message naming
the file and line. These models hold no I/O and may be imported by ``checks/``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

CHECK_KINDS: tuple[str, ...] = ("backup", "rds", "alarms", "budget", "http")
"""Every check kind a config may name; ``checks.registry`` implements exactly these."""

_WINDOW = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
MAX_WINDOW = timedelta(days=31)
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")


class WindowError(ValueError):
    """A window that is not ``<number><m|h|d>``."""


def parse_window(text: str) -> timedelta:
    """``30m``, ``12h`` or ``7d`` → a timedelta between 1 minute and 31 days."""
    match = _WINDOW.match(text.strip().lower())
    if not match:
        raise WindowError(f'"{text}" is not a window. Use a number and a unit: 30m, 12h or 7d.')
    value = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if not timedelta(minutes=1) <= value <= MAX_WINDOW:
        raise WindowError(f'"{text}" is out of range. Use a window from 1m to 31d.')
    return value


def format_window(value: timedelta) -> str:
    """The shortest exact spelling of a window: 12h, 7d, 90m."""
    minutes = int(value.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _window(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_window(str(value))


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Alias = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
SlackId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,20}$")]


class Access(Frozen):
    users: tuple[SlackId, ...] = ()
    channels: tuple[SlackId, ...] = ()
    admins: tuple[SlackId, ...] = ()


class SlackSettings(Frozen):
    channel: SlackId | None = None
    access: Access = Access()


class Account(Frozen):
    id: Alias
    name: str
    account_id: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
    regions: tuple[str, ...] = Field(min_length=1)
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    checks: tuple[str, ...] = ()

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for region in value:
            if not REGION.match(region):
                raise ValueError(f'"{region}" is not an AWS region name such as eu-west-1')
        return value

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str | None) -> str | None:
        if value is not None and not ROLE_ARN.match(value):
            raise ValueError(
                f'"{value}" is not a role ARN; write arn:aws:iam::<12-digit account>:role/<name>'
            )
        return value

    @field_validator("checks")
    @classmethod
    def _checks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _known_kinds(value)

    @model_validator(mode="after")
    def _access(self) -> Account:
        if self.external_id is not None and self.role_arn is None:
            raise ValueError("external_id is only used with role_arn; add role_arn or remove it")
        if self.profile is not None and self.role_arn is not None:
            raise ValueError("use either profile or role_arn, not both")
        return self


class Schedule(Frozen):
    name: Alias
    cron: str
    checks: tuple[str, ...] = ()
    channel: SlackId | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f'"{value}" is not a 5-field cron expression (minute hour day month weekday), '
                'for example "0 7 * * *"'
            )
        return value

    @field_validator("checks")
    @classmethod
    def _checks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _known_kinds(value)


def _known_kinds(kinds: tuple[str, ...]) -> tuple[str, ...]:
    for kind in kinds:
        if kind not in CHECK_KINDS:
            raise ValueError(f'unknown check "{kind}"; the checks are {", ".join(CHECK_KINDS)}')
    return kinds


class Customer(Frozen):
    id: Alias
    name: str
    timezone: str = "UTC"
    slack: SlackSettings = SlackSettings()
    accounts: tuple[Account, ...] = Field(min_length=1)
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'unknown time zone "{value}"; use an IANA name such as Asia/Jakarta or UTC'
            ) from None
        return value

    @field_validator("checks")
    @classmethod
    def _check_settings(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        _known_kinds(tuple(value))
        return value

    @model_validator(mode="after")
    def _unique(self) -> Customer:
        seen: set[str] = set()
        for account in self.accounts:
            if account.id in seen:
                raise ValueError(f'account "{account.id}" is listed twice')
            seen.add(account.id)
        names = [s.name for s in self.schedules]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f'schedule "{name}" is listed twice')
        for schedule in self.schedules:
            if schedule.channel is None and self.slack.channel is None:
                raise ValueError(
                    f'schedule "{schedule.name}" has no channel; set slack.channel or its channel'
                )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def account(self, alias: str) -> Account | None:
        return next((a for a in self.accounts if a.id == alias), None)


def window_setting(value: Any) -> timedelta:
    """Validator helper for check settings models that take a window."""
    return _window(value)
