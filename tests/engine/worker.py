"""A test-only executor replica: ``python -m tests.engine.worker URL [options]``.

It runs the production :func:`app.main.serve` (signal handling, supervision, executor and
sweeper, as ``mhub serve --no-slack --no-web`` does) with a test registry: the check sleeps per
account and first records its execution in an ``executions`` table that the test created with
the UNIQUE key it wants to hold, so a duplicate execution becomes an ``error`` result.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.engine.checking import current_target
from app.engine.executor import ExecutorOptions
from app.main import build, serve
from app.settings import Settings
from checks.base import Check, CheckContext, CheckResult, Severity
from checks.errors import PermanentError
from tests.engine.support import CATALOG, KIND

RECORDING_AT_ONCE = 4
"""Connections the checks of one replica hold at once to record themselves. Unbounded, each
replica's 32 checks took its whole pool (20): six replicas of two test files running side by
side were seen holding 92 of PostgreSQL's 100 connections (48 with this bound), and a check
refused a connection would be an error result that reads like a duplicate execution."""


class Recording(Check):
    kind = KIND

    def __init__(self, db: Database, owner: str, delays: dict[str, float], jitter_s: float) -> None:
        self.db = db
        self.owner = owner
        self.delays = delays
        self.jitter_s = jitter_s
        self.recording = asyncio.Semaphore(RECORDING_AT_ONCE)

    async def run(self, ctx: CheckContext) -> CheckResult:
        target = current_target()
        assert target is not None
        try:
            async with self.recording, self.db.write() as session:
                await session.execute(
                    text(
                        "INSERT INTO executions (run_id, attempt, account, owner) "
                        "VALUES (:run_id, :attempt, :account, :owner)"
                    ),
                    {
                        "run_id": target.run_id,
                        "attempt": target.attempt,
                        "account": target.account,
                        "owner": self.owner,
                    },
                )
        except IntegrityError as exc:
            raise PermanentError(f"duplicate execution of run #{target.run_id}") from exc
        delay = self.delays.get(ctx.account.id)
        await asyncio.sleep(random.uniform(0, self.jitter_s) if delay is None else delay)
        return CheckResult(Severity.OK, "recorded")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tests.engine.worker")
    parser.add_argument("url")
    parser.add_argument("--owner", required=True)
    parser.add_argument("--max-runs", type=int, default=16)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--cancel-poll", type=float, default=1.0)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--sweep", type=float, default=5.0)
    parser.add_argument("--grace", type=float, default=20.0)
    parser.add_argument("--jitter", type=float, default=0.0, help="random check time, max s")
    parser.add_argument("--delay", action="append", default=[], help="ACCOUNT=SECONDS")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    settings = Settings.from_env(database_url=args.url, grace_s=args.grace)
    db = Database(args.url)
    delays = {k: float(v) for k, v in (item.split("=", 1) for item in args.delay)}
    options = ExecutorOptions(
        max_runs=args.max_runs,
        lease_s=args.lease,
        heartbeat_s=args.heartbeat,
        cancel_poll_s=args.cancel_poll,
        poll_s=args.poll,
        sweep_s=args.sweep,
        grace_s=args.grace,
    )
    check = Recording(db, args.owner, delays, args.jitter)
    try:
        async with build(
            settings,
            CATALOG,
            db=db,
            registry={KIND: check},
            executor=options,
            slack=False,
            owner=args.owner,
        ) as hub:
            await serve(hub, web=False)
    finally:
        await db.close()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    asyncio.run(main(parse(sys.argv[1:])))
