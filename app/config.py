"""Customer configuration: frozen pydantic models, validated once at the edge.

The YAML files are read by :mod:`app.loader`, which turns every problem into a message naming
the file and line. These models hold no I/O and may be imported by ``checks/``.

A validator that knows *where* inside its model the problem is raises :class:`LocatedError`
with that relative location, so the loader can point at the exact line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from checks import kinds

# Every pattern is ASCII-only and anchored with \Z, not $: "$" also matches before a trailing
# newline, and without re.ASCII "\d" takes any script's digits ("١٢٣"), which AWS and Slack don't.
_WINDOW = re.compile(r"^(\d+)([mhd])\Z", re.ASCII)
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}
MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=31)
"""The longest window a run may look back over. Longer is almost surely a typo (``300d`` for
``30d``), and no check gains from it: AWS Backup lists about a month of jobs, and CloudWatch keeps
the 1- and 5-minute RDS data the rds check reads for 15 and 63 days."""
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}\Z", re.ASCII)
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d\Z", re.ASCII)
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}\Z", re.ASCII)
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,20}\Z", re.ASCII)
_ACCOUNT_ID = re.compile(r"^\d{12}\Z", re.ASCII)


class WindowError(ValueError):
    """A window that is not ``<number><m|h|d>``."""


Loc = tuple[str | int, ...]


class LocatedError(ValueError):
    """A validation problem at ``loc``, relative to the model (or field) that raised it.

    ``more`` carries further (loc, message) problems found by the same validator, so a file
    with several of them gets them all reported at once.
    """

    def __init__(self, loc: Loc, message: str, more: tuple[tuple[Loc, str], ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.more = more

    @property
    def all(self) -> tuple[tuple[Loc, str], ...]:
        return ((self.loc, self.message), *self.more)


def _raise_all(found: list[tuple[Loc, str]]) -> None:
    if found:
        (loc, message), *more = found
        raise LocatedError(loc, message, tuple(more))


def parse_window(text: str) -> timedelta:
    """``30m``, ``12h`` or ``7d`` → a timedelta from 1 minute to 31 days; anything else, however
    long or large, raises :class:`WindowError` (never OverflowError or another ValueError)."""
    shown = clip(text)
    match = _WINDOW.match(text.strip().lower())
    if not match:
        raise WindowError(f'"{shown}" is not a window. Use a number and a unit: 30m, 12h or 7d.')
    digits = match.group(1).lstrip("0") or "0"
    # 31 days is 44,640 minutes: more than six digits is out of range, however many there are
    # (and int() refuses strings of over 4,300 digits).
    minutes = int(digits) * _MINUTES[match.group(2)] if len(digits) <= 6 else None
    if minutes is None or not MIN_WINDOW <= timedelta(minutes=minutes) <= MAX_WINDOW:
        raise WindowError(
            f'"{shown}" is out of range. Use a window from 1m to {format_window(MAX_WINDOW)}.'
        )
    return timedelta(minutes=minutes)


def clip(value: object, limit: int = 40) -> str:
    """``value`` as text to quote in a one-line message: control characters (a newline, a tab)
    escaped, and cut to ``limit`` characters."""
    if isinstance(value, int) and abs(value) >= 10**limit:
        return "a huge number"
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_window(value: timedelta) -> str:
    """The shortest exact spelling of a window: 12h, 7d, 90m."""
    minutes = int(value.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def window_setting(value: Any) -> timedelta:
    """Validator helper for check settings models that take a window (``12h``)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WindowError("a window is text such as 30m, 12h or 7d")
    return parse_window(value if isinstance(value, str) else clip(value))


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean "x"?`` for the closest choice, or an empty string."""
    hint = difflib.get_close_matches(name, list(choices), n=1)
    return f' Did you mean "{hint[0]}"?' if hint else ""


def _alias(value: str) -> str:
    if not _ALIAS.match(value):
        raise ValueError(
            f'"{clip(value)}" is not a valid id; use lowercase letters, digits, - and _ '
            "(at most 40, starting with a letter or digit), for example arbel"
        )
    return value


def _slack_id(value: str) -> str:
    if not _SLACK_ID.match(value):
        raise ValueError(
            f'"{clip(value)}" is not a Slack id; use the id (such as C0123456789 or U0123ABCD), '
            "not a #name or @name"
        )
    return value


def _account_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12:
        raise ValueError(
            f'write the account id in quotes, "{value:012d}", so YAML keeps it as text '
            "with every digit"
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f"{clip(value)} is not an AWS account id; write its 12 digits in quotes, "
            'for example "111122223333"'
        )
    if isinstance(value, str) and not _ACCOUNT_ID.match(value):
        raise ValueError(
            f'"{clip(value)}" is not an AWS account id; write its 12 digits (0-9) in quotes'
        )
    return value


def _check_kind(value: str) -> str:
    if value not in kinds.NAMES:
        raise ValueError(
            f'unknown check "{clip(value)}".{did_you_mean(value, kinds.NAMES)} '
            f"The checks are {', '.join(kinds.NAMES)}."
        )
    return value


def _no_repeats(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    seen: set[str] = set()
    found: list[tuple[Loc, str]] = []
    for index, value in enumerate(values):
        if value in seen:
            found.append(((index,), f'{what} "{clip(value)}" is listed twice; remove one'))
        seen.add(value)
    _raise_all(found)
    return values


Alias = Annotated[str, AfterValidator(_alias)]
SlackId = Annotated[str, AfterValidator(_slack_id)]
AccountId = Annotated[str, BeforeValidator(_account_id)]
CheckKind = Annotated[str, AfterValidator(_check_kind)]
Text = Annotated[str, Field(min_length=1)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Access(Frozen):
    users: tuple[SlackId, ...] = ()
    channels: tuple[SlackId, ...] = ()
    admins: tuple[SlackId, ...] = ()


class SlackSettings(Frozen):
    channel: SlackId | None = None
    access: Access = Access()


class Account(Frozen):
    id: Alias
    name: Text
    account_id: AccountId
    regions: tuple[str, ...]
    profile: Text | None = None
    role_arn: str | None = None
    external_id: Text | None = None
    checks: tuple[CheckKind, ...] = ()

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one region, for example [ap-southeast-3]")
        for index, region in enumerate(value):
            if not REGION.match(region):
                raise LocatedError(
                    (index,), f'"{clip(region)}" is not an AWS region name such as ap-southeast-3'
                )
        return _no_repeats(value, "region")

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str | None) -> str | None:
        if value is not None and not ROLE_ARN.match(value):
            raise ValueError(
                f'"{clip(value, 80)}" is not a role ARN; '
                "write arn:aws:iam::<12-digit account id>:role/<name>"
            )
        return value

    @field_validator("checks")
    @classmethod
    def _checks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _no_repeats(value, "check")

    @model_validator(mode="after")
    def _access(self) -> Account:
        found: list[tuple[Loc, str]] = []
        if self.external_id is not None and self.role_arn is None:
            found.append(
                (
                    ("external_id",),
                    "external_id is only used with role_arn; add role_arn or remove external_id",
                )
            )
        if self.profile is not None and self.role_arn is not None:
            found.append((("role_arn",), "use either profile or role_arn, not both"))
        match = ROLE_ARN.match(self.role_arn or "")
        if match and match.group(1) != self.account_id:
            found.append(
                (
                    ("role_arn",),
                    f"role_arn is in account {match.group(1)} but account_id is "
                    f"{self.account_id}; use the role in the account being checked",
                )
            )
        _raise_all(found)
        return self


class Schedule(Frozen):
    name: Alias
    cron: str
    checks: tuple[CheckKind, ...] = ()
    channel: SlackId | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f'"{clip(value)}" is not a 5-field cron expression '
                "(minute hour day month weekday); "
                'write it in quotes, for example "0 7 * * *"'
            )
        try:
            croniter(value, datetime(2000, 1, 1)).get_next(datetime)
        except CroniterBadDateError:
            raise ValueError(
                f'"{clip(value)}" never fires; check the day and month fields'
            ) from None
        return value

    @field_validator("checks")
    @classmethod
    def _checks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _no_repeats(value, "check")


class Customer(Frozen):
    id: Alias
    name: Text
    timezone: str = "UTC"
    slack: SlackSettings = SlackSettings()
    accounts: tuple[Account, ...]
    checks: dict[CheckKind, dict[str, Any]] = Field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            hint = did_you_mean(value, available_timezones())
            raise ValueError(
                f'unknown time zone "{clip(value)}".{hint} '
                "Use an IANA name such as Asia/Jakarta or UTC."
            ) from None
        return value

    @field_validator("checks", mode="before")
    @classmethod
    def _empty_settings(cls, value: Any) -> Any:
        """``rds:`` with nothing under it means the documented defaults."""
        if isinstance(value, dict):
            return {kind: {} if raw is None else raw for kind, raw in value.items()}
        return value

    @field_validator("accounts")
    @classmethod
    def _some_accounts(cls, value: tuple[Account, ...]) -> tuple[Account, ...]:
        if not value:
            raise ValueError("list at least one account")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Customer:
        found: list[tuple[Loc, str]] = []
        for index, account in enumerate(self.accounts):
            if any(a.id == account.id for a in self.accounts[:index]):
                found.append(
                    (
                        ("accounts", index, "id"),
                        f'account "{account.id}" is listed twice; rename one',
                    )
                )
        runs = {check for account in self.accounts for check in account.checks}
        for index, schedule in enumerate(self.schedules):
            if any(s.name == schedule.name for s in self.schedules[:index]):
                found.append(
                    (
                        ("schedules", index, "name"),
                        f'schedule "{schedule.name}" is listed twice; rename one',
                    )
                )
            if schedule.channel is None and self.slack.channel is None:
                found.append(
                    (
                        ("schedules", index),
                        f'schedule "{schedule.name}" has no channel to post to; '
                        "set slack.channel or the schedule's channel",
                    )
                )
            found.extend(
                (
                    ("schedules", index, "checks", position),
                    f'no account runs "{check}"; add it to an account\'s checks '
                    "or remove it from this schedule",
                )
                for position, check in enumerate(schedule.checks)
                if check not in runs
            )
        _raise_all(found)
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def account(self, alias: str) -> Account | None:
        return next((a for a in self.accounts if a.id == alias), None)
