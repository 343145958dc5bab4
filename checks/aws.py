"""AWS access shared by every check.

One botocore session per process (so the service-model loader is shared) and one per account
sharing that loader; clients cached per (account, region, service) for the life of the process,
their AssumeRole credentials refreshing themselves 15 minutes before expiry; standard retry mode
with explicit timeouts; every call in one bounded thread pool with a per-account limit.
``AWS_ENDPOINT_URL`` is honoured by botocore itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from app.config import Account
from checks.errors import CheckError, PermanentError, Reason, TransientError

log = logging.getLogger(__name__)

SESSION_NAME = "monitoring-hub"
ASSUME_ROLE = "sts:AssumeRole"

_ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
}
_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
}
"""AWS refused the credentials themselves; in an opt-in region not enabled for the account,
this is how every call there fails."""
_SUBSCRIPTION_CODES = {"SubscriptionRequiredException", "OptInRequired"}
_THROTTLED_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "LimitExceededException",  # Security Hub's throttling (HTTP 429)
}
_TRANSIENT_CODES = {
    *_THROTTLED_CODES,
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}
OPT_IN_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-east-2", "ap-south-2", "ap-southeast-3", "ap-southeast-4",
    "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-west-1", "eu-central-2",
    "eu-south-1", "eu-south-2", "il-central-1", "me-central-1", "me-south-1", "mx-central-1",
})  # fmt: skip
"""Regions an account must enable before it can use them (the rest are enabled by default)."""


@dataclass(frozen=True)
class AwsOptions:
    threads: int = 32
    calls_per_account: int = 8
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_attempts: int = 4


def describe_error(
    exc: BaseException,
    account: Account,
    action: str,
    *,
    call: str | None = None,
    region: str | None = None,
) -> CheckError:
    """Turn a botocore failure into a CheckError whose message names the account and the fix,
    and whose ``reason`` says why in one word. ``call`` is the API call as IAM names it
    (``backup:ListBackupJobs``) and ``region`` where it was made, when the caller knows them."""
    where = f"{account.id} ({account.account_id})"
    if isinstance(exc, CheckError):
        return exc
    if isinstance(exc, ClientError):
        return _client_error(exc, account, where, action, call or _call_of(exc, action), region)
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | EndpointConnectionError):
        return TransientError(
            f"{where}: could not reach AWS for {action} ({exc}).", reason=Reason.TIMEOUT, call=call
        )
    if isinstance(exc, NoCredentialsError):
        return PermanentError(
            f"{where}: no AWS credentials found. Configure the default chain, a profile, "
            "or role_arn for this account.",
            reason=Reason.ROLE,
        )
    if isinstance(exc, ProfileNotFound):
        return PermanentError(
            f"{where}: {exc}. Add the profile to ~/.aws/config.", reason=Reason.ROLE
        )
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{where}: {action} failed: {exc}", call=call)
    return CheckError(f"{where}: {action} failed: {type(exc).__name__}: {exc}", call=call)


def _client_error(
    exc: ClientError,
    account: Account,
    where: str,
    action: str,
    call: str | None,
    region: str | None,
) -> CheckError:
    """An error AWS answered with, by its code (and HTTP status)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = _one_line(str(error.get("Message", "")).strip())
    if code == "RegionDisabledException" or (
        code in _CREDENTIAL_CODES and region in OPT_IN_REGIONS
    ):
        return PermanentError(
            f"{where}: {action} failed in {region or 'this region'} ({code}): the region is "
            "not enabled for this account. Enable it (AWS console → Account → AWS Regions) "
            "or remove it from the account's regions:",
            reason=Reason.REGION,
            call=call,
            code=code,
        )
    if code in _SUBSCRIPTION_CODES:
        return PermanentError(
            f"{where}: {action} needs a subscription the account does not have ({code}: "
            f"{message}). Subscribe the account to the service, or remove the check from its "
            "checks:",
            reason=Reason.SUBSCRIPTION,
            call=call,
            code=code,
        )
    if code in _CREDENTIAL_CODES:
        return PermanentError(
            f"{where}: AWS did not accept the hub's credentials for {action} ({code}). "
            + (
                f"Check that the hub may assume {account.role_arn}."
                if account.role_arn
                else "Check the credentials of the default chain or the profile."
            ),
            reason=Reason.ROLE,
            call=call,
            code=code,
        )
    if code in _ACCESS_CODES or status == 403:
        needs = f" (IAM action {call})" if call else ""
        return PermanentError(
            f"{where}: access denied for {action} ({code}). "
            f"Grant it to {account.role_arn or 'the monitoring role'}{needs}; "
            "see docs/checks.md for the IAM policy.",
            reason=Reason.ACCESS,
            call=call,
            code=code,
        )
    if code in _TRANSIENT_CODES or status >= 500:
        reason = Reason.THROTTLED if code in _THROTTLED_CODES else Reason.OTHER
        if code == "RequestTimeout":
            reason = Reason.TIMEOUT
        return TransientError(
            f"{where}: AWS said {code} for {action}.", reason=reason, call=call, code=code
        )
    return PermanentError(
        f"{where}: {action} failed: {code} {message}".strip(), call=call, code=code
    )


def _call_of(exc: ClientError, action: str) -> str | None:
    """The call as IAM names it: the service of ``action`` (``backup:list_backup_jobs``) and
    the operation botocore says failed (``ListBackupJobs``)."""
    service, _, method = action.partition(":")
    operation = getattr(exc, "operation_name", None)
    return f"{service}:{operation}" if method and operation else None


def _one_line(message: str, limit: int = 200) -> str:
    """An AWS error message fit for a card: tags dropped, one line, at most ``limit`` chars."""
    text = " ".join(re.sub(r"<[^>]+>", " ", message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AwsClients:
    """Cached clients and credentials for every account, behind one bounded thread pool."""

    def __init__(self, options: AwsOptions | None = None) -> None:
        self.options = options or AwsOptions()
        self._session = botocore.session.get_session()
        self._pool = ThreadPoolExecutor(self.options.threads, thread_name_prefix="aws")
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._sessions: dict[str, botocore.session.Session] = {}
        self._account_limits: dict[str, asyncio.Semaphore] = {}
        self._config = Config(
            # botocore's "max_attempts" counts retries (one more request than it says);
            # "total_max_attempts" counts every request, which is what AwsOptions means.
            retries={"mode": "standard", "total_max_attempts": self.options.max_attempts},
            connect_timeout=self.options.connect_timeout_s,
            read_timeout=self.options.read_timeout_s,
            max_pool_connections=max(10, self.options.calls_per_account),
            user_agent_extra=SESSION_NAME,
        )
        credentials_log = logging.getLogger("botocore.credentials")
        if not any(isinstance(f, _Reported) for f in credentials_log.filters):
            credentials_log.addFilter(_Reported())
        self.calls = 0
        self.built = 0
        """How many clients this process has built (each once per account, region, service)."""

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def call(
        self, account: Account, region: str, service: str, method: str, **kw: Any
    ) -> Any:
        """One API call in the thread pool; failures come back as CheckError."""
        return await self._run(
            account, region, service, method, self._call_sync, account, region, service, method, kw
        )

    async def paginate(
        self, account: Account, region: str, service: str, method: str, key: str, **kw: Any
    ) -> list[Any]:
        """Every page of a paginated call, concatenated on ``key``."""
        return await self._run(
            account,
            region,
            service,
            method,
            self._paginate_sync,
            account,
            region,
            service,
            method,
            key,
            kw,
        )

    async def _run(
        self, account: Account, region: str, service: str, method: str, fn: Any, *args: Any
    ) -> Any:
        limit = self._account_limits.setdefault(
            account.account_id, asyncio.Semaphore(self.options.calls_per_account)
        )
        loop = asyncio.get_running_loop()
        async with limit:
            try:
                return await loop.run_in_executor(self._pool, partial(fn, *args))
            except Exception as exc:
                call = self._iam_action(account, region, service, method)
                raise describe_error(
                    exc, account, f"{service}:{method}", call=call, region=region
                ) from exc

    def _iam_action(self, account: Account, region: str, service: str, method: str) -> str | None:
        """``service:Operation`` as IAM names the call (``rds:DescribeDBInstances``), from the
        client's own model; None when the client was never built."""
        client = self._clients.get((account.id, region, service))
        if client is None:
            return None
        operation = client.meta.method_to_api_mapping.get(method)
        return f"{service}:{operation}" if operation else None

    def _call_sync(
        self, account: Account, region: str, service: str, method: str, kw: dict[str, Any]
    ) -> Any:
        self.calls += 1
        return getattr(self.client(account, region, service), method)(**kw)

    def _paginate_sync(
        self, account: Account, region: str, service: str, method: str, key: str, kw: dict[str, Any]
    ) -> list[Any]:
        items: list[Any] = []
        for page in self.client(account, region, service).get_paginator(method).paginate(**kw):
            self.calls += 1
            items.extend(page.get(key, []))
        return items

    def prepare(
        self,
        wanted: Iterable[tuple[Account, str, str]],
        stopped: Callable[[], bool] = lambda: False,
    ) -> int:
        """Build the (account, region, service) clients in ``wanted`` now, one after another,
        until ``stopped()``; returns how many were built. A client costs ~5 ms of CPU to
        build: a first sweep of 50 accounts would otherwise spend a few CPU-seconds on it, on
        one GIL, while its calls wait. Credentials stay lazy (AssumeRole on the first call).
        A client that cannot be built is logged and left to the check to report."""
        built = 0
        for account, region, service in wanted:
            if stopped():
                break
            if (account.id, region, service) in self._clients:
                continue
            try:
                self.client(account, region, service)
            except Exception as exc:
                problem = describe_error(exc, account, f"building the {service} client")
                log.warning("AWS: %s", problem)
                continue
            built += 1
        return built

    def refresh(
        self, accounts: Iterable[Account], stopped: Callable[[], bool] = lambda: False
    ) -> dict[str, CheckError]:
        """Assume each role account's role now if its credentials are missing or due for
        renewal (15 minutes before they expire), one account after another, until
        ``stopped()``; returns the accounts whose role could not be assumed. Called every few
        minutes, this keeps every sweep off the AssumeRole round trip and shows a broken trust
        policy in the log before a check meets it."""
        problems: dict[str, CheckError] = {}
        for account in accounts:
            if stopped():
                break
            if account.role_arn is None:
                continue
            try:
                with self._lock:
                    session = self._session_for(account)
                credentials = session.get_credentials()
                if credentials is not None:
                    credentials.get_frozen_credentials()
            except Exception as exc:
                problems[account.id] = describe_error(exc, account, "AssumeRole", call=ASSUME_ROLE)
        return problems

    def client(self, account: Account, region: str, service: str) -> Any:
        """The account's client for (region, service), built once and kept: its credentials
        refresh themselves, so the client outlives them."""
        key = (account.id, region, service)
        cached = self._clients.get(key)
        if cached is not None:
            return cached
        with self._lock:  # botocore sessions are not thread-safe; building is CPU-bound anyway
            cached = self._clients.get(key)
            if cached is None:
                cached = self._session_for(account).create_client(
                    service, region_name=region, config=self._config
                )
                # Load the paginator model now, under the lock: left to the first
                # get_paginator, a burst of threads would each scan botocore's data folders.
                cached.can_paginate(next(iter(cached.meta.method_to_api_mapping)))
                self._clients[key] = cached
                self.built += 1
            return cached

    def _session_for(self, account: Account) -> botocore.session.Session:
        """One botocore session per account (called under the lock), sharing the process's
        service-model loader. A role account's session assumes its role on first use and
        refreshes the credentials 15 minutes before they expire."""
        session = self._sessions.get(account.id)
        if session is None:
            if account.role_arn is None and account.profile is None:
                session = self._session
            else:
                session = botocore.session.Session(profile=account.profile)
                session.register_component(
                    "data_loader", self._session.get_component("data_loader")
                )
                if account.role_arn is not None:
                    session.register_component(
                        "credential_provider",
                        CredentialResolver([_AssumeRole(partial(self._assume, account))]),
                    )
            self._sessions[account.id] = session
        return session

    def _assume(self, account: Account) -> dict[str, Any]:
        """AssumeRole for ``account``; botocore calls this under the credentials' own lock."""
        self.calls += 1
        kwargs: dict[str, Any] = {"RoleArn": account.role_arn, "RoleSessionName": SESSION_NAME}
        if account.external_id:
            kwargs["ExternalId"] = account.external_id
        region = account.regions[0]
        try:
            answer = self._sts_client(region).assume_role(**kwargs)["Credentials"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            if code in _TRANSIENT_CODES or code == "RegionDisabledException":
                raise describe_error(
                    exc, account, "sts:assume_role", call=ASSUME_ROLE, region=region
                ) from exc
            raise PermanentError(
                f"{account.id} ({account.account_id}): cannot assume {account.role_arn} "
                f"({code}). Check the role's trust policy allows this principal"
                + (" and the external_id matches." if account.external_id else "."),
                reason=Reason.ROLE,
                call=ASSUME_ROLE,
                code=code,
            ) from exc
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer.get("SessionToken"),
            "expiry_time": answer["Expiration"].isoformat(),
        }

    def _sts_client(self, region: str) -> Any:
        key = ("", region, "sts")
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._session.create_client("sts", region_name=region, config=self._config)
                self._clients[key] = client
            return client


class _Reported(logging.Filter):
    """botocore logs a failed credential refresh with its traceback, every time; when the
    failure is ours (a role that cannot be assumed) it is already reported, with the fix, by
    the check's result and by ``app.engine.prewarm``."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, CheckError)


class _AssumeRole(CredentialProvider):
    """A credential provider that assumes the account's role, lazily and refreshably."""

    METHOD = "assume-role"
    CANONICAL_NAME = "monitoring-hub-assume-role"

    def __init__(self, assume: Any) -> None:
        super().__init__()
        self._assume = assume

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(refresh_using=self._assume, method=self.METHOD)
