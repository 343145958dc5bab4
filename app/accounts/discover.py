"""Reading a customer's organization from AWS (docs/organizations.md).

Through the organization role (``organization.role_arn``, assumed with its ``external_id``)::

    organizations:DescribeOrganization           which organization this is
    organizations:ListRoots                      where it starts (when include_ous is left out)
    organizations:ListAccountsForParent          the accounts in each OU, and
    organizations:ListOrganizationalUnitsForParent   the OUs under it, recursively
    organizations:ListTagsForResource            each account's alias tag (with alias_from_tag)

and through each active account's own role (``arn:…:role/<account_role>``), when a configured
region needs opting in (the others are enabled in every account)::

    ec2:DescribeRegions (AllRegions)             which configured regions it has enabled

Suspended (or closing) accounts are kept but not entered. What fails for the whole
organization (its role, an OU that does not exist) raises :class:`DiscoveryError`, saying what
to do; what fails for one account is a problem beside the result, and the account keeps every
configured region. The organization is read with plain botocore in a thread (one client, in
the reader's role); the accounts' regions through the checks' own client layer
(:class:`checks.aws.AwsClients`: one shared EC2 client, each call signed with its account's
credentials), an instance of its own per sync, closed afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.accounts.found import Discovery, Member
from app.config import Account, Customer, Organization
from app.errors import HubError
from checks.aws import OPT_IN_REGIONS, AwsClients, AwsOptions
from checks.errors import CheckError, Reason

T = TypeVar("T")
R = TypeVar("R")
SESSION_NAME = "monitoring-hub-org-sync"
HOME = {"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-northwest-1"}
"""Where Organizations answers, per partition (and where STS is asked, failing a region of
the customer's that every account has)."""
ENABLED = frozenset({"opt-in-not-required", "opted-in"})
THREADS = 8
"""Accounts read at once (their role assumed, their regions asked)."""


class DiscoveryError(HubError):
    """The organization could not be read; nothing was changed."""


class Stopped(Exception):
    """The process is stopping: the read was abandoned between two calls."""


@dataclass(frozen=True)
class Options:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_attempts: int = 4
    threads: int = THREADS


async def discover(
    customer: Customer,
    options: Options | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> Discovery:
    """Read ``customer``'s organization (it must have one), off the event loop; raises
    :class:`Stopped` soon after ``stopped()`` turns true (a shutdown), whatever it was doing."""
    org = customer.organization
    assert org is not None
    options = options or Options()
    found = await asyncio.to_thread(_Reader(org, options, stopped).read, customer.id)
    problems: list[str] = list(found.problems)
    members = await _with_regions(found.members, org, options, stopped, problems)
    return replace(found, members=tuple(members), problems=tuple(problems))


def _home(org: Organization) -> str:
    """A region every account has: the first configured one that needs no opt-in."""
    regions = org.defaults.regions
    home = HOME.get(org.partition, "us-east-1")
    return next((r for r in regions if r not in OPT_IN_REGIONS), home)


class _Reader:
    def __init__(self, org: Organization, options: Options, stopped: Callable[[], bool]) -> None:
        self.org = org
        self.options = options
        self.stopped = stopped
        self.session = botocore.session.get_session()
        self.config = Config(
            retries={"mode": "standard", "total_max_attempts": options.max_attempts},
            connect_timeout=options.connect_timeout_s,
            read_timeout=options.read_timeout_s,
            max_pool_connections=options.threads,
            user_agent_extra=SESSION_NAME,
        )
        self.home = _home(org)
        self.sts = self.session.create_client("sts", region_name=self.home, config=self.config)
        self.opened: list[Any] = [self.sts]
        """Clients to close when the read is done (their connection pools)."""

    def read(self, customer_id: str) -> Discovery:
        try:
            return self._read(customer_id)
        finally:
            for client in self.opened:
                client.close()

    def _read(self, customer_id: str) -> Discovery:
        org = self.org
        client = self._organizations()
        organization_id = self._org_call(client, "describe_organization")["Organization"]["Id"]
        parents = org.include_ous
        if parents is None:
            roots = self._pages(client, "list_roots", "Roots")
            parents = tuple(root["Id"] for root in roots)
        accounts: dict[str, tuple[dict[str, Any], str]] = {}
        for parent in parents:
            self._walk(client, parent, organization_id, accounts, set())
        excluded = tuple(sorted(a for a in accounts if a in org.exclude_accounts))
        scope = [(a, p) for a_id, (a, p) in sorted(accounts.items()) if a_id not in excluded]
        tags = self._tags(client, [a["Id"] for a, _ in scope]) if org.alias_from_tag else {}
        members = [
            Member(
                account_id=account["Id"],
                name=str(account.get("Name") or account["Id"]),
                status=str(account.get("State") or account.get("Status") or "ACTIVE").upper(),
                parent=parent,
                tag_alias=tags.get(account["Id"]),
            )
            for account, parent in scope
        ]
        return Discovery(customer_id, organization_id, tuple(members), excluded)

    # -- the organization --------------------------------------------------------------------

    def _organizations(self) -> Any:
        """A client in the organization role; DiscoveryError when it cannot be assumed."""
        try:
            credentials = self._assume(self.org.role_arn)
        except ClientError as exc:
            code = _code(exc)
            trust = " and external_id matches it" if self.org.external_id else ""
            raise DiscoveryError(
                f"cannot assume the organization role {self.org.role_arn} ({code}): check "
                f"that its trust policy lets the hub's principal assume it{trust} "
                "(docs/iam.md), and that role_arn is right"
            ) from None
        except BotoCoreError as exc:
            raise DiscoveryError(
                f"could not reach AWS to assume {self.org.role_arn} ({exc}); try again"
            ) from None
        region = HOME.get(self.org.partition, "us-east-1")
        client = self.session.create_client(
            "organizations", region_name=region, config=self.config, **credentials
        )
        self.opened.append(client)
        return client

    def _walk(
        self,
        client: Any,
        parent: str,
        organization_id: str,
        into: dict[str, tuple[dict[str, Any], str]],
        seen: set[str],
    ) -> None:
        """Every account under ``parent``, its OUs' included (each OU once)."""
        if parent in seen:
            return
        seen.add(parent)
        if self.stopped():
            raise Stopped
        try:
            for account in self._pages(client, "list_accounts_for_parent", "Accounts", parent):
                into.setdefault(account["Id"], (account, parent))
            method = "list_organizational_units_for_parent"
            units = self._pages(client, method, "OrganizationalUnits", parent)
        except DiscoveryError:
            raise
        except ClientError as exc:
            if _code(exc) in ("ParentNotFoundException", "InvalidInputException"):
                raise DiscoveryError(
                    f"include_ous: {parent} is not an OU (or the root) of organization "
                    f"{organization_id}; copy its id from AWS Organizations → AWS accounts, or "
                    "remove it"
                ) from None
            raise
        for unit in units:
            self._walk(client, unit["Id"], organization_id, into, seen)

    def _tags(self, client: Any, account_ids: list[str]) -> dict[str, str]:
        """Each account's ``alias_from_tag`` value, when it has the tag."""
        key = self.org.alias_from_tag

        def tag_of(account_id: str) -> str | None:
            tags = self._pages(client, "list_tags_for_resource", "Tags", account_id, "ResourceId")
            return next((str(t["Value"]) for t in tags if t.get("Key") == key), None)

        found = self._each(tag_of, account_ids)
        return {a: value for a, value in zip(account_ids, found, strict=True) if value is not None}

    def _pages(
        self, client: Any, method: str, key: str, parent: str | None = None, name: str = "ParentId"
    ) -> list[dict[str, Any]]:
        kwargs = {name: parent} if parent is not None else {}
        items: list[dict[str, Any]] = []
        try:
            for page in client.get_paginator(method).paginate(**kwargs):
                items.extend(page.get(key, []))
        except ClientError as exc:
            if _code(exc) in ("ParentNotFoundException", "InvalidInputException"):
                raise
            raise self._refused(exc, method) from None
        except BotoCoreError as exc:
            raise DiscoveryError(f"could not reach AWS Organizations ({exc}); try again") from None
        return items

    def _org_call(self, client: Any, method: str) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(client, method)()
        except ClientError as exc:
            raise self._refused(exc, method) from None
        except BotoCoreError as exc:
            raise DiscoveryError(f"could not reach AWS Organizations ({exc}); try again") from None
        return answer

    def _refused(self, exc: ClientError, method: str) -> DiscoveryError:
        code = _code(exc)
        operation = getattr(exc, "operation_name", method)
        if code == "AWSOrganizationsNotInUseException":
            return DiscoveryError(
                f"account {self.org.account_id} is not in an organization; point role_arn at "
                "a role in the management account or a delegated administrator"
            )
        if code in ("AccessDenied", "AccessDeniedException"):
            return DiscoveryError(
                f"{self.org.role_arn} may not call organizations:{operation} ({code}); grant "
                "it the organization reader's policy (`mhub iam policy --org`, docs/iam.md). "
                "If its account is a delegated administrator, check it is registered for "
                "Organizations"
            )
        return DiscoveryError(
            f"AWS Organizations refused {operation} ({code}: {_message(exc)}); try again, "
            "and if it persists check the organization role (docs/organizations.md)"
        )

    # -- each account --------------------------------------------------------------------------

    def _assume(self, role_arn: str) -> dict[str, str]:
        kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME}
        if self.org.external_id:
            kwargs["ExternalId"] = self.org.external_id
        answer = self.sts.assume_role(**kwargs)["Credentials"]
        return {
            "aws_access_key_id": answer["AccessKeyId"],
            "aws_secret_access_key": answer["SecretAccessKey"],
            "aws_session_token": answer["SessionToken"],
        }

    def _each(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``work`` on each item, a few at a time, in order; :class:`Stopped` once
        ``stopped()`` (the items not started yet are not)."""

        def unless_stopped(item: T) -> R:
            if self.stopped():
                raise Stopped
            return work(item)

        with ThreadPoolExecutor(self.options.threads, thread_name_prefix="org-sync") as pool:
            return list(pool.map(unless_stopped, items))


async def _with_regions(
    members: tuple[Member, ...],
    org: Organization,
    options: Options,
    stopped: Callable[[], bool],
    problems: list[str],
) -> list[Member]:
    """Each active member with the configured regions it has enabled. Regions that need no
    opt-in are enabled in every account (they cannot be turned off): when the configured
    regions are all such, no account is asked. Otherwise each account is asked through its own
    role, a few at a time, with the checks' own AWS client layer (one shared client, each
    call signed with its account's credentials: building a client per account costs ~30 ms of
    CPU)."""
    wanted = org.defaults.regions
    opt_in = [region for region in wanted if region in OPT_IN_REGIONS]
    if not opt_in:
        return [replace(m, regions=wanted) if m.active else m for m in members]
    home = _home(org)
    aws = AwsClients(AwsOptions(threads=options.threads, max_attempts=options.max_attempts))
    room = asyncio.Semaphore(options.threads)

    async def regions_of(member: Member) -> tuple[str, ...] | str:
        account = Account(
            id=f"org-{member.account_id}",
            name=member.name,
            account_id=member.account_id,
            regions=(home,),
            role_arn=org.member_role_arn(member.account_id),
            external_id=org.external_id,
        )
        async with room:
            if stopped():
                raise Stopped
            try:
                answer = await aws.call(
                    account, home, "ec2", "describe_regions", AllRegions=True, RegionNames=opt_in
                )
            except CheckError as exc:
                return _member_problem(member, org, exc)
        enabled = {r["RegionName"] for r in answer["Regions"] if r.get("OptInStatus") in ENABLED}
        return tuple(r for r in wanted if r in enabled or r not in OPT_IN_REGIONS)

    try:
        async with asyncio.TaskGroup() as group:  # Stopped in one cancels the others
            asked = {m.account_id: group.create_task(regions_of(m)) for m in members if m.active}
    except* Stopped:
        raise Stopped from None
    finally:
        aws.close()
    read = {account_id: task.result() for account_id, task in asked.items()}
    out = []
    for member in members:
        regions = read.get(member.account_id)
        if isinstance(regions, str):
            problems.append(regions)
            regions = None
        out.append(replace(member, regions=regions))
    return out


def _member_problem(member: Member, org: Organization, exc: CheckError) -> str:
    who = f"account {member.account_id} ({member.name})"
    code = f" ({exc.code})" if exc.code else ""
    if exc.reason == Reason.ROLE:
        fix = (
            f"deploy the role {org.account_role} there (deploy/aws/, docs/iam.md) trusting the "
            "hub" + (" with the external_id" if org.external_id else "")
        )
    elif exc.reason == Reason.ACCESS:
        fix = f"let {org.account_role} call ec2:DescribeRegions (docs/iam.md)"
    else:
        fix = f"AWS said: {exc}"
    return (
        f"{who}: could not read its enabled regions{code}; {fix}. Every configured region "
        "is used until then"
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _message(exc: ClientError) -> str:
    return " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())[:200]
