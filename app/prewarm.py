"""AWS clients and credentials made ready before a sweep needs them.

Building a botocore client costs ~5 ms of CPU and assuming a role a round trip; a first sweep
of 50 accounts would otherwise spend seconds on both while its calls wait (docs/benchmarks.md).
``mhub serve`` builds every configured account's clients when it starts, in a background
thread, and keeps role credentials renewed ahead of expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable

from app.catalog import Catalog
from checks.aws import AwsClients
from checks.registry import REGISTRY

log = logging.getLogger(__name__)

REFRESH_S = 300.0


async def keep_aws_ready(
    catalog: Callable[[], Catalog],
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
        wanted = [
            (account, region, service)
            for customer in catalog().customers.values()
            for account in customer.accounts
            for kind in account.checks
            if (check := REGISTRY.get(kind)) is not None
            for region, service in check.clients(account)
        ]
        accounts = list({account.id: account for account, _, _ in wanted}.values())
        built = await asyncio.to_thread(aws.prepare, wanted, stop.is_set)
        problems = await asyncio.to_thread(aws.refresh, accounts, stop.is_set)
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
