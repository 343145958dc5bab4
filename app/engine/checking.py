"""Running one check for one account: its settings, its window, its time limit and its retries.

:meth:`CheckRunner.run` never raises (except when cancelled): whatever goes wrong becomes an
``error`` result that says what to do — a check that is no longer configured, settings that do
not validate, a permanent AWS error (no retry), a transient one tried again as the
:class:`~app.engine.retry.RetryPolicy` decides, the per-check timeout (retries included), or a
bug in the check (logged with its traceback). The executor runs many of these at once, one per
target of a run; ``mhub``'s check tests run them alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from app.config import Customer
from app.engine.retry import RetryPolicy
from checks.aws import AwsClients
from checks.base import Check, CheckContext, CheckResult, CheckSettings, Severity
from checks.errors import CheckError, Reason

log = logging.getLogger(__name__)

DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Target:
    """The run and target a check is running for; see :func:`current_target`."""

    run_id: int
    attempt: int
    account: str
    check: str


_TARGET: contextvars.ContextVar[Target] = contextvars.ContextVar("mhub_target")


def current_target() -> Target | None:
    """The run and target the calling check runs for (for log lines); None outside a check."""
    return _TARGET.get(None)


def running_for(target: Target) -> None:
    """Mark the calling task (a check's) as running for ``target``."""
    _TARGET.set(target)


@dataclass(frozen=True)
class Retrying:
    """A try of a check failed and it will be tried again (the executor records an event)."""

    run_id: int
    account: str
    check: str
    tries: int
    error: str


class CheckRunner:
    def __init__(
        self,
        registry: Mapping[str, Check],
        aws: AwsClients,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.registry = registry
        self.aws = aws
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._settings: dict[tuple[int, str], tuple[Customer, CheckSettings]] = {}

    async def run(
        self,
        customer: Customer,
        account_id: str,
        kind: str,
        *,
        run_id: int,
        window: timedelta | None = None,
        on_retry: Callable[[Retrying], None] | None = None,
    ) -> CheckResult:
        """Run check ``kind`` on ``account_id`` within the per-check timeout, retrying what the
        policy says; ``window`` overrides the check's own (``--window``)."""
        prepared = self._prepare(customer, account_id, kind, window)
        if isinstance(prepared, CheckResult):
            return prepared
        check, ctx = prepared
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        tries = 0
        while True:
            tries += 1
            answer = await _try(check, ctx, deadline)
            if isinstance(answer, CheckResult):
                return answer
            if answer is None:
                return _timed_out(self.timeout_s, tries)
            decision = self.retry.decide(tries, answer)
            if not decision.retry or loop.time() + decision.delay_s >= deadline:
                return _error_result(run_id, kind, answer, tries)
            log.info(
                "run #%s %s/%s: try %d failed (%s); again in %.1f s",
                run_id,
                account_id,
                kind,
                tries,
                answer,
                decision.delay_s,
            )
            if on_retry is not None:
                on_retry(Retrying(run_id, account_id, kind, tries, str(answer)))
            await asyncio.sleep(decision.delay_s)

    def _prepare(
        self, customer: Customer, account_id: str, kind: str, window: timedelta | None
    ) -> CheckResult | tuple[Check, CheckContext]:
        check = self.registry.get(kind)
        account = customer.account(account_id)
        if check is None or account is None:
            missing = f"check {kind}" if check is None else f"account {account_id}"
            return CheckResult(
                Severity.ERROR,
                f"{missing} is not available any more; "
                "it was removed from the configuration or this build",
                {"reason": Reason.OTHER.value},
            )
        try:
            settings = self._settings_for(customer, check, kind)
        except ValidationError as exc:
            return CheckResult(
                Severity.ERROR,
                f"the {kind} settings of customer {customer.id} are invalid "
                f"({exc.error_count()} problem(s)); run `mhub config check`",
                {"reason": Reason.OTHER.value},
            )
        ctx = CheckContext(
            customer=customer,
            account=account,
            window=window or getattr(settings, "window", None) or DEFAULT_WINDOW,
            settings=settings,
            aws=self.aws,
            now=datetime.now(UTC),
        )
        return check, ctx

    def _settings_for(self, customer: Customer, check: Check, kind: str) -> CheckSettings:
        """A customer's validated settings for a check kind, validated once per loaded config
        (customers are frozen; a reloaded catalog brings new objects and so new entries)."""
        key = (id(customer), kind)
        cached = self._settings.get(key)
        if cached is None or cached[0] is not customer:
            if len(self._settings) > 4096:
                self._settings.clear()
            cached = (customer, check.Settings.model_validate(customer.checks.get(kind) or {}))
            self._settings[key] = cached
        return cached[1]


async def _try(check: Check, ctx: CheckContext, deadline: float) -> CheckResult | Exception | None:
    """One try: the result, the error it raised, or None when the check's time ran out."""
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            return await check.run(ctx)
    except TimeoutError as exc:
        return None if scope.expired() else exc
    except Exception as exc:  # the policy decides; _error_result logs bugs with traceback
        return exc


def _timed_out(timeout_s: float, tries: int) -> CheckResult:
    after = f" ({tries} tries)" if tries > 1 else ""
    return CheckResult(
        Severity.ERROR,
        f"timed out after {timeout_s:g} s{after}; AWS was slow or unreachable",
        {"error": "timeout", "reason": Reason.TIMEOUT.value},
    )


def _error_result(run_id: int, kind: str, exc: BaseException, tries: int) -> CheckResult:
    """An ``error`` result for what a check raised: its message, and in its details why (the
    ``reason``, a :class:`~checks.errors.Reason`) and the call AWS refused, when known."""
    after = f" (after {tries} tries)" if tries > 1 else ""
    if isinstance(exc, CheckError):
        details: dict[str, Any] = {
            "error": type(exc).__name__,
            "permanent": exc.permanent,
            "reason": exc.reason.value,
        }
        if exc.call:
            details["call"] = exc.call
        if exc.code:
            details["code"] = exc.code
        return CheckResult(Severity.ERROR, f"{exc}{after}", details)
    if isinstance(exc, TimeoutError):
        return CheckResult(
            Severity.ERROR,
            f"timed out talking to AWS{after}",
            {"error": "timeout", "reason": Reason.TIMEOUT.value},
        )
    log.error("run #%s: check %s crashed", run_id, kind, exc_info=exc)
    return CheckResult(
        Severity.ERROR,
        f"the {kind} check failed unexpectedly "
        f"({type(exc).__name__}); see the hub's log for run #{run_id}",
        {"error": type(exc).__name__, "reason": Reason.OTHER.value},
    )
