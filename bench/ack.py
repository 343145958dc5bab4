"""Slash-command acknowledgement latency and Slack API calls per run, end to end.

    uv run python bench/ack.py [--commands 100] [--checks rds budget] [--max-runs 4]

Starts a moto server with the demo estate, the fake Slack from tests/, and ``mhub serve`` as a
subprocess (SQLite), then sends N ``/monitor run`` commands at once over Socket Mode. Prints
the ack latency (envelope sent → ack received, measured inside the fake Slack) p50/p99/max,
the time until every card shows its final state, and the Web API calls per run. Slack's limit
for an ack is 3 s; the target is p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.sandbox import moto
from app.sandbox.seed import seed
from tests.e2e.conftest import hub_env, start, stop
from tests.fakeslack import FakeSlack

FINISHED = ("🔴", "🟠", "✅", "⚠️", "✖️ Cancelled")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checks", nargs="*", default=["rds", "budget"])
    parser.add_argument("--max-runs", type=int, default=4, help="HUB_MAX_RUNS for the hub")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"# bench/ack.py — {platform.node()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, load {load:.1f}"
    )
    text = "run arbel " + " ".join(args.checks)
    print(
        f"{args.rounds} rounds of {args.commands} simultaneous `/monitor {text}`, "
        f"HUB_MAX_RUNS={args.max_runs}, SQLite"
    )
    with (
        moto.moto_server() as aws,
        FakeSlack(channels=["C0OPS"]) as fake,
        tempfile.TemporaryDirectory() as tmp,
    ):
        seed(aws)
        env = hub_env(Path(tmp), aws, fake)
        env["HUB_MAX_RUNS"] = str(args.max_runs)
        proc = start(env, Path(tmp) / "serve.log")
        everything: list[float] = []
        try:
            fake.wait(fake.connected, 60, "mhub serve to connect")
            fake.command("help")  # warm up: first request, first database write
            for round_ in range(1, args.rounds + 1):
                everything += burst(fake, text, args.commands, round_)
            time.sleep(2)  # let stragglers (late updates) land before counting calls
        finally:
            stop(proc)
    calls = Counter(
        c.method for c in fake.calls if c.method not in ("auth.test", "apps.connections.open")
    )
    runs = len(fake.cards())
    print(
        f"all rounds: ack p50 {percentile(everything, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(everything, 0.99) * 1000:.0f} ms, "
        f"max {max(everything) * 1000:.0f} ms"
    )
    per_run = ", ".join(f"{m} {n / runs:.2f}" for m, n in sorted(calls.items()))
    print(f"Slack Web API calls per run: {sum(calls.values()) / runs:.2f} ({per_run})")
    print(
        f"cards: {runs} for {args.commands * args.rounds} commands; "
        f"violations: {len(fake.violations)}"
    )


def burst(fake: FakeSlack, text: str, commands: int, round_: int) -> list[float]:
    """One burst; returns its ack latencies once every card of the burst is final."""
    before = len(fake.cards())
    # The fake Slack runs in this process and keeps every call it saw: a full collection of
    # that heap (~250 ms by round 5) landing inside a burst would be counted as the hub's
    # latency. Collect now and keep what is there out of later collections.
    gc.collect()
    gc.freeze()
    began = time.monotonic()
    acks = fake.commands([(text, "U0ALICE", "C0OPS")] * commands)
    latencies = [a.latency_s for a in acks if a.latency_s is not None]

    def all_final() -> bool:
        cards = fake.cards()[before:]
        return len(cards) >= commands and all(c.text.startswith(FINISHED) for c in cards)

    fake.wait(all_final, 600, "every card to show its final state")
    print(
        f"round {round_}: ack p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms; not acked within 3 s: "
        f"{commands - len(latencies)}; all cards final after {time.monotonic() - began:.1f} s"
    )
    return latencies


if __name__ == "__main__":
    main()
