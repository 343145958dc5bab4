"""The ``mhub`` command line. Exit codes: 0 all OK, 1 warn/crit findings, 2 error."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import click

from app import logs
from app.config import WindowError, parse_window
from app.db import Database
from app.engine import findings
from app.engine.runs import RunView, Submit, parse_run_id, run_json
from app.errors import HubError
from app.loader import ConfigInvalid, check_config, load_catalog
from app.main import Hub, build, serve
from app.models import Source
from app.settings import EnvironmentInvalid, Settings
from app.slack.digests import send_now
from app.web.security import WebRefused, check_exposure
from blocks.terminal import render_findings, render_run
from checks import kinds

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _settings() -> Settings:
    return Settings.from_env()  # EnvironmentInvalid is a HubError: _run prints it


def _run(coro: Coroutine[Any, Any, int]) -> None:
    try:
        code = asyncio.run(coro)
    except (ConfigInvalid, EnvironmentInvalid) as exc:
        click.echo(str(exc), err=True)
        code = EXIT_ERROR
    except HubError as exc:
        click.echo(f"error: {exc}", err=True)
        code = EXIT_ERROR
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log debug detail to stderr; -vv: every library's too. Secrets are always redacted.",
)
def main(verbose: int) -> None:
    """Monitoring Hub: run checks on customers' AWS accounts and see the results."""
    logs.setup(verbose)


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
        plan = catalog.plan(target, checks)
        try:
            span = parse_window(window) if window else None
        except WindowError as exc:
            raise click.BadParameter(str(exc), param_hint="--window") from None
        async with build(settings, catalog) as hub:
            run, _ = await hub.runs.submit(
                Submit(plan, requested_by="cli", source=Source.CLI, window=span)
            )
            if no_wait:
                click.echo(
                    json.dumps({"id": run.id, "status": run.status})
                    if as_json
                    else f"queued #{run.id}; `mhub status {run.id}` shows it"
                )
                return EXIT_OK
            await _wait_with_progress(hub, run.id, show=not as_json and sys.stderr.isatty())
            view = await hub.runs.get(run.id)
            _print(hub, view, as_json)
            return exit_code(view)

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


@main.command("findings")
@click.argument("target")
@click.option(
    "--state",
    type=click.Choice(findings.STATES),
    default=None,
    help="Only open or only resolved findings (default: both, open first).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def findings_command(target: str, state: str | None, as_json: bool) -> None:
    """The problems checks found on TARGET (a customer or an account alias), kept across runs:
    how long each has been open, and whether it is new, regressed or flapping."""

    async def go() -> int:
        settings = _settings()
        catalog, _ = check_config(settings.config_dir)
        customer, accounts = catalog.resolve(target)
        only = None if accounts == customer.accounts else [a.id for a in accounts]
        db = Database(settings.database_url)
        try:
            await db.ensure_schema()
            found = await findings.listing(db, customer.id, only, state)
        finally:
            await db.close()
        if as_json:
            click.echo(json.dumps({"customer": customer.id, "findings": [
                findings.finding_json(f) for f in found
            ]}))  # fmt: skip
        else:
            click.echo(render_findings(found, customer.tz, datetime.now(UTC), customer.name))
        return EXIT_FINDINGS if any(f.status == "open" for f in found) else EXIT_OK

    _run(go())


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
    catalog, found = check_config(settings.config_dir)
    problems = [*_serving_problems(settings), *(str(problem) for problem in found)]
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


def _serving_problems(settings: Settings) -> list[str]:
    """What would stop ``mhub serve`` with these settings that the settings alone allow."""
    auth = settings.web_auth.get_secret_value() if settings.web_auth else None
    try:
        check_exposure(settings.web_host, settings.web_port, auth)
    except WebRefused as exc:
        return [f"HUB_WEB_HOST: {exc}"]
    return []


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


@main.command("demo")
@click.option("--keep", is_flag=True, help="Keep serving the sandbox until Ctrl-C.")
def demo_command(keep: bool) -> None:
    """A local sandbox: an AWS emulator with demo data, the demo customer, and a run."""
    from app.sandbox.demo import run_demo  # the sandbox needs the optional "demo" extra

    _run(run_demo(keep=keep))


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
