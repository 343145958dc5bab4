"""The health check over HTTP through the edge, which answers what moto lacks (AWS Health,
RDS pending maintenance, scheduled EC2 events), in accounts reached by AssumeRole."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.engine.checking import CheckRunner
from app.engine.retry import RetryPolicy
from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session
from app.sandbox.seed_health import (
    entity,
    event,
    instance_status_xml,
    json_pages,
    not_subscribed,
    pending_maintenance_xml,
)
from checks.aws import AwsClients
from checks.base import Severity
from checks.health import HealthCheck, HealthSettings, console_url
from checks.registry import REGISTRY
from tests.checks.support import ARBEL, BILLING, account, customer, run_check

REGION = "eu-west-1"
FRANKFURT = "eu-central-1"
JAKARTA = ZoneInfo("Asia/Jakarta")
RETIREMENT = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
RDS_MAINTENANCE = "AWS_RDS_MAINTENANCE_SCHEDULED"


@pytest.fixture
def now() -> datetime:
    """Now, to the minute: event times built from it show exactly (``24 Nov 09:00 WIB``), and
    offsets with half an hour to spare read the same however long the test takes."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def wib(moment: datetime) -> str:
    return f"{moment.astimezone(JAKARTA):%d %b %H:%M} WIB"


def health(
    edge: Edge,
    account_id: str,
    events: list[dict[str, Any]],
    entities: Iterable[dict[str, Any]] = (),
    per_page: int = 100,
) -> None:
    """What AWS Health answers ``account_id``."""
    edge.answer(
        "health", "DescribeEvents", json_pages("events", events, per_page), account_id=account_id
    )
    edge.answer(
        "health",
        "DescribeAffectedEntities",
        json_pages("entities", list(entities), per_page),
        account_id=account_id,
    )


def ec2_and_rds(
    edge: Edge,
    account_id: str,
    statuses: Iterable[Mapping[str, Any]] = (),
    actions: Iterable[Mapping[str, Any]] = (),
    region: str | None = None,
) -> None:
    """What EC2 and RDS answer ``account_id`` (in ``region``, or every region)."""
    edge.answer(
        "ec2",
        "DescribeInstanceStatus",
        [{"xml": instance_status_xml(statuses)}],
        account_id=account_id,
        region=region,
    )
    edge.answer(
        "rds",
        "DescribePendingMaintenanceActions",
        [{"xml": pending_maintenance_xml(actions)}],
        account_id=account_id,
        region=region,
    )


def db_arn(name: str, region: str = REGION, account_id: str = ARBEL) -> str:
    return f"arn:aws:rds:{region}:{account_id}:db:{name}"


# -- AWS Health ---------------------------------------------------------------------------------


async def test_it_is_critical_when_an_instance_retirement_starts_within_crit_hours(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    retire_at = now + timedelta(days=2, hours=3, minutes=30)
    retirement = event(ARBEL, REGION, RETIREMENT, retire_at)
    maintenance = event(ARBEL, REGION, RDS_MAINTENANCE, now + timedelta(days=5, minutes=30))
    update = event(ARBEL, REGION, "AWS_ELASTICACHE_UPDATE_AVAILABLE", now + timedelta(days=30))
    health(
        edge,
        ARBEL,
        [update, maintenance, retirement],
        [
            entity(retirement, "i-0abc"),
            entity(retirement, "i-0old", status="RESOLVED"),
            entity(maintenance, "arbel-prod-db"),
            entity(update, "arbel-cache-001"),
        ],
    )
    who = customer(account("arbel", ARBEL), timezone="Asia/Jakarta")

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.CRIT
    assert result.summary == (
        f"i-0abc: EC2 instance retirement scheduled, starts {wib(retire_at)} (in 2 d 3 h) "
        "(crit ≤ 72 h) and 1 more; 3 events: 1 critical, 1 warning (AWS Health)"
    )
    assert result.details["source"] == "health"
    assert result.details["events"] == 3
    assert result.details["counts"] == {"crit": 1, "warn": 1, "ok": 1}
    lines = result.details["resources"]
    assert [(r["id"], r["severity"]) for r in lines] == [
        ("i-0abc", "crit"),
        ("arbel-prod-db", "warn"),
        ("arbel-cache-001", "ok"),
    ]  # the resolved instance is not listed
    assert lines[0]["fingerprint"] == f"health:{ARBEL}:{REGION}:i-0abc:{RETIREMENT}"
    assert lines[0]["event_arn"] == retirement["arn"]
    assert lines[1]["summary"] == (
        f"arbel-prod-db: RDS maintenance scheduled, starts "
        f"{wib(now + timedelta(days=5, minutes=30))} (in 5 d) (warn ≤ 14 d)"
    )
    assert lines[2]["summary"].startswith("arbel-cache-001: ELASTICACHE update available, starts")


async def test_crit_hours_and_warn_days_decide_between_crit_warn_and_ok(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    events = [
        event(ARBEL, REGION, RETIREMENT, now + timedelta(days=2, minutes=30)),
        event(ARBEL, REGION, RDS_MAINTENANCE, now + timedelta(days=5, minutes=30)),
    ]
    entities = [entity(events[0], "i-0abc"), entity(events[1], "arbel-prod-db")]
    health(edge, ARBEL, events, entities)
    health(edge, BILLING, events, entities)
    who = customer(account("arbel", ARBEL), account("billing", BILLING))
    strict = customer(
        account("arbel", ARBEL),
        account("billing", BILLING),
        checks={"health": {"crit_hours": 24, "warn_days": 3}},
    )

    default = await run_check(clients, who, "arbel", "health")
    tighter = await run_check(clients, strict, "billing", "health")

    assert [r["severity"] for r in default.details["resources"]] == ["crit", "warn"]
    assert [r["severity"] for r in tighter.details["resources"]] == ["warn", "ok"]
    assert tighter.severity == Severity.WARN
    assert tighter.details["resources"][0]["summary"].endswith("(in 2 d) (warn ≤ 3 d)")
    assert tighter.details["thresholds"] == {
        "warn_days": 3,
        "crit_hours": 24,
        "public_issues": "warn",
    }


async def test_a_scheduled_change_under_way_is_critical_until_it_ends(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    started = event(
        ARBEL,
        REGION,
        RDS_MAINTENANCE,
        now - timedelta(hours=1, minutes=30),
        status="open",
        end=now + timedelta(hours=2),
    )
    health(edge, ARBEL, [started], [entity(started, "arbel-prod-db")])
    who = customer(account("arbel", ARBEL), timezone="Asia/Jakarta")

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.CRIT
    assert result.details["resources"][0]["summary"] == (
        f"arbel-prod-db: RDS maintenance scheduled, started "
        f"{wib(now - timedelta(hours=1, minutes=30))} (1 h 30 min ago), "
        f"until {wib(now + timedelta(hours=2))} (crit ≤ 72 h)"
    )


async def test_it_is_critical_for_an_open_issue_affecting_the_account_and_warns_on_a_public_one(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    lost = event(
        ARBEL, REGION, "AWS_EBS_VOLUME_LOST", now - timedelta(hours=2), category="issue",
        status="open",
    )  # fmt: skip
    outage = event(
        ARBEL, REGION, "AWS_EC2_OPERATIONAL_ISSUE", now - timedelta(hours=1, minutes=10),
        category="issue", status="open", scope="PUBLIC",
    )  # fmt: skip
    health(edge, ARBEL, [outage, lost], [entity(lost, "vol-0123"), entity(outage, "UNKNOWN")])
    health(edge, BILLING, [outage], [entity(outage, BILLING)])
    who = customer(account("arbel", ARBEL), account("billing", BILLING), timezone="Asia/Jakarta")
    alarmed = customer(account("billing", BILLING), checks={"health": {"public_issues": "crit"}})

    arbel = await run_check(clients, who, "arbel", "health")
    billing = await run_check(clients, who, "billing", "health")
    billing_alarmed = await run_check(clients, alarmed, "billing", "health")

    assert arbel.severity == Severity.CRIT
    assert arbel.summary.startswith(
        f"vol-0123: EBS volume lost, open since {wib(now - timedelta(hours=2))} (2 h) and 1 more"
    )
    assert billing.severity == Severity.WARN
    assert billing.summary == (
        f"EC2 operational issue in {REGION} (public issue), open since "
        f"{wib(now - timedelta(hours=1, minutes=10))} (1 h 10 min); 1 event: 1 warning "
        "(AWS Health)"
    )
    [line] = billing.details["resources"]
    assert line["fingerprint"] == f"health:{BILLING}:{REGION}:EC2:AWS_EC2_OPERATIONAL_ISSUE"
    assert line["scope"] == "PUBLIC"
    assert billing_alarmed.severity == Severity.CRIT


async def test_it_keeps_only_events_in_the_accounts_regions_and_global_ones(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    soon = now + timedelta(days=1)
    events = [
        event(ARBEL, REGION, RETIREMENT, soon, name="dublin"),
        event(ARBEL, FRANKFURT, RETIREMENT, soon, name="frankfurt"),
        event(ARBEL, "us-west-2", RETIREMENT, soon, name="oregon"),
        event(ARBEL, "global", "AWS_IAM_OPERATIONAL_ISSUE", now, category="issue",
              status="open", scope="PUBLIC"),
    ]  # fmt: skip
    entities = [entity(e, f"i-{e['region']}") for e in events[:3]]
    health(edge, ARBEL, events, entities)
    who = customer(account("arbel", ARBEL, regions=(REGION, FRANKFURT)))

    result = await run_check(clients, who, "arbel", "health")

    assert result.details["events"] == 3
    assert {(r["region"], r["id"]) for r in result.details["resources"]} == {
        (REGION, f"i-{REGION}"),
        (FRANKFURT, f"i-{FRANKFURT}"),
        ("us-east-1", "IAM"),  # global events are asked of, and linked to, us-east-1
    }
    iam = next(r for r in result.details["resources"] if r["id"] == "IAM")
    assert iam["event_region"] == "global"
    assert iam["summary"].startswith("IAM operational issue in global (public issue), open")


async def test_it_follows_next_token_through_events_and_affected_entities(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    events = [
        event(ARBEL, REGION, RETIREMENT, now + timedelta(days=20 + i), name=f"{i:02d}")
        for i in range(25)
    ]
    health(edge, ARBEL, events, [entity(e, f"i-{n:02d}") for n, e in enumerate(events)], 10)
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.OK
    assert result.details["events"] == 25
    assert len(result.details["resources"]) == 25
    assert result.summary.startswith("25 events, none within 14 d; next: i-00: EC2 instance")
    assert edge.calls("health:DescribeEvents", account=ARBEL) == 3
    # 25 events: 3 calls of at most 10 ARNs; the edge answers each with both pages
    assert edge.calls("health:DescribeAffectedEntities", account=ARBEL) == 9


async def test_it_says_so_when_nothing_is_open_or_upcoming(edge: Edge, clients: AwsClients) -> None:
    health(edge, ARBEL, [])
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.OK
    assert result.summary == "no open or upcoming events (AWS Health)"
    assert result.details["events"] == 0
    assert edge.calls("health:DescribeAffectedEntities") == 0


async def test_two_accounts_never_see_each_others_events(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    mine = event(ARBEL, REGION, RETIREMENT, now + timedelta(days=1))
    theirs = event(BILLING, REGION, RDS_MAINTENANCE, now + timedelta(days=6), name="billing")
    health(edge, ARBEL, [mine], [entity(mine, "i-arbel")])
    health(edge, BILLING, [theirs], [entity(theirs, "billing-db")])
    who = customer(account("arbel", ARBEL), account("billing", BILLING))

    arbel = await run_check(clients, who, "arbel", "health")
    billing = await run_check(clients, who, "billing", "health")

    assert [r["id"] for r in arbel.details["resources"]] == ["i-arbel"]
    assert [r["id"] for r in billing.details["resources"]] == ["billing-db"]
    assert (arbel.severity, billing.severity) == (Severity.CRIT, Severity.WARN)


# -- without a Health subscription --------------------------------------------------------------


async def test_it_falls_back_to_ec2_and_rds_without_a_health_subscription_and_says_so(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    edge.inject(error="SubscriptionRequiredException", operations=["DescribeEvents"], status=400)
    ec2_and_rds(
        edge,
        ARBEL,
        statuses=[
            {
                "instance_id": "i-0bad",
                "system": "impaired",
                "instance": "impaired",
                "impaired_since": now - timedelta(hours=2, minutes=10),
            },
            {
                "instance_id": "i-0old",
                "events": [
                    {
                        "code": "instance-retirement",
                        "description": "The instance is running on degraded hardware",
                        "not_before": now + timedelta(days=6, minutes=30),
                    },
                    {
                        "code": "system-reboot",
                        "description": "[Completed] scheduled reboot",
                        "not_before": now - timedelta(days=1),
                    },
                ],
            },
        ],
        actions=[
            {
                "arn": db_arn("arbel-prod-db"),
                "action": "system-update",
                "description": "New Operating System update is available",
                "current_apply": now + timedelta(days=10),
            },
            {"arn": db_arn("arbel-replica"), "action": "db-upgrade", "opt_in": "next-maintenance"},
        ],
    )
    who = customer(account("arbel", ARBEL), timezone="Asia/Jakarta")

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.CRIT
    assert result.summary == (
        f"i-0bad: EC2 status checks impaired (system, instance), open since "
        f"{wib(now - timedelta(hours=2, minutes=10))} (2 h 10 min) and 2 more; "
        "4 events: 1 critical, 2 warnings (EC2 + RDS: no AWS Health subscription)"
    )
    assert result.details["source"] == "ec2+rds"
    assert result.details["fallback_reason"] == "SubscriptionRequiredException"
    lines = {(r["id"], r["fingerprint"].rsplit(":", 1)[1]): r for r in result.details["resources"]}
    assert set(lines) == {
        ("i-0bad", "status"),
        ("i-0old", "instance-retirement"),
        ("arbel-prod-db", "system-update"),
        ("arbel-replica", "db-upgrade"),
    }  # the completed reboot is not listed
    assert lines[("i-0old", "instance-retirement")]["summary"] == (
        f"i-0old: EC2 scheduled instance retirement, starts "
        f"{wib(now + timedelta(days=6, minutes=30))} (in 6 d) (warn ≤ 14 d)"
    )
    assert lines[("arbel-replica", "db-upgrade")]["severity"] == "ok"
    assert lines[("arbel-replica", "db-upgrade")]["summary"] == (
        "arbel-replica: RDS db-upgrade, no date set"
    )
    assert edge.calls("health:DescribeEvents") == 1  # not retried: a plan, not a hiccup


async def test_it_falls_back_when_health_answers_a_subscription_error_page(
    edge: Edge, clients: AwsClients, moto_url: str
) -> None:
    ec2 = seed_session(moto_url, ARBEL, REGION).client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)  # moto: running, status checks ok
    edge.answer("health", "DescribeEvents", [not_subscribed()])
    edge.answer("rds", "DescribePendingMaintenanceActions", [{"xml": pending_maintenance_xml([])}])
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.OK
    assert result.summary == (
        "no scheduled events, impaired instances or pending maintenance "
        "(EC2 + RDS: no AWS Health subscription)"
    )
    assert result.details["source"] == "ec2+rds"
    assert edge.calls("ec2:DescribeInstanceStatus", account=ARBEL) == 1


async def test_the_fallback_follows_every_page_in_every_region(
    edge: Edge, clients: AwsClients, now: datetime
) -> None:
    edge.answer("health", "DescribeEvents", [not_subscribed()])
    ec2_and_rds(edge, ARBEL)  # nothing, unless said below for one region
    later = now + timedelta(days=9)
    reboot = [{"code": "system-reboot", "not_before": later}]
    edge.answer(
        "ec2",
        "DescribeInstanceStatus",
        [
            {"xml": instance_status_xml([{"instance_id": "i-1", "events": reboot}], "page-2")},
            {"xml": instance_status_xml([{"instance_id": "i-2", "events": reboot}])},
        ],
        account_id=ARBEL,
        region=REGION,
    )
    edge.answer(
        "rds",
        "DescribePendingMaintenanceActions",
        [
            {
                "xml": pending_maintenance_xml(
                    [{"arn": db_arn("db-1", FRANKFURT), "action": "system-update",
                      "current_apply": later}],
                    marker="page-2",
                )
            },
            {
                "xml": pending_maintenance_xml(
                    [{"arn": db_arn("db-2", FRANKFURT), "action": "system-update",
                      "auto_applied_after": later, "forced_apply": later + timedelta(days=9)}]
                )
            },
        ],
        account_id=ARBEL,
        region=FRANKFURT,
    )  # fmt: skip
    who = customer(account("arbel", ARBEL, regions=(REGION, FRANKFURT)))

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.WARN
    assert {(r["region"], r["id"]) for r in result.details["resources"]} == {
        (REGION, "i-1"),
        (REGION, "i-2"),
        (FRANKFURT, "db-1"),
        (FRANKFURT, "db-2"),
    }
    assert edge.calls("ec2:DescribeInstanceStatus", account=ARBEL) == 3  # 2 pages + Frankfurt
    assert edge.calls("rds:DescribePendingMaintenanceActions", account=ARBEL) == 3


async def test_it_reads_only_ec2_and_rds_when_told_to(edge: Edge, clients: AwsClients) -> None:
    ec2_and_rds(edge, ARBEL)
    who = customer(account("arbel", ARBEL), checks={"health": {"source": "ec2+rds"}})

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.OK
    assert result.summary == (
        "no scheduled events, impaired instances or pending maintenance (EC2 + RDS)"
    )
    assert result.details["fallback_reason"] is None
    assert edge.calls("health:DescribeEvents") == 0


async def test_a_missing_subscription_is_an_error_when_told_to_read_health_only(
    edge: Edge, clients: AwsClients
) -> None:
    edge.answer("health", "DescribeEvents", [not_subscribed()])
    who = customer(account("arbel", ARBEL), checks={"health": {"source": "health"}})

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.ERROR
    assert result.summary.startswith(
        "arbel (111111111111): the AWS Health API needs a Business or Enterprise support plan"
    )
    assert "set checks.health.source to auto" in result.summary
    assert edge.calls("ec2:DescribeInstanceStatus") == 0


# -- faults -------------------------------------------------------------------------------------


async def test_an_access_denied_health_call_names_the_iam_action_and_is_not_retried(
    edge: Edge, clients: AwsClients
) -> None:
    edge.inject(error="access-denied", operations=["health:DescribeEvents"], accounts=[ARBEL])
    who = customer(account("arbel", ARBEL))
    runner = CheckRunner(REGISTRY, clients, retry=RetryPolicy())  # retries what may pass

    result = await runner.run(who, "arbel", "health", run_id=1)

    assert result.severity == Severity.ERROR
    assert result.summary.startswith(
        "arbel (111111111111): access denied for health:describe_events"
    )
    assert "(IAM action health:DescribeEvents)" in result.summary
    assert result.details["permanent"] is True
    assert edge.calls("health:DescribeEvents", account=ARBEL) == 1


async def test_an_access_denied_fallback_call_names_its_iam_action(
    edge: Edge, clients: AwsClients
) -> None:
    edge.answer("health", "DescribeEvents", [not_subscribed()])
    ec2_and_rds(edge, ARBEL)
    edge.inject(error="access-denied", operations=["rds:DescribePendingMaintenanceActions"])
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.ERROR
    assert "(IAM action rds:DescribePendingMaintenanceActions)" in result.summary


async def test_it_rides_out_throttling(edge: Edge, clients: AwsClients, now: datetime) -> None:
    soon = event(ARBEL, REGION, RETIREMENT, now + timedelta(days=1))
    health(edge, ARBEL, [soon], [entity(soon, "i-0abc")])
    edge.inject(error="throttling", operations=["DescribeAffectedEntities"], times=2)
    who = customer(account("arbel", ARBEL))

    result = await run_check(clients, who, "arbel", "health")

    assert result.severity == Severity.CRIT
    assert edge.calls("health:DescribeAffectedEntities") == 3


# -- what it declares, its settings, its links --------------------------------------------------


def test_it_declares_health_in_us_east_1_and_ec2_and_rds_in_each_region() -> None:
    arbel = account("arbel", ARBEL, regions=(REGION, FRANKFURT))

    assert HealthCheck().clients(arbel) == [
        ("us-east-1", "health"),
        (REGION, "ec2"),
        (REGION, "rds"),
        (FRANKFURT, "ec2"),
        (FRANKFURT, "rds"),
    ]


def test_it_documents_its_defaults_and_refuses_bad_values() -> None:
    defaults = HealthSettings()

    assert (defaults.warn_days, defaults.crit_hours) == (14, 72)
    assert (defaults.public_issues, defaults.source) == ("warn", "auto")
    with pytest.raises(ValidationError, match=r"warn_days is a whole number from 1 to 365"):
        HealthSettings.model_validate({"warn_days": "two weeks"})
    with pytest.raises(ValidationError, match=r"crit_hours is a whole number .* crit_hours: 72"):
        HealthSettings.model_validate({"crit_hours": -1})
    with pytest.raises(ValidationError, match=r"write crit_hours of at most 48"):
        HealthSettings.model_validate({"warn_days": 2, "crit_hours": 72})
    with pytest.raises(ValidationError, match="'auto', 'health' or 'ec2\\+rds'"):
        HealthSettings.model_validate({"source": "support"})
    with pytest.raises(ValidationError, match="warn_hours"):
        HealthSettings.model_validate({"warn_hours": 24})


def test_each_line_links_to_its_event_or_its_resource() -> None:
    arn = "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/X_1"

    assert console_url(REGION, "EC2", {"event_arn": arn}) == (
        "https://health.aws.amazon.com/health/home#/account/event-log?eventID="
        "arn%3Aaws%3Ahealth%3Aeu-west-1%3A%3Aevent%2FEC2%2FAWS_EC2_OPERATIONAL_ISSUE%2FX_1"
        "&eventTab=details"
    )
    assert console_url(REGION, "i-0abc", {"service": "EC2"}) == (
        "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1"
        "#InstanceDetails:instanceId=i-0abc"
    )
    assert console_url(REGION, "db-1", {"service": "RDS", "cluster": False}).endswith(
        "#database:id=db-1;is-cluster=false"
    )
    assert console_url(REGION, "*", {}) == (
        "https://health.aws.amazon.com/health/home#/account/dashboard/open-issues"
    )
