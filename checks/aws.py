"""AWS access shared by every check.

One botocore client per (region, service), shared by every account, kept in a small LRU: a
client costs ~0.27 MiB and ~3–5 ms of CPU to build, so one per (account, region, service)
grew to 1.4 GiB at 1,000 accounts. The shared clients hold **no credentials of their own**:
every call carries its account's credentials as an argument (``CREDENTIALS``), which the first
``provide-client-params`` hook of each operation moves into botocore's per-request signing
context (``request_credentials``, the mechanism botocore itself uses for S3 Express). A call
that arrives without them fails with ``NoCredentialsError``; it can never be signed as another
account. Credentials are kept per account identity (account id, role, external id, profile):
AssumeRole ones refresh themselves 15 minutes before expiry, through the account's region's
own STS endpoint. Standard retry mode with explicit timeouts is the one retry layer for AWS
calls (``app.engine.retry`` does not retry what botocore already did); connection pools hold as
many connections as there are threads; every call runs in one bounded thread pool with a
per-account limit. ``AWS_ENDPOINT_URL`` is honoured by botocore itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.credentials import (
    CredentialResolver,
    Credentials,
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
CREDENTIALS = "mhub:credentials"
"""The keyword a call's credentials travel under to the shared client (never sent to AWS)."""

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
    """Requests per call, retries included (botocore's standard mode: the one retry layer)."""
    max_clients: int = 128
    """Shared (region, service) clients kept; the least recently used is closed past this."""
    warm_up_threads: int = 16
    """Roles assumed at once when credentials are renewed ahead of a sweep (``refresh``)."""


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
        retries = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
        tried = f" ({retries + 1} requests)" if retries else ""
        return TransientError(
            f"{where}: AWS said {code} for {action}{tried}.", reason=reason, call=call, code=code
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


@dataclass(eq=False)
class _Shared:
    """A shared client and how many calls are using it; closed once evicted and unused."""

    client: Any
    users: int = 0
    evicted: bool = False


Identity = tuple[str, str | None, str | None, str | None]
"""What decides an account's credentials: account id, role ARN, external id, profile."""


@dataclass(eq=False)
class _Warming:
    """Accounts whose credentials ``refresh`` renews, and what went wrong, across threads."""

    accounts: deque[Account]
    problems: dict[str, CheckError] = field(default_factory=dict)


class AwsClients:
    """Shared clients and per-account credentials, behind one bounded thread pool."""

    def __init__(self, options: AwsOptions | None = None) -> None:
        self.options = options or AwsOptions()
        self._session = botocore.session.get_session()  # the hub's own identity: AssumeRole
        self._session.set_config_variable("sts_regional_endpoints", "regional")
        self._anonymous = botocore.session.Session()  # builds the shared clients
        self._anonymous.register_component(
            "data_loader", self._session.get_component("data_loader")
        )
        self._anonymous.register_component("credential_provider", CredentialResolver([]))
        self._pool = ThreadPoolExecutor(self.options.threads, thread_name_prefix="aws")
        self._lock = threading.Lock()  # the caches below; held for dictionary work only
        self._build_lock = threading.Lock()  # botocore sessions are not thread-safe
        self._clients: OrderedDict[tuple[str, str], _Shared] = OrderedDict()
        self._sts: dict[str, Any] = {}
        self._credentials: dict[Identity, Credentials | None] = {}
        self._account_limits: dict[str, asyncio.Semaphore] = {}
        self._config = Config(
            # botocore's "max_attempts" counts retries (one more request than it says);
            # "total_max_attempts" counts every request, which is what AwsOptions means.
            retries={"mode": "standard", "total_max_attempts": self.options.max_attempts},
            connect_timeout=self.options.connect_timeout_s,
            read_timeout=self.options.read_timeout_s,
            # Every thread may be on the same (region, service) client at once.
            max_pool_connections=max(10, self.options.threads, self.options.warm_up_threads),
            user_agent_extra=SESSION_NAME,
        )
        credentials_log = logging.getLogger("botocore.credentials")
        if not any(isinstance(f, _Reported) for f in credentials_log.filters):
            credentials_log.addFilter(_Reported())
        self.calls = 0
        self.built = 0
        """How many shared clients this process has built (once per region and service,
        again after an eviction)."""

    def close(self) -> None:
        """Stop taking calls and close the shared clients (each once its last call ends)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            self._evict(keep=0)

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
                call = self._iam_action(region, service, method)
                problem = describe_error(
                    exc, account, f"{service}:{method}", call=call, region=region
                )
                if isinstance(exc, BotoCoreError | ClientError):
                    problem.retried = True  # botocore's standard retries ran already
                raise problem from exc

    def _iam_action(self, region: str, service: str, method: str) -> str | None:
        """``service:Operation`` as IAM names the call (``rds:DescribeDBInstances``), from the
        client's own model; None when the client is not built."""
        shared = self._clients.get((region, service))
        if shared is None:
            return None
        operation = shared.client.meta.method_to_api_mapping.get(method)
        return f"{service}:{operation}" if operation else None

    def _call_sync(
        self, account: Account, region: str, service: str, method: str, kw: dict[str, Any]
    ) -> Any:
        signed_as = {CREDENTIALS: self.credentials(account)}
        with self._lease(region, service) as client:
            self.calls += 1
            return getattr(client, method)(**kw, **signed_as)

    def _paginate_sync(
        self, account: Account, region: str, service: str, method: str, key: str, kw: dict[str, Any]
    ) -> list[Any]:
        signed_as = {CREDENTIALS: self.credentials(account)}
        items: list[Any] = []
        with self._lease(region, service) as client:
            for page in client.get_paginator(method).paginate(**kw, **signed_as):
                self.calls += 1
                items.extend(page.get(key, []))
        return items

    def prepare(
        self,
        wanted: Iterable[tuple[Account, str, str]],
        stopped: Callable[[], bool] = lambda: False,
    ) -> int:
        """Build the shared clients the (account, region, service) triples in ``wanted`` use,
        until ``stopped()``; returns how many were built. Credentials stay lazy (see
        ``refresh``). A client that cannot be built is logged and left to the check."""
        built = 0
        for account, region, service in wanted:
            if stopped():
                break
            if (region, service) in self._clients:
                continue
            try:
                self.client(region, service)
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
        renewal (15 minutes before they expire), ``options.warm_up_threads`` accounts at once,
        until ``stopped()``; returns the accounts whose role could not be assumed. Called
        every few minutes, this keeps every sweep off the AssumeRole round trip and shows a
        broken trust policy in the log before a check meets it. The threads are daemons, like
        the warm-up's own: an endpoint that never answers cannot hold up the hub's exit."""
        work = _Warming(deque(a for a in accounts if a.role_arn is not None))
        threads = [
            threading.Thread(
                target=self._renew_each, args=(work, stopped), name="aws-warm-up", daemon=True
            )
            for _ in range(min(self.options.warm_up_threads, len(work.accounts)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return work.problems

    def _renew_each(self, work: _Warming, stopped: Callable[[], bool]) -> None:
        while not stopped():
            try:
                account = work.accounts.popleft()
            except IndexError:
                return
            try:
                credentials = self.credentials(account)
                if credentials is not None:
                    credentials.get_frozen_credentials()
            except Exception as exc:
                work.problems[account.id] = describe_error(
                    exc, account, "AssumeRole", call=ASSUME_ROLE
                )

    def credentials(self, account: Account) -> Credentials | None:
        """The credentials ``account``'s calls are signed with, kept per account identity
        (two aliases of one account share them): its role's, assumed on first use and renewed
        15 minutes before expiry; its profile's; or the default chain's (None: there are
        none, and the call fails with ``NoCredentialsError``)."""
        identity = (account.account_id, account.role_arn, account.external_id, account.profile)
        with self._lock:
            if identity in self._credentials:
                return self._credentials[identity]
        if account.role_arn is not None:
            found: Credentials | None = DeferredRefreshableCredentials(
                refresh_using=partial(self._assume, account), method="assume-role"
            )
        else:
            with self._build_lock:
                session = (
                    botocore.session.Session(profile=account.profile)
                    if account.profile is not None
                    else self._session
                )
                found = session.get_credentials()
        with self._lock:
            return self._credentials.setdefault(identity, found)

    def client(self, region: str, service: str) -> Any:
        """The client every account's calls to (region, service) go through, built if missing:
        it holds no credentials of its own (each call brings its account's)."""
        with self._lease(region, service) as client:
            return client

    @contextmanager
    def _lease(self, region: str, service: str) -> Iterator[Any]:
        """The shared client for (region, service), built if missing, kept from being closed
        while the caller uses it; the least recently used beyond ``options.max_clients`` is
        closed once its last call ends (its connections are released, not pooled again)."""
        key = (region, service)
        shared = self._use(key)
        if shared is None:
            with self._build_lock:
                shared = self._use(key)
                if shared is None:
                    shared = _Shared(self._build(region, service), users=1)
                    with self._lock:
                        self._clients[key] = shared
                        self._evict()
        try:
            yield shared.client
        finally:
            with self._lock:
                shared.users -= 1
                closing = shared.evicted and shared.users == 0
            if closing:
                shared.client.close()

    def _use(self, key: tuple[str, str]) -> _Shared | None:
        with self._lock:
            shared = self._clients.get(key)
            if shared is not None:
                self._clients.move_to_end(key)
                shared.users += 1
            return shared

    def _evict(self, keep: int | None = None) -> None:
        """Drop the least recently used clients beyond ``keep`` (by default the bound),
        closing those no call is using (called under the lock)."""
        bound = max(1, self.options.max_clients) if keep is None else keep
        while len(self._clients) > bound:
            _, oldest = self._clients.popitem(last=False)
            oldest.evicted = True
            if oldest.users == 0:
                oldest.client.close()

    def _build(self, region: str, service: str) -> Any:
        """A client with no credentials for (region, service) (called under the build lock).
        Its first hook moves the call's credentials into the request's signing context."""
        client = self._anonymous.create_client(service, region_name=region, config=self._config)
        model = client.meta.service_model
        service_id = model.service_id.hyphenize()
        for operation in model.operation_names:  # first of all, even of a handler on one call
            client.meta.events.register_first(
                f"provide-client-params.{service_id}.{operation}", _sign_with_given_credentials
            )
        # Load the paginator model now, under the lock: left to the first get_paginator, a
        # burst of threads would each scan botocore's data folders.
        client.can_paginate(next(iter(client.meta.method_to_api_mapping)))
        self.built += 1
        return client

    def _assume(self, account: Account) -> dict[str, Any]:
        """AssumeRole for ``account`` through its first region's STS endpoint; botocore calls
        this under the credentials' own lock."""
        self.calls += 1
        kwargs: dict[str, Any] = {"RoleArn": account.role_arn, "RoleSessionName": SESSION_NAME}
        if account.external_id:
            kwargs["ExternalId"] = account.external_id
        region = account.regions[0]
        try:
            answer = self.sts_client(region).assume_role(**kwargs)["Credentials"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            if code in _TRANSIENT_CODES or code == "RegionDisabledException":
                problem = describe_error(
                    exc, account, "sts:assume_role", call=ASSUME_ROLE, region=region
                )
                problem.retried = True
                raise problem from exc
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

    def sts_client(self, region: str) -> Any:
        """The hub's own STS client for ``region``: its regional endpoint
        (``sts.<region>.amazonaws.com``), whatever ``sts_regional_endpoints`` says."""
        client = self._sts.get(region)
        if client is None:
            with self._build_lock:
                client = self._sts.get(region)
                if client is None:
                    client = self._session.create_client(
                        "sts", region_name=region, config=self._config
                    )
                    self._sts[region] = client
        return client


def _sign_with_given_credentials(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Take the call's credentials out of its parameters and hand them to the signer for this
    request only; a call without them is refused (the client has none to fall back on)."""
    credentials = params.pop(CREDENTIALS, None)
    if credentials is None:
        raise NoCredentialsError()
    context.setdefault("signing", {})["request_credentials"] = credentials


class _Reported(logging.Filter):
    """botocore logs a failed credential refresh with its traceback, every time; when the
    failure is ours (a role that cannot be assumed) it is already reported, with the fix, by
    the check's result and by ``app.engine.prewarm``."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, CheckError)
