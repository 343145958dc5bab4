"""Fan-out: one customer, many accounts × every registered AWS check, behind injected latency.

A moto server seeded with a few resources per account, the edge (app/sandbox/edge.py) in a
subprocess adding ``--latency-ms`` to every AWS call, and the real executor on a throwaway
SQLite database. Prints the API calls per check and the wall time of three concurrent sweeps:
*cold process* (nothing built yet: AssumeRole and every botocore client on the way, as a
one-shot ``mhub run`` does), *after start-up* (the clients ``mhub serve`` builds in the
background when it starts, then the first sweep: AssumeRole on the way) and *warm* (cached
credentials and clients); with each, the ideal critical path for the configured concurrency,
the calls per check, the CPU each process spent (and the hub's per AWS call) and the hub's peak
resident memory so far (``resource.getrusage`` ``ru_maxrss`` of this process: the accounts are
seeded from a separate process, so only the hub's own memory counts); and the same sweep run
one check at a time (cold; ``--no-sequential`` skips it, as 1,000 accounts want).

The ideal counts latency only: ``max(chain, calls × latency / width)`` where ``calls`` is what
the edge saw in that sweep, ``width = min(max_targets, threads)`` and ``chain`` is the longest
dependent chain of one check (AssumeRole, then its calls, one region). Targets: within
1.5 × ideal and at least 20 × faster than sequential; hub CPU ≤ 2.5 ms per AWS call and peak
RSS ≤ 600 MiB (issue #18).

    uv run python bench/fanout.py                                # production defaults
    uv run python bench/fanout.py --max-targets 64 --threads 64
    uv run python bench/fanout.py --accounts 1000 --kinds backup,rds,alarms,budget --no-sequential
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.catalog import Catalog
from app.config import Account, Customer
from app.db import Database
from app.engine.executor import Executor, ExecutorOptions
from app.engine.prewarm import clients_to_build
from app.engine.runs import RunService, Submit
from app.models import Result, Source
from app.sandbox.edge import Edge
from app.sandbox.moto import FAKE_ENV, moto_server, seed_session
from checks.aws import AwsClients, AwsOptions
from checks.registry import REGISTRY

AWS_KINDS = (
    "backup",
    "rds",
    "alarms",
    "budget",
    "health",
    "certs",
    "security",
    "cost",
    "hygiene",
)
SETTINGS: dict[str, dict[str, object]] = {
    "cost": {"payer": "acct-000"},  # Cost Explorer once per customer, on its first account
    "hygiene": {"skip": ["s3_public_access"]},  # S3 Control's host prefix: not in the emulator
}
REGION = "eu-west-1"
FIRST_ACCOUNT = 100_000_000_001
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sweep:
    wall_s: float
    cpu_s: dict[str, float]
    calls: Counter[str]
    results: Sequence[Result]

    @property
    def errors(self) -> list[str]:
        return [
            f"{r.account}/{r.check}: {r.summary}" for r in self.results if r.severity == "error"
        ]


# -- setting up --------------------------------------------------------------------------------


def make_customer(accounts: int, kinds: Sequence[str]) -> Customer:
    return Customer(
        id="fanout",
        name="Fan-out",
        checks={k: v for k, v in SETTINGS.items() if k in kinds},
        accounts=tuple(
            Account(
                id=f"acct-{n:03d}",
                name=f"Account {n}",
                account_id=str(FIRST_ACCOUNT + n),
                regions=(REGION,),
                role_arn=f"arn:aws:iam::{FIRST_ACCOUNT + n}:role/MonitoringReadOnly",
                checks=tuple(kinds),
            )
            for n in range(accounts)
        ),
    )


def seed_elsewhere(moto_url: str, edge: Edge, customer: Customer) -> None:
    """``seed`` in a child process, so the boto3 sessions it builds (one per account) neither
    count in the hub's peak memory nor keep connections to moto open."""
    child = multiprocessing.get_context("spawn").Process(
        target=seed, args=(moto_url, edge.url, customer), name="seed"
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"seeding failed (exit code {child.exitcode})")


def seed(moto_url: str, edge_url: str, customer: Customer) -> None:
    """Per account: two DB instances, an alarm in ALARM, a budget, three backup jobs; for every
    account, empty answers from the edge where moto lacks the call (AWS Health, cost anomalies,
    Backup's protected resources)."""
    os.environ.update(FAKE_ENV)
    port = int(edge_url.rsplit(":", 1)[1])
    edge = Edge(moto_url, port=port)  # the running edge's control API; not started again
    now = datetime.now(UTC)
    edge.answer("health", "DescribeEvents", [{"json": {"events": []}}])
    edge.answer("ce", "GetAnomalies", [{"json": {"Anomalies": []}}])
    with ThreadPoolExecutor(4) as pool:  # moto answers in threads; seeding 1,000 takes minutes
        list(pool.map(partial(seed_account, moto_url, edge, now), customer.accounts))


def seed_account(moto_url: str, edge: Edge, now: datetime, account: Account) -> None:
    session = seed_session(moto_url, account.account_id, REGION)
    rds = session.client("rds", endpoint_url=moto_url)
    for name in ("app", "reports"):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{account.id}-{name}",
            DBInstanceClass="db.t3.medium",
            Engine="postgres",
            AllocatedStorage=100,
            MasterUsername="admin",
            MasterUserPassword="not-a-secret",
        )
    cloudwatch = session.client("cloudwatch", endpoint_url=moto_url)
    cloudwatch.put_metric_alarm(
        AlarmName=f"{account.id}-5xx",
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(
        AlarmName=f"{account.id}-5xx", StateValue="ALARM", StateReason="bench"
    )
    session.client("budgets", endpoint_url=moto_url, region_name="us-east-1").create_budget(
        AccountId=account.account_id,
        Budget={
            "BudgetName": "monthly",
            "BudgetLimit": {"Amount": "1000", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
    )
    arn = f"arn:aws:rds:{REGION}:{account.account_id}:db:{account.id}-app"
    edge.add_backup_jobs(
        account.account_id,
        REGION,
        [
            {"resource_arn": arn, "state": state, "created": now - timedelta(hours=hours)}
            for state, hours in (("COMPLETED", 2), ("COMPLETED", 8), ("FAILED", 14))
        ],
    )


# -- measuring ---------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """User + system CPU-seconds of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU of this process and the given ones, from /proc."""
    return {"hub": time.process_time(), **{name: process_cpu(pid) for name, pid in pids.items()}}


def child_pid(marker: str) -> int:
    """The pid of this process's child whose command line contains ``marker``."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if parent == me and marker in command:
            return int(entry.name)
    raise RuntimeError(f"no child process running {marker}")


def edge_calls(edge: Edge) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in edge.counts():
        counts[f"{row['service']}:{row['operation']}"] += row["count"]
    return counts


async def sweep(
    db: Database,
    catalog: Catalog,
    kinds: Sequence[str],
    clients: AwsClients,
    options: ExecutorOptions,
    edge: Edge,
    pids: dict[str, int],
) -> Sweep:
    customer = next(iter(catalog.customers.values()))
    runs = RunService(db)
    plan = catalog.plan(customer.id, kinds)
    run, _ = await runs.submit(Submit(plan, "bench", Source.CLI))
    executor = Executor(db, catalog, REGISTRY, clients, options=options)
    edge.reset_counts()
    before, wall = cpu_seconds(pids), time.perf_counter()
    await executor.run_until_done(run.id)
    wall, after = time.perf_counter() - wall, cpu_seconds(pids)
    cpu = {name: after[name] - before[name] for name in after}
    return Sweep(wall, cpu, edge_calls(edge), (await runs.get(run.id)).results)


def ideal(calls: Counter[str], chain_calls: int, latency_s: float, width: int) -> float:
    return max(chain_calls * latency_s, sum(calls.values()) * latency_s / width)


async def bench(args: argparse.Namespace, moto_url: str, edge: Edge) -> None:
    kinds = [k for k in (args.kinds.split(",") if args.kinds else AWS_KINDS) if k in REGISTRY]
    customer = make_customer(args.accounts, kinds)
    catalog = Catalog([customer])
    aws = AwsOptions(
        threads=args.threads,
        calls_per_account=args.calls_per_account or AwsOptions.calls_per_account,
    )
    concurrent = ExecutorOptions(max_targets=args.max_targets, check_timeout_s=600)
    width = min(args.max_targets, args.threads)
    latency = args.latency_ms / 1000
    pids = {"moto": child_pid("moto.server"), "edge": child_pid("app.sandbox.edge")}

    print(f"seeding {args.accounts} accounts …", flush=True)
    seed_elsewhere(moto_url, edge, customer)
    edge.inject(latency_ms=args.latency_ms)
    print(
        f"\nfan-out: {args.accounts} accounts × {len(kinds)} checks ({', '.join(kinds)}) = "
        f"{args.accounts * len(kinds)} checks, {args.latency_ms:g} ms added to every AWS call\n"
        f"concurrency: max_targets={args.max_targets}, threads={args.threads}, "
        f"calls_per_account={aws.calls_per_account} → {width} checks at once"
        "; targets interleaved across accounts\n"
        f"machine: {os.cpu_count()} CPUs, {_cpu_model()}, Python {platform.python_version()}\n",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await db.upgrade()
        clients = AwsClients(aws)
        cold = await sweep(db, catalog, kinds, clients, concurrent, edge, pids)
        clients.close()
        rss_cold = peak_rss_mib()
        clients = AwsClients(aws)
        wanted = clients_to_build(catalog)
        before, began = cpu_seconds(pids), time.perf_counter()
        built = await asyncio.to_thread(clients.prepare, wanted)
        problems = await asyncio.to_thread(clients.refresh, customer.accounts)
        assert not problems, problems
        prepared = time.perf_counter() - began, cpu_seconds(pids)["hub"] - before["hub"]
        rss = {"start-up": peak_rss_mib()}
        started = await sweep(db, catalog, kinds, clients, concurrent, edge, pids)
        rss["after start-up"] = peak_rss_mib()
        warm = await sweep(db, catalog, kinds, clients, concurrent, edge, pids)
        rss["warm"] = peak_rss_mib()
        clients.close()
        per_kind: dict[str, Counter[str]] = {}
        sequential: list[Sweep] = []
        if not args.no_sequential:
            one_by_one = ExecutorOptions(max_targets=1, check_timeout_s=600)
            clients = AwsClients(aws)
            for kind in kinds:
                sequential.append(await sweep(db, catalog, [kind], clients, one_by_one, edge, pids))
                per_kind[kind] = sequential[-1].calls
            clients.close()
        await db.close()

    errors = [e for s in (cold, warm, *sequential) for e in s.errors]
    if errors:
        print(f"!! {len(errors)} checks errored, figures are not meaningful; first: {errors[0]}")
    chain = 1
    print("API calls per check (edge counts, sequential sweep):")
    for kind, counts in per_kind.items():
        assume = counts.pop("sts:AssumeRole", 0)
        per_check = sum(counts.values()) / args.accounts
        chain = max(chain, 1 + round(per_check))
        ops = ", ".join(f"{op} {n / args.accounts:g}" for op, n in sorted(counts.items()))
        extra = f"   + AssumeRole once per account ({assume})" if assume else ""
        print(f"  {kind:7} {per_check:g}: {ops}{extra}")
    print()
    seq_wall = sum(s.wall_s for s in sequential)
    if sequential:
        seq_cpu = sum(s.cpu_s["hub"] for s in sequential)
        print(f"sequential       {seq_wall:6.2f} s wall   hub {seq_cpu:.2f} CPU-s")
    print("concurrent:")
    print(
        f"start-up: `mhub serve` builds {built} clients and assumes {len(customer.accounts)} "
        f"roles in {prepared[0]:.2f} s ({prepared[1]:.2f} CPU-s), in the background; "
        f"hub peak RSS {rss['start-up']:.0f} MiB"
    )
    rss["cold process"] = rss_cold
    checks = args.accounts * len(kinds)
    sweeps = (("cold process", cold), ("after start-up", started), ("warm", warm))
    for name, run in sweeps:
        assumed = run.calls.get("sts:AssumeRole", 0) > 0
        best = ideal(run.calls, chain if assumed else chain - 1, latency, width)
        cpu = "  ".join(f"{k} {v:.2f}" for k, v in run.cpu_s.items())
        line = (
            f"{name:16} {run.wall_s:6.2f} s wall   {sum(run.calls.values())} calls, "
            f"ideal {best:.2f} s → {run.wall_s / best:4.2f} × ideal "
            f"{_mark(run.wall_s <= 1.5 * best)}"
        )
        if sequential:
            speedup = seq_wall / run.wall_s
            line += f"   {speedup:5.1f} × faster than sequential {_mark(speedup >= 20)}"
        calls = sum(run.calls.values())
        print(
            f"{line}\n                 CPU-s: {cpu}\n"
            f"                 {calls / checks:.2f} calls per check, "
            f"hub {1000 * run.cpu_s['hub'] / calls:.2f} ms CPU per AWS call "
            f"{_mark(1000 * run.cpu_s['hub'] / calls <= 2.5)}, "
            f"hub peak RSS {rss[name]:.0f} MiB {_mark(rss[name] <= 600)}"
        )


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    return next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line),
        "unknown CPU",
    )


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def main() -> None:
    executor, aws = ExecutorOptions(), AwsOptions()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--max-targets", type=int, default=executor.max_targets)
    parser.add_argument("--threads", type=int, default=aws.threads)
    parser.add_argument("--calls-per-account", type=int, default=0)
    parser.add_argument("--no-sequential", action="store_true")
    parser.add_argument("--kinds", default="", help="comma-separated; default every AWS kind")
    args = parser.parse_args()
    os.environ.update(FAKE_ENV)
    with moto_server() as moto_url, Edge(moto_url, subprocess=True) as edge:
        os.environ["AWS_ENDPOINT_URL"] = edge.url
        asyncio.run(bench(args, moto_url, edge))


if __name__ == "__main__":
    main()
