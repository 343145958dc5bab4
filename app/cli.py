"""The ``mhub`` command line. Exit codes: 0 all OK, 1 warn/crit findings (or, answering a
finding, someone answered first), 2 error (bad input: nothing changed)."""

from __future__ import annotations

import asyncio
import getpass
import glob
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import logs, version
from app.accounts import merge, store
from app.accounts.found import Known, SyncState
from app.accounts.merge import Discovered
from app.accounts.sync import Syncer
from app.catalog import Catalog, Plan
from app.config import MAX_REASON, Customer, WindowError, clip, parse_window
from app.db import Database
from app.engine import findings, retention
from app.engine.alerts import Router
from app.engine.answers import (
    AnswerError,
    Answers,
    Given,
    Rule,
    Standing,
    mute_rules,
    parse_for,
    parse_until,
    reason_of,
    rules_from,
    standing,
)
from app.engine.runs import RunView, Submit, parse_run_id, run_json
from app.engine.tokens import (
    DEFAULT_EXPIRES,
    SCOPES,
    ApiTokenView,
    Tokens,
    parse_expires,
    token_name,
)
from app.errors import CLI, HubError, NotFound, UsageError
from app.iam import everything, kinds_of, member_policy, org_reader_policy
from app.loader import ConfigInvalid, check_config, load_catalog
from app.main import Hub, build, serve
from app.models import Finding, Mute, Run, Source
from app.reports.csvs import write_csvs
from app.reports.files import pdf_bytes
from app.reports.gather import Reports
from app.reports.model import Report
from app.reports.period import between, last_month, month_of
from app.reports.text import render_text
from app.schedules.slots import next_fire_times
from app.schema import schema_text
from app.settings import EnvironmentInvalid, Settings
from app.slack.accounts import AccountsChannel
from app.slack.digests import send_now
from app.slack.outbox import Outgoing
from app.web.security import WebRefused, check_exposure
from blocks.accounts import list_text, sync_text
from blocks.findings import clock
from blocks.terminal import (
    answer_text,
    finding_lines,
    person,
    render_findings,
    render_rules,
    render_run,
)
from blocks.terminal_lists import render_customers, render_run_list, render_schedules
from checks import kinds

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
EXIT_ANSWERED_FIRST = 1
"""An answer to a finding someone else had answered first (or that is not in the state the
answer undoes): nothing changed."""


def _settings() -> Settings:
    return Settings.from_env()  # EnvironmentInvalid is a HubError: _run prints it


def _run(coro: Coroutine[Any, Any, int]) -> None:
    try:
        code = asyncio.run(coro)
    except (ConfigInvalid, EnvironmentInvalid) as exc:
        click.echo(str(exc), err=True)
        code = EXIT_ERROR
    except HubError as exc:
        click.echo(f"error: {exc.said(CLI)}", err=True)  # `mhub list`, where Slack says /monitor
        code = EXIT_ERROR
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    version.current(), "-V", "--version", prog_name="mhub", message="%(prog)s %(version)s"
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log debug detail to stderr; -vv: every library's too. Secrets are always redacted.",
)
def main(verbose: int) -> None:
    """Monitoring Hub: run checks on customers' AWS accounts and see the results.

    Shell completion: eval "$(_MHUB_COMPLETE=bash_source mhub)" in ~/.bashrc (zsh_source in
    ~/.zshrc; fish: _MHUB_COMPLETE=fish_source mhub | source)."""
    try:
        settings = Settings.from_env()
    except EnvironmentInvalid:  # the command says what is wrong; log as the defaults say
        logs.setup(verbose)
        return
    logs.setup(verbose, logs.wants_json(settings.log_format), settings.log_level)


@main.command("serve")
@click.option("--no-slack", is_flag=True, help="Do not connect to Slack.")
@click.option("--no-web", is_flag=True, help="Do not serve the web view.")
def serve_command(no_slack: bool, no_web: bool) -> None:
    """Run the executor, the sweeper and (when enabled) Slack and the web view."""

    async def go() -> int:
        async with build(_settings(), slack=not no_slack) as hub:
            await serve(hub, web=not no_web)
        return EXIT_OK

    _run(go())


@main.command(
    "run",
    help="Run CHECKS (default: the account's configured checks) on TARGET, a customer or an "
    "account alias, and print the result.\n\nThe checks: "
    + "; ".join(f"{k.name} ({k.about})" for k in kinds.KINDS)
    + ".",
)
@click.argument("target")
@click.argument("checks", nargs=-1)
@click.option("--window", help="How far back to look: 30m, 12h, 7d (default: per check).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-wait", is_flag=True, help="Queue the run, print its id and return.")
def run_command(
    target: str, checks: tuple[str, ...], window: str | None, as_json: bool, no_wait: bool
) -> None:
    async def go() -> int:
        settings = _settings()
        catalog = load_catalog(settings.config_dir)
        try:
            span = parse_window(window) if window else None
        except WindowError as exc:
            raise click.BadParameter(str(exc), param_hint="--window") from None
        async with build(settings, catalog) as hub:  # with the accounts discovered last
            plan = hub.catalog.plan(target, checks)
            run, _ = await hub.runs.submit(
                Submit(plan, requested_by="cli", source=Source.CLI, window=span)
            )
            return await _queued_or_done(hub, run, f"queued #{run.id}", {}, as_json, no_wait)

    _run(go())


@main.command("status")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_command(run_id: str, as_json: bool) -> None:
    """Show one run (1842 or #1842) with its results."""

    async def go() -> int:
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        async with build(settings, catalog) as hub:
            view = await hub.runs.get(parse_run_id(run_id), events=True)
            _print(hub, view, as_json)
            return exit_code(view) if view.terminal else EXIT_OK

    _run(go())


LIST_LIMIT = 20
"""Runs ``mhub list`` shows unless told (``/monitor list`` shows 15)."""


@main.command("list", short_help="Recent runs, newest first (like /monitor list).")
@click.argument("customer", required=False)
@click.option(
    "--limit",
    type=click.IntRange(1, 500),
    default=LIST_LIMIT,
    show_default=True,
    help="How many runs to show, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_command(customer: str | None, limit: int, as_json: bool) -> None:
    """Recent runs, newest first: of every customer, or of CUSTOMER (like `/monitor list`)."""

    async def go() -> int:
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        chosen = catalog.customer(customer) if customer is not None else None  # NotFound: 2
        async with build(settings, catalog, slack=False) as hub:
            runs = await hub.runs.recent(chosen.id if chosen else None, limit=limit)
        if as_json:
            click.echo(json.dumps({"runs": [_listed_json(run) for run in runs]}))
        else:
            scope = chosen.name if chosen else None
            click.echo(render_run_list(runs, catalog.customers, datetime.now(UTC), scope))
        return EXIT_OK

    _run(go())


def _listed_json(run: Run) -> dict[str, Any]:
    """A run in ``mhub list --json``: what it ran, not its results (``mhub status`` has them)."""
    return {
        "id": run.id,
        "status": run.status,
        "outcome": run.outcome,
        "customer": run.customer_id,
        "accounts": list(dict.fromkeys(t["account"] for t in run.targets)),
        "checks": list(dict.fromkeys(t["check"] for t in run.targets)),
        "requested_by": run.requested_by,
        "source": run.source,
        "retry_of": run.retry_of,
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
    }


@main.command("customers", short_help="Customers, their accounts, checks and channel.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def customers_command(as_json: bool) -> None:
    """Every customer: its time zone, Slack channel, and accounts with their checks (those
    discovered from an organization too)."""
    settings = _settings_or_exit()
    catalog = _listed_catalog(settings)
    if merge.discovers(catalog):
        synced = asyncio.run(_synced(settings))
        if isinstance(synced, str):
            click.echo(f"The accounts discovered from organizations are left out: {synced}",
                       err=True)  # fmt: skip
        else:
            catalog.replace(merge.merged(catalog, synced[0]))
    customers = sorted(catalog.customers.values(), key=lambda c: c.id)
    if as_json:
        click.echo(json.dumps({"customers": [_customer_json(c) for c in customers]}))
    else:
        click.echo(render_customers(customers))


def _customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "timezone": customer.timezone,
        "channel": customer.slack.channel,
        "accounts": [
            {
                "id": a.id,
                "name": a.name,
                "account_id": a.account_id,
                "regions": list(a.regions),
                "checks": list(a.checks),
            }
            for a in customer.accounts
        ],
    }


@main.command("schedules", short_help="Schedules and when each fires next.")
@click.argument("customer", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def schedules_command(customer: str | None, as_json: bool) -> None:
    """Every schedule (or CUSTOMER's), soonest first, with when it fires next in its customer's
    time zone (docs/schedules.md)."""
    catalog = _listed_catalog(_settings_or_exit())
    try:
        chosen = [catalog.customer(customer)] if customer is not None else None
    except HubError as exc:
        click.echo(f"error: {exc.said(CLI)}", err=True)
        sys.exit(EXIT_ERROR)
    now = datetime.now(UTC)
    items = [
        (upcoming.customer, upcoming.schedule, upcoming.at)
        for upcoming in next_fire_times(catalog, now)  # soonest first
        if chosen is None or upcoming.customer in chosen
    ]
    if as_json:
        click.echo(json.dumps({"schedules": [
            {
                "customer": c.id,
                "name": s.name,
                "kind": s.kind,
                "cron": s.cron,
                "timezone": c.timezone,
                "checks": list(s.checks),
                "channel": s.channel or c.slack.channel,
                "next": at.isoformat(),
            }
            for c, s, at in items
        ]}))  # fmt: skip
    else:
        click.echo(render_schedules(items))


Synced = tuple[dict[str, tuple[Known, ...]], dict[str, SyncState]]
"""The accounts the organization syncs stored, by customer, and the syncs themselves."""


async def _synced(settings: Settings) -> Synced | str:
    """The accounts the organization syncs stored and the syncs (none when nothing is stored
    yet: no database is made to say so), or why the database cannot say."""
    if not _database_exists(settings):
        return {}, {}
    db = Database(settings.database_url)
    try:
        current, head = await db.schema_state()
        if current is None:
            return {}, {}
        if current != head:
            return "the database is not migrated (`mhub db upgrade`)"
        return await store.known(db), await store.syncs(db)
    except HubError as exc:
        return str(exc)
    finally:
        await db.close()


def _database_exists(settings: Settings) -> bool:
    """False for a SQLite file not made yet (reading it would make it)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return True
    return Path(url.database).exists()


def _settings_or_exit() -> Settings:
    """The settings, or every problem with them on stderr and exit 2 (commands without a
    database or event loop)."""
    try:
        return Settings.from_env()
    except EnvironmentInvalid as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_ERROR)


def _listed_catalog(settings: Settings) -> Catalog:
    """The customers that load; the files that do not are said on stderr, not listed."""
    catalog, problems = check_config(settings.config_dir)
    if problems:
        click.echo(
            f"{len(problems)} problem(s) in the configuration leave something out; "
            "`mhub config check` lists them.",
            err=True,
        )
    return catalog


@main.command("cancel", short_help="Cancel a queued or running run.")
@click.argument("run_id")
@click.option(
    "--as", "who", metavar="USER", help="Who cancels, for the audit trail (default: cli:<login>)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def cancel_command(run_id: str, who: str | None, as_json: bool) -> None:
    """Cancel run RUN_ID (1842 or #1842): a queued run at once; a running one stops after the
    checks in flight (finished checks stay on its card). Exits 0 when it cancelled, 1 when
    the run had already ended (nothing changed), 2 on bad input."""

    async def go() -> int:
        wanted, by = parse_run_id(run_id), _who(who)
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        async with build(settings, catalog, slack=False) as hub:
            outcome = await hub.runs.cancel(wanted, by)
        said = outcome.said(CLI)
        if as_json:
            body = {"id": wanted, "status": outcome.run.status, "changed": outcome.changed}
            click.echo(json.dumps({**body, "message": said}))
        else:
            click.echo(said, err=not outcome.changed)
        return EXIT_OK if outcome.changed else EXIT_FINDINGS

    _run(go())


@main.command("retry", short_help="Run a finished run's checks again.")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-wait", is_flag=True, help="Queue the retry, print its id and return.")
def retry_command(run_id: str, as_json: bool, no_wait: bool) -> None:
    """Run RUN_ID's checks again, with its window, as a new run linked to it; then wait and
    print the result like `mhub run` (exit 0 all OK, 1 findings, 2 error). A run is retried
    once: asking again shows that retry."""

    async def go() -> int:
        wanted = parse_run_id(run_id)
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        async with build(settings, catalog, slack=False) as hub:
            original = (await hub.runs.get(wanted)).run
            customer = catalog.customers.get(original.customer_id)
            if customer is None:
                raise NotFound(
                    f"Run #{wanted} is of {original.customer_id}, which is no longer in "
                    f"{settings.config_dir}; it cannot be retried."
                )
            plan = Plan(customer, tuple((t["account"], t["check"]) for t in original.targets))
            run, created = await hub.runs.retry(wanted, plan, _who(None), Source.CLI)
            if not created:
                click.echo(f"#{wanted} was already retried as #{run.id}.", err=True)
            said = f"retrying #{wanted} as #{run.id}"
            return await _queued_or_done(hub, run, said, {"retry_of": wanted}, as_json, no_wait)

    _run(go())


class TargetOrCommand(click.Group):
    """``mhub findings TARGET …`` lists and ``mhub findings ack FINGERPRINT …`` answers: a
    first word that names none of the commands is the TARGET of ``list``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["list", *args]
        return super().parse_args(ctx, args)


@main.group(
    "findings",
    cls=TargetOrCommand,
    subcommand_metavar="TARGET [--state STATE] [--rules] [--json] | COMMAND FINGERPRINT ...",
)
def findings_group() -> None:
    """The problems checks found, kept across runs by fingerprint, and the answers to them
    (docs/findings.md).

    \b
    List them (TARGET: a customer or an account alias):
      mhub findings TARGET [--state open|acknowledged|snoozed|muted|resolved] [--json]
      mhub findings TARGET --rules [--json]       the customer's mute rules
    Answer one (FINGERPRINT: the line under each finding in the list):
      mhub findings ack FINGERPRINT               "I'm on it"
      mhub findings snooze FINGERPRINT --reason TEXT [--for 24h | --until WHEN]
      mhub findings unsnooze FINGERPRINT
      mhub findings mute FINGERPRINT --reason TEXT [--for 30d | --until WHEN]
                         [--all-resources] [--all-accounts]
      mhub findings unmute FINGERPRINT|RULE

    Listing exits 1 when a finding is open or acknowledged (a problem nobody silenced), else 0.
    Answering exits 0 when it changed something, 1 when someone had answered first (it says
    who and when), 2 on bad input, with nothing changed. Times are in the customer's time zone.
    """


@findings_group.command(
    "list", short_help="The findings of TARGET (what `mhub findings TARGET` does)."
)
@click.argument("target")
@click.option(
    "--state",
    type=click.Choice(findings.STATES),
    default=None,
    help="Only the findings in this state (default: all; problems first, resolved last).",
)
@click.option("--rules", "show_rules", is_flag=True, help="List the customer's mute rules.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def findings_list(target: str, state: str | None, show_rules: bool, as_json: bool) -> None:
    """The findings of TARGET (a customer or an account alias), the same as `mhub findings
    TARGET`: how long each has been open, whether it is new, came back or flaps, and who
    answered it; with --rules, the customer's mute rules instead."""

    async def go() -> int:
        if show_rules and state:
            raise UsageError("--rules lists the mute rules; it takes no --state.")
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        async with _answering(settings, catalog) as answers:
            customer, accounts = catalog.resolve(target)  # a discovered alias too
            only = None if accounts == customer.accounts else [a.id for a in accounts]
            rules = await answers.rules(customer.id)
            now = answers.clock()
            if show_rules:
                mine = [r for r in mute_rules(rules) if only is None or r.account in (None, *only)]
                click.echo(
                    json.dumps({"customer": customer.id, "rules": [r.as_json() for r in mine]})
                    if as_json
                    else render_rules(mine, customer.tz, now, customer.name)
                )
                return EXIT_OK
            found = await findings.listing(answers.db, customer.id, rules, now, only, state)
        if as_json:
            click.echo(json.dumps({"customer": customer.id, "findings": [
                findings.finding_json(f, standing) for f, standing in found
            ]}))  # fmt: skip
        else:
            click.echo(render_findings(found, customer.tz, now, customer.name))
        loud = any(standing.state in LOUD for _, standing in found)
        return EXIT_FINDINGS if loud else EXIT_OK

    _run(go())


Command = TypeVar("Command", bound=Callable[..., None])


def _answer_options(command: Command) -> Command:
    """FINGERPRINT, ``--customer`` and ``--as``: what every answer takes."""
    command = click.option(
        "--as",
        "who",
        metavar="USER",
        help="Who answers, for the audit trail (default: cli:<your login name>).",
    )(command)
    command = click.option(
        "--customer",
        "customer_id",
        metavar="ID",
        help="The customer, when the fingerprint is a finding of several.",
    )(command)
    return click.argument("fingerprint")(command)


def _quiet_options(command: Command) -> Command:
    """``--reason``, ``--for`` and ``--until``: what snoozes and mutes take."""
    command = click.option(
        "--until",
        metavar="WHEN",
        help="Until 2026-12-07 09:00 (or the end of 2026-12-07), in the customer's time zone.",
    )(command)
    command = click.option(
        "--for", "length", metavar="LENGTH", help="For 90m, 24h, 7d or 2w (1m to 365d)."
    )(command)
    return click.option(
        "--reason", metavar="TEXT", help=f"Why (required, at most {MAX_REASON} characters)."
    )(command)


@findings_group.command("ack")
@_answer_options
def findings_ack(fingerprint: str, customer_id: str | None, who: str | None) -> None:
    """Acknowledge FINGERPRINT: "I'm on it". It stays a problem, with who and when beside it."""

    async def go() -> int:
        by = _who(who)

        async def act(answers: Answers, customer: Customer, found: Finding) -> Given:
            return await answers.acknowledge(customer.id, [found.id], by, AUDIT)

        return await _answer(fingerprint, customer_id, f"Acknowledged by {by}", act)

    _run(go())


@findings_group.command(
    "snooze", short_help="Snooze FINGERPRINT until a time, or until it resolves."
)
@_answer_options
@_quiet_options
def findings_snooze(
    fingerprint: str,
    customer_id: str | None,
    who: str | None,
    reason: str | None,
    length: str | None,
    until: str | None,
) -> None:
    """Snooze FINGERPRINT: quiet until a time (--for, --until), or until it resolves (neither).
    It comes back at once if it gets worse (a warning that turns critical)."""

    async def go() -> int:
        by, why, lasting = _who(who), reason_of(reason), _length(length, until)

        async def act(answers: Answers, customer: Customer, found: Finding) -> Given:
            ends = _ends(lasting, until, customer, answers.clock())
            return await answers.snooze(customer.id, [found.id], by, why, ends, AUDIT)

        return await _answer(fingerprint, customer_id, f"Snoozed by {by}", act)

    _run(go())


@findings_group.command("unsnooze")
@_answer_options
def findings_unsnooze(fingerprint: str, customer_id: str | None, who: str | None) -> None:
    """End the snooze of FINGERPRINT: it is a problem again."""

    async def go() -> int:
        by = _who(who)

        async def act(answers: Answers, customer: Customer, found: Finding) -> Given:
            return await answers.unsnooze(customer.id, [found.id], by, AUDIT)

        return await _answer(fingerprint, customer_id, f"Unsnoozed by {by}", act, "Not snoozed")

    _run(go())


@findings_group.command(
    "mute", short_help="Mute FINGERPRINT (and what else --all-* says) with a rule."
)
@_answer_options
@_quiet_options
@click.option(
    "--all-resources",
    is_flag=True,
    help="Every resource of the finding's check in its account, in every region.",
)
@click.option(
    "--all-accounts", is_flag=True, help="The same resource in every account of the customer."
)
def findings_mute(
    fingerprint: str,
    customer_id: str | None,
    who: str | None,
    reason: str | None,
    length: str | None,
    until: str | None,
    all_resources: bool,
    all_accounts: bool,
) -> None:
    """Mute FINGERPRINT with a rule: the findings it matches are counted, never listed as
    problems, until --for or --until (neither: no end). The rule matches the finding's check,
    account, region and exact resource; --all-resources and --all-accounts widen it (any
    region). `mhub findings TARGET --rules` lists the rules, `unmute` ends one."""

    async def go() -> int:
        by, why, lasting = _who(who), reason_of(reason), _length(length, until)
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        async with _answering(settings, catalog) as answers:
            customer, found = await _finding(answers, catalog, fingerprint, customer_id)
            now = answers.clock()
            already = standing(found, await answers.rules(customer.id), now)
            if already.state == "muted" and not (all_resources or all_accounts):
                return _answered_first(already, customer, now)
            wide = all_resources or all_accounts
            rule = await answers.mute(
                customer.id,
                check=found.check,
                account=None if all_accounts else found.account,
                region=None if wide or not found.region else found.region,
                resource="*" if all_resources else glob.escape(found.resource or fingerprint),
                reason=why,
                owner=None,
                until=_ends(lasting, until, customer, now),
                by=by,
                audit=AUDIT,
            )
            muted = await findings.listing(answers.db, customer.id, [rule], now, state="muted")
        click.echo(f"Muted by {by} with rule {rule.key}; it mutes {_findings(len(muted))}:")
        for f, now_is in muted[:MAX_SHOWN]:
            click.echo("\n".join(finding_lines(f, now_is, customer.tz, now)))
        click.echo(f"`mhub findings unmute {rule.key}` ends the rule.")
        return EXIT_OK

    _run(go())


@findings_group.command(
    "unmute", short_help="End the Slack/CLI mute rules matching FINGERPRINT, or RULE."
)
@_answer_options
def findings_unmute(fingerprint: str, customer_id: str | None, who: str | None) -> None:
    """End the mute rules made from Slack or the CLI that match FINGERPRINT, or the rule RULE
    (an id from `--rules`). A rule in the customer's YAML is ended by removing it there."""

    async def go() -> int:
        by = _who(who)
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        async with _answering(settings, catalog) as answers:
            if _is_rule(fingerprint):
                return await _unmute_rule(answers, catalog, fingerprint, customer_id, by)
            customer, found = await _finding(answers, catalog, fingerprint, customer_id, True)
            return await _unmute_matching(answers, customer, found, by)

    _run(go())


async def _unmute_rule(
    answers: Answers, catalog: Catalog, key: str, customer_id: str | None, by: str
) -> int:
    """End the rule ``key`` (``12``; ``yaml:1`` is refused: it lives in the YAML)."""
    made = None
    if key.isdigit():
        async with answers.db.read() as session:
            made = await session.get(Mute, int(key))
    owner = customer_id or (made.customer_id if made is not None else None)
    customer = catalog.resolve(owner)[0] if owner else None
    if customer and made and made.customer_id == customer.id and made.ended_at is not None:
        when = clock(made.ended_at, customer.tz, answers.clock())
        click.echo(
            f"Someone answered first: rule {key} was unmuted by {person(made.ended_by)} {when}. "
            "Nothing changed.",
            err=True,
        )
        return EXIT_ANSWERED_FIRST
    rule = await answers.unmute(customer.id if customer else "", key, by, AUDIT)
    click.echo(f"Unmuted by {by}: {_rule_text(rule)}")
    return EXIT_OK


async def _unmute_matching(answers: Answers, customer: Customer, found: Finding, by: str) -> int:
    rules = [rule for rule in mute_rules(await answers.rules(customer.id)) if rule.matches(found)]
    made = [rule for rule in rules if rule.origin != "yaml"]
    kept = [rule.key for rule in rules if rule.origin == "yaml"]
    if not rules:
        click.echo("Not muted: no rule in force matches it. Nothing changed.", err=True)
        return EXIT_ANSWERED_FIRST
    if not made:
        raise AnswerError(
            f"It is muted by rule {', '.join(kept)} in {customer.id}'s YAML (suppress:). "
            "Remove the rule there and reload; it cannot be unmuted from Slack or the CLI."
        )
    for rule in made:
        try:
            ended = await answers.unmute(customer.id, rule.key, by, AUDIT)
        except AnswerError as exc:  # someone unmuted it between our read and our write
            click.echo(str(exc), err=True)
            return EXIT_ANSWERED_FIRST
        click.echo(f"Unmuted by {by}: {_rule_text(ended)}")
    if kept:
        click.echo(
            f"Still muted by rule {', '.join(kept)} in {customer.id}'s YAML (suppress:): "
            "remove it there to unmute.",
            err=True,
        )
    return EXIT_OK


Act = Callable[[Answers, Customer, Finding], Coroutine[Any, Any, Given]]
AUDIT = {"via": "cli"}
"""Where CLI answers come from, in their audit events."""
LOUD = ("open", "acknowledged")
"""Standings of a problem nobody silenced: ``mhub findings`` exits 1 when it lists one."""
MAX_SHOWN = 20
MAX_WHO = 128


@asynccontextmanager
async def _answering(settings: Settings, catalog: Catalog) -> AsyncIterator[Answers]:
    """The answers service on the configured database (opened here, closed after)."""
    db = Database(settings.database_url)
    try:
        await db.ensure_schema()
        await Discovered(db, catalog).refresh()  # the accounts discovered from organizations
        answers = Answers(db, rules_from(catalog))
        # What an answer changes for PagerDuty and webhooks is queued with it; `mhub serve`
        # sends it (its notifier looks every second).
        answers.route = Router(db, lambda: catalog).route
        yield answers
    finally:
        await db.close()


async def _answer(
    fingerprint: str, customer_id: str | None, done: str, act: Act, not_now: str | None = None
) -> int:
    """Find the finding, ``act`` on it, and say what it is now — or who answered first."""
    settings = _settings()
    catalog, _ = check_config(settings.config_dir)
    async with _answering(settings, catalog) as answers:
        customer, found = await _finding(answers, catalog, fingerprint, customer_id)
        given = await act(answers, customer, found)
        now = answers.clock()
        if given.resolved:
            raise AnswerError(_resolved_text(given.resolved[0], customer, now))
        if given.first:
            _, first = given.first[0]
            return _answered_first(first, customer, now, not_now)
        after = await answers.standings(customer.id, [found.fingerprint])
    click.echo(f"{done}:")
    for f, now_is in after.values():
        click.echo("\n".join(finding_lines(f, now_is, customer.tz, now)))
    return EXIT_OK


async def _finding(
    answers: Answers,
    catalog: Catalog,
    fingerprint: str,
    customer_id: str | None,
    resolved: bool = False,
) -> tuple[Customer, Finding]:
    """The one finding with ``fingerprint`` (of ``customer_id`` when given), or an
    :class:`AnswerError` that says what to do; a resolved one only when ``resolved``."""
    wanted = fingerprint.strip()
    chosen = catalog.resolve(customer_id)[0] if customer_id else None
    query = select(Finding).where(Finding.fingerprint == wanted).order_by(Finding.customer_id)
    if chosen is not None:
        query = query.where(Finding.customer_id == chosen.id)
    async with answers.db.read() as session:
        rows = [
            row
            for row in (await session.execute(query)).scalars()
            if row.customer_id in catalog.customers
        ]
    if not rows:
        of = f" of {chosen.id}" if chosen else ""
        raise AnswerError(
            f'There is no finding "{clip(wanted, 80)}"{of}. `mhub findings TARGET` lists them, '
            "each with its fingerprint under it."
        )
    if len(rows) > 1:
        raise AnswerError(
            f"That fingerprint is a finding of {len(rows)} customers: "
            f"{', '.join(row.customer_id for row in rows)}. Say which with --customer ID."
        )
    [found] = rows
    customer = catalog.customers[found.customer_id]
    if found.status == "resolved" and not resolved:
        raise AnswerError(_resolved_text(found, customer, answers.clock()))
    return customer, found


def _resolved_text(found: Finding, customer: Customer, now: datetime) -> str:
    when = clock(found.resolved_at or found.last_seen_at, customer.tz, now)
    return (
        f"That finding resolved since ({when}: the last look did not see it); nothing to "
        "answer. If a check sees it again, it opens again."
    )


def _answered_first(
    first: Standing, customer: Customer, now: datetime, not_now: str | None = None
) -> int:
    note = answer_text(first, customer.tz, now)
    said = f"it is {first.state}" + (f" — {note}" if note else "")
    click.echo(f"{not_now or 'Someone answered first'}: {said}. Nothing changed.", err=True)
    return EXIT_ANSWERED_FIRST


def _who(given: str | None) -> str:
    """Who answers: ``--as``, or ``cli:`` and the login name."""
    if given is None:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no login name (a container's numeric user)
            name = "unknown"
        return f"cli:{name}"[:MAX_WHO]
    who = given.strip()
    if not who or len(who) > MAX_WHO or not who.isprintable():
        raise UsageError(
            f"Give --as a name of 1 to {MAX_WHO} printable characters: a Slack user id such "
            "as U012AB3CD, or cli:alice."
        )
    return who


def _length(length: str | None, until: str | None) -> timedelta | None:
    if length is not None and until is not None:
        raise UsageError("Give --for or --until, not both.")
    return parse_for(length) if length is not None else None


def _ends(
    lasting: timedelta | None, until: str | None, customer: Customer, now: datetime
) -> datetime | None:
    """When a snooze or mute ends: ``now`` + ``--for``, ``--until`` in the customer's time
    zone, or None (until it resolves; a mute: no end)."""
    if lasting is not None:
        return now + lasting
    return parse_until(until, customer.tz, now) if until is not None else None


def _is_rule(key: str) -> bool:
    """A rule id (``12``, ``yaml:1``), not a fingerprint."""
    number = key.removeprefix("yaml:")
    return number.isdigit() and len(number) < 18


def _rule_text(rule: Rule) -> str:
    where = " · ".join(
        [kinds.title(rule.check), rule.account or "every account", rule.region or "every region"]
    )
    return f"rule {rule.key} ({where} · {rule.resource} — {rule.reason}) ended."


def _findings(count: int) -> str:
    return f"{count} open finding{'' if count == 1 else 's'}"


@main.group("config")
def config_group() -> None:
    """Configuration commands."""


@config_group.command("check")
def config_check() -> None:
    """Validate every customer file and the environment; print every problem."""
    try:
        settings = Settings.from_env()
    except EnvironmentInvalid as exc:
        for message in exc.problems:
            click.echo(message, err=True)  # VARIABLE: what to do
        click.echo(f"{len(exc.problems)} problem(s) found; fix the environment first.", err=True)
        sys.exit(EXIT_FINDINGS)
    catalog, found = check_config(settings.config_dir, datetime.now(UTC))
    synced, notes = (
        _sync_problems(catalog, asyncio.run(_synced(settings)))
        if merge.discovers(catalog)
        else ([], [])
    )
    problems = [*_serving_problems(settings), *(str(problem) for problem in found), *synced]
    for note in notes:
        click.echo(f"note: {note}")
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        sys.exit(EXIT_FINDINGS)
    customers = catalog.customers.values()
    accounts = sum(len(c.accounts) for c in customers)
    schedules = sum(len(c.schedules) for c in customers)
    click.echo(
        f"OK: {len(catalog)} customer(s), {accounts} account(s), "
        f"{schedules} schedule(s) in {settings.config_dir}"
    )


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of a customer's YAML, for editors to validate and complete while
    typing (docs/configuration.md#editor-support). configs/customer.schema.json is a copy:
    `mhub config schema > configs/customer.schema.json` refreshes it."""
    click.echo(schema_text(), nl=False)


def _sync_problems(catalog: Catalog, synced: Synced | str) -> tuple[list[str], list[str]]:
    """(problems, notes) of what the last organization syncs stored: aliases that collide,
    listed accounts the organization also holds, syncs that failed; a note when the database
    cannot say."""
    if isinstance(synced, str):
        return [], [f"{synced}: the discovered accounts were not checked"]
    known, syncs = synced
    problems, notes = merge.clashes(catalog, known)
    for customer_id, sync in sorted(syncs.items()):
        if sync.problem and customer_id in catalog.customers:
            problems.append(f"{customer_id}: the last organization sync failed: {sync.problem}")
    return problems, notes


def _serving_problems(settings: Settings) -> list[str]:
    """What would stop ``mhub serve`` with these settings that the settings alone allow."""
    auth = settings.web_auth.get_secret_value() if settings.web_auth else None
    try:
        check_exposure(settings.web_host, settings.web_port, auth, sign_in=settings.sign_in)
    except WebRefused as exc:
        return [f"HUB_WEB_HOST: {exc}"]
    return []


@main.group("iam")
def iam_group() -> None:
    """The IAM the hub's roles need (docs/iam.md)."""


@iam_group.command("policy")
@click.argument("customer", required=False)
@click.option(
    "--all", "every", is_flag=True, help="Every check kind's (what member-role.yaml grants)."
)
@click.option("--org", is_flag=True, help="The organization reader's (org-reader.yaml).")
def iam_policy(customer: str | None, every: bool, org: bool) -> None:
    """Print the least-privilege policy of the monitoring role for the check kinds CUSTOMER's
    accounts run (without CUSTOMER: the kinds any customer runs), as JSON."""
    if (customer is not None) + every + org > 1:
        click.echo("error: give CUSTOMER, --all or --org, one at a time.", err=True)
        sys.exit(EXIT_ERROR)
    if every or org:
        click.echo(json.dumps(org_reader_policy() if org else everything(), indent=2))
        return
    settings = _settings_or_exit()
    catalog = _listed_catalog(settings)
    try:
        chosen = [catalog.customer(customer)] if customer else list(catalog.customers.values())
    except HubError as exc:
        click.echo(f"error: {exc.said(CLI)}", err=True)
        sys.exit(EXIT_ERROR)
    if not chosen:
        click.echo(
            f"error: no customer loaded from {settings.config_dir}, so no check kind "
            "is used; `mhub iam policy --all` prints every kind's policy.",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    click.echo(json.dumps(member_policy(kinds_of(chosen)), indent=2))


@main.group("accounts")
def accounts_group() -> None:
    """Accounts discovered from AWS Organizations (docs/organizations.md)."""


def _with_organizations(catalog: Catalog, customer: str | None) -> list[Customer]:
    """CUSTOMER (it must have an organization), or every customer that has one."""
    if customer is not None:
        chosen = catalog.customer(customer)
        if chosen.organization is None:
            raise UsageError(
                f"{chosen.id} has no organization: to discover its accounts add organization: "
                "to its file (docs/organizations.md)."
            )
        return [chosen]
    found = sorted((c for c in catalog.customers.values() if c.organization), key=lambda c: c.id)
    if not found:
        raise UsageError(
            "No customer has an organization: add organization: to a customer's file to "
            "discover its accounts (docs/organizations.md)."
        )
    return found


@accounts_group.command("sync")
@click.argument("customer", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def accounts_sync(customer: str | None, as_json: bool) -> None:
    """Read CUSTOMER's AWS organization now (default: every customer's that has one), keep
    the accounts found and post what changed to the customer's channel. Exit 1: synced, with
    problems (accounts skipped); 2: a sync failed (nothing changed for it)."""

    async def go() -> int:
        settings = _settings()
        base = load_catalog(settings.config_dir)
        chosen = _with_organizations(base, customer)
        db = Database(settings.database_url)
        try:
            await db.ensure_schema()
            syncer = Syncer(db, AccountsChannel(Outgoing(db)))
            outcomes = []
            for one in chosen:
                await store.claim(db, one.id, None)  # the serve loop counts it as a sync
                outcomes.append(await syncer.sync(one, base))
        finally:
            await db.close()
        if as_json:
            click.echo(json.dumps({"customers": [_outcome_json(o) for o in outcomes]}))
        else:
            for one, outcome in zip(chosen, outcomes, strict=True):
                click.echo(sync_text(one, outcome, one.tz))
        if not all(o.ok for o in outcomes):
            return EXIT_ERROR
        return EXIT_FINDINGS if any(o.stored and o.stored.notes for o in outcomes) else EXIT_OK

    _run(go())


def _outcome_json(outcome: Any) -> dict[str, Any]:
    if outcome.stored is None or outcome.found is None:
        return {"customer": outcome.customer_id, "ok": False, "problem": outcome.problem}
    news = outcome.stored.news
    return {
        "customer": outcome.customer_id,
        "ok": True,
        "organization": outcome.found.organization_id,
        "accounts": [_known_json(k) for k in outcome.stored.rows],
        "excluded": list(outcome.found.excluded),
        "new": [k.alias for k in news.new],
        "gone": [{"alias": k.alias, "why": why} for k, why in news.gone],
        "suspended": [k.alias for k in news.suspended],
        "problems": list(outcome.stored.notes),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _known_json(known: Known) -> dict[str, Any]:
    return {
        "alias": known.alias,
        "account_id": known.account_id,
        "name": known.name,
        "state": known.state,
        "regions": list(known.regions) if known.regions is not None else None,
        "note": known.note,
    }


@accounts_group.command("list")
@click.argument("customer", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def accounts_list(customer: str | None, as_json: bool) -> None:
    """The accounts the last syncs of CUSTOMER's organization (default: every customer's)
    found, where each stands, and when each organization was last synced."""

    async def go() -> int:
        settings = _settings()
        base, _ = check_config(settings.config_dir)
        chosen = _with_organizations(base, customer)
        db = Database(settings.database_url)
        try:
            await db.ensure_schema()
            known, syncs = await store.known(db), await store.syncs(db)
        finally:
            await db.close()
        if as_json:
            click.echo(json.dumps({"customers": [
                {
                    "customer": c.id,
                    "synced_at": _iso(s.synced_at if (s := syncs.get(c.id)) else None),
                    "problem": s.problem if s else None,
                    "accounts": [_known_json(k) for k in known.get(c.id, ())],
                }
                for c in chosen
            ]}))  # fmt: skip
        else:
            for c in chosen:
                click.echo(list_text(c, known.get(c.id, ()), syncs.get(c.id), c.tz))
        return EXIT_OK

    _run(go())


@main.group("db")
def db_group() -> None:
    """Database commands."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (safe while other replicas run)."""

    async def go() -> int:
        db = Database(_settings().database_url)
        try:
            await db.upgrade()
            current, _ = await db.schema_state()
        finally:
            await db.close()
        click.echo(f"database is at revision {current}")
        return EXIT_OK

    _run(go())


@db_group.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Delete what is older than this many days, such as 90d.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def db_prune(older_than: str, dry_run: bool) -> None:
    """Delete old runs, web reads and sent notices, keeping what digests, open findings, the
    runboard and the monthly reports need (docs/operations.md#retention)."""
    try:
        age = retention.parse_age(older_than)
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None

    async def go() -> int:
        db = Database(_settings().database_url)
        try:
            await db.ensure_schema()
            before = retention.cutoff(datetime.now(UTC), age)
            day = before.date().isoformat()
            if dry_run:
                click.echo(f"Would delete {await retention.count(db, before)}, from before {day}.")
            else:
                click.echo(f"Deleted {await retention.prune(db, before)}, from before {day}.")
        finally:
            await db.close()
        return EXIT_OK

    _run(go())


@main.group("digest")
def digest_group() -> None:
    """Digests of scheduled runs (docs/schedules.md)."""


@digest_group.command("send")
@click.argument("customer")
@click.argument("schedule", required=False)
def digest_send(customer: str, schedule: str | None) -> None:
    """Run SCHEDULE's checks for CUSTOMER now (default: its first schedule), wait, and post the
    digest to the schedule's channel; with Slack off, print it."""

    async def go() -> int:
        settings = _settings()
        async with build(settings, load_catalog(settings.config_dir)) as hub:
            sent = await send_now(
                hub.digests,
                hub.executor.run_until_done,
                hub.side.deliverer.deliver_due if hub.side is not None else None,
                customer,
                schedule,
                lambda run_id: click.echo(f"⏳ #{run_id}…", err=True),
            )
        click.echo(sent.text)
        click.echo(sent.note, err=True)
        return EXIT_OK if sent.status in ("posted", "off") else EXIT_ERROR

    _run(go())


@main.command("report")
@click.argument("customer")
@click.option("--month", help="A calendar month, YYYY-MM (default: the last whole month).")
@click.option("--from", "first", help="The first day, YYYY-MM-DD (with --to; both included).")
@click.option("--to", "last", help="The last day, YYYY-MM-DD.")
@click.option("--pdf", "pdf_file", type=click.Path(dir_okay=False), help="Write the PDF here.")
@click.option(
    "--csv", "csv_dir", type=click.Path(file_okay=False), help="Write one CSV per section here."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def report_command(
    customer: str,
    month: str | None,
    first: str | None,
    last: str | None,
    pdf_file: str | None,
    csv_dir: str | None,
    as_json: bool,
) -> None:
    """CUSTOMER's report for a month or a range of days, in its time zone (docs/reports.md):
    availability, backups, databases, alarms, cost, findings, and what could not be checked.
    Prints it (or its JSON); --pdf and --csv write files as well."""

    async def go() -> int:
        if month and (first or last):
            raise UsageError("give --month, or --from and --to, not both")
        if bool(first) != bool(last):
            raise UsageError("give both --from and --to (both days are included)")
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        found = catalog.customer(customer)
        db = Database(settings.database_url)
        try:
            await db.ensure_schema()
            reports = Reports(db, catalog)
            now = reports.clock()
            if first and last:
                period = between(found, first, last, now)
            else:
                period = month_of(found, month, now) if month else last_month(found, now)
            made = await reports.build(found.id, period)
        finally:
            await db.close()
        await asyncio.to_thread(_write_report, made, pdf_file, csv_dir)
        click.echo(json.dumps(made.as_json()) if as_json else render_text(made))
        return EXIT_OK

    _run(go())


def _write_report(made: Report, pdf_file: str | None, csv_dir: str | None) -> None:
    """The report's PDF and CSV files, where asked; a path that cannot be written is said."""
    try:
        if pdf_file:
            data = pdf_bytes(made)
            Path(pdf_file).write_bytes(data)
            click.echo(f"wrote {pdf_file} ({len(data) / 1024:,.0f} KiB)", err=True)
        if csv_dir:
            written = write_csvs(made, Path(csv_dir))
            click.echo(f"wrote {len(written)} CSV files to {csv_dir}", err=True)
    except OSError as exc:
        raise UsageError(
            f"cannot write {exc.filename or pdf_file or csv_dir}: {exc.strerror}"
        ) from None


@main.group("token")
def token_group() -> None:
    """API tokens for automation (docs/api.md). A token sees only the customers it was made
    for; scope read reads their runs, findings and reports, scope run also starts, cancels and
    retries their runs. Its secret is shown once, when it is made, and only a hash is kept."""


@token_group.command("create")
@click.option(
    "--name",
    required=True,
    help="What it is for, such as ci-nightly (a-z, 0-9, - _ .); audit rows name it, so a "
    "name is never reused.",
)
@click.option(
    "--customer",
    "customers",
    multiple=True,
    required=True,
    metavar="ID",
    help="A customer it may see; repeat for more.",
)
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default="read",
    show_default=True,
    help="read: runs, findings, reports; run: also start, cancel and retry runs.",
)
@click.option(
    "--expires",
    default=DEFAULT_EXPIRES,
    show_default=True,
    help="How long it works: 90d, 12h, 2w (at most 730d), or never.",
)
def token_create(name: str, customers: tuple[str, ...], scope: str, expires: str) -> None:
    """Make a token and print its secret on stdout: the only time it is shown."""

    async def go() -> int:
        lasting, chosen = parse_expires(expires), token_name(name)
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        ids = [catalog.customer(customer).id for customer in customers]  # NotFound: exit 2
        async with _token_store(settings) as tokens:
            made, secret = await tokens.create(chosen, ids, scope, lasting, _who(None))
        click.echo(
            f"Created token {made.name}: scope {made.scope}, customers "
            f"{', '.join(made.customers)}, {_expiry(made)}.",
            err=True,
        )
        click.echo(secret)
        click.echo(
            "This secret will not be shown again: store it now (only its hash is kept). "
            "Send it as `Authorization: Bearer <secret>`; `mhub token revoke "
            f"{made.name}` ends it.",
            err=True,
        )
        return EXIT_OK

    _run(go())


@token_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def token_list(as_json: bool) -> None:
    """Every token, revoked and expired ones too — never a secret."""

    async def go() -> int:
        async with _token_store(_settings()) as tokens:
            made, now = await tokens.list(), tokens.clock()
        if as_json:
            shown = [{**t.as_json(), "state": t.state(now)} for t in made]
            click.echo(json.dumps({"tokens": shown}))
            return EXIT_OK
        if not made:
            click.echo("No tokens yet; `mhub token create --name NAME --customer ID` makes one.")
            return EXIT_OK
        rows = [
            (
                t.name,
                t.scope,
                ",".join(t.customers),
                _when(t.created_at),
                _when(t.expires_at, "never"),
                _when(t.last_used_at, "never"),
                t.state(now) if t.revoked_at is None else f"revoked {_when(t.revoked_at)}",
            )
            for t in made
        ]
        head = ("NAME", "SCOPE", "CUSTOMERS", "CREATED", "EXPIRES", "LAST USED", "STATE")
        widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
        for row in (head, *rows):
            click.echo(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
        return EXIT_OK

    _run(go())


@token_group.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke NAME: requests with it are refused (401) from now on. Its row stays, for the
    audit trail."""

    async def go() -> int:
        async with _token_store(_settings()) as tokens:
            if await tokens.revoke(name):
                click.echo(
                    f"Revoked token {name.strip()}: requests with it are refused from now on."
                )
                return EXIT_OK
            found = await tokens.get(name)
        if found is None:
            raise UsageError(f'There is no token "{clip(name)}". `mhub token list` lists them.')
        click.echo(
            f"Token {found.name} was revoked already ({_when(found.revoked_at)}); nothing changed."
        )
        return EXIT_OK

    _run(go())


@asynccontextmanager
async def _token_store(settings: Settings) -> AsyncIterator[Tokens]:
    """The token store on the configured database (opened here, closed after)."""
    db = Database(settings.database_url)
    try:
        await db.ensure_schema()
        yield Tokens(db)
    finally:
        await db.close()


def _when(moment: datetime | None, none: str = "-") -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else none


def _expiry(token: ApiTokenView) -> str:
    return f"expires {_when(token.expires_at)}" if token.expires_at else "never expires"


@main.command("demo")
@click.option("--keep", is_flag=True, help="Keep serving the sandbox until Ctrl-C.")
@click.pass_context
def demo_command(ctx: click.Context, keep: bool) -> None:
    """A local sandbox: an AWS emulator with demo data, the demo customer, and a run.
    It logs only warnings and errors, so the card reads alone (-v: everything)."""
    from app.sandbox.demo import run_demo  # the sandbox needs the optional "demo" extra

    if not ctx.find_root().params.get("verbose"):
        logs.at_least(logging.WARNING)

    _run(run_demo(keep=keep))


@main.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=4566, show_default=True)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Create this file once the estate is planted (a container's health check).",
)
def sandbox_command(host: str, port: int, ready_file: Path | None) -> None:
    """Serve the demo's AWS emulator and estate (no hub) until stopped: for hubs elsewhere,
    such as the compose demo (deploy/compose/), through AWS_ENDPOINT_URL."""
    from app.sandbox.estate import serve_estate  # the sandbox needs the optional "demo" extra

    sys.exit(serve_estate(host, port, ready_file))


async def _queued_or_done(
    hub: Hub, run: Run, said: str, extra: dict[str, Any], as_json: bool, no_wait: bool
) -> int:
    """``--no-wait``: say the run is queued (``said``) and return 0. Otherwise wait for it,
    print it like `mhub status`, and return its exit code (0 all OK, 1 findings, 2 error)."""
    if no_wait:
        click.echo(
            json.dumps({"id": run.id, "status": run.status, **extra})
            if as_json
            else f"{said}; `mhub status {run.id}` shows it"
        )
        return EXIT_OK
    await _wait_with_progress(hub, run.id, show=not as_json and sys.stderr.isatty())
    view = await hub.runs.get(run.id)
    _print(hub, view, as_json)
    return exit_code(view)


async def _wait_with_progress(hub: Hub, run_id: int, show: bool) -> None:
    waiter = asyncio.create_task(hub.executor.run_until_done(run_id))
    while show and not waiter.done():
        await asyncio.wait([waiter], timeout=0.5)
        view = await hub.runs.get(run_id)
        click.echo(f"\r⏳ #{run_id}: {view.done} of {view.total} checks…", nl=False, err=True)
    await waiter
    if show:
        click.echo("\r\033[K", nl=False, err=True)


def _print(hub: Hub, view: RunView, as_json: bool) -> None:
    customer = hub.catalog.customers.get(view.run.customer_id)
    if as_json:
        click.echo(json.dumps(run_json(view), indent=2, ensure_ascii=False))
    else:
        click.echo(
            render_run(view, customer.tz if customer else None, customer.name if customer else None)
        )


def exit_code(view: RunView) -> int:
    """0 all OK, 1 warn/crit findings, 2 when the run did not finish or a check could not look."""
    if view.run.status != "completed" or any(r.severity == "error" for r in view.results):
        return EXIT_ERROR
    if any(r.severity in ("warn", "crit") for r in view.results):
        return EXIT_FINDINGS
    return EXIT_OK


if __name__ == "__main__":
    main()
