"""The ``/monitor`` grammar: command text → a typed command value. Pure, no I/O.

::

    /monitor                                   open the "Run checks" modal (for now: help)
    /monitor run TARGET [CHECK ...] [--window 12h]
    /monitor status RUN_ID                     RUN_ID as 1842 or #1842
    /monitor list [CUSTOMER]
    /monitor cancel RUN_ID | retry RUN_ID
    /monitor customers | schedules | help
    /monitor maintenance TARGET DURATION [reason]
    /monitor report CUSTOMER [YYYY-MM]         default: the last whole month in its zone

Whether a TARGET or CHECK exists is the catalogue's question (it answers with "did you mean");
this module only knows the shape. Malformed text raises :class:`~app.errors.UsageError` with what
to type instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from app.config import (
    MAX_REASON,
    WindowError,
    format_window,
    maintenance_length,
    parse_window,
)
from app.engine.runs import parse_run_id
from app.errors import UsageError, quoted
from app.reports.period import ReportError, month_start
from blocks.ids import COMMAND

MAX_TEXT = 2000
MAX_NAME = 64
MAX_CHECKS = 20
USAGE = {
    "run": f"`{COMMAND} run TARGET [CHECK ...] [--window 12h]`, for example "
    f"`{COMMAND} run acme-prod rds --window 12h`",
    "status": f"`{COMMAND} status RUN_ID`, for example `{COMMAND} status 1842`",
    "list": f"`{COMMAND} list [CUSTOMER]`",
    "cancel": f"`{COMMAND} cancel RUN_ID`",
    "retry": f"`{COMMAND} retry RUN_ID`",
    "customers": f"`{COMMAND} customers`",
    "schedules": f"`{COMMAND} schedules`",
    "help": f"`{COMMAND} help`",
    "maintenance": f"`{COMMAND} maintenance TARGET DURATION [reason]`, for example "
    f"`{COMMAND} maintenance acme-prod 2h Engine upgrade`",
    "report": f"`{COMMAND} report CUSTOMER [YYYY-MM]`, for example `{COMMAND} report acme 2026-11`",
}
VERBS = tuple(USAGE)
_DASHES = re.compile(r"^[\u2010-\u2015\u2212]+")  # ‐ ‑ ‒ – — ― − typed or auto-corrected
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*", re.ASCII)


@dataclass(frozen=True)
class RunCommand:
    target: str
    checks: tuple[str, ...] = ()
    window: timedelta | None = None

    @property
    def window_text(self) -> str | None:
        return format_window(self.window) if self.window else None


@dataclass(frozen=True)
class StatusCommand:
    run_id: int


@dataclass(frozen=True)
class ListCommand:
    customer: str | None = None


@dataclass(frozen=True)
class CancelCommand:
    run_id: int


@dataclass(frozen=True)
class RetryCommand:
    run_id: int


@dataclass(frozen=True)
class CustomersCommand:
    pass


@dataclass(frozen=True)
class SchedulesCommand:
    pass


@dataclass(frozen=True)
class HelpCommand:
    pass


@dataclass(frozen=True)
class MaintenanceCommand:
    """Start a maintenance window now over TARGET (a customer or an account), for ``length``."""

    target: str
    length: timedelta
    reason: str | None = None

    @property
    def length_text(self) -> str:
        return format_window(self.length)


@dataclass(frozen=True)
class ReportCommand:
    """A customer's monthly report: ``month`` as ``2026-11``, or None for the last whole month
    in the customer's zone (which only the customer's zone can say)."""

    customer: str
    month: str | None = None


@dataclass(frozen=True)
class OpenModal:
    """``/monitor`` with no text. The modal is a later issue; answered with help for now."""


Command = (
    RunCommand
    | StatusCommand
    | ListCommand
    | CancelCommand
    | RetryCommand
    | CustomersCommand
    | SchedulesCommand
    | HelpCommand
    | MaintenanceCommand
    | ReportCommand
    | OpenModal
)


_BARE: dict[str, Callable[[], Command]] = {
    "customers": CustomersCommand,
    "schedules": SchedulesCommand,
    "help": HelpCommand,
}
_BY_ID: dict[str, Callable[[int], Command]] = {
    "status": StatusCommand,
    "cancel": CancelCommand,
    "retry": RetryCommand,
}


def parse(text: str) -> Command:
    """The command in ``text`` (what followed ``/monitor``), or UsageError."""
    words = tokens(text)
    if not words:
        return OpenModal()
    verb, args = words[0].lower(), words[1:]
    if verb == "run":
        return _run(args)
    if verb in ("status", "cancel", "retry"):
        return _with_run_id(verb, args)
    if verb == "list":
        return ListCommand(_optional_name(verb, args))
    if verb == "maintenance":
        return _maintenance(args)
    if verb == "report":
        return _report(args)
    if verb in ("customers", "schedules", "help"):
        if args:
            raise UsageError(f"`{verb}` takes nothing after it. Use {USAGE[verb]}.")
        return _BARE[verb]()
    raise UsageError(_unknown_verb(verb))


def tokens(text: str) -> list[str]:
    """Words of the command text, with Slack's escaping undone and dashes normalised."""
    if len(text) > MAX_TEXT:
        raise UsageError(f"That command is too long ({len(text)} characters). {_brief()}")
    plain = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return [_DASHES.sub("--", word) for word in plain.split()]


def run_command(target: str, checks: tuple[str, ...] = (), window: str | None = None) -> RunCommand:
    """A run request from its parts — shared by ``/monitor run`` and ``mhub run``."""
    target = _name("TARGET", target)
    names: list[str] = []
    for check in checks:
        names.extend(part for part in check.lower().split(",") if part)
    if len(names) > MAX_CHECKS:
        raise UsageError(f"That is {len(names)} checks; name at most {MAX_CHECKS}.")
    for check in names:
        _name("CHECK", check)
    span = None
    if window is not None:
        try:
            span = parse_window(window)
        except WindowError as exc:
            raise UsageError(str(exc)) from None
    return RunCommand(target, tuple(dict.fromkeys(names)), span)


def _run(args: list[str]) -> RunCommand:
    positional: list[str] = []
    window: str | None = None
    index = 0
    while index < len(args):
        word = args[index]
        if word.startswith("--"):
            option, _, value = word.partition("=")
            if option.lower() != "--window":
                raise UsageError(f"There is no option {quoted(option)}. Use {USAGE['run']}.")
            if not value:
                index += 1
                if index >= len(args):
                    raise UsageError("--window needs a value such as 30m, 12h or 7d.")
                value = args[index]
            if window is not None:
                raise UsageError("Give --window once.")
            window = value
        else:
            positional.append(word)
        index += 1
    if not positional:
        raise UsageError(f"Which customer or account? Use {USAGE['run']}.")
    return run_command(positional[0], tuple(positional[1:]), window)


def _maintenance(args: list[str]) -> MaintenanceCommand:
    if not args:
        raise UsageError(
            f"Which customer or account, and for how long? Use {USAGE['maintenance']}."
        )
    target = _name("TARGET", args[0])
    if len(args) < 2:
        raise UsageError(f"For how long? Give a duration such as 2h. Use {USAGE['maintenance']}.")
    try:
        length = maintenance_length(args[1])
    except WindowError as exc:
        raise UsageError(str(exc)) from None
    reason = " ".join(args[2:]).strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise UsageError(
            f"The reason is {len(reason)} characters; keep it to {MAX_REASON} "
            "and link to anything longer."
        )
    return MaintenanceCommand(target, length, reason)


def _report(args: list[str]) -> ReportCommand:
    for word in args:
        if word.startswith("--"):
            option = word.partition("=")[0]
            raise UsageError(f"There is no option {quoted(option)}. Use {USAGE['report']}.")
    if not args:
        raise UsageError(f"Which customer? Use {USAGE['report']}.")
    if len(args) > 2:
        raise UsageError(f"`report` takes a customer and at most one month. Use {USAGE['report']}.")
    customer = _name("CUSTOMER", args[0])
    if len(args) == 1:
        return ReportCommand(customer)
    try:
        first = month_start(args[1])
    except ReportError as exc:
        raise UsageError(f"{exc}. Use {USAGE['report']}.") from None
    return ReportCommand(customer, f"{first:%Y-%m}")


def _with_run_id(verb: str, args: list[str]) -> Command:
    if len(args) != 1:
        raise UsageError(f"`{verb}` needs one run id. Use {USAGE[verb]}.")
    run_id = parse_run_id(args[0][:40])
    return _BY_ID[verb](run_id)


def _optional_name(verb: str, args: list[str]) -> str | None:
    if len(args) > 1:
        raise UsageError(f"`{verb}` takes at most one customer. Use {USAGE[verb]}.")
    return _name("CUSTOMER", args[0]) if args else None


def _name(what: str, value: str) -> str:
    name = value.strip().lower()
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise UsageError(
            f"{quoted(value)} is not a {what.lower()} name: use letters, digits, - and _, "
            f"such as `acme-prod`. `{COMMAND} customers` lists them."
        )
    return name


def _unknown_verb(verb: str) -> str:
    import difflib

    hint = difflib.get_close_matches(verb, VERBS, n=1)
    also = f" Did you mean `{COMMAND} {hint[0]}`?" if hint else ""
    return f"I don't know {quoted(verb)}.{also} {_brief()}"


def _brief() -> str:
    return f"Try {USAGE['run']}, or `{COMMAND} help`."
