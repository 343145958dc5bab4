"""An HTTP edge in front of a moto server: AWS Backup jobs, injected faults, call counts.

boto3 is pointed at the edge (``AWS_ENDPOINT_URL``) and cannot tell it from AWS::

    boto3 ──HTTP──► edge ──► ListBackupJobs?      answered from the edge's own job store
                          ├► a matching fault?     added latency, then Throttling/AccessDenied
                          └► anything else         streamed to moto unchanged (signature too)

What the edge adds to moto:

- ``ListBackupJobs`` (moto does not implement it): jobs are kept per (account id, region) and
  seeded with :meth:`Edge.add_backup_jobs` or ``POST /_edge/backup-jobs``. The account comes from
  the request's SigV4 access key, resolved by asking moto ``GetCallerIdentity`` with that key
  (moto maps the keys it issued in ``AssumeRole`` to the role's account); the region comes from
  the credential scope.
- ``ListProtectedResources`` (moto lacks it too), from the same jobs unless answers were seeded
  for it (:meth:`Edge.answer`): every resource with a completed job, last backed up when its
  newest completed job was created.
- Faults, changeable at runtime: added latency and error answers (``throttling``,
  ``access-denied`` or any error code) for chosen operations and accounts, N times or always,
  in the error shape of the request's protocol (query XML, JSON, REST-JSON, REST-XML).
- Counts of every request it saw, per service, operation and account.
- **Seeded answers** for other operations moto lacks (AWS Health, Cost Explorer anomalies, RDS
  pending maintenance, Backup recovery points): :meth:`Edge.answer` stores, per (service,
  operation) and optionally per account and region, the pages to answer with, as JSON or as
  raw XML for query-protocol services. A request without a pagination token gets the first
  page; page N is answered to a request whose token (``NextToken``, ``nextToken`` or
  ``Marker``, in the body or the query string) is ``page-N``, so the seeder writes
  ``"NextToken": "page-2"`` into page 1.

Run it in a thread of the current process (tests, the demo), or as a subprocess so that it does
not share the GIL with the code being measured (``bench/``)::

    with Edge(moto_url) as edge:                # or: async with Edge(moto_url) as edge:
        os.environ["AWS_ENDPOINT_URL"] = edge.url
        edge.add_backup_jobs("111111111111", "us-east-1", [{"state": "FAILED", ...}])
        edge.inject(error="throttling", operations=["ListBackupJobs"], times=2)
        edge.inject(latency_ms=100)
        ...
        edge.calls("ListBackupJobs", account="111111111111")

    python -m app.sandbox.edge --upstream http://127.0.0.1:5000 --port 5001

Control endpoints (JSON; the Python methods are thin clients of these):

    GET    /_edge/health                   {"ok": true}
    POST   /_edge/reset                    forget jobs, faults, counts and resolved keys
    POST   /_edge/backup-jobs              {"account_id", "region", "jobs": [job, ...]}
    POST   /_edge/answers                  {"service", "operation", "account_id"?, "region"?,
                                            "pages": [{"json": ...} | {"xml": "..."}, ...]}
    GET    /_edge/backup-jobs              every stored job
    POST   /_edge/faults                   a fault (see :class:`Fault`) → {"id": ...}
    DELETE /_edge/faults                   remove every fault
    GET    /_edge/calls                    [{"service", "operation", "account", "count"}, ...]
    DELETE /_edge/calls                    start counting from zero
    POST   /_edge/page-size                {"backup_jobs": 1000}: ListBackupJobs page size
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, parse_qsl

import aiohttp
import botocore.session
from aiohttp import web
from botocore.exceptions import UnknownServiceError
from botocore.model import ServiceModel
from multidict import CIMultiDict

from app.sandbox.moto import free_port

CONTROL = "/_edge"
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 1000
BACKUP_STATES = (
    "CREATED",
    "PENDING",
    "RUNNING",
    "ABORTING",
    "ABORTED",
    "COMPLETED",
    "FAILED",
    "EXPIRED",
    "PARTIAL",
)
_TERMINAL = {"ABORTED", "COMPLETED", "FAILED", "EXPIRED", "PARTIAL"}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}
_CREDENTIAL = re.compile(r"(?:^|Credential=)([^/,\s=]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_CALLER_ACCOUNT = re.compile(r"<Account>(\d{12})</Account>")
# Credential scopes that are not botocore service names.
_SIGNING_NAMES = {"monitoring": "cloudwatch", "email": "ses", "states": "stepfunctions"}
_S3_CONTROL_PATH = "/v20180820/"
_RESOURCE_TYPES = {
    "rds": "RDS",
    "dynamodb": "DynamoDB",
    "elasticfilesystem": "EFS",
    "s3": "S3",
    "fsx": "FSx",
    "storagegateway": "Storage Gateway",
    "redshift": "Redshift",
}

# -- what a request is ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request as the edge understood it."""

    service: str  # botocore service name when known (cloudwatch), else the signing name
    operation: str  # ListBackupJobs, AssumeRole, ... or "METHOD /path" when unknown
    protocol: str  # query | ec2 | json | rest-json | rest-xml | smithy-rpc-v2-cbor | unknown
    region: str | None
    access_key: str | None
    query_compatible: bool = False


@lru_cache(maxsize=1)
def _botocore() -> botocore.session.Session:
    return botocore.session.get_session()


@lru_cache(maxsize=256)
def _service_model(signing_name: str) -> ServiceModel | None:
    try:
        return _botocore().get_service_model(_SIGNING_NAMES.get(signing_name, signing_name))
    except UnknownServiceError:
        return None


@lru_cache(maxsize=256)
def _rest_routes(signing_name: str) -> tuple[tuple[str, re.Pattern[str], str], ...]:
    """(method, path pattern, operation) for a REST service, most specific first."""
    model = _service_model(signing_name)
    if model is None:
        return ()
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = str(http["requestUri"]).split("?", 1)[0]
        literal = len(re.sub(r"\{[^}]+\}", "", uri))
        pattern = re.sub(r"\{[^}]+\+\}", "(.+)", uri)
        pattern = re.sub(r"\{[^}]+\}", "([^/]+)", pattern).rstrip("/")
        routes.append((literal, str(http["method"]), re.compile(f"^{pattern}/?$"), name))
    routes.sort(key=lambda route: -route[0])
    return tuple((method, pattern, name) for _, method, pattern, name in routes)


def identify(request: web.Request, body: bytes | None) -> Call:
    """The service, operation and protocol of a request, from its headers, form or path."""
    scope = _CREDENTIAL.search(
        request.headers.get("Authorization", "") or request.query.get("X-Amz-Credential", "")
    )
    access_key, region, signing = scope.groups() if scope else (None, None, "")
    if signing == "s3" and request.path.startswith(_S3_CONTROL_PATH):
        signing = "s3control"  # S3 Control signs as s3; its paths start with its API version
    model = _service_model(signing) if signing else None
    service = model.service_name if model is not None else signing or "unknown"
    compatible = model is not None and "awsQueryCompatible" in model.metadata
    target = request.headers.get("X-Amz-Target")
    if target:
        operation = target.rsplit(".", 1)[-1]
        return Call(service, operation, "json", region, access_key, compatible)
    if request.headers.get("smithy-protocol") == "rpc-v2-cbor":
        operation = request.path.rstrip("/").rsplit("/", 1)[-1]
        return Call(service, operation, "smithy-rpc-v2-cbor", region, access_key, compatible)
    action = request.query.get("Action")
    if action is None and body is not None:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
    if action:
        protocol = "ec2" if service == "ec2" else "query"
        return Call(service, action, protocol, region, access_key)
    for method, pattern, name in _rest_routes(signing) if signing else ():
        if method == request.method and pattern.match(request.path):
            protocol = model.protocol if model is not None else "rest-json"
            return Call(service, name, protocol, region, access_key)
    return Call(service, f"{request.method} {request.path}", "unknown", region, access_key)


# -- faults -----------------------------------------------------------------------------------


@dataclass
class Fault:
    """Latency and/or an error for the requests it matches.

    ``operations`` and ``accounts`` empty mean all. An operation is ``ListBackupJobs`` or
    ``backup:ListBackupJobs``. ``error`` is ``throttling``, ``access-denied`` (each spelled the
    way the request's protocol spells it: ``Throttling`` for query services and CloudWatch,
    ``ThrottlingException`` for JSON and REST services) or a literal error code. ``times`` is
    how many requests get the error (None: all); latency is added to every match.
    """

    error: str | None = None
    latency_ms: float = 0.0
    operations: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    times: int | None = None
    status: int | None = None
    message: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def matches(self, call: Call, account: str | None) -> bool:
        if self.accounts and account not in self.accounts:
            return False
        names = (call.operation, f"{call.service}:{call.operation}")
        return not self.operations or any(name in self.operations for name in names)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        allowed = {"error", "latency_ms", "operations", "accounts", "times", "status", "message"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; use {sorted(allowed)}")
        return cls(
            error=data.get("error"),
            latency_ms=float(data.get("latency_ms") or 0),
            operations=tuple(data.get("operations") or ()),
            accounts=tuple(data.get("accounts") or ()),
            times=None if data.get("times") is None else int(data["times"]),
            status=data.get("status"),
            message=data.get("message"),
        )


def _error_code(kind: str, call: Call) -> tuple[str, int]:
    """The error code and HTTP status AWS would use for ``kind`` on this protocol."""
    query_style = call.protocol in ("query", "ec2") or call.query_compatible
    if kind == "throttling":
        if call.protocol == "ec2":
            return "RequestLimitExceeded", 503
        return ("Throttling" if query_style else "ThrottlingException"), 400
    if kind == "access-denied":
        if call.protocol == "ec2":
            return "UnauthorizedOperation", 403
        return ("AccessDenied", 403) if query_style else ("AccessDeniedException", 400)
    return kind, 400


def error_response(call: Call, code: str, status: int, message: str) -> web.Response:
    """An AWS error in the shape botocore parses for the request's protocol."""
    request_id = str(uuid.uuid4())
    if call.protocol == "query":
        body = (
            '<ErrorResponse xmlns="https://aws.amazon.com/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return web.Response(status=status, text=body, content_type="text/xml")
    if call.protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            f"</Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return web.Response(status=status, text=body, content_type="text/xml")
    if call.protocol == "rest-xml":
        body = (
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        return web.Response(status=status, text=body, content_type="application/xml")
    headers = {"x-amzn-RequestId": request_id}
    if call.protocol in ("json", "smithy-rpc-v2-cbor"):
        if call.query_compatible:
            headers["x-amzn-query-error"] = f"{code};Sender"
        return web.Response(
            status=status,
            body=json.dumps({"__type": code, "message": message}).encode(),
            headers={**headers, "Content-Type": "application/x-amz-json-1.0"},
        )
    headers["x-amzn-ErrorType"] = code
    return web.json_response({"message": message}, status=status, headers=headers)


# -- AWS Backup jobs --------------------------------------------------------------------------


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_job(account_id: str, region: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A stored job from a seed spec: snake_case keys or the API's own PascalCase keys.

    Required: ``resource_arn``. Defaults: state COMPLETED, vault ``Default``, created now,
    completed 10 minutes after creation for finished states, resource type from the ARN.
    """
    spec = {_snake(key): value for key, value in spec.items()}
    if "resource_arn" not in spec:
        raise ValueError("a backup job needs resource_arn")
    state = str(spec.get("state", "COMPLETED")).upper()
    if state not in BACKUP_STATES:
        raise ValueError(f'state "{state}" is not one of {", ".join(BACKUP_STATES)}')
    arn = str(spec["resource_arn"])
    created = _when(spec.get("creation_date") or spec.get("created") or datetime.now(UTC))
    completed = spec.get("completion_date") or spec.get("completed")
    if completed is None and state in _TERMINAL:
        completed = created + timedelta(minutes=10)
    vault = str(spec.get("backup_vault_name") or spec.get("vault") or "Default")
    job: dict[str, Any] = {
        "AccountId": account_id,
        "BackupJobId": str(spec.get("backup_job_id") or uuid.uuid4()).upper(),
        "BackupVaultName": vault,
        "BackupVaultArn": f"arn:aws:backup:{region}:{account_id}:backup-vault:{vault}",
        "ResourceArn": arn,
        "ResourceType": spec.get("resource_type") or _resource_type(arn),
        "ResourceName": spec.get("resource_name") or arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1],
        "CreationDate": created,
        "State": state,
        "PercentDone": "100.0" if state == "COMPLETED" else "0.0",
        "BackupSizeInBytes": int(spec.get("backup_size_in_bytes") or 0),
        "IamRoleArn": f"arn:aws:iam::{account_id}:role/service-role/AWSBackupDefaultServiceRole",
        "BackupType": "",
    }
    if completed is not None:
        job["CompletionDate"] = _when(completed)
    if spec.get("status_message"):
        job["StatusMessage"] = str(spec["status_message"])
    return job


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _resource_type(arn: str) -> str:
    parts = arn.split(":")
    service = parts[2] if len(parts) > 2 else ""
    if service == "ec2":
        return "EBS" if ":volume/" in arn else "EC2"
    return _RESOURCE_TYPES.get(service, service.upper() or "UNKNOWN")


def _job_json(job: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.timestamp() if isinstance(v, datetime) else v for k, v in job.items()}


_JOB_FILTERS = {
    "state": "State",
    "resourceArn": "ResourceArn",
    "backupVaultName": "BackupVaultName",
    "resourceType": "ResourceType",
    "accountId": "AccountId",
}


def list_backup_jobs(
    jobs: list[dict[str, Any]], query: Mapping[str, str], page_size: int
) -> dict[str, Any]:
    """The ListBackupJobs answer for one account and region (raises ValueError on bad input)."""
    selected = [
        job
        for job in jobs
        if all(
            job.get(field) == query[param]
            for param, field in _JOB_FILTERS.items()
            if param in query
        )
        and _in_window(
            job.get("CreationDate"), query.get("createdAfter"), query.get("createdBefore")
        )
        and _in_window(
            job.get("CompletionDate"), query.get("completeAfter"), query.get("completeBefore")
        )
    ]
    selected.sort(key=lambda job: job["CreationDate"], reverse=True)
    size = int(query.get("maxResults", page_size))
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"MaxResults must be between 1 and {MAX_PAGE_SIZE}")
    start = _offset(query.get("nextToken"))
    page = selected[start : start + size]
    answer: dict[str, Any] = {"BackupJobs": [_job_json(job) for job in page]}
    if start + size < len(selected):
        answer["NextToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
    return answer


def list_protected_resources(
    jobs: list[dict[str, Any]], query: Mapping[str, str], page_size: int
) -> dict[str, Any]:
    """The ListProtectedResources answer for one account and region, from its jobs: every
    resource with a COMPLETED job, ``LastBackupTime`` its newest completed job's creation
    (raises ValueError on bad input)."""
    newest: dict[str, dict[str, Any]] = {}
    for job in jobs:
        known = newest.get(job["ResourceArn"])
        if job["State"] == "COMPLETED" and (
            known is None or job["CreationDate"] > known["CreationDate"]
        ):
            newest[job["ResourceArn"]] = job
    results = [
        {
            "ResourceArn": arn,
            "ResourceType": job["ResourceType"],
            "ResourceName": job["ResourceName"],
            "LastBackupTime": job["CreationDate"].timestamp(),
            "LastBackupVaultArn": job["BackupVaultArn"],
            "LastRecoveryPointArn": job.get("RecoveryPointArn")
            or f"{job['BackupVaultArn']}:recovery-point:{job['BackupJobId']}",
        }
        for arn, job in sorted(newest.items())
    ]
    size = int(query.get("maxResults", page_size))
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"MaxResults must be between 1 and {MAX_PAGE_SIZE}")
    start = _offset(query.get("nextToken"))
    answer: dict[str, Any] = {"Results": results[start : start + size]}
    if start + size < len(results):
        answer["NextToken"] = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode()
    return answer


def _in_window(value: datetime | None, after: str | None, before: str | None) -> bool:
    if after is None and before is None:
        return True
    if value is None:
        return False
    return (after is None or value >= _when(after)) and (before is None or value <= _when(before))


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        return int(text.removeprefix("offset:"))
    except ValueError:
        raise ValueError("The NextToken is not valid; start again without it") from None


# -- the edge's state and its aiohttp app -------------------------------------------------------


@dataclass
class EdgeState:
    """Everything the edge remembers; touched only from the edge's event loop."""

    upstream: str
    page_size: int = DEFAULT_PAGE_SIZE
    jobs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    answers: dict[tuple[str, str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    """(service, operation, account id or "*", region or "*") → the pages to answer with."""
    faults: list[Fault] = field(default_factory=list)
    calls: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
    accounts: dict[str, asyncio.Future[str | None]] = field(default_factory=dict)
    client: aiohttp.ClientSession | None = None

    def reset(self) -> None:
        self.jobs.clear()
        self.answers.clear()
        self.faults.clear()
        self.calls.clear()
        self.accounts.clear()
        self.page_size = DEFAULT_PAGE_SIZE

    def seeded(self, call: Call, account: str | None) -> list[dict[str, Any]] | None:
        """The pages seeded for this call: for its account and region, else any account or
        region; None when nothing was (the call goes on to moto)."""
        if not self.answers:
            return None
        for who in (account or "*", "*"):
            for where in (call.region or "*", "*"):
                found = self.answers.get((call.service, call.operation, who, where))
                if found is not None:
                    return found
        return None

    def decide(self, call: Call, account: str | None) -> tuple[float, Fault | None]:
        """Seconds of latency to add, and the fault whose error to answer with (if any)."""
        latency = 0.0
        failing: Fault | None = None
        for fault in self.faults:
            if not fault.matches(call, account):
                continue
            latency += fault.latency_ms / 1000
            if failing is None and fault.error and (fault.times is None or fault.times > 0):
                failing = fault
                if fault.times is not None:
                    fault.times -= 1
        return latency, failing

    async def account_of(self, access_key: str) -> str | None:
        """The moto account an access key belongs to (cached; one GetCallerIdentity each)."""
        known = self.accounts.get(access_key)
        if known is None:
            known = asyncio.get_running_loop().create_future()
            self.accounts[access_key] = known
            try:
                account = await self._caller_account(access_key)
            except (aiohttp.ClientError, TimeoutError):
                account = None
            if account is None:  # not cached: ask again next time
                del self.accounts[access_key]
            known.set_result(account)
        return await asyncio.shield(known)

    async def _caller_account(self, access_key: str) -> str | None:
        assert self.client is not None
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        headers = {
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={access_key}/{stamp}/us-east-1/sts/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with self.client.post(
            f"{self.upstream}/",
            data=b"Action=GetCallerIdentity&Version=2011-06-15",
            headers=headers,
        ) as answer:
            match = _CALLER_ACCOUNT.search(await answer.text())
        return match.group(1) if match else None


STATE = web.AppKey("state", EdgeState)


async def _proxy(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body: bytes | None = None
    if request.content_type == "application/x-www-form-urlencoded":
        body = await request.read()  # the query protocol names its operation in the form
    call = identify(request, body)
    account = await state.account_of(call.access_key) if call.access_key else None
    state.calls[(call.service, call.operation, account)] += 1
    latency, fault = state.decide(call, account)
    if latency:
        await asyncio.sleep(latency)
    if fault is not None and fault.error:
        code, status = _error_code(fault.error, call)
        message = fault.message or _default_message(code, call, account)
        return error_response(call, code, fault.status or status, message)
    if call.service == "backup" and call.operation == "ListBackupJobs":
        return _answer_backup_jobs(state, call, account, request)
    pages = state.seeded(call, account)
    if pages is not None:
        if body is None and request.body_exists:
            body = await request.read()
        return _answer_seeded(pages, _page_token(request, body))
    if call.service == "backup" and call.operation == "ListProtectedResources":
        return _answer_backup_jobs(state, call, account, request)
    return await _forward(state, request, body)


def _page_token(request: web.Request, body: bytes | None) -> str | None:
    """The pagination token a request carries, wherever its protocol puts it."""
    for key in ("NextToken", "nextToken", "NextPageToken", "Marker", "marker"):
        if key in request.query:
            return request.query[key]
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = dict(parse_qsl(body.decode(errors="replace")))
    if isinstance(parsed, dict):
        for key in ("NextToken", "nextToken", "NextPageToken", "Marker", "marker"):
            if parsed.get(key):
                return str(parsed[key])
    return None


def _answer_seeded(pages: list[dict[str, Any]], token: str | None) -> web.Response:
    """Page 1 without a token; page N for the token ``page-N`` (an unknown token: 400)."""
    index = 0
    if token:
        number = token.removeprefix("page-")
        if not number.isdigit() or not 1 <= int(number) <= len(pages):
            return web.json_response(
                {"__type": "InvalidNextTokenException", "message": "Invalid token"}, status=400
            )
        index = int(number) - 1
    page = pages[index]
    status = int(page.get("status", 200))
    if "xml" in page:
        return web.Response(text=str(page["xml"]), status=status, content_type="text/xml")
    return web.Response(
        text=json.dumps(page.get("json", {})),
        status=status,
        content_type="application/x-amz-json-1.1",
    )


def _default_message(code: str, call: Call, account: str | None) -> str:
    if "Throttl" in code or code == "RequestLimitExceeded":
        return "Rate exceeded"
    return (
        f"User: arn:aws:sts::{account}:assumed-role/monitoring is not authorized to perform: "
        f"{call.service}:{call.operation}"
    )


def _answer_backup_jobs(
    state: EdgeState, call: Call, account: str | None, request: web.Request
) -> web.Response:
    jobs = state.jobs.get((account or "", call.region or ""), [])
    answer_from = (
        list_protected_resources if call.operation == "ListProtectedResources" else list_backup_jobs
    )
    try:
        answer = answer_from(jobs, request.query, state.page_size)
    except ValueError as exc:
        return error_response(call, "InvalidParameterValueException", 400, str(exc))
    return web.json_response(answer, headers={"x-amzn-RequestId": str(uuid.uuid4())})


async def _forward(
    state: EdgeState, request: web.Request, body: bytes | None
) -> web.StreamResponse:
    assert state.client is not None
    headers = CIMultiDict(
        (key, value) for key, value in request.headers.items() if key.lower() not in _HOP_BY_HOP
    )
    data: Any = body if body is not None else (request.content if request.body_exists else None)
    async with state.client.request(
        request.method,
        f"{state.upstream}{request.path_qs}",
        headers=headers,
        data=data,
        allow_redirects=False,
    ) as upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP_BY_HOP:
                response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"ok": True})


async def _add_answers(request: web.Request) -> web.Response:
    data = await request.json()
    try:
        key = (
            str(data["service"]),
            str(data["operation"]),
            str(data.get("account_id") or "*"),
            str(data.get("region") or "*"),
        )
        pages = [dict(page) for page in data["pages"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"bad answers: {exc}") from None
    if not pages or not all(("json" in p) != ("xml" in p) for p in pages):
        raise web.HTTPBadRequest(text='each page needs exactly one of "json" or "xml"')
    request.app[STATE].answers[key] = pages
    return web.json_response({"pages": len(pages)})


async def _add_jobs(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await request.json()
    try:
        account, region = str(data["account_id"]), str(data["region"])
        jobs = [make_job(account, region, spec) for spec in data.get("jobs", [data.get("job")])]
    except (KeyError, TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"bad backup job: {exc}") from None
    state.jobs.setdefault((account, region), []).extend(jobs)
    return web.json_response({"jobs": [_job_json(job) for job in jobs]})


async def _list_jobs(request: web.Request) -> web.Response:
    jobs = request.app[STATE].jobs
    return web.json_response({"jobs": [_job_json(j) for js in jobs.values() for j in js]})


async def _add_fault(request: web.Request) -> web.Response:
    try:
        fault = Fault.from_json(await request.json())
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"bad fault: {exc}") from None
    request.app[STATE].faults.append(fault)
    return web.json_response({"id": fault.id})


async def _clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return web.json_response({"ok": True})


async def _list_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": [asdict(f) for f in request.app[STATE].faults]})


async def _calls(request: web.Request) -> web.Response:
    counts = request.app[STATE].calls
    rows = [
        {"service": service, "operation": operation, "account": account, "count": count}
        for (service, operation, account), count in sorted(counts.items(), key=str)
    ]
    return web.json_response({"calls": rows})


async def _clear_calls(request: web.Request) -> web.Response:
    request.app[STATE].calls.clear()
    return web.json_response({"ok": True})


async def _page_size(request: web.Request) -> web.Response:
    size = int((await request.json())["backup_jobs"])
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise web.HTTPBadRequest(text=f"page size must be between 1 and {MAX_PAGE_SIZE}")
    request.app[STATE].page_size = size
    return web.json_response({"ok": True})


def make_app(upstream: str) -> web.Application:
    """The edge as an aiohttp application forwarding to ``upstream`` (a moto server URL)."""
    app = web.Application(client_max_size=64 * 1024**2)
    app[STATE] = EdgeState(upstream.rstrip("/"))

    async def client(app: web.Application) -> Any:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            app[STATE].client = session
            yield
            app[STATE].client = None

    app.cleanup_ctx.append(client)
    app.router.add_get(f"{CONTROL}/health", _health)
    app.router.add_post(f"{CONTROL}/reset", _reset)
    app.router.add_post(f"{CONTROL}/backup-jobs", _add_jobs)
    app.router.add_post(f"{CONTROL}/answers", _add_answers)
    app.router.add_get(f"{CONTROL}/backup-jobs", _list_jobs)
    app.router.add_post(f"{CONTROL}/faults", _add_fault)
    app.router.add_get(f"{CONTROL}/faults", _list_faults)
    app.router.add_delete(f"{CONTROL}/faults", _clear_faults)
    app.router.add_get(f"{CONTROL}/calls", _calls)
    app.router.add_delete(f"{CONTROL}/calls", _clear_calls)
    app.router.add_post(f"{CONTROL}/page-size", _page_size)
    app.router.add_route("*", "/{tail:.*}", _proxy)
    return app


# -- running it, and controlling it -------------------------------------------------------------


class Edge:
    """The edge on a loopback port, in a thread (default) or a subprocess.

    Use it as a context manager (``with`` or ``async with``) or call :meth:`start` and
    :meth:`stop`. The control methods are plain HTTP calls to ``/_edge/…`` and work in both
    modes; they block for a few milliseconds, so asyncio code may call them directly.
    """

    def __init__(
        self,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        subprocess: bool = False,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.host = host
        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        self._subprocess = subprocess
        self._proc: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    # lifecycle

    def start(self) -> Self:
        if self._subprocess:
            self._start_process()
        else:
            self._start_thread()
        self._wait_ready()
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None
        if self._thread is not None and self._loop is not None and self._stopped is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _start_process(self) -> None:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.sandbox.edge",
                "--upstream",
                self.upstream,
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
        )

    def _start_thread(self) -> None:
        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name=f"edge:{self.port}", daemon=True)
        self._thread.start()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        await serve(self.upstream, self.host, self.port, self._stopped)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                self._control("GET", "health")
                return
            except OSError:
                dead = self._proc is not None and self._proc.poll() is not None
                dead = dead or (self._thread is not None and not self._thread.is_alive())
                if dead or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the edge did not start on {self.url}") from None
                time.sleep(0.05)

    # control

    def _control(self, method: str, path: str, data: Any = None) -> Any:
        payload = None if data is None else json.dumps(data, default=_jsonable).encode()
        request = urllib.request.Request(
            f"{self.url}{CONTROL}/{path}",
            data=payload,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def reset(self) -> None:
        """Forget every job, fault, count and resolved access key."""
        self._control("POST", "reset")

    def add_backup_jobs(
        self, account_id: str, region: str, jobs: Iterable[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Store backup jobs for one account and region; see :func:`make_job` for the keys."""
        answer = self._control(
            "POST", "backup-jobs", {"account_id": account_id, "region": region, "jobs": list(jobs)}
        )
        return list(answer["jobs"])

    def answer(
        self,
        service: str,
        operation: str,
        pages: Iterable[Mapping[str, Any]],
        *,
        account_id: str | None = None,
        region: str | None = None,
    ) -> None:
        """Answer ``operation`` of ``service`` (botocore's names: ``health``,
        ``DescribeEvents``) with ``pages``, each ``{"json": body}`` or ``{"xml": text}`` (and
        an optional ``status``), for one account and region or for all; it replaces what was
        seeded for the same key. See the module docstring for pagination tokens."""
        self._control(
            "POST",
            "answers",
            {
                "service": service,
                "operation": operation,
                "account_id": account_id,
                "region": region,
                "pages": [dict(p) for p in pages],
            },
        )

    def set_page_size(self, backup_jobs: int) -> None:
        """How many jobs a ListBackupJobs page holds when the caller sets no MaxResults."""
        self._control("POST", "page-size", {"backup_jobs": backup_jobs})

    def inject(
        self,
        *,
        error: str | None = None,
        latency_ms: float = 0.0,
        operations: Iterable[str] = (),
        accounts: Iterable[str] = (),
        times: int | None = None,
        status: int | None = None,
        message: str | None = None,
    ) -> str:
        """Add a fault (see :class:`Fault`); returns its id."""
        fault = {
            "error": error,
            "latency_ms": latency_ms,
            "operations": list(operations),
            "accounts": list(accounts),
            "times": times,
            "status": status,
            "message": message,
        }
        return str(self._control("POST", "faults", fault)["id"])

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def counts(self) -> list[dict[str, Any]]:
        """Every request seen: ``{"service", "operation", "account", "count"}`` rows."""
        return list(self._control("GET", "calls")["calls"])

    def reset_counts(self) -> None:
        """Start counting from zero; jobs and faults stay."""
        self._control("DELETE", "calls")

    def calls(self, operation: str | None = None, *, account: str | None = None) -> int:
        """How many requests matched ``operation`` (``Op`` or ``service:Op``) and ``account``."""
        total = 0
        for row in self.counts():
            names = (row["operation"], f"{row['service']}:{row['operation']}")
            if operation is not None and operation not in names:
                continue
            if account is not None and row["account"] != account:
                continue
            total += int(row["count"])
        return total


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


async def serve(upstream: str, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the edge on host:port until ``stop`` is set."""
    runner = web.AppRunner(make_app(upstream), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="AWS edge in front of a moto server")
    parser.add_argument("--upstream", required=True, help="moto server URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            import signal

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        await serve(args.upstream, args.host, args.port, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
