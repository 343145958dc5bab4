"""Cost Explorer in the demo estate, and the answers moto and the edge give for it.

shop-prod is the demo customer's payer account: its Cost Explorer sees all three accounts.
moto answers ``GetCostAndUsage`` from a queue of results, per account, filled by POSTing to
``/moto-api/static/ce/cost-and-usage-results`` (:func:`queue_costs`): the first request with
new parameters takes the next result, the same parameters get the same result again. moto has
no ``GetAnomalies``: the edge answers it (:meth:`Edge.answer`, :func:`anomalies_page`).

What the demo's cost check finds on shop-prod (yesterday, a UTC day):

- Amazon Athena in analytics jumped from about $10 a day to $95 (critical), and so did the
  analytics account as a whole (critical);
- EC2 in shop-staging rose 40 % but by only $12, under the $50 minimum (not listed);
- Cost Anomaly Detection has an open Athena anomaly with a $180 impact (a warning), and a $20
  one under the $100 minimum (not listed).

The builders (:func:`cost_and_usage`, :func:`queue_costs`, :func:`anomaly`,
:func:`anomalies_page`) are what the tests seed with too.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.sandbox.edge import Edge

PROD, STAGING, ANALYTICS = "111111111111", "222222222222", "333333333333"
PAYER = PROD
NAMES = {PROD: "Shop Production", STAGING: "Shop Staging", ANALYTICS: "Analytics"}
EC2 = "Amazon Elastic Compute Cloud - Compute"
RDS = "Amazon Relational Database Service"
ATHENA = "Amazon Athena"
S3 = "Amazon Simple Storage Service"
QUEUE = "/moto-api/static/ce/cost-and-usage-results"

Spend = Mapping[tuple[str, str], Sequence[float]]
"""(service, linked account id) → daily amounts, oldest first, the last one yesterday."""


def cost_and_usage(
    spend: Spend,
    today: date,
    *,
    metric: str = "UnblendedCost",
    unit: str = "USD",
    names: Mapping[str, str] | None = None,
    next_page: str | None = None,
) -> dict[str, Any]:
    """A ``GetCostAndUsage`` answer, DAILY and grouped by SERVICE and LINKED_ACCOUNT, for the
    days before ``today`` (UTC): as many days as the longest series in ``spend``."""
    length = max((len(amounts) for amounts in spend.values()), default=0)
    results = []
    for index in range(length):
        day = today - timedelta(days=length - index)
        groups = [
            {
                "Keys": [service, account],
                "Metrics": {metric: {"Amount": f"{amounts[index]:.10f}", "Unit": unit}},
            }
            for (service, account), amounts in spend.items()
            if index < len(amounts) and amounts[index]
        ]
        results.append(
            {
                "TimePeriod": {
                    "Start": day.isoformat(),
                    "End": (day + timedelta(days=1)).isoformat(),
                },
                "Total": {},
                "Groups": groups,
                "Estimated": index == length - 1,
            }
        )
    accounts = sorted({account for _, account in spend})
    answer: dict[str, Any] = {
        "GroupDefinitions": [
            {"Type": "DIMENSION", "Key": "SERVICE"},
            {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
        ],
        "ResultsByTime": results,
        "DimensionValueAttributes": [
            {"Value": account, "Attributes": {"description": (names or NAMES).get(account, "")}}
            for account in accounts
        ],
    }
    if next_page is not None:
        answer["NextPageToken"] = next_page
    return answer


def queue_costs(moto_url: str, account_id: str, *answers: Mapping[str, Any]) -> None:
    """Queue ``GetCostAndUsage`` answers in moto for ``account_id``, in the order of the
    requests with new parameters that will take them."""
    request = urllib.request.Request(
        f"{moto_url.rstrip('/')}{QUEUE}",
        data=json.dumps({"account_id": account_id, "results": list(answers)}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        if reply.status != 201:
            raise RuntimeError(f"moto did not queue the cost results: HTTP {reply.status}")


def anomaly(
    anomaly_id: str,
    impact: float,
    start: date,
    *,
    end: date | None = None,
    expected: float = 0.0,
    service: str = EC2,
    account: str = PROD,
    region: str = "ap-southeast-3",
    usage_type: str = "APS3-BoxUsage:m5.xlarge",
    dimension: str | None = None,
    feedback: str | None = None,
    causes: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One anomaly as ``GetAnomalies`` answers it; its root cause is ``service`` in
    ``account`` and ``region`` (or ``causes``, each with those keys in the API's spelling)."""
    root_causes = [dict(cause) for cause in causes] or [
        {
            "Service": service,
            "Region": region,
            "LinkedAccount": account,
            "LinkedAccountName": NAMES.get(account, ""),
            "UsageType": usage_type,
            "Impact": {"Contribution": impact},
        }
    ]
    found: dict[str, Any] = {
        "AnomalyId": anomaly_id,
        "AnomalyStartDate": start.isoformat(),
        "DimensionValue": dimension or service,
        "RootCauses": root_causes,
        "AnomalyScore": {"MaxScore": 0.9, "CurrentScore": 0.8},
        "Impact": {
            "MaxImpact": impact,
            "TotalImpact": impact,
            "TotalActualSpend": expected + impact,
            "TotalExpectedSpend": expected,
            "TotalImpactPercentage": impact / expected * 100 if expected else None,
        },
        "MonitorArn": f"arn:aws:ce::{PAYER}:anomalymonitor/demo-services",
    }
    if found["Impact"]["TotalImpactPercentage"] is None:
        del found["Impact"]["TotalImpactPercentage"]
    if end is not None:
        found["AnomalyEndDate"] = end.isoformat()
    if feedback is not None:
        found["Feedback"] = feedback
    return found


def anomalies_page(
    anomalies: Sequence[Mapping[str, Any]], next_page: str | None = None
) -> dict[str, Any]:
    """A ``GetAnomalies`` page for :meth:`Edge.answer`."""
    body: dict[str, Any] = {"Anomalies": [dict(a) for a in anomalies]}
    if next_page is not None:
        body["NextPageToken"] = next_page
    return {"json": body}


def demo_spend() -> dict[tuple[str, str], list[float]]:
    """Eight days of the demo customer's spend: a week of routine, then yesterday."""
    return {
        (EC2, PROD): [118, 121, 119, 122, 120, 117, 123, 121],
        (RDS, PROD): [80, 80, 81, 79, 80, 80, 80, 82],
        (S3, PROD): [6, 6, 6, 6, 6, 6, 6, 6],
        (EC2, STAGING): [30, 29, 31, 30, 30, 30, 30, 42],
        (ATHENA, ANALYTICS): [9, 11, 10, 10, 9, 11, 10, 95],
        (S3, ANALYTICS): [22, 22, 23, 22, 22, 23, 22, 23],
    }


def seed(moto_url: str, edge: Edge | None, now: datetime) -> None:
    """Queue the payer's cost figures in moto and, with an edge, its anomalies (without one,
    ``GetAnomalies`` reaches moto, which does not implement it)."""
    today = now.astimezone(UTC).date()
    queue_costs(moto_url, PAYER, cost_and_usage(demo_spend(), today))
    if edge is None:
        return
    yesterday = today - timedelta(days=1)
    edge.answer(
        "ce",
        "GetAnomalies",
        [
            anomalies_page(
                [
                    anomaly(
                        "demo-athena-scan",
                        180.0,
                        yesterday,
                        expected=10.0,
                        service=ATHENA,
                        account=ANALYTICS,
                        region="us-east-1",
                        usage_type="USE1-DataScannedInTB",
                    ),
                    anomaly("demo-ec2-small", 20.0, yesterday - timedelta(days=1), expected=120),
                ]
            )
        ],
        account_id=PAYER,
    )
