"""AWS clients and credentials made ready before a sweep needs them.

Building a botocore client costs ~5 ms of CPU and assuming a role a round trip; a first sweep
of 50 accounts would otherwise spend seconds on both while its calls wait (docs/benchmarks.md).
``mhub serve`` builds the shared clients the configured checks use when it starts, in a
background thread, assumes every role account's role ``AwsOptions.warm_up_threads`` at a time
(500 roles behind 100 ms: ~4 s, where one after another took 74–92 s), and keeps role credentials
renewed ahead of expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from app.catalog import Catalog
from app.config import Account
from app.waiting import wait_any
from checks.aws import AwsClients
from checks.registry import REGISTRY

log = logging.getLogger(__name__)

REFRESH_S = 300.0

T = TypeVar("T")


async def keep_aws_ready(
    catalog: Catalog,
    aws: AwsClients,
    stop: asyncio.Event,
    every_s: float = REFRESH_S,
) -> None:
    """Build the clients every configured check uses and assume the role accounts' roles,
    then, every ``every_s``, renew credentials that are due (and build clients for accounts
    added since). A role that cannot be assumed is logged when that starts and when it ends.
    Runs until ``stop``."""
    failing: dict[str, str] = {}
    first = True
    while not stop.is_set():
        started = time.perf_counter()
        wanted = clients_to_build(catalog)
        accounts = list({account.id: account for account, _, _ in wanted}.values())
        built = await unless_stopped(in_daemon_thread(aws.prepare, wanted, stop.is_set), stop)
        if built is None:
            return
        problems = await unless_stopped(in_daemon_thread(aws.refresh, accounts, stop.is_set), stop)
        if problems is None:
            return
        for account, problem in problems.items():
            if failing.get(account) != str(problem):
                log.warning("AWS: %s", problem)
        for account in failing.keys() - problems.keys():
            log.info("AWS: %s: its role can be assumed again", account)
        failing = {account: str(problem) for account, problem in problems.items()}
        if first:
            # What start-up built lives as long as the process: out of the collector's sight,
            # like the rest of start-up (app.main.serve).
            gc.freeze()
            roles = sum(1 for a in accounts if a.role_arn is not None) - len(problems)
            log.info(
                "AWS: %d clients built and %d roles assumed in %.1f s",
                built,
                roles,
                time.perf_counter() - started,
            )
            first = False
        await wait_any(stop, within_s=every_s)


def clients_to_build(catalog: Catalog) -> list[tuple[Account, str, str]]:
    """Every (account, region, service) client the configured checks use."""
    return [
        (account, region, service)
        for customer in catalog.customers.values()
        for account in customer.accounts
        for kind in account.checks
        if (check := REGISTRY.get(kind)) is not None
        for region, service in check.clients(account)
    ]


def in_daemon_thread(work: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """``work(*args)`` in a daemon thread, as a future. Unlike ``asyncio.to_thread``, whose
    threads the interpreter joins at exit, a call stuck on an AWS endpoint that never answers
    (up to 4 attempts × 20 s) cannot hold up the exit after SIGTERM."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():  # abandoned (see unless_stopped)
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = work(*args), None
        except BaseException as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="aws-warm-up", daemon=True).start()
    return done


async def unless_stopped(work: asyncio.Future[T], stop: asyncio.Event) -> T | None:
    """``work``'s result, or None (and ``work`` abandoned) if ``stop`` comes first."""
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if work.done():
        return work.result()
    work.cancel()
    return None
