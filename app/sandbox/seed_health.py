"""AWS Health in the demo estate, and the answers the edge gives for it.

moto has no AWS Health, no ``DescribePendingMaintenanceActions`` and never schedules an EC2
event, so the edge answers them (:meth:`Edge.answer`) with what this module builds:

- shop-prod has a Business support plan: AWS Health lists an EC2 instance retirement in two
  days (critical), RDS maintenance on its database in nine days (a warning), an ElastiCache
  update in five weeks (listed, OK) and an event in a region the account does not use;
- shop-staging has no Business support plan: Health answers ``SubscriptionRequiredException``
  and the check reads EC2 and RDS instead, where the staging database has a pending OS update
  applied in five days (a warning);
- analytics has Health and nothing open or upcoming.

The builders (:func:`event`, :func:`entity`, :func:`json_pages`, :func:`instance_status_xml`,
:func:`pending_maintenance_xml`, :func:`not_subscribed`) are what the tests seed with too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from app.sandbox.edge import Edge

PROD, STAGING, ANALYTICS = "111111111111", "222222222222", "333333333333"
REGION = "ap-southeast-3"
EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
RDS_XMLNS = "http://rds.amazonaws.com/doc/2014-10-31/"


def event(
    account_id: str,
    region: str,
    code: str,
    start: datetime,
    *,
    category: str = "scheduledChange",
    status: str = "upcoming",
    scope: str = "ACCOUNT_SPECIFIC",
    end: datetime | None = None,
    name: str = "1",
) -> dict[str, Any]:
    """One event as ``DescribeEvents`` answers it; ``code`` is ``AWS_<SERVICE>_…``."""
    service = code.removeprefix("AWS_").split("_", 1)[0]
    owner = "" if scope == "PUBLIC" else account_id
    answer: dict[str, Any] = {
        "arn": f"arn:aws:health:{region}:{owner}:event/{service}/{code}/{code}_{name}",
        "service": service,
        "eventTypeCode": code,
        "eventTypeCategory": category,
        "region": region,
        "startTime": start.timestamp(),
        "lastUpdatedTime": start.timestamp(),
        "statusCode": status,
        "eventScopeCode": scope,
    }
    if end is not None:
        answer["endTime"] = end.timestamp()
    return answer


def entity(of: Mapping[str, Any], value: str, status: str = "PENDING") -> dict[str, Any]:
    """One resource ``of`` an event touches, as ``DescribeAffectedEntities`` answers it."""
    return {
        "entityArn": f"{of['arn']}/{value}",
        "eventArn": of["arn"],
        "entityValue": value,
        "awsAccountId": of["arn"].split(":")[4] or None,
        "statusCode": status,
    }


def json_pages(key: str, items: list[dict[str, Any]], per_page: int = 100) -> list[dict[str, Any]]:
    """``items`` as pages of a JSON answer under ``key``, each but the last with
    ``nextToken: page-N+1`` (the edge's tokens)."""
    chunks = [items[i : i + per_page] for i in range(0, len(items), per_page)] or [[]]
    pages: list[dict[str, Any]] = []
    for number, chunk in enumerate(chunks, start=1):
        body: dict[str, Any] = {key: chunk}
        if number < len(chunks):
            body["nextToken"] = f"page-{number + 1}"
        pages.append({"json": body})
    return pages


def not_subscribed() -> dict[str, Any]:
    """The page AWS Health answers an account without a Business or Enterprise support plan."""
    return {
        "status": 400,
        "json": {
            "__type": "SubscriptionRequiredException",
            "message": "The AWS Premium Support Subscription is required to use this service.",
        },
    }


def _xml_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _check(state: str, since: datetime | None) -> str:
    detail = "passed" if state == "ok" else "failed"
    impaired = (
        f"<impairedSince>{_xml_time(since)}</impairedSince>"
        if since and state == "impaired"
        else ""
    )
    return (
        f"<status>{state}</status><details><item><name>reachability</name>"
        f"<status>{detail}</status>{impaired}</item></details>"
    )


def instance_status_xml(
    statuses: Iterable[Mapping[str, Any]], next_token: str | None = None
) -> str:
    """A ``DescribeInstanceStatus`` answer. Each status: ``instance_id``, optional ``system``
    and ``instance`` (``ok`` or ``impaired``), ``impaired_since`` and ``events``: dicts with
    ``code``, ``not_before`` and optional ``description``, ``not_after``, ``id``."""
    items = []
    for status in statuses:
        events = "".join(
            "<item>"
            f"<instanceEventId>{escape(str(e.get('id', 'instance-event-' + e['code'])))}"
            "</instanceEventId>"
            f"<code>{escape(e['code'])}</code>"
            f"<description>{escape(str(e.get('description', '')))}</description>"
            f"<notBefore>{_xml_time(e['not_before'])}</notBefore>"
            + (f"<notAfter>{_xml_time(e['not_after'])}</notAfter>" if e.get("not_after") else "")
            + "</item>"
            for e in status.get("events", ())
        )
        since = status.get("impaired_since")
        items.append(
            "<item>"
            f"<instanceId>{escape(status['instance_id'])}</instanceId>"
            f"<availabilityZone>{escape(status.get('zone', 'eu-west-1a'))}</availabilityZone>"
            f"<eventsSet>{events}</eventsSet>"
            "<instanceState><code>16</code><name>running</name></instanceState>"
            f"<systemStatus>{_check(status.get('system', 'ok'), since)}</systemStatus>"
            f"<instanceStatus>{_check(status.get('instance', 'ok'), since)}</instanceStatus>"
            "</item>"
        )
    token = f"<nextToken>{escape(next_token)}</nextToken>" if next_token else ""
    return (
        f'<DescribeInstanceStatusResponse xmlns="{EC2_XMLNS}">'
        "<requestId>5b1f0e5e-0000-4000-8000-000000000001</requestId>"
        f"<instanceStatusSet>{''.join(items)}</instanceStatusSet>{token}"
        "</DescribeInstanceStatusResponse>"
    )


def pending_maintenance_xml(actions: Iterable[Mapping[str, Any]], marker: str | None = None) -> str:
    """A ``DescribePendingMaintenanceActions`` answer. Each action: ``arn`` (the DB instance or
    cluster), ``action`` and optional ``description``, ``current_apply``,
    ``auto_applied_after``, ``forced_apply`` (datetimes) and ``opt_in``."""
    dates = {
        "current_apply": "CurrentApplyDate",
        "auto_applied_after": "AutoAppliedAfterDate",
        "forced_apply": "ForcedApplyDate",
    }
    items = []
    for action in actions:
        fields = "".join(
            f"<{tag}>{_xml_time(action[key])}</{tag}>"
            for key, tag in dates.items()
            if action.get(key)
        )
        if action.get("opt_in"):
            fields += f"<OptInStatus>{escape(action['opt_in'])}</OptInStatus>"
        items.append(
            "<ResourcePendingMaintenanceActions>"
            f"<ResourceIdentifier>{escape(action['arn'])}</ResourceIdentifier>"
            "<PendingMaintenanceActionDetails><PendingMaintenanceAction>"
            f"<Action>{escape(action['action'])}</Action>"
            f"<Description>{escape(str(action.get('description', '')))}</Description>{fields}"
            "</PendingMaintenanceAction></PendingMaintenanceActionDetails>"
            "</ResourcePendingMaintenanceActions>"
        )
    mark = f"<Marker>{escape(marker)}</Marker>" if marker else ""
    return (
        f'<DescribePendingMaintenanceActionsResponse xmlns="{RDS_XMLNS}">'
        "<DescribePendingMaintenanceActionsResult>"
        f"<PendingMaintenanceActions>{''.join(items)}</PendingMaintenanceActions>{mark}"
        "</DescribePendingMaintenanceActionsResult>"
        "<ResponseMetadata><RequestId>5b1f0e5e-0000-4000-8000-000000000002</RequestId>"
        "</ResponseMetadata></DescribePendingMaintenanceActionsResponse>"
    )


def seed(moto_url: str, edge: Edge | None, now: datetime) -> None:
    """Teach the edge the demo's AWS Health (see the module docstring). Without an edge there
    is nothing to plant: moto answers none of these calls."""
    if edge is None:
        return
    now += timedelta(minutes=30)  # "in 2 d", not "in 1 d 23 h", when the demo runs the check
    retirement = event(
        PROD, REGION, "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", now + timedelta(days=2)
    )
    maintenance = event(PROD, REGION, "AWS_RDS_MAINTENANCE_SCHEDULED", now + timedelta(days=9))
    update = event(
        PROD, REGION, "AWS_ELASTICACHE_UPDATE_AVAILABLE", now + timedelta(days=35), name="2"
    )
    elsewhere = event(
        PROD, "us-west-2", "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", now + timedelta(hours=20)
    )
    edge.answer(
        "health",
        "DescribeEvents",
        json_pages("events", [retirement, maintenance, update, elsewhere]),
        account_id=PROD,
    )
    edge.answer(
        "health",
        "DescribeAffectedEntities",
        json_pages(
            "entities",
            [
                entity(retirement, "i-0a1b2c3d4e5f60718"),
                entity(maintenance, "shop-prod-db"),
                entity(update, "shop-prod-cache-001"),
            ],
        ),
        account_id=PROD,
    )
    edge.answer("health", "DescribeEvents", [not_subscribed()], account_id=STAGING)
    edge.answer(
        "rds",
        "DescribePendingMaintenanceActions",
        [
            {
                "xml": pending_maintenance_xml(
                    [
                        {
                            "arn": f"arn:aws:rds:{REGION}:{STAGING}:db:shop-staging-db",
                            "action": "system-update",
                            "description": "New Operating System update is available",
                            "current_apply": now + timedelta(days=5),
                            "auto_applied_after": now + timedelta(days=5),
                        }
                    ]
                )
            }
        ],
        account_id=STAGING,
        region=REGION,
    )
    edge.answer("health", "DescribeEvents", json_pages("events", []), account_id=ANALYTICS)
