"""AWS access shared by every check.

One botocore session per process (so the service-model loader is shared), clients cached per
(account, region, service) for the life of their credentials, AssumeRole credentials cached and
refreshed five minutes before expiry, standard retry mode with explicit timeouts, and every
call run in one bounded thread pool. ``AWS_ENDPOINT_URL`` is honoured by botocore itself.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import botocore.session
from botocore.config import Config
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
from checks.base import CheckError, PermanentError, TransientError

REFRESH_BEFORE = timedelta(minutes=5)
SESSION_NAME = "monitoring-hub"

_PERMANENT_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "OptInRequired",
}
_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
}


@dataclass(frozen=True)
class AwsOptions:
    threads: int = 32
    calls_per_account: int = 8
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_attempts: int = 4


@dataclass
class _Credentials:
    access_key: str
    secret_key: str
    token: str | None
    expires: datetime | None

    def fresh(self, now: datetime) -> bool:
        return self.expires is None or self.expires - REFRESH_BEFORE > now


def describe_error(exc: BaseException, account: Account, action: str) -> CheckError:
    """Turn a botocore failure into a CheckError whose message names the account and the fix."""
    where = f"{account.id} ({account.account_id})"
    if isinstance(exc, CheckError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = str(error.get("Message", "")).strip()
        if code in _PERMANENT_CODES:
            return PermanentError(
                f"{where}: access denied for {action} ({code}). "
                "Grant it to the monitoring role; see docs/checks.md for the IAM policy."
            )
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientError(f"{where}: AWS said {code} for {action}; will retry.")
        return PermanentError(f"{where}: {action} failed: {code} {message}".strip())
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | EndpointConnectionError):
        return TransientError(f"{where}: could not reach AWS for {action} ({exc}).")
    if isinstance(exc, NoCredentialsError):
        return PermanentError(
            f"{where}: no AWS credentials found. Configure the default chain, a profile, "
            "or role_arn for this account."
        )
    if isinstance(exc, ProfileNotFound):
        return PermanentError(f"{where}: {exc}. Add the profile to ~/.aws/config.")
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{where}: {action} failed: {exc}")
    return CheckError(f"{where}: {action} failed: {type(exc).__name__}: {exc}")


class AwsClients:
    """Cached clients and credentials for every account, behind one bounded thread pool."""

    def __init__(self, options: AwsOptions | None = None) -> None:
        self.options = options or AwsOptions()
        self._session = botocore.session.get_session()
        self._pool = ThreadPoolExecutor(self.options.threads, thread_name_prefix="aws")
        self._lock = threading.Lock()
        self._creds: dict[str, _Credentials] = {}
        self._assume_locks: dict[str, threading.Lock] = {}
        self._clients: dict[tuple[str, str, str], tuple[Any, _Credentials | None]] = {}
        self._profiles: dict[str, botocore.session.Session] = {}
        self._account_limits: dict[str, asyncio.Semaphore] = {}
        self._config = Config(
            retries={"mode": "standard", "max_attempts": self.options.max_attempts},
            connect_timeout=self.options.connect_timeout_s,
            read_timeout=self.options.read_timeout_s,
            max_pool_connections=max(10, self.options.calls_per_account),
            user_agent_extra=SESSION_NAME,
        )
        self.calls = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def call(
        self, account: Account, region: str, service: str, method: str, **kw: Any
    ) -> Any:
        """One API call in the thread pool; failures come back as CheckError."""
        return await self._run(
            account, f"{service}:{method}", self._call_sync, account, region, service, method, kw
        )

    async def paginate(
        self, account: Account, region: str, service: str, method: str, key: str, **kw: Any
    ) -> list[Any]:
        """Every page of a paginated call, concatenated on ``key``."""
        return await self._run(
            account,
            f"{service}:{method}",
            self._paginate_sync,
            account,
            region,
            service,
            method,
            key,
            kw,
        )

    async def _run(self, account: Account, action: str, fn: Any, *args: Any) -> Any:
        limit = self._account_limits.setdefault(
            account.account_id, asyncio.Semaphore(self.options.calls_per_account)
        )
        loop = asyncio.get_running_loop()
        async with limit:
            try:
                return await loop.run_in_executor(self._pool, partial(fn, *args))
            except Exception as exc:
                raise describe_error(exc, account, action) from exc

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

    def client(self, account: Account, region: str, service: str) -> Any:
        """A cached client; rebuilt when its account's credentials were refreshed."""
        creds = self._credentials(account) if account.role_arn else None
        cache_key = (account.account_id, region, service)
        with self._lock:
            cached = self._clients.get(cache_key)
            if cached is not None and cached[1] is creds:
                return cached[0]
            session = self._base_session(account)
            extra: dict[str, Any] = {}
            if creds is not None:
                extra = {
                    "aws_access_key_id": creds.access_key,
                    "aws_secret_access_key": creds.secret_key,
                    "aws_session_token": creds.token,
                }
            client = session.create_client(
                service, region_name=region, config=self._config, **extra
            )
            self._clients[cache_key] = (client, creds)
            return client

    def _base_session(self, account: Account) -> botocore.session.Session:
        if account.profile is None:
            return self._session
        session = self._profiles.get(account.profile)
        if session is None:
            session = botocore.session.Session(profile=account.profile)
            session.register_component("data_loader", self._session.get_component("data_loader"))
            self._profiles[account.profile] = session
        return session

    def _credentials(self, account: Account) -> _Credentials:
        with self._lock:
            account_lock = self._assume_locks.setdefault(account.account_id, threading.Lock())
        with account_lock:  # one AssumeRole per account at a time, however many callers
            creds = self._creds.get(account.account_id)
            if creds is not None and creds.fresh(datetime.now(UTC)):
                return creds
            return self._assume(account)

    def _assume(self, account: Account) -> _Credentials:
        with self._lock:
            self.calls += 1
            sts = self._sts_client(account)
        kwargs: dict[str, Any] = {"RoleArn": account.role_arn, "RoleSessionName": SESSION_NAME}
        if account.external_id:
            kwargs["ExternalId"] = account.external_id
        try:
            answer = sts.assume_role(**kwargs)["Credentials"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            raise PermanentError(
                f"{account.id} ({account.account_id}): cannot assume {account.role_arn} "
                f"({code}). Check the role's trust policy allows this principal"
                + (" and the external_id matches." if account.external_id else ".")
            ) from exc
        creds = _Credentials(
            answer["AccessKeyId"],
            answer["SecretAccessKey"],
            answer.get("SessionToken"),
            answer.get("Expiration"),
        )
        with self._lock:
            self._creds[account.account_id] = creds
        return creds

    def _sts_client(self, account: Account) -> Any:
        key = ("sts", account.regions[0], account.profile or "")
        cached = self._clients.get(key)
        if cached is None:
            session = self._base_session(account)
            cached = (
                session.create_client("sts", region_name=account.regions[0], config=self._config),
                None,
            )
            self._clients[key] = cached
        return cached[0]
