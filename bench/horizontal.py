"""Horizontal: one customer's sweep shared by 1, 2 or 4 ``mhub serve`` replicas on PostgreSQL.

One customer of ``--accounts`` accounts × 4 AWS checks (backup, rds, alarms, budget; seeded as
in bench/fanout.py), moto behind the edge (app/sandbox/edge.py, its own process) adding
``--latency-ms`` to every AWS call, so the sweep waits on AWS and not on the 2 cores. For each
replica count, that many real ``python -m app serve --no-slack --no-web`` processes (``mhub
serve`` with production defaults: only ``DATABASE_URL``, ``HUB_CONFIG_DIR``, text logs and the
AWS endpoint are set) serve one scratch PostgreSQL database. Once every replica has logged its
start-up warm-up ("AWS: … clients built"; the edge adds no latency until then, so the warm-up
is not what is measured), one run for the whole customer is submitted and timed from its
submit to its end (the run's own ``created_at`` → ``finished_at``), ``--repeat`` times on the
same replicas.

Printed per sweep: wall time; the latency-only ideal for that many replicas (``calls ×
latency / (replicas × max_targets)``, at least the longest chain of one check); the AWS calls
the edge saw (the same for every replica count, or some check ran twice); each replica's share
of the targets (``run_shards.done_by``), when its last shard was done and how busy its
``max_targets`` slots were (its checks' durations over slots × wall); the CPU each process
spent; whether every target was recorded exactly once. Target: 4 replicas ≥ 3 × faster than 1.

    uv run python bench/horizontal.py                               # 200 accounts, 1 s, 1,2,4
    uv run python bench/horizontal.py --replicas 1,4 --accounts 50 --latency-ms 300 --repeat 3

``--database-url`` names an existing database to use (empty or migrated; left in place); by
default a scratch database is created beside ``--admin-url``
(``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``) and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.catalog import Catalog  # noqa: E402
from app.config import Customer  # noqa: E402
from app.db import Database  # noqa: E402
from app.engine.executor import ExecutorOptions  # noqa: E402
from app.engine.runs import RunService, Submit  # noqa: E402
from app.models import TERMINAL_STATUSES, Source  # noqa: E402
from app.sandbox.edge import Edge  # noqa: E402
from app.sandbox.moto import FAKE_ENV, moto_server  # noqa: E402
from bench.fanout import child_pid, make_customer, process_cpu, seed_elsewhere  # noqa: E402
from bench.served import machine  # noqa: E402
from checks.aws import AwsOptions  # noqa: E402

KINDS = ("backup", "rds", "alarms", "budget")
CHAIN = 2
"""The longest dependent chain of one check, in AWS calls (rds: DescribeDBInstances, then
GetMetricData), with the role already assumed."""
ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
WARM_LINE = "clients built"
"""What app.engine.prewarm logs once a replica's start-up warm-up is done."""


# -- the database ------------------------------------------------------------------------------


async def _admin(base: str, sql: str) -> None:
    engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def scratch_database(base: str) -> Iterator[str]:
    """A new database beside ``base``'s, migrated; dropped afterwards."""
    url = make_url(base)
    name = f"mhub_horizontal_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- the replicas ------------------------------------------------------------------------------


def write_config(customer: Customer, directory: Path) -> Path:
    """The customer as ``<directory>/customers/<id>.yaml``, as an operator would write it."""
    folder = directory / "customers"
    folder.mkdir(parents=True, exist_ok=True)
    data = customer.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    (folder / f"{customer.id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


@dataclass
class Replica:
    """One ``python -m app serve --no-slack --no-web`` process; its log goes to a file."""

    name: str
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--no-slack", "--no-web"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cpu_s(self) -> float:
        return process_cpu(self.pid)

    async def logged(self, needle: str, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while needle not in self.log():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited early; its log:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not log {needle!r} in {limit_s:g} s")
            await asyncio.sleep(0.1)

    def stop(self, limit_s: float) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``limit_s``; its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(limit_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


@contextlib.contextmanager
def started(count: int, env: dict[str, str], logs: Path) -> Iterator[list[Replica]]:
    group = [
        Replica(f"r{i + 1}", logs / f"r{i + 1}-of-{count}.log", env).start() for i in range(count)
    ]
    try:
        yield group
    finally:
        codes = [member.stop(limit_s=30) for member in group]
        if any(code != 0 for code in codes):
            print(f"   !! replicas' exit codes after SIGTERM: {codes} (None: killed)")


# -- one sweep ---------------------------------------------------------------------------------


@dataclass
class Share:
    shards: int = 0
    targets: int = 0
    last_done_s: float | None = None
    cpu_s: float = 0.0
    check_s: float = 0.0
    """The time its checks took, summed (each result's ``started_at`` → ``finished_at``)."""


@dataclass
class Sweep:
    replicas: int
    wall_s: float
    targets: int
    results: int
    distinct: int
    errors: list[str]
    calls: int
    shares: dict[str, Share] = field(default_factory=dict)
    other_cpu_s: dict[str, float] = field(default_factory=dict)
    unattributed: int = 0
    claimed_s: float = 0.0
    """From submit until the owner claimed the run."""
    width: int = 1
    """Checks at once per replica (max_targets)."""

    @property
    def exactly_once(self) -> bool:
        return self.results == self.distinct == self.targets


async def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.read() as session:
        return list((await session.execute(text(sql), params)).all())


def replica_of(worker: str | None, group: Sequence[Replica]) -> str | None:
    """The name of the replica whose executor id (``host:pid:random``) is ``worker``."""
    pid = worker.rsplit(":", 2)[1] if worker and worker.count(":") >= 2 else None
    return next((member.name for member in group if str(member.pid) == pid), None)


async def shares_of(
    db: Database, run_id: int, submitted: datetime, group: Sequence[Replica]
) -> tuple[dict[str, Share], int]:
    """Each replica's shards and targets (``run_shards.done_by``), and how many targets no
    replica of ``group`` finished. A run that was not sharded was all its owner's."""
    shards = await _rows(
        db, "SELECT done_by, targets, finished_at FROM run_shards WHERE run_id = :id", id=run_id
    )
    if not shards:
        shards = await _rows(
            db,
            "SELECT e.actor, r.targets, r.finished_at FROM run_events e "
            "JOIN runs r ON r.id = e.run_id WHERE e.run_id = :id AND e.type = 'claimed'",
            id=run_id,
        )
    took = {
        (account, check): (finished - started).total_seconds()
        for account, check, started, finished in await _rows(
            db,
            'SELECT account, "check", started_at, finished_at FROM results WHERE run_id = :id',
            id=run_id,
        )
        if started is not None
    }
    shares = {member.name: Share() for member in group}
    unattributed = 0
    for worker, targets, finished_at in shards:
        name = replica_of(worker, group)
        if name is None:
            unattributed += len(targets)
            continue
        share = shares[name]
        share.shards += 1
        share.targets += len(targets)
        share.check_s += sum(took.get((t["account"], t["check"]), 0.0) for t in targets)
        if finished_at is not None:
            done_s = (finished_at - submitted).total_seconds()
            share.last_done_s = max(share.last_done_s or 0.0, done_s)
    return shares, unattributed


def edge_calls(edge: Edge) -> int:
    """AWS calls the edge saw, AssumeRole aside (credentials renewed meanwhile)."""
    return sum(
        row["count"]
        for row in edge.counts()
        if f"{row['service']}:{row['operation']}" != "sts:AssumeRole"
    )


def other_cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: process_cpu(pid) for name, pid in pids.items()}


async def sweep(
    db: Database,
    catalog: Catalog,
    customer: Customer,
    group: Sequence[Replica],
    edge: Edge,
    pids: dict[str, int],
) -> Sweep:
    runs = RunService(db)
    edge.reset_counts()
    before = {member.name: member.cpu_s() for member in group}
    before_other = other_cpu(pids)
    run, _ = await runs.submit(Submit(catalog.plan(customer.id), "bench", Source.CLI))
    while run.status not in TERMINAL_STATUSES:
        await asyncio.sleep(0.05)
        run = (await runs.get(run.id)).run
    assert run.finished_at is not None
    wall = (run.finished_at - run.created_at).total_seconds()
    calls = edge_calls(edge)
    shares, unattributed = await shares_of(db, run.id, run.created_at, group)
    for member in group:
        shares[member.name].cpu_s = member.cpu_s() - before[member.name]
    after_other = other_cpu(pids)
    [(results, distinct)] = await _rows(
        db,
        'SELECT count(*), count(DISTINCT (account, "check")) FROM results WHERE run_id = :id',
        id=run.id,
    )
    errors = [
        f"{account}/{check}: {summary}"
        for account, check, summary in await _rows(
            db,
            'SELECT account, "check", summary FROM results '
            "WHERE run_id = :id AND severity = 'error' ORDER BY account",
            id=run.id,
        )
    ]
    if run.status != "completed":
        errors.insert(0, f"run #{run.id} ended {run.status}: {run.error}")
    return Sweep(
        replicas=len(group),
        wall_s=wall,
        targets=len(run.targets),
        results=results,
        distinct=distinct,
        errors=errors,
        calls=calls,
        shares=shares,
        other_cpu_s={k: after_other[k] - before_other[k] for k in pids},
        unattributed=unattributed,
        claimed_s=((run.started_at or run.created_at) - run.created_at).total_seconds(),
        width=ExecutorOptions().max_targets,
    )


# -- the benchmark -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.close()


def print_sweep(one: Sweep, ideal_s: float, baseline_s: float | None, calls: int | None) -> None:
    speedup = f"{baseline_s / one.wall_s:4.2f} ×" if baseline_s else "   — "
    once = "✓" if one.exactly_once and not one.errors else "✗"
    same_calls = "" if calls is None or one.calls == calls else f" (≠ {calls}: a check ran twice?)"
    print(
        f"  {one.replicas} replica(s)  {one.wall_s:6.2f} s  ideal {ideal_s:5.2f} s "
        f"({one.wall_s / ideal_s:4.2f} ×)  speed-up {speedup}  {one.calls} calls{same_calls}  "
        f"results {one.results}/{one.targets} distinct {one.distinct} {once}"
    )
    for name, share in one.shares.items():
        last = f"{share.last_done_s:6.2f} s" if share.last_done_s is not None else "     — "
        part = 100 * share.targets / one.targets if one.targets else 0.0
        busy = 100 * share.check_s / (one.width * one.wall_s)
        print(
            f"      {name}: {share.shards:3d} shards {share.targets:4d} targets ({part:5.1f} %)"
            f"  last shard done at {last}  slots busy {busy:5.1f} %  CPU {share.cpu_s:5.2f} s"
        )
    final = max((s.last_done_s or 0.0 for s in one.shares.values()), default=0.0)
    print(
        f"      the owner claimed the run after {one.claimed_s:.2f} s and ended it "
        f"{one.wall_s - final:.2f} s after the last shard was done"
    )
    if one.unattributed:
        print(f"      !! {one.unattributed} targets done by no replica of this group")
    others = "  ".join(f"{k} {v:.2f}" for k, v in one.other_cpu_s.items())
    print(f"      CPU-s elsewhere: {others}")
    for error in one.errors[:3]:
        print(f"      !! {error}")


async def bench(args: argparse.Namespace, db_url: str, moto_url: str, edge: Edge) -> None:
    customer = make_customer(args.accounts, KINDS)
    catalog = Catalog([customer])
    width = ExecutorOptions().max_targets
    latency_s = args.latency_ms / 1000
    pids = {"moto": child_pid("moto.server"), "edge": child_pid("app.sandbox.edge")}
    print(f"seeding {args.accounts} accounts …", flush=True)
    seed_elsewhere(moto_url, edge, customer)
    counts = [int(n) for n in args.replicas.split(",")]
    print(
        f"\nhorizontal: {args.accounts} accounts × {len(KINDS)} checks ({', '.join(KINDS)}) = "
        f"{args.accounts * len(KINDS)} targets in one run, {args.latency_ms:g} ms added to "
        f"every AWS call; replicas {counts}, {args.repeat} sweep(s) each\n"
        f"each replica: production defaults (max_targets={width}, "
        f"threads={AwsOptions().threads}); PostgreSQL {make_url(db_url).host}\n"
        f"machine: {machine()}\n",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="horizontal-") as tmp:
        config = write_config(customer, Path(tmp) / "config")
        logs = Path(args.logs) if args.logs else Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "SLACK_"))}
        env.update(FAKE_ENV)
        env.update(
            DATABASE_URL=db_url,
            HUB_CONFIG_DIR=str(config),
            HUB_LOG_FORMAT="text",
            AWS_ENDPOINT_URL=edge.url,
        )
        async with database(db_url) as db:
            medians: dict[int, float] = {}
            calls: int | None = None
            for count in counts:
                edge.clear_faults()  # no latency while the replicas warm up
                with started(count, env, logs) as group:
                    began = time.perf_counter()
                    await asyncio.gather(*(m.logged(WARM_LINE, args.warm_limit) for m in group))
                    print(
                        f"{count} replica(s) warmed up in {time.perf_counter() - began:.1f} s",
                        flush=True,
                    )
                    edge.inject(latency_ms=args.latency_ms)
                    walls = []
                    for _ in range(args.repeat):
                        one = await sweep(db, catalog, customer, group, edge, pids)
                        calls = one.calls if calls is None else calls
                        chain = CHAIN * latency_s
                        ideal = max(chain, one.calls * latency_s / (count * width))
                        print_sweep(one, ideal, medians.get(counts[0]), calls)
                        walls.append(one.wall_s)
                    medians[count] = statistics.median(walls)
            print("\nmedian wall per replica count:")
            base = medians[counts[0]]
            for count, wall in medians.items():
                ok = "✓" if count < 4 or base / wall >= 3 else "✗ (target ≥ 3 ×)"
                print(f"  {count} replica(s): {wall:6.2f} s  {base / wall:4.2f} × {ok}")
        if args.logs is None:
            print(f"\n(replica logs were in {logs}, removed; --logs DIR keeps them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--replicas", default="1,2,4", help="comma-separated replica counts")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=1000.0)
    parser.add_argument("--repeat", type=int, default=1, help="sweeps per replica count")
    parser.add_argument("--database-url", help="use this database (kept) instead of a scratch one")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="where to create the scratch db")
    parser.add_argument("--warm-limit", type=float, default=300.0, help="seconds to warm up")
    parser.add_argument("--logs", help="keep the replicas' logs in this folder")
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.replicas.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        parser.error("--replicas: write replica counts separated by commas, such as 1,2,4")
    if args.accounts < 1 or args.repeat < 1 or args.latency_ms < 0:
        parser.error("--accounts and --repeat: 1 or more; --latency-ms: 0 or more")
    os.environ.update(FAKE_ENV)
    started_at = datetime.now(UTC)
    with contextlib.ExitStack() as stack:
        db_url = args.database_url or stack.enter_context(scratch_database(args.admin_url))
        moto_url = stack.enter_context(moto_server())
        edge = stack.enter_context(Edge(moto_url, subprocess=True))
        asyncio.run(bench(args, db_url, moto_url, edge))
    took = (datetime.now(UTC) - started_at).total_seconds()
    print(f"\n{started_at:%Y-%m-%d %H:%M} UTC, {took:.0f} s in all; load now {machine()}")


if __name__ == "__main__":
    main()
