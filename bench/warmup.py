"""Start-up warm-up: what ``mhub serve`` does before its first sweep, for many accounts behind
injected latency.

``app.engine.prewarm.keep_aws_ready`` builds the clients the configured checks use
(``AwsClients.prepare``) and assumes every role account's role (``AwsClients.refresh``); this
times those two steps for one customer of ``--accounts`` accounts × backup, rds, alarms and
budget in one region, against a moto server behind the edge (``app/sandbox/edge.py``, its own
process) adding ``--latency-ms`` to every call. Each run starts from a new ``AwsClients``;
prints each run and the median. Target: 500 accounts in ≤ 10 s.

    uv run python bench/warmup.py                      # 500 accounts, 100 ms, 3 runs
    uv run python bench/warmup.py --accounts 1000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.catalog import Catalog
from app.engine.prewarm import clients_to_build
from app.sandbox.edge import Edge
from app.sandbox.moto import FAKE_ENV, moto_server
from bench.fanout import make_customer, peak_rss_mib
from checks.aws import AwsClients, AwsOptions

KINDS = ("backup", "rds", "alarms", "budget")


def one_run(catalog: Catalog, edge: Edge, options: AwsOptions) -> tuple[float, float, int, int]:
    """(wall s, hub CPU-s, clients built, AssumeRole requests) of one warm-up from scratch."""
    clients = AwsClients(options)
    wanted = clients_to_build(catalog)
    accounts = list({account.id: account for account, _, _ in wanted}.values())
    edge.reset_counts()
    cpu, wall = time.process_time(), time.perf_counter()
    built = clients.prepare(wanted)
    problems = clients.refresh(accounts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    clients.close()
    if problems:
        first = next(iter(problems.values()))
        raise SystemExit(f"{len(problems)} roles could not be assumed; first: {first}")
    return wall, cpu, built, edge.calls("AssumeRole")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warm-up-threads", type=int, default=AwsOptions.warm_up_threads)
    args = parser.parse_args()
    os.environ.update(FAKE_ENV)
    catalog = Catalog([make_customer(args.accounts, KINDS)])
    options = AwsOptions(warm_up_threads=args.warm_up_threads)
    with moto_server() as moto_url, Edge(moto_url, subprocess=True) as edge:
        os.environ["AWS_ENDPOINT_URL"] = edge.url
        edge.inject(latency_ms=args.latency_ms)
        print(
            f"warm-up: {args.accounts} accounts × {len(KINDS)} checks ({', '.join(KINDS)}), "
            f"{args.latency_ms:g} ms added to every AWS call, "
            f"warm_up_threads={options.warm_up_threads}, {os.cpu_count()} CPUs",
            flush=True,
        )
        walls = []
        for n in range(args.runs):
            wall, cpu, built, assumed = one_run(catalog, edge, options)
            walls.append(wall)
            print(
                f"run {n + 1}: {wall:6.2f} s wall, {cpu:5.2f} hub CPU-s, {built} clients built, "
                f"{assumed} AssumeRole requests, hub peak RSS {peak_rss_mib():.0f} MiB",
                flush=True,
            )
    median = statistics.median(walls)
    print(f"median {median:.2f} s wall {'✓' if median <= 10 else '✗'} (target ≤ 10 s)")


if __name__ == "__main__":
    main()
