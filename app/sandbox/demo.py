"""``mhub demo``: the whole hub on one laptop, with no Slack workspace and no AWS account.

Starts an AWS emulator (moto) on loopback behind the sandbox edge (which answers the AWS Backup
calls moto lacks), plants the demo estate, points this process's AWS
environment at the emulator (the sandbox *is* the environment here), runs every check of the
demo customer and prints the result card.
"""

from __future__ import annotations

import os
import shutil
import time
from importlib import resources
from pathlib import Path

import click

from app.engine.runs import Submit
from app.main import build, serve
from app.models import Source
from app.sandbox.edge import Edge
from app.sandbox.moto import FAKE_ENV, moto_server
from app.sandbox.seed import seed
from app.settings import Settings
from blocks.terminal import render_run

DEMO_CUSTOMER = "demo"
DATA = Path("data/demo")


def _config_dir() -> Path:
    """The demo customer's folder: ``configs/demo`` here or in the checkout this code runs
    from, else the copy the wheel ships inside this package (``demo_config``)."""
    for candidate in (Path("configs/demo"), Path(__file__).resolve().parents[2] / "configs/demo"):
        if candidate.is_dir():
            return candidate
    return Path(str(resources.files(__package__ or "app.sandbox") / "demo_config"))


def _fresh(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


async def run_demo(keep: bool = False) -> int:
    click.echo("Monitoring Hub demo sandbox — no Slack, no AWS account needed.")
    click.echo("· starting the AWS emulator on loopback…")
    with moto_server() as moto_url, Edge(moto_url, subprocess=True) as edge:
        started = time.monotonic()
        seed(moto_url, edge)
        click.echo(f"· planted the demo estate (3 accounts) in {time.monotonic() - started:.1f} s")
        os.environ.update({**FAKE_ENV, "AWS_ENDPOINT_URL": edge.url})
        _fresh(DATA)
        settings = Settings(
            HUB_CONFIG_DIR=_config_dir(),
            DATABASE_URL=f"sqlite+aiosqlite:///{DATA / 'hub.db'}",
        )
        async with build(settings, slack=False) as hub:
            plan = hub.catalog.plan(DEMO_CUSTOMER)
            run, _ = await hub.runs.submit(Submit(plan, requested_by="demo", source=Source.CLI))
            click.echo(f"· running {len(plan.targets)} checks as run #{run.id}…\n")
            await hub.executor.run_until_done(run.id)
            view = await hub.runs.get(run.id)
            customer = hub.catalog.customer(DEMO_CUSTOMER)
            click.echo(render_run(view, customer.tz, customer.name))
            click.echo(
                f"\nStored in {DATA / 'hub.db'}; see it again with "
                f"`DATABASE_URL=sqlite+aiosqlite:///{DATA / 'hub.db'} "
                f"HUB_CONFIG_DIR={settings.config_dir} mhub status {run.id}`."
            )
            if keep:
                web = f"http://{settings.web_host}:{settings.web_port}/"
                click.echo(
                    f"Serving the sandbox; web view on {web} (run #{run.id}: "
                    f"{web}runs/{run.id}). Ctrl-C stops it."
                )
                await serve(hub)
            return 0 if view.run.status == "completed" else 2
