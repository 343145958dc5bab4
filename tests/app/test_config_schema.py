"""The customer YAML's JSON Schema: ``mhub config schema`` prints it, the committed copy is
the same, every example file points at it and passes it, and it refuses what the loader refuses
for its shape (an unknown key, a number where text goes, an unknown check kind)."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from app.loader import load_catalog
from app.schema import FILE, REGENERATE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    [*ROOT.glob("configs/customers/*.yaml"), *ROOT.glob("configs/demo/customers/*.yaml")]
)
MARKER = "# yaml-language-server: $schema="


def printed() -> str:
    from app.cli import config_group

    done = CliRunner().invoke(config_group, ["schema"])
    assert done.exit_code == 0, done.output
    return done.stdout


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(printed())
    Draft202012Validator.check_schema(schema)  # a valid 2020-12 schema, before anything else
    return Draft202012Validator(schema)


def as_an_editor_reads(path: Path) -> Any:
    """The YAML as an editor's language server reads it (YAML 1.2: a date is text)."""

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: plain(value) for key, value in node.items()}
        if isinstance(node, list):
            return [plain(item) for item in node]
        if isinstance(node, datetime):
            return node.isoformat(sep=" ")
        return node.isoformat() if isinstance(node, date) else node

    return plain(yaml.safe_load(path.read_text()))


def problems(validator: Draft202012Validator, document: Any) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_the_committed_schema_is_what_mhub_config_schema_prints() -> None:
    committed = (ROOT / FILE).read_text()
    assert committed == printed(), f"{FILE} is stale: refresh it with `{REGENERATE}`"


def test_it_describes_the_keys_an_editor_completes() -> None:
    schema = json.loads(printed())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["id", "name"]
    assert schema["anyOf"] == [{"required": ["accounts"]}, {"required": ["organization"]}]
    assert schema["additionalProperties"] is False
    account = schema["$defs"]["Account"]["properties"]
    assert "12-digit AWS account id" in account["account_id"]["description"]
    assert account["account_id"]["pattern"] == "^[0-9]{12}$"
    checks = schema["$defs"]["Checks"]["properties"]
    assert list(checks) == [
        "backup", "rds", "alarms", "budget", "http", "health", "certs", "security", "cost",
        "hygiene",
    ]  # fmt: skip
    window = schema["$defs"]["BackupSettings"]["properties"]["window"]
    assert window["default"] == "1d"  # as the YAML writes it, not ISO 8601's P1D
    assert window["examples"] == ["30m", "12h", "7d"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_points_at_the_schema_and_passes_it(
    path: Path, validator: Draft202012Validator
) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith(MARKER), f"{path.name}: its first line should be {MARKER}<path>"
    target = (path.parent / first.removeprefix(MARKER)).resolve()
    assert target == (ROOT / FILE).resolve(), f"{path.name} points at {target}"
    assert problems(validator, as_an_editor_reads(path)) == []
    load_catalog(path.parent.parent)  # and the loader agrees it is fine


@pytest.fixture
def good() -> dict[str, Any]:
    return as_an_editor_reads(ROOT / "configs/customers/aryanoble.yaml")  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.update(acounts=[]), ""),  # a misspelt key
        (lambda d: d["accounts"][0].update(account_id=111122223333), "accounts.0.account_id"),
        (lambda d: d["accounts"][0].update(regions="ap-southeast-3"), "accounts.0.regions"),
        (lambda d: d["accounts"][0].update(checks=["alarm"]), "accounts.0.checks.0"),
        (lambda d: d["checks"].update(rds={"window": "12"}), "checks.rds"),
        (lambda d: d["checks"].update(rds={"cpu_warn": 80}), "checks.rds"),
        (lambda d: d["checks"].update(s3={}), "checks"),
        (lambda d: d["slack"].update(channel="#ops"), "slack.channel"),
        (lambda d: d["schedules"][0].update(kind="weekly"), "schedules.0.kind"),
        (lambda d: d.pop("accounts"), ""),
    ],
    ids=[
        "unknown key", "account id as a number", "regions as text", "unknown check",
        "window without unit", "unknown check setting", "unknown check kind", "channel name",
        "unknown schedule kind", "no accounts",
    ],
)  # fmt: skip
def test_a_wrong_document_is_refused_where_it_is_wrong(
    change: Any, where: str, good: dict[str, Any], validator: Draft202012Validator
) -> None:
    assert problems(validator, good) == []
    wrong = copy.deepcopy(good)
    change(wrong)
    found = problems(validator, wrong)
    assert found, "the schema accepted it"
    assert any(problem.startswith(f"{where}:") for problem in found), found
