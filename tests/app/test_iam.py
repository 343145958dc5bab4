"""The IAM the hub's roles need, kept in step: the CloudFormation templates grant what the check
kinds declare (and pass cfn-lint), docs/iam.md lists exactly that, and `mhub iam policy` prints
a customer's share of it. What the checks really call is held to their declarations in
tests/checks/test_iam_calls.py."""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from app.config import Account
from app.iam import (
    DISCOVERY,
    ORG_READER,
    action_of,
    everything,
    member_policy,
    org_reader_policy,
)
from app.sandbox.edge import Edge
from app.sandbox.moto import seed_session
from checks.aws import AwsClients
from checks.base import Severity
from checks.registry import REGISTRY
from tests.checks.support import customer, run_check

ROOT = Path(__file__).resolve().parents[2]
MEMBER = ROOT / "deploy" / "aws" / "member-role.yaml"
ORG = ROOT / "deploy" / "aws" / "org-reader.yaml"
HUB = "arn:aws:iam::999988887777:role/monitoring-hub"
HUB_ACCOUNT = "123456789012"
"""moto's account for the hub's own (default) credentials."""
ACTION = re.compile(r"`([a-z0-9-]+:[A-Za-z0-9]+)`")

ACME = """\
    id: acme
    name: Acme Corp
    accounts:
      - {id: acme-prod, name: Production, account_id: "000000000001", regions: [eu-west-1],
         checks: [rds, alarms]}
      - {id: acme-web, name: Web, account_id: "000000000002", regions: [eu-west-1],
         checks: [http, alarms]}
    checks:
      http: {endpoints: [{name: web, url: "https://acme.example"}]}
"""
GLOBEX = """\
    id: globex
    name: Globex
    accounts:
      - {id: globex-prod, name: Production, account_id: "000000000003", regions: [eu-west-1],
         checks: [budget]}
"""
INITECH = """\
    id: initech
    name: Initech
    organization:
      role_arn: arn:aws:iam::999988887777:role/MonitoringOrgReader
      external_id: initech-monitoring
      defaults: {regions: [eu-west-1], checks: [certs]}
"""


class _Template(yaml.SafeLoader):
    """CloudFormation's YAML: ``!Ref X`` read as ``{"Ref": "X"}``, ``!GetAtt A.B`` likewise."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_Template.add_multi_constructor("!", _intrinsic)


def template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_Template)


def role(path: Path) -> dict[str, Any]:
    [resource] = template(path)["Resources"].values()
    assert resource["Type"] == "AWS::IAM::Role"
    return dict(resource["Properties"])


def declared() -> set[str]:
    return {action for check in REGISTRY.values() for action in check.actions}


def granted(policy: dict[str, Any]) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


# -- the templates ---------------------------------------------------------------------------


def test_the_member_role_grants_every_declared_action_and_region_discovery_only() -> None:
    [policy] = role(MEMBER)["Policies"]
    assert granted(policy["PolicyDocument"]) == declared() | {"ec2:DescribeRegions"}
    assert policy["PolicyDocument"] == everything()  # statement by statement: `--all`
    assert all(s["Resource"] == "*" and s["Effect"] == "Allow" for s in everything()["Statement"])


def test_the_org_reader_grants_the_organization_listing_only() -> None:
    [policy] = role(ORG)["Policies"]
    assert policy["PolicyDocument"] == org_reader_policy()
    assert granted(org_reader_policy()) == set(ORG_READER)
    assert all(a.startswith("organizations:") for a in ORG_READER)


@pytest.mark.parametrize("path", [MEMBER, ORG], ids=["member", "org"])
def test_only_the_hub_with_the_external_id_may_assume_the_role(path: Path) -> None:
    parameters = template(path)["Parameters"]
    [trust] = role(path)["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "HubPrincipalArn"}}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    # no default, and CloudFormation refuses an empty one: the condition can never be ""
    assert "Default" not in parameters["ExternalId"]
    assert parameters["ExternalId"]["MinLength"] >= 2
    assert "Default" not in parameters["HubPrincipalArn"]
    assert re.fullmatch(parameters["HubPrincipalArn"]["AllowedPattern"], HUB)
    assert not re.fullmatch(parameters["HubPrincipalArn"]["AllowedPattern"], "monitoring-hub")


def test_the_member_role_is_named_as_the_configs_name_it() -> None:
    parameters = template(MEMBER)["Parameters"]
    assert parameters["RoleName"]["Default"] == "MonitoringReadOnly"
    assert template(ORG)["Parameters"]["RoleName"]["Default"] == "MonitoringOrgReader"


def _lint(path: Path, parameters: dict[str, str] | None = None) -> list[str]:
    """cfn-lint's errors and warnings (informational matches left out), as the CLI shows them."""
    api = pytest.importorskip("cfnlint.api", reason="cfn-lint is a dev dependency: uv sync")
    config = api.ManualArgs(parameters=[parameters]) if parameters else None
    found = api.lint(path.read_text(), config=config)
    return [str(m) for m in found if m.rule.id[0] in "EW"]


@pytest.mark.parametrize("path", [MEMBER, ORG], ids=["member", "org"])
def test_the_templates_pass_cfn_lint(path: Path) -> None:
    assert _lint(path) == []
    assert _lint(path, {"HubPrincipalArn": HUB, "ExternalId": "aryanoble-monitoring"}) == []


def test_cfn_lint_refuses_a_deployment_without_an_external_id() -> None:
    [problem] = _lint(MEMBER, {"HubPrincipalArn": HUB})
    assert "'ExternalId' is a required property" in problem


async def test_the_stack_makes_the_role_the_config_names_and_the_hub_reads_through_it(
    aws: str,
) -> None:
    """The template deployed by (moto's) CloudFormation in a member account: the role its
    output names has the trust and the policy above, and the hub reads the account through it
    exactly as a customer's config says (role_arn, external_id)."""
    member = "111111111111"
    session = seed_session(aws, member, "eu-west-1")
    stacks = session.client("cloudformation")
    stacks.create_stack(
        StackName="monitoring-read-only",
        TemplateBody=MEMBER.read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[
            {"ParameterKey": "HubPrincipalArn", "ParameterValue": HUB},
            {"ParameterKey": "ExternalId", "ParameterValue": "acme-monitoring"},
        ],
    )
    [stack] = stacks.describe_stacks(StackName="monitoring-read-only")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    [output] = stack["Outputs"]
    assert output["OutputValue"] == f"arn:aws:iam::{member}:role/MonitoringReadOnly"
    iam = session.client("iam")
    made = iam.get_role(RoleName="MonitoringReadOnly")["Role"]
    [trust] = made["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": HUB}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": "acme-monitoring"}}
    inline = iam.get_role_policy(RoleName="MonitoringReadOnly", PolicyName="monitoring-read-only")
    document = inline["PolicyDocument"]
    if isinstance(document, str):  # moto keeps a policy CloudFormation made as Python's repr
        document = ast.literal_eval(document)
    assert document == everything()

    session.client("cloudwatch").put_metric_alarm(
        AlarmName="acme-5xx",
        MetricName="5XXError",
        Namespace="AWS/ApplicationELB",
        Statistic="Average",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    prod = Account(
        id="acme-prod",
        name="Production",
        account_id=member,
        regions=("eu-west-1",),
        role_arn=output["OutputValue"],
        external_id="acme-monitoring",
        checks=("alarms",),
    )
    clients = AwsClients()
    try:
        result = await run_check(clients, customer(prod), "acme-prod", "alarms")
    finally:
        clients.close()
    assert result.severity == Severity.OK, result.summary
    assert result.details["alarms"] == 1  # this account's alarm: read through the role


async def test_organization_discovery_calls_only_what_the_two_policies_allow(aws: str) -> None:
    """A sync over an organization planted in moto, behind the edge that records each request
    and the account whose credentials made it: the management account is asked exactly the
    organization reader's actions, each member account only ec2:DescribeRegions (in its
    monitoring role's policy; asked because a configured region needs opting in), the hub's
    own credentials only AssumeRole."""
    from app.accounts.discover import discover
    from tests.accounts.support import MANAGEMENT, TAG, plant
    from tests.accounts.support import customer as org_customer

    org = plant(aws)
    with Edge(aws) as edge, pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", edge.url)
        regions = {"regions": ["us-east-1", "ap-east-1"], "checks": ["alarms"]}
        found = await discover(org_customer(alias_from_tag=TAG, defaults=regions))
        calls = edge.counts()
    members = {m.account_id for m in found.members}
    assert set(org.accounts.values()) | {MANAGEMENT} == members  # moto lists it as a member
    made: dict[str, set[str]] = {}
    for row in calls:
        made.setdefault(row["account"], set()).add(action_of(row["service"], row["operation"]))
    assert made.pop(HUB_ACCOUNT) == {"sts:AssumeRole"}
    assert made.pop(MANAGEMENT) == set(ORG_READER) | set(DISCOVERY)  # reader, and a member
    assert made == {account: set(DISCOVERY) for account in members - {MANAGEMENT}}
    assert set(DISCOVERY) <= granted(everything())


# -- the docs ---------------------------------------------------------------------------------


def test_the_docs_list_exactly_what_each_kind_declares() -> None:
    text = (ROOT / "docs" / "iam.md").read_text()
    section = text.split("## The policy per kind", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, set[str]] = {}
    for line in section.splitlines():
        row = re.match(r"\| `([a-z]+)` \| ([^|]*) \|", line)
        if row:
            listed.setdefault(row.group(1), set()).update(ACTION.findall(row.group(2)))
    assert listed == {kind: set(check.actions) for kind, check in REGISTRY.items()}
    assert all(f"`{action}`" in section for action in DISCOVERY)
    assert all(f"`{action}`" in text for action in ORG_READER)


# -- mhub iam policy --------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    customers = tmp_path / "config" / "customers"
    customers.mkdir(parents=True)
    (customers / "acme.yaml").write_text(textwrap.dedent(ACME))
    (customers / "globex.yaml").write_text(textwrap.dedent(GLOBEX))
    (customers / "initech.yaml").write_text(textwrap.dedent(INITECH))
    return {"HUB_CONFIG_DIR": str(customers.parent)}


def mhub(env: dict[str, str], *args: str) -> Result:
    from app.cli import main

    return CliRunner().invoke(main, ["iam", "policy", *args], env=env)


def test_it_prints_the_policy_for_the_kinds_a_customers_accounts_run(env: dict[str, str]) -> None:
    done = mhub(env, "acme")
    assert done.exit_code == 0, done.output
    policy = json.loads(done.stdout)
    assert granted(policy) == {
        "rds:DescribeDBInstances",
        "cloudwatch:GetMetricData",
        "cloudwatch:DescribeAlarms",
        "ec2:DescribeRegions",
    }
    assert [s["Sid"] for s in policy["Statement"]] == ["ReadCloudWatch", "ReadEC2", "ReadRDS"]
    assert policy == member_policy(["rds", "alarms", "http"])


def test_without_a_customer_it_prints_the_kinds_any_customer_runs(env: dict[str, str]) -> None:
    done = mhub(env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == member_policy(["rds", "alarms", "http", "budget", "certs"])
    assert "budgets:ViewBudget" in done.stdout and "acm:ListCertificates" in done.stdout
    assert "securityhub:" not in done.stdout


def test_accounts_discovered_from_an_organization_count_with_their_default_checks(
    env: dict[str, str],
) -> None:
    done = mhub(env, "initech")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == member_policy(["certs"])
    assert granted(json.loads(done.stdout)) == {
        "acm:ListCertificates",
        "acm:DescribeCertificate",
        "ec2:DescribeRegions",
    }


def test_all_and_org_print_what_the_templates_grant_without_any_configuration() -> None:
    every = mhub({"HUB_CONFIG_DIR": "/nonexistent"}, "--all")
    assert every.exit_code == 0, every.output
    assert json.loads(every.stdout) == role(MEMBER)["Policies"][0]["PolicyDocument"]
    org = mhub({"HUB_CONFIG_DIR": "/nonexistent"}, "--org")
    assert org.exit_code == 0, org.output
    assert json.loads(org.stdout) == role(ORG)["Policies"][0]["PolicyDocument"]


def test_it_names_the_customer_it_does_not_know(env: dict[str, str]) -> None:
    done = mhub(env, "acmee")
    assert done.exit_code == 2
    assert done.stdout == ""
    assert 'I don\'t know "acmee". Did you mean `acme`' in done.stderr


def test_it_takes_one_choice_at_a_time(env: dict[str, str]) -> None:
    done = mhub(env, "acme", "--all")
    assert done.exit_code == 2 and done.stdout == ""
    assert "give CUSTOMER, --all or --org, one at a time" in done.stderr


def test_with_no_customer_configured_it_points_at_all(tmp_path: Path) -> None:
    (tmp_path / "customers").mkdir()
    done = mhub({"HUB_CONFIG_DIR": str(tmp_path)})
    assert done.exit_code == 2 and done.stdout == ""
    assert "no customer loaded" in done.stderr and "mhub iam policy --all" in done.stderr
