"""Customer configuration: frozen pydantic models, validated once at the edge.

The YAML files are read by :mod:`app.loader`, which turns every problem into a message naming
the file and line. These models hold no I/O and may be imported by ``checks/``.

A validator that knows *where* inside its model the problem is raises :class:`LocatedError`
with that relative location, so the loader can point at the exact line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
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
_PORTAL = re.compile(r"^https://([a-z0-9][a-z0-9-]{0,62})\.awsapps\.com/start/?(#/?)?\Z", re.ASCII)
_PERMISSION_SET = re.compile(r"^[\w+=,.@-]{1,32}\Z", re.ASCII)
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}\Z", re.ASCII)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}\Z", re.ASCII)
_PAGERDUTY_KEY = re.compile(r"^[A-Za-z0-9]{32}\Z", re.ASCII)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""The hosts a webhook may be posted to over plain http://: this machine."""
MIN_WEBHOOK_SECRET = 16
"""The shortest secret a webhook's signature may be keyed with."""
MAX_REASON = 500
"""The longest reason a suppression, snooze or mute may give; link to anything longer."""


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


def _region(value: str) -> str:
    if not REGION.match(value):
        raise ValueError(f'"{clip(value)}" is not an AWS region name such as ap-southeast-3')
    return value


def reason_text(value: Any) -> Any:
    """A reason (of a suppression, a snooze or a mute), trimmed: required, at most
    :data:`MAX_REASON` characters."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(
            "give a reason, so whoever reads it later knows why these findings are quiet"
        )
    if not isinstance(value, str):
        return value  # pydantic says it must be text
    reason = value.strip()
    if len(reason) > MAX_REASON:
        raise ValueError(
            f"the reason is {len(reason)} characters; keep it to {MAX_REASON} "
            "and link to anything longer"
        )
    return reason


def _pattern(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(
            'an empty pattern matches nothing; write a glob such as "scratch-*", '
            "or leave resource out to match every resource"
        )
    return value


def _until(value: Any) -> Any:
    """A date or a date-time; text in ISO form is read as one (``2027-03-31 18:00``)."""
    if value is None or isinstance(value, date):  # a datetime is a date too
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(
        f'"{clip(value)}" is not a date; write 2027-03-31 (until that day ends) or '
        '"2027-03-31 18:00", in the customer\'s time zone'
    )


def _env_name(value: str) -> str:
    # never quoted back: what was written here may be the secret itself, pasted by mistake
    if not _ENV_NAME.match(value):
        raise ValueError(
            "not an environment variable name; write the name of the variable that holds the "
            "value (capital letters A-Z, digits and _, not starting with a digit, at most 128), "
            "such as PD_KEY_ARYANOBLE — never the value itself, which stays in the environment"
        )
    return value


def _severities(value: Any) -> Any:
    """Routed severities: at least one, each crit or warn, none twice."""
    if value is None or (isinstance(value, list | tuple) and not value):
        raise ValueError(
            "list the severities to send, [crit], [warn] or [crit, warn]; "
            "or leave severities out to send crit only"
        )
    if not isinstance(value, list | tuple):
        return value  # pydantic says it must be a list
    found: list[tuple[Loc, str]] = []
    seen: set[str] = set()
    for index, severity in enumerate(value):
        if not isinstance(severity, str) or severity not in ROUTED_SEVERITIES:
            hint = did_you_mean(str(severity).lower(), ROUTED_SEVERITIES)
            found.append(
                (
                    (index,),
                    f'"{clip(severity)}" is not a severity that can be sent.{hint} '
                    "Write crit or warn, such as [crit] or [crit, warn].",
                )
            )
        elif severity in seen:
            found.append(((index,), f'severity "{severity}" is listed twice; remove one'))
        seen.add(str(severity))
    _raise_all(found)
    return value


def _described(pattern: str, description: str, *examples: str) -> WithJsonSchema:
    """What the JSON Schema (``mhub config schema``) says of a text the validator checks: the
    same rule for an editor, with examples. It changes nothing the validator does."""
    return WithJsonSchema(
        {"type": "string", "pattern": pattern, "description": description, "examples": examples}
    )


Alias = Annotated[
    str,
    AfterValidator(_alias),
    _described(
        "^[a-z0-9][a-z0-9_-]{0,39}$",
        "An id: lowercase letters, digits, - and _, at most 40, starting with a letter or digit.",
        "arbel",
    ),
]
SlackId = Annotated[
    str,
    AfterValidator(_slack_id),
    _described(
        "^[A-Z0-9]{2,20}$",
        "A Slack id (a channel's C…, a user's U…), not a #name or @name.",
        "C0123456789",
        "U0123ABCD",
    ),
]
AccountId = Annotated[
    str,
    BeforeValidator(_account_id),
    _described("^[0-9]{12}$", "The AWS account id: 12 digits, in quotes.", "111122223333"),
]
CheckKind = Annotated[
    str,
    AfterValidator(_check_kind),
    WithJsonSchema(
        {
            "type": "string",
            "enum": list(kinds.NAMES),
            "description": "A check kind (docs/checks.md).",
        }
    ),
]
_REGION_SCHEMA = _described(
    "^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", "An AWS region name.", "ap-southeast-3"
)
Region = Annotated[str, AfterValidator(_region), _REGION_SCHEMA]
Text = Annotated[str, Field(min_length=1)]
EnvName = Annotated[
    str,
    AfterValidator(_env_name),
    _described(
        "^[A-Z_][A-Z0-9_]{0,127}$",
        "The name of the environment variable that holds the value — never the value itself.",
        "PD_KEY_ARYANOBLE",
    ),
]
"""The name of an environment variable that holds a secret or a URL (never the value)."""
RoutedSeverity = Literal["crit", "warn"]
ROUTED_SEVERITIES: tuple[RoutedSeverity, ...] = ("crit", "warn")
Severities = Annotated[tuple[RoutedSeverity, ...], BeforeValidator(_severities)]


class Frozen(BaseModel):
    # A field's docstring is its description in the JSON Schema (``mhub config schema``).
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )


class Access(Frozen):
    """Who may use this customer from Slack and the web view (docs/slack-setup.md); nobody
    when empty."""

    users: tuple[SlackId, ...] = ()
    """Slack users (U…) who may run checks and see results."""
    channels: tuple[SlackId, ...] = ()
    """Slack channels (C…) whose members may run checks and see results."""
    admins: tuple[SlackId, ...] = ()
    """Slack users (U…) who may also cancel and retry anyone's runs."""


class SlackSettings(Frozen):
    channel: SlackId | None = None
    """Where the customer's result cards and digests are posted (a channel id, C…)."""
    access: Access = Access()
    """Who may see this customer; denied to everyone by default."""


class Account(Frozen):
    """One AWS account of the customer, reached through a read-only role or profile."""

    id: Alias
    """The account's alias, used in commands: `mhub run arbel`; unique across customers."""
    name: Text
    """The account's name as people say it."""
    account_id: AccountId
    """The 12-digit AWS account id, in quotes."""
    regions: tuple[Annotated[str, _REGION_SCHEMA], ...]
    """The regions its checks look at, such as [ap-southeast-3, us-east-1]."""
    profile: Text | None = None
    """An AWS profile to use instead of role_arn (local use)."""
    role_arn: str | None = None
    """The read-only role to assume in this account: arn:aws:iam::<account_id>:role/<name>."""
    external_id: Text | None = None
    """The external id the role's trust policy asks for (with role_arn)."""
    checks: tuple[CheckKind, ...] = ()
    """The check kinds run on this account by default (docs/checks.md)."""

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


_ORG_PARENT = re.compile(r"^(ou-[0-9a-z]{4,32}-[0-9a-z]{4,32}|r-[0-9a-z]{4,32})\Z", re.ASCII)
_TAG_KEY = re.compile(r"^[\w .:/=+@-]{1,128}\Z", re.ASCII)
DEFAULT_ACCOUNT_ROLE = "MonitoringReadOnly"
"""The role assumed in each account discovered from an organization, unless told otherwise."""


def _org_parent(value: str) -> str:
    if not _ORG_PARENT.match(value):
        raise ValueError(
            f'"{clip(value)}" is not an organizational unit id (ou-ab12-cdef3456) or the root\'s '
            "id (r-ab12); copy it from AWS Organizations → AWS accounts"
        )
    return value


def _role_name(value: str) -> str:
    if not _ROLE_NAME.match(value):
        raise ValueError(
            f'"{clip(value, 80)}" is not a role name; write the name alone (at most 64 '
            f"letters, digits and +=,.@_-), such as {DEFAULT_ACCOUNT_ROLE}, not its ARN"
        )
    return value


def _tag_key(value: str) -> str:
    if not _TAG_KEY.match(value):
        raise ValueError(
            f'"{clip(value)}" is not a tag key; write the key alone (at most 128 letters, '
            "digits, spaces and _.:/=+-@), such as monitoring-alias"
        )
    return value


OrgParent = Annotated[
    str,
    AfterValidator(_org_parent),
    _described(
        "^(ou-[0-9a-z]{4,32}-[0-9a-z]{4,32}|r-[0-9a-z]{4,32})$",
        "An organizational unit id (ou-…) or the organization root's id (r-…).",
        "ou-ab12-cdef3456",
        "r-ab12",
    ),
]


class OrganizationDefaults(Frozen):
    """What every account discovered from the organization gets, as an explicit account
    would write it."""

    regions: tuple[Annotated[str, _REGION_SCHEMA], ...]
    """The regions to look at; each account gets those of them it has enabled."""
    checks: tuple[CheckKind, ...] = ()
    """The check kinds run on each discovered account by default (docs/checks.md)."""

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return Account._regions(value)  # the rule of an account's regions

    @field_validator("checks")
    @classmethod
    def _checks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _no_repeats(value, "check")


class Organization(Frozen):
    """Accounts discovered from AWS Organizations (docs/organizations.md), beside the ones
    listed under ``accounts:``: read through ``role_arn`` in the management (or delegated
    administrator) account, every ``HUB_ORG_SYNC_HOURS`` and by ``mhub accounts sync``."""

    role_arn: str
    """The role that reads the organization: arn:aws:iam::<management account>:role/<name>."""
    external_id: Text | None = None
    """The external id the roles' trust policies ask for (the organization role's and each
    account's)."""
    include_ous: tuple[OrgParent, ...] | None = None
    """The organizational units whose accounts are monitored (and those of the OUs under
    them); left out (None): the whole organization."""
    exclude_accounts: tuple[AccountId, ...] = ()
    """Account ids never monitored from the organization."""
    account_role: Annotated[
        str,
        AfterValidator(_role_name),
        _described("^[\\w+=,.@-]{1,64}$", "An IAM role name.", DEFAULT_ACCOUNT_ROLE),
    ] = DEFAULT_ACCOUNT_ROLE
    """The role assumed in each discovered account (its name; the same in every account)."""
    alias_from_tag: Annotated[
        str | None,
        AfterValidator(lambda v: None if v is None else _tag_key(v)),
        WithJsonSchema(
            {
                "type": "string",
                "description": "A tag key on the accounts whose value is the alias.",
                "examples": ["monitoring-alias"],
            }
        ),
    ] = None
    """The account tag whose value is its alias; left out (None), or an account without the
    tag: a slug of the account's name."""
    defaults: OrganizationDefaults
    """The regions and checks of every discovered account."""

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, value: str) -> str:
        checked = Account._role_arn(value)  # the rule of an account's role_arn
        assert checked is not None
        return checked

    @field_validator("include_ous")
    @classmethod
    def _some_ous(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError(
                "list at least one OU id, or leave include_ous out to monitor the whole "
                "organization"
            )
        return _no_repeats(value, "OU")

    @field_validator("exclude_accounts")
    @classmethod
    def _excluded(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _no_repeats(value, "account")

    @property
    def account_id(self) -> str:
        """The account that holds ``role_arn``: the management or delegated administrator."""
        match = ROLE_ARN.match(self.role_arn)
        assert match is not None
        return match.group(1)

    @property
    def partition(self) -> str:
        return self.role_arn.split(":", 2)[1]

    def member_role_arn(self, account_id: str) -> str:
        """The role assumed in a discovered account."""
        return f"arn:{self.partition}:iam::{account_id}:role/{self.account_role}"


ScheduleKind = Literal["digest", "report"]


class Schedule(Frozen):
    """When something is posted to a customer's channel, on a cron read in the customer's zone.

    - ``kind: digest`` (the default): each slot runs ``checks`` (default: every account's
      configured checks) and posts the run's digest.
    - ``kind: report``: each slot posts the monthly report PDF of the **calendar month before
      the slot** (in the customer's zone: a slot on 1 December 09:00 posts November), once per
      month however often the cron fires; it covers every check, so it lists none.
    """

    name: Alias
    """The schedule's name, unique within the customer: `mhub digest send CUSTOMER NAME`."""
    cron: Annotated[
        str,
        WithJsonSchema(
            {
                "type": "string",
                "description": "When it fires: a 5-field cron (minute hour day month weekday) "
                "read in the customer's time zone, in quotes.",
                "examples": ["0 7 * * *", "0 9 1 * *"],
            }
        ),
    ]
    kind: ScheduleKind = "digest"
    """digest: run checks and post the digest; report: post last month's report PDF."""
    checks: tuple[CheckKind, ...] = ()
    """The checks a digest runs; default: every account's configured checks."""
    channel: SlackId | None = None
    """Where it posts; default: slack.channel."""

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

    @model_validator(mode="after")
    def _report_checks(self) -> Schedule:
        if self.kind == "report" and self.checks:
            raise LocatedError(("checks",), "a report schedule covers every check; remove checks:")
        return self


class Suppression(Frozen):
    """A mute rule written in the customer's YAML (``suppress:``): the findings it matches are
    counted, never listed as problems. See docs/findings.md."""

    check: CheckKind
    """The check kind whose findings it mutes."""
    account: Alias | None = None
    """The account alias it covers; left out (None): every account of the customer."""
    region: Region | None = None
    """The region it covers; left out (None): every region."""
    resource: Annotated[str, BeforeValidator(_pattern)] = "*"
    """A glob over the resource label or its fingerprint."""
    reason: Annotated[str, BeforeValidator(reason_text)]
    """Why these findings are quiet, for whoever reads it later (at most 500 characters)."""
    owner: SlackId | None = None
    """Who to ask about it (a Slack user id)."""
    until: Annotated[date | datetime | None, BeforeValidator(_until)] = None
    """A date (the end of that day) or a date-time, in the customer's time zone."""

    def ends(self, tz: tzinfo) -> datetime | None:
        """When it stops, in UTC: ``until`` read in ``tz`` (a date-time without an offset) or
        the end of that day (a date); None when it never does."""
        if isinstance(self.until, datetime):
            moment = self.until if self.until.tzinfo else self.until.replace(tzinfo=tz)
            return moment.astimezone(UTC)
        if isinstance(self.until, date):
            next_day = datetime.combine(self.until + timedelta(days=1), time(), tzinfo=tz)
            return next_day.astimezone(UTC)
        return None


MAX_MAINTENANCE = timedelta(days=7)
"""The longest a maintenance window may last. Longer is almost surely a typo (``70h`` for
``7h``), and findings that must stay quiet for longer want a mute rule (``suppress:``)."""


def maintenance_length(text: str) -> timedelta:
    """``30m``, ``2h`` or ``1d`` → how long a maintenance window lasts, from 1 minute to
    :data:`MAX_MAINTENANCE`; anything else raises :class:`WindowError` saying what to write."""
    shown = clip(text)
    match = _WINDOW.match(text.strip().lower())
    if not match:
        raise WindowError(f'"{shown}" is not a duration. Use a number and a unit: 30m, 2h or 1d.')
    digits = match.group(1).lstrip("0") or "0"
    minutes = int(digits) * _MINUTES[match.group(2)] if len(digits) <= 6 else None
    if minutes == 0:
        raise WindowError(
            f'"{shown}" is no time at all. Give a duration from 1m to 7d, such as 2h.'
        )
    if minutes is None or timedelta(minutes=minutes) > MAX_MAINTENANCE:
        raise WindowError(
            f'"{shown}" is too long: a maintenance window lasts at most '
            f"{format_window(MAX_MAINTENANCE)}. Use a shorter one, or mute the findings instead."
        )
    return timedelta(minutes=minutes)


def _maintenance_duration(value: Any) -> Any:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WindowError("a duration is text such as 30m, 2h or 1d")
    if isinstance(value, int):
        raise WindowError(f"{clip(value)} has no unit; write it as 30m, 2h or 1d")
    return maintenance_length(value)


def _moment(value: Any) -> Any:
    """A date and time, such as ``2026-12-12 22:00`` (YAML reads one with seconds itself)."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value.strip()) > 10:
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(
        f'"{clip(value)}" is not a date and time; write it as "2026-12-12 22:00", '
        "in the customer's time zone"
    )


def _optional_reason(value: Any) -> Any:
    return None if value is None else reason_text(value)


def in_zone(moment: datetime, tz: tzinfo) -> datetime:
    """A time written in the customer's file as an instant in UTC: one without an offset is
    wall-clock time in ``tz`` (a time in a spring-forward gap is shifted forward by the gap,
    one that happens twice at a fall-back is its first occurrence, as for schedules)."""
    local = moment if moment.tzinfo else moment.replace(tzinfo=tz, fold=0)
    return local.astimezone(UTC)


class MaintenanceWindow(Frozen):
    """A maintenance window in the customer's YAML (``maintenance:``): recurring (``cron`` and
    ``duration``) or once (``start`` and ``end``), in the customer's time zone. Findings in its
    scope while it lasts are labelled, not routed, and do not raise an outcome. See
    docs/maintenance.md."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    """What the window is for, as people say it: RDS upgrades."""
    accounts: tuple[Alias, ...] | None = None
    """The account aliases it covers; left out (None): every account of the customer."""
    checks: tuple[CheckKind, ...] | None = None
    """The check kinds it covers; left out (None): every check."""
    cron: str | None = None
    """When each window starts, as wall-clock time in the customer's zone."""
    duration: Annotated[timedelta | None, BeforeValidator(_maintenance_duration)] = None
    """How long each window of a recurring one lasts (with cron): 30m to 7d."""
    start: Annotated[datetime | None, BeforeValidator(_moment)] = None
    """When a one-off window opens (with end), in the customer's zone."""
    end: Annotated[datetime | None, BeforeValidator(_moment)] = None
    """When a one-off window closes, at most 7 days after start."""
    reason: Annotated[str | None, BeforeValidator(_optional_reason)] = None
    """Why, shown beside the findings during it."""

    @field_validator("accounts", "checks")
    @classmethod
    def _some(cls, value: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        if value is None:
            return None
        what = "account" if info.field_name == "accounts" else "check"
        if not value:
            raise ValueError(
                f"list at least one {what}, or leave {info.field_name} out to cover every {what}"
            )
        return _no_repeats(value, what)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else Schedule._cron(value)  # the rule of a schedule's cron

    @model_validator(mode="after")
    def _recurring_or_once(self) -> MaintenanceWindow:
        found: list[tuple[Loc, str]] = []
        once = self.start is not None or self.end is not None
        if self.cron is not None:
            if once:
                key = "start" if self.start is not None else "end"
                found.append(
                    (
                        (key,),
                        "use either cron with duration (a recurring window) or start and end "
                        "(a one-off window), not both",
                    )
                )
            elif self.duration is None:
                found.append(((), "add duration, how long each window lasts, such as 2h"))
        elif self.duration is not None:
            found.append(
                (
                    ("duration",),
                    "duration is only used with cron; add cron for a recurring window, or give "
                    "start and end instead",
                )
            )
        elif not once:
            found.append(
                (
                    (),
                    "give cron and duration (a recurring window) or start and end (a one-off "
                    "window)",
                )
            )
        elif self.start is None:
            found.append(((), 'add start, when the window opens, such as "2026-12-12 22:00"'))
        elif self.end is None:
            found.append(((), 'add end, when the window closes, such as "2026-12-13 04:00"'))
        elif (problem := _written_span_problem(self.start, self.end)) is not None:
            found.append((("end",), problem))
        _raise_all(found)
        return self

    def once(self, tz: tzinfo) -> tuple[datetime, datetime] | None:
        """(start, end) of a one-off window in UTC, read in ``tz``; None for a recurring one."""
        if self.start is None or self.end is None:
            return None
        return in_zone(self.start, tz), in_zone(self.end, tz)


class Console(Frozen):
    """How people open a customer's accounts in the AWS console, so a finding can link to its
    resource there (``checks/console.py``): through the IAM Identity Center access portal with
    a permission set, or by switching role from their own sign-in. Nothing here is a secret."""

    sso_start_url: str | None = None
    """The AWS access portal, ``https://<name>.awsapps.com/start``."""
    permission_set: str | None = None
    """The permission set to open each account with, such as ``ReadOnlyAccess``."""
    switch_role: str | None = None
    """The name of the role to switch to in each account, such as ``OpsReadOnly``."""

    @field_validator("sso_start_url")
    @classmethod
    def _portal(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _PORTAL.match(value.strip())
        if not match:
            raise ValueError(
                f'"{clip(value, 80)}" is not an AWS access portal URL; write '
                "https://<name>.awsapps.com/start as IAM Identity Center shows it under "
                "Settings → AWS access portal URL"
            )
        return f"https://{match.group(1)}.awsapps.com/start"

    @field_validator("permission_set")
    @classmethod
    def _permission_set(cls, value: str | None) -> str | None:
        if value is not None and not _PERMISSION_SET.match(value):
            raise ValueError(
                f'"{clip(value)}" is not a permission set name; write its name as the access '
                "portal shows it (at most 32 letters, digits and +=,.@_-), such as ReadOnlyAccess"
            )
        return value

    @field_validator("switch_role")
    @classmethod
    def _switch_role(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_NAME.match(value):
            raise ValueError(
                f'"{clip(value, 80)}" is not a role name; write the name alone (at most 64 '
                "letters, digits and +=,.@_-), such as OpsReadOnly, not its ARN or path"
            )
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Console:
        sso = self.sso_start_url is not None or self.permission_set is not None
        if sso and self.switch_role is not None:
            raise LocatedError(
                ("switch_role",),
                "use either sso_start_url with permission_set, or switch_role, not both",
            )
        if self.sso_start_url is not None and self.permission_set is None:
            raise LocatedError(
                ("sso_start_url",),
                "add permission_set, the permission set to open each account with "
                "(such as ReadOnlyAccess)",
            )
        if self.permission_set is not None and self.sso_start_url is None:
            raise LocatedError(
                ("permission_set",),
                "permission_set is only used with sso_start_url; add sso_start_url",
            )
        if not sso and self.switch_role is None:
            raise ValueError(
                "set sso_start_url and permission_set, or switch_role; or remove console "
                "to show no console links"
            )
        return self


EMPTY_ROUTING = (
    "routing sends nothing without a destination; add alerts_channel:, pagerduty: or "
    "webhooks: under it, or remove routing"
)


def _environment(info: ValidationInfo) -> Mapping[str, str] | None:
    """The environment to check ``*_env`` variables in, when the loader gives one."""
    return info.context.env if isinstance(info.context, Checking) else None


def _set_value(env: Mapping[str, str], name: str, holds: str) -> str:
    """The value of ``name``; ValueError, naming the variable (never its value), when it is
    unset, empty or has blanks around it."""
    value = env.get(name)
    if value is None:
        raise ValueError(f"{name} is not set; set it in the hub's environment to {holds}")
    if not value.strip():
        raise ValueError(f"{name} is empty; set it to {holds}")
    if value != value.strip():
        raise ValueError(f"{name} has spaces or a line break around its value; remove them")
    return value


def _webhook_url_problem(name: str, url: str) -> str | None:
    """What is wrong with the webhook URL in ``name`` (never quoting it), or None."""
    use = "use https://host/path (http:// is allowed only to 127.0.0.1, ::1 or localhost)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number in range)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or any(c.isspace() or not c.isprintable() for c in url)
    ):
        return f"{name} is not a URL to post to; {use}"
    if "@" in parts.netloc:
        return (
            f"{name} has a user name or password in it (user:password@host); remove it — "
            "the receiver checks the hub's signature, made with the secret in secret_env, instead"
        )
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        return (
            f"{name} is an http:// URL to another machine, which would send findings "
            f"unencrypted; {use}"
        )
    return None


class PagerDutyRoute(Frozen):
    """Send findings to a PagerDuty service through its Events API v2 integration."""

    routing_key_env: EnvName
    """The environment variable that holds the integration key."""
    severities: Severities = ("crit",)

    @field_validator("routing_key_env")
    @classmethod
    def _key_in_environment(cls, name: str, info: ValidationInfo) -> str:
        env = _environment(info)
        if env is not None:
            key = _set_value(
                env,
                name,
                "the PagerDuty Events API v2 integration key (32 letters and digits, from the "
                "service's Integrations tab)",
            )
            if not _PAGERDUTY_KEY.match(key):
                raise ValueError(
                    f"{name} is not a PagerDuty Events API v2 integration key (32 letters and "
                    "digits) — copy it from the service's Integrations tab"
                )
        return name


class WebhookRoute(Frozen):
    """POST findings as JSON, signed with HMAC-SHA256, to a URL (docs/routing.md)."""

    url_env: EnvName
    """The environment variable that holds the URL."""
    secret_env: EnvName
    """The environment variable that holds the secret the body is signed with."""
    severities: Severities = ("crit",)

    @field_validator("url_env")
    @classmethod
    def _url_in_environment(cls, name: str, info: ValidationInfo) -> str:
        env = _environment(info)
        if env is not None:
            url = _set_value(env, name, "the https:// URL to post findings to")
            problem = _webhook_url_problem(name, url)
            if problem is not None:
                raise ValueError(problem)
        return name

    @field_validator("secret_env")
    @classmethod
    def _secret_in_environment(cls, name: str, info: ValidationInfo) -> str:
        env = _environment(info)
        if env is not None:
            holds = (
                f"a secret of at least {MIN_WEBHOOK_SECRET} characters shared with the "
                "receiver (such as the output of `openssl rand -hex 32`)"
            )
            secret = _set_value(env, name, holds)
            if len(secret) < MIN_WEBHOOK_SECRET:
                raise ValueError(
                    f"{name} is shorter than {MIN_WEBHOOK_SECRET} characters; set it to {holds}"
                )
        return name


class Routing(Frozen):
    """Where a customer's findings are sent as they change (docs/routing.md). The values of
    the ``*_env`` variables are read from the environment, never written here."""

    alerts_channel: SlackId | None = None
    """New critical findings and blind spots are posted here at once, one thread each."""
    pagerduty: PagerDutyRoute | None = None
    webhooks: tuple[WebhookRoute, ...] = ()

    @model_validator(mode="after")
    def _somewhere(self) -> Routing:
        if self.alerts_channel is None and self.pagerduty is None and not self.webhooks:
            raise ValueError(EMPTY_ROUTING)
        return self

    def destinations(self) -> list[tuple[str, tuple[str, ...]]]:
        """(name, severities) of each destination: ``pagerduty``, then ``webhook:0``,
        ``webhook:1``… in the order written."""
        out: list[tuple[str, tuple[str, ...]]] = []
        if self.pagerduty is not None:
            out.append(("pagerduty", self.pagerduty.severities))
        out.extend((f"webhook:{i}", hook.severities) for i, hook in enumerate(self.webhooks))
        return out


@dataclass(frozen=True)
class Checking:
    """What validating a customer may know beyond its own file (pass it as the ``context``
    of :meth:`Customer.model_validate`): the time, since an ``until`` that has passed is a
    mistake, which customer each account alias of the other files belongs to, and the
    environment the routing variables must be set in."""

    now: datetime | None
    """None: a suppression that has ended is not reported (it is simply no longer in force).
    ``mhub config check`` says what time it is, so an ended one is reported there, while the
    hub itself still starts with it (a restart after the date must not take a customer away)."""
    owners: Mapping[str, str] = field(default_factory=dict)
    """Account alias → the id of the customer whose file lists it."""
    env: Mapping[str, str] | None = None
    """The environment the ``routing`` variables are read from when sending: each one named
    must be set, and hold a key, URL or secret of the right form. None: not checked."""


def _ended(rule: Suppression, ends: datetime, tz: tzinfo) -> str:
    until = rule.until
    written = until.isoformat(" ", "minutes") if isinstance(until, datetime) else str(until)
    shown = ends.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"{written} has passed (the suppression ended {shown}); remove it, "
        "or set until to a time still to come"
    )


def _not_ours(
    alias: str,
    customer: str | None,
    accounts: tuple[Account, ...],
    owner: str | None,
    *,
    window: bool = False,
) -> str:
    """Why a suppression (or a maintenance ``window``) may not name ``alias``, which another
    customer (``owner``) may own."""
    ours = ", ".join(account.id for account in accounts)
    thing = "window" if window else "suppression"
    if owner is not None and owner != customer:
        this = customer or "this customer"
        name = (
            f"name one of {this}'s accounts ({ours})"
            if window
            else f"a suppression here quiets only {this}'s findings — name one of its "
            f"accounts ({ours})"
        )
        return (
            f'"{alias}" is an account of customer {owner}, not of {this}; {name}, '
            f"or move the {thing} to {owner}'s file"
        )
    hint = did_you_mean(alias, [account.id for account in accounts])
    key = "accounts" if window else "account"
    return (
        f'unknown account "{alias}".{hint} This customer\'s accounts are {ours}; '
        f"leave {key} out to cover them all."
    )


def _maybe_discovered(discovers: bool, owner: str | None, customer: str | None) -> bool:
    """Whether an alias this customer does not list may be one of its accounts discovered
    from its organization: it has one, and no other customer lists the alias."""
    return discovers and (owner is None or owner == customer)


def _span_problem(
    window: MaintenanceWindow, starts: datetime, ends: datetime, tz: tzinfo
) -> str | None:
    """What is wrong with a one-off window from ``starts`` to ``ends`` (UTC) that its model
    could not see without the customer's zone (:func:`_written_span_problem` sees the rest),
    or None."""
    start, end = window.start, window.end
    if start is None or end is None or _written_span_problem(start, end) is not None:
        return None
    if ends <= starts and start.tzinfo is None and end.tzinfo is None:
        opens = starts.astimezone(tz).strftime("%H:%M %Z")
        return (
            f"start {_written(start)} is in the hour the clocks skip that day, so the window "
            f"would open at {opens}, after its end; move start or end"
        )
    if ends <= starts:
        return _not_after(start, end)
    if ends - starts > MAX_MAINTENANCE and (start.tzinfo is None) != (end.tzinfo is None):
        return _too_long(ends - starts)
    return None


def _written_span_problem(start: datetime, end: datetime) -> str | None:
    """What is wrong with a one-off window as written, when both ends are written alike (both
    with an offset, or both without), or None."""
    if (start.tzinfo is None) != (end.tzinfo is None):
        return None
    if end <= start:
        return _not_after(start, end)
    if end - start > MAX_MAINTENANCE:
        return _too_long(end - start)
    return None


def _not_after(start: datetime, end: datetime) -> str:
    return (
        f"end {_written(end)} is not after start {_written(start)}; "
        "set end to when the window closes"
    )


def _too_long(length: timedelta) -> str:
    return (
        f"the window lasts {length / timedelta(days=1):.1f} days; a maintenance window lasts at "
        f"most {format_window(MAX_MAINTENANCE)} — split it, or mute the findings instead"
    )


def _written(moment: datetime | None) -> str:
    return moment.isoformat(" ", "minutes") if moment is not None else ""


class Customer(Frozen):
    id: Alias
    """The customer's id, the file's name without .yaml: `mhub run aryanoble`."""
    name: Text
    """The customer's name as people say it, on cards, digests and reports."""
    timezone: Annotated[
        str,
        WithJsonSchema(
            {
                "type": "string",
                "description": "An IANA time zone: schedules, digests and every time shown "
                "are in it.",
                "examples": ["Asia/Jakarta", "Europe/London", "UTC"],
            }
        ),
    ] = "UTC"
    slack: SlackSettings = SlackSettings()
    """The customer's Slack channel and who may see it."""
    accounts: tuple[Account, ...] = ()
    """The customer's AWS accounts: at least one, unless ``organization`` discovers them."""
    organization: Organization | None = None
    """Accounts discovered from AWS Organizations, beside ``accounts`` (docs/organizations.md);
    left out (None): only the accounts listed."""
    checks: dict[CheckKind, dict[str, Any]] = Field(default_factory=dict)
    """Settings of each check kind (docs/checks.md); a kind left out keeps its defaults."""
    schedules: tuple[Schedule, ...] = ()
    """Digests and reports posted on a cron (docs/schedules.md)."""
    suppress: tuple[Suppression, ...] = ()
    """Mute rules: findings they match are counted, never listed as problems
    (docs/findings.md)."""
    maintenance: tuple[MaintenanceWindow, ...] = ()
    """Maintenance windows: findings during them are labelled, not routed
    (docs/maintenance.md)."""
    console: Console | None = None
    """How findings link to their resource in the AWS console; left out (None): no link."""
    routing: Routing | None = None
    """Where findings are sent as they change; left out (None): nowhere (only cards and
    digests)."""

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

    @field_validator("suppress")
    @classmethod
    def _suppressions(
        cls, value: tuple[Suppression, ...], info: ValidationInfo
    ) -> tuple[Suppression, ...]:
        """Each suppression names one of this customer's accounts and, when the loader says
        what time it is (:class:`Checking`), has not ended. Checked here rather than with the
        whole customer so these are reported even while other keys have problems."""
        accounts: tuple[Account, ...] | None = info.data.get("accounts")
        timezone: str | None = info.data.get("timezone")
        checking = info.context if isinstance(info.context, Checking) else None
        discovers = info.data.get("organization") is not None
        found: list[tuple[Loc, str]] = []
        for index, rule in enumerate(value):
            if (
                accounts
                and rule.account is not None
                and not any(a.id == rule.account for a in accounts)
            ):
                owner = checking.owners.get(rule.account) if checking else None
                if not _maybe_discovered(discovers, owner, info.data.get("id")):
                    message = _not_ours(rule.account, info.data.get("id"), accounts, owner)
                    found.append(((index, "account"), message))
            if checking is not None and checking.now is not None and timezone is not None:
                tz = ZoneInfo(timezone)
                ends = rule.ends(tz)
                if ends is not None and ends <= checking.now:
                    found.append(((index, "until"), _ended(rule, ends, tz)))
        _raise_all(found)
        return value

    @field_validator("maintenance")
    @classmethod
    def _maintenance(
        cls, value: tuple[MaintenanceWindow, ...], info: ValidationInfo
    ) -> tuple[MaintenanceWindow, ...]:
        """Each window names this customer's accounts and checks they run, and a one-off one
        ends after it starts, at most :data:`MAX_MAINTENANCE` later (overlapping is fine)."""
        accounts: tuple[Account, ...] | None = info.data.get("accounts")
        timezone: str | None = info.data.get("timezone")
        checking = info.context if isinstance(info.context, Checking) else None
        organization: Organization | None = info.data.get("organization")
        tz = ZoneInfo(timezone) if timezone else UTC
        found: list[tuple[Loc, str]] = []
        for index, window in enumerate(value):
            if accounts:
                for position, alias in enumerate(window.accounts or ()):
                    if not any(a.id == alias for a in accounts):
                        owner = checking.owners.get(alias) if checking else None
                        customer_id = info.data.get("id")
                        if _maybe_discovered(organization is not None, owner, customer_id):
                            continue
                        message = _not_ours(alias, customer_id, accounts, owner, window=True)
                        found.append(((index, "accounts", position), message))
                covered = [
                    a for a in accounts if window.accounts is None or a.id in window.accounts
                ]
                runs = {check for account in covered for check in account.checks}
                if organization is not None:
                    runs.update(organization.defaults.checks)
                found.extend(
                    (
                        (index, "checks", position),
                        f'no account in this window runs "{check}"; add it to an account\'s '
                        "checks or remove it from this window",
                    )
                    for position, check in enumerate(window.checks or ())
                    if covered and check not in runs
                )
            span = window.once(tz)
            if span is not None:
                problem = _span_problem(window, *span, tz)
                if problem is not None:
                    found.append(((index, "end"), problem))
        _raise_all(found)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Customer:
        found: list[tuple[Loc, str]] = []
        if not self.accounts and self.organization is None:
            found.append(
                (
                    ("accounts",),
                    "list at least one account, or add organization: to discover them from "
                    "AWS Organizations (docs/organizations.md)",
                )
            )
        for index, account in enumerate(self.accounts):
            if any(a.id == account.id for a in self.accounts[:index]):
                found.append(
                    (
                        ("accounts", index, "id"),
                        f'account "{account.id}" is listed twice; rename one',
                    )
                )
        runs = {check for account in self.accounts for check in account.checks}
        if self.organization is not None:
            runs.update(self.organization.defaults.checks)
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
