"""Routing in a customer's YAML (``routing:``): a valid block loads and names its destinations in
order, and every mistake — in the file or in the environment it names — gets one line naming
the file, the line of the offending key and what to write, never the value of a variable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from app.config import Checking, Customer, PagerDutyRoute, Routing, WebhookRoute
from app.loader import ConfigInvalid, check_config, load_catalog

ROOT = Path(__file__).resolve().parents[2]

# Lines 1-8; the routing block under test starts on line 9.
ACME = """\
id: acme
name: Acme
accounts:
  - id: acme-prod
    name: Acme Production
    account_id: "123456789012"
    regions: [eu-west-1]
    checks: [backup, rds]
"""
# Lines 9-16.
ROUTING = """\
routing:
  pagerduty:
    routing_key_env: PD_KEY_ACME
    severities: [crit]
  webhooks:
    - url_env: ACME_HOOK_URL
      secret_env: ACME_HOOK_SECRET
      severities: [crit, warn]
"""
PD_KEY = "R0ut1ngKeyOfThePagerDutyServ1ce0"  # 32 letters and digits
HOOK_URL = "https://hooks.example.com/mhub?token=hook-url-token-value"
HOOK_SECRET = "hook-secret-value-0123456789abcdef"
GOOD_ENV = {"PD_KEY_ACME": PD_KEY, "ACME_HOOK_URL": HOOK_URL, "ACME_HOOK_SECRET": HOOK_SECRET}
VARIABLES = ("PD_KEY_ACME", "ACME_HOOK_URL", "ACME_HOOK_SECRET")


def write(config_dir: Path, routing: str, name: str = "acme.yaml") -> Path:
    path = config_dir / "customers" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ACME + textwrap.dedent(routing), encoding="utf-8")
    return path


def problems(config_dir: Path) -> list[str]:
    """Every problem as ``<file name>:<line>: <message>``, checked against ``os.environ``."""
    _, found = check_config(config_dir)
    return [f"{p.path.name}:{p.line}: {p.message}" for p in found]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment with the three variables of ``ROUTING`` set right."""
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def assert_no_secret(lines: list[str], *values: str) -> None:
    for line in lines:
        for value in (*GOOD_ENV.values(), *values):
            assert value not in line, line


# --- a valid block ----------------------------------------------------------------------------


def test_it_loads_the_block_and_names_pagerduty_then_each_webhook_in_order(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path,
        ROUTING
        + """\
    - url_env: ACME_HOOK_URL
      secret_env: ACME_HOOK_SECRET
""",
    )

    routing = load_catalog(tmp_path).customer("acme").routing

    assert routing == Routing(
        pagerduty=PagerDutyRoute(routing_key_env="PD_KEY_ACME", severities=("crit",)),
        webhooks=(
            WebhookRoute(
                url_env="ACME_HOOK_URL", secret_env="ACME_HOOK_SECRET", severities=("crit", "warn")
            ),
            WebhookRoute(url_env="ACME_HOOK_URL", secret_env="ACME_HOOK_SECRET"),
        ),
    )
    assert routing.destinations() == [
        ("pagerduty", ("crit",)),
        ("webhook:0", ("crit", "warn")),
        ("webhook:1", ("crit",)),
    ]


def test_it_takes_crit_when_severities_are_left_out_and_either_destination_alone(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "routing:\n  pagerduty: {routing_key_env: PD_KEY_ACME}\n")
    only_pd = load_catalog(tmp_path).customer("acme").routing
    write(
        tmp_path,
        "routing:\n  webhooks:\n    - {url_env: ACME_HOOK_URL, secret_env: ACME_HOOK_SECRET}\n",
    )
    only_hook = load_catalog(tmp_path).customer("acme").routing

    assert only_pd is not None and only_pd.destinations() == [("pagerduty", ("crit",))]
    assert only_hook is not None and only_hook.destinations() == [("webhook:0", ("crit",))]


def test_a_customer_without_routing_has_none_and_needs_no_environment(tmp_path: Path) -> None:
    write(tmp_path, "")

    catalog, found = check_config(tmp_path, env={})

    assert found == []
    assert catalog.customer("acme").routing is None


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x", "http://[::1]:8080/hook", "http://localhost/x"]
)
def test_it_allows_plain_http_to_this_machine_only(
    tmp_path: Path, env: pytest.MonkeyPatch, url: str
) -> None:
    env.setenv("ACME_HOOK_URL", url)
    write(tmp_path, ROUTING)

    assert problems(tmp_path) == []


def test_it_leaves_the_environment_unchecked_when_told_to(tmp_path: Path) -> None:
    write(tmp_path, ROUTING)

    catalog, found = check_config(tmp_path, env=None)

    assert found == []
    assert catalog.customer("acme").routing is not None
    assert Customer.model_validate(  # and without a Checking at all
        {**_acme(), "routing": {"pagerduty": {"routing_key_env": "PD_KEY_ACME"}}}
    ).routing == Routing(pagerduty=PagerDutyRoute(routing_key_env="PD_KEY_ACME"))


def _acme() -> dict[str, object]:
    return {
        "id": "acme",
        "name": "Acme",
        "accounts": [
            {"id": "acme-prod", "name": "P", "account_id": "123456789012", "regions": ["eu-west-1"]}
        ],
    }


# --- mistakes in the file ---------------------------------------------------------------------

FILE_MISTAKES = {
    "empty severities": (
        ROUTING.replace("severities: [crit]\n", "severities: []\n"),
        [
            "acme.yaml:12: routing.pagerduty.severities: list the severities to send, [crit], "
            "[warn] or [crit, warn]; or leave severities out to send crit only"
        ],
    ),
    "severities with nothing after them": (
        ROUTING.replace("severities: [crit]\n", "severities:\n"),
        [
            "acme.yaml:12: routing.pagerduty.severities: list the severities to send, [crit], "
            "[warn] or [crit, warn]; or leave severities out to send crit only"
        ],
    ),
    "a severity that is not sent": (
        ROUTING.replace("severities: [crit, warn]", "severities: [info]"),
        [
            'acme.yaml:16: routing.webhooks[0].severities[0]: "info" is not a severity that '
            "can be sent. Write crit or warn, such as [crit] or [crit, warn]."
        ],
    ),
    "a severity in capitals": (
        ROUTING.replace("severities: [crit]\n", "severities: [CRIT]\n"),
        [
            'acme.yaml:12: routing.pagerduty.severities[0]: "CRIT" is not a severity that '
            'can be sent. Did you mean "crit"? Write crit or warn, such as [crit] or [crit, warn].'
        ],
    ),
    "a severity twice": (
        ROUTING.replace("severities: [crit, warn]", "severities: [crit, warn, crit]"),
        [
            'acme.yaml:16: routing.webhooks[0].severities[2]: severity "crit" is listed twice; '
            "remove one"
        ],
    ),
    "one severity, not a list": (
        ROUTING.replace("severities: [crit]\n", "severities: crit\n"),
        ["acme.yaml:12: routing.pagerduty.severities: must be a list; write [crit]"],
    ),
    "a variable name in lower case": (
        ROUTING.replace("routing_key_env: PD_KEY_ACME", "routing_key_env: pd_key_acme"),
        [
            "acme.yaml:11: routing.pagerduty.routing_key_env: not an environment variable "
            "name; write the name of the variable that holds the value (capital letters A-Z, "
            "digits and _, not starting with a digit, at most 128), such as PD_KEY_ARYANOBLE "
            "— never the value itself, which stays in the environment"
        ],
    ),
    "the URL itself where its variable's name belongs": (
        ROUTING.replace("url_env: ACME_HOOK_URL", f'url_env: "{HOOK_URL}"'),
        [
            "acme.yaml:14: routing.webhooks[0].url_env: not an environment variable "
            "name; write the name of the variable that holds the value (capital letters A-Z, "
            "digits and _, not starting with a digit, at most 128), such as PD_KEY_ARYANOBLE "
            "— never the value itself, which stays in the environment"
        ],
    ),
    "a name that starts with a digit": (
        ROUTING.replace("secret_env: ACME_HOOK_SECRET", "secret_env: 1ACME"),
        [
            "acme.yaml:15: routing.webhooks[0].secret_env: not an environment variable "
            "name; write the name of the variable that holds the value (capital letters A-Z, "
            "digits and _, not starting with a digit, at most 128), such as PD_KEY_ARYANOBLE "
            "— never the value itself, which stays in the environment"
        ],
    ),
    "a name with a trailing newline": (
        ROUTING.replace("secret_env: ACME_HOOK_SECRET", 'secret_env: "ACME_HOOK_SECRET\\n"'),
        [
            "acme.yaml:15: routing.webhooks[0].secret_env: not an environment variable "
            "name; write the name of the variable that holds the value (capital letters A-Z, "
            "digits and _, not starting with a digit, at most 128), such as PD_KEY_ARYANOBLE "
            "— never the value itself, which stays in the environment"
        ],
    ),
    "a webhook without its secret": (
        ROUTING.replace("      secret_env: ACME_HOOK_SECRET\n", ""),
        ["acme.yaml:14: routing.webhooks[0].secret_env: required key is missing; add it"],
    ),
    "a misspelt key": (
        ROUTING.replace("  pagerduty:", "  pager_duty:"),
        ['acme.yaml:10: routing.pager_duty: unknown key; did you mean "pagerduty"?'],
    ),
    "an alerts channel by name": (
        ROUTING + "  alerts_channel: '#alerts'\n",
        [
            'acme.yaml:17: routing.alerts_channel: "#alerts" is not a Slack id; use the id '
            "(such as C0123456789 or U0123ABCD), not a #name or @name"
        ],
    ),
    "an empty mapping": (
        "routing: {}\n",
        [
            "acme.yaml:9: routing: routing sends nothing without a destination; add "
            "alerts_channel:, pagerduty: or webhooks: under it, or remove routing"
        ],
    ),
    "nothing under routing": (
        "routing:\n",
        [
            "acme.yaml:9: routing: routing sends nothing without a destination; add "
            "alerts_channel:, pagerduty: or webhooks: under it, or remove routing"
        ],
    ),
    "no webhooks and no pagerduty": (
        "routing:\n  webhooks: []\n",
        [
            "acme.yaml:9: routing: routing sends nothing without a destination; add "
            "alerts_channel:, pagerduty: or webhooks: under it, or remove routing"
        ],
    ),
}


@pytest.mark.parametrize("routing, expected", FILE_MISTAKES.values(), ids=FILE_MISTAKES)
def test_it_says_what_to_write_for_each_mistake_in_the_block(
    tmp_path: Path, env: pytest.MonkeyPatch, routing: str, expected: list[str]
) -> None:
    write(tmp_path, routing)

    found = problems(tmp_path)

    assert found == expected
    assert_no_secret(found)
    catalog, _ = check_config(tmp_path)
    assert "acme" not in catalog.customers


# --- mistakes in the environment --------------------------------------------------------------

ENV_MISTAKES = {
    "the key unset": (
        {"PD_KEY_ACME": None},
        [
            "acme.yaml:11: routing.pagerduty.routing_key_env: PD_KEY_ACME is not set; set it "
            "in the hub's environment to the PagerDuty Events API v2 integration key (32 "
            "letters and digits, from the service's Integrations tab)"
        ],
    ),
    "the key empty": (
        {"PD_KEY_ACME": ""},
        [
            "acme.yaml:11: routing.pagerduty.routing_key_env: PD_KEY_ACME is empty; set it to "
            "the PagerDuty Events API v2 integration key (32 letters and digits, from the "
            "service's Integrations tab)"
        ],
    ),
    "not an integration key": (
        {"PD_KEY_ACME": "u+0Ab1cD2eF3gH4iJ5kL6mN7oP8qR9sT"},
        [
            "acme.yaml:11: routing.pagerduty.routing_key_env: PD_KEY_ACME is not a PagerDuty "
            "Events API v2 integration key (32 letters and digits) — copy it from the "
            "service's Integrations tab"
        ],
    ),
    "a key one character short": (
        {"PD_KEY_ACME": PD_KEY[:-1]},
        [
            "acme.yaml:11: routing.pagerduty.routing_key_env: PD_KEY_ACME is not a PagerDuty "
            "Events API v2 integration key (32 letters and digits) — copy it from the "
            "service's Integrations tab"
        ],
    ),
    "a key with a line break after it": (
        {"PD_KEY_ACME": PD_KEY + "\n"},
        [
            "acme.yaml:11: routing.pagerduty.routing_key_env: PD_KEY_ACME has spaces or a "
            "line break around its value; remove them"
        ],
    ),
    "the URL unset": (
        {"ACME_HOOK_URL": None},
        [
            "acme.yaml:14: routing.webhooks[0].url_env: ACME_HOOK_URL is not set; set it in "
            "the hub's environment to the https:// URL to post findings to"
        ],
    ),
    "the URL blank": (
        {"ACME_HOOK_URL": "   "},
        [
            "acme.yaml:14: routing.webhooks[0].url_env: ACME_HOOK_URL is empty; set it to "
            "the https:// URL to post findings to"
        ],
    ),
    "plain http to another machine": (
        {"ACME_HOOK_URL": "http://example.com"},
        [
            "acme.yaml:14: routing.webhooks[0].url_env: ACME_HOOK_URL is an http:// URL to "
            "another machine, which would send findings unencrypted; use https://host/path "
            "(http:// is allowed only to 127.0.0.1, ::1 or localhost)"
        ],
    ),
    "a user and password in the URL": (
        {"ACME_HOOK_URL": "https://user:pw@host/x"},
        [
            "acme.yaml:14: routing.webhooks[0].url_env: ACME_HOOK_URL has a user name or "
            "password in it (user:password@host); remove it — the receiver checks the hub's "
            "signature, made with the secret in secret_env, instead"
        ],
    ),
    "not a URL": (
        {"ACME_HOOK_URL": "hooks.example.com/x"},
        [
            "acme.yaml:14: routing.webhooks[0].url_env: ACME_HOOK_URL is not a URL to post "
            "to; use https://host/path (http:// is allowed only to 127.0.0.1, ::1 or localhost)"
        ],
    ),
    "another scheme": (
        {"ACME_HOOK_URL": "ftp://hooks.example.com/x"},
        [
            "acme.yaml:14: routing.webhooks[0].url_env: ACME_HOOK_URL is not a URL to post "
            "to; use https://host/path (http:// is allowed only to 127.0.0.1, ::1 or localhost)"
        ],
    ),
    "a port out of range": (
        {"ACME_HOOK_URL": "https://hooks.example.com:99999/x"},
        [
            "acme.yaml:14: routing.webhooks[0].url_env: ACME_HOOK_URL is not a URL to post "
            "to; use https://host/path (http:// is allowed only to 127.0.0.1, ::1 or localhost)"
        ],
    ),
    "the secret unset": (
        {"ACME_HOOK_SECRET": None},
        [
            "acme.yaml:15: routing.webhooks[0].secret_env: ACME_HOOK_SECRET is not set; set "
            "it in the hub's environment to a secret of at least 16 characters shared with "
            "the receiver (such as the output of `openssl rand -hex 32`)"
        ],
    ),
    "a short secret": (
        {"ACME_HOOK_SECRET": "fifteen-chars-x"},
        [
            "acme.yaml:15: routing.webhooks[0].secret_env: ACME_HOOK_SECRET is shorter than "
            "16 characters; set it to a secret of at least 16 characters shared with the "
            "receiver (such as the output of `openssl rand -hex 32`)"
        ],
    ),
}


@pytest.mark.parametrize("changes, expected", ENV_MISTAKES.values(), ids=ENV_MISTAKES)
def test_it_names_the_variable_and_what_it_should_hold_never_its_value(
    tmp_path: Path, env: pytest.MonkeyPatch, changes: Mapping[str, str | None], expected: list[str]
) -> None:
    for name, value in changes.items():
        if value is None:
            env.delenv(name)
        else:
            env.setenv(name, value)
    write(tmp_path, ROUTING)

    found = problems(tmp_path)

    assert found == expected
    assert_no_secret(found, *(v for v in changes.values() if v and v.strip()))


def test_a_sixteen_character_secret_is_enough(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("ACME_HOOK_SECRET", "sixteen-chars-xx")
    write(tmp_path, ROUTING)

    assert problems(tmp_path) == []


def test_it_reports_every_unset_variable_at_once(tmp_path: Path) -> None:
    write(tmp_path, ROUTING)

    _, found = check_config(tmp_path, env={})

    assert [(p.line, p.message.split(" is ")[0]) for p in found] == [
        (11, "routing.pagerduty.routing_key_env: PD_KEY_ACME"),
        (14, "routing.webhooks[0].url_env: ACME_HOOK_URL"),
        (15, "routing.webhooks[0].secret_env: ACME_HOOK_SECRET"),
    ]


def test_a_customer_whose_only_problem_is_the_environment_is_known_but_not_served(
    tmp_path: Path,
) -> None:
    write(tmp_path, ROUTING)

    catalog, found = check_config(tmp_path, env={})  # what `mhub findings` reads with
    with pytest.raises(ConfigInvalid) as refused:  # what `mhub serve` and `mhub run` start with
        load_catalog(tmp_path, env={})

    assert catalog.customer("acme").routing is not None
    assert [str(p) for p in refused.value.problems] == [str(p) for p in found]
    assert len(found) == 3


def test_it_checks_the_environment_in_the_context_it_is_given() -> None:
    data = {**_acme(), "routing": {"pagerduty": {"routing_key_env": "PD_KEY_ACME"}}}

    Customer.model_validate(data, context=Checking(None, env={"PD_KEY_ACME": PD_KEY}))
    with pytest.raises(ValueError, match="PD_KEY_ACME is not set"):
        Customer.model_validate(data, context=Checking(None, env={}))


# --- the shipped example ----------------------------------------------------------------------


def test_the_shipped_configs_route_nothing() -> None:
    for config_dir in (ROOT / "configs", ROOT / "configs" / "demo"):
        catalog = load_catalog(config_dir, env={})
        assert all(c.routing is None for c in catalog.customers.values())


def test_the_pilots_commented_routing_example_loads_once_uncommented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "configs" / "customers" / "aryanoble.yaml").read_text(encoding="utf-8")
    head, example = text.split("# routing:\n")
    uncommented = "routing:\n" + "".join(
        line.removeprefix("# ") + "\n" for line in example.splitlines()
    )
    target = tmp_path / "customers" / "aryanoble.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(head + uncommented, encoding="utf-8")
    monkeypatch.setenv("PD_KEY_ARYANOBLE", PD_KEY)
    monkeypatch.setenv("ARYANOBLE_HOOK_URL", HOOK_URL)
    monkeypatch.setenv("ARYANOBLE_HOOK_SECRET", HOOK_SECRET)

    routing = load_catalog(tmp_path).customer("aryanoble").routing

    assert routing is not None
    assert routing.destinations() == [("pagerduty", ("crit",)), ("webhook:0", ("crit", "warn"))]


# --- mhub config check and mhub serve ---------------------------------------------------------


def mhub(config_dir: Path, *args: str, **more: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "HUB_", "DATABASE_URL")) and key not in VARIABLES
    }
    env.update(HUB_CONFIG_DIR=str(config_dir), **more)
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_mhub_config_check_prints_the_file_and_line_and_fails(tmp_path: Path) -> None:
    acme = write(tmp_path, ROUTING)
    short = "0123456789"

    result = mhub(tmp_path, "config", "check", **{**GOOD_ENV, "ACME_HOOK_SECRET": short})

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{acme}:15: routing.webhooks[0].secret_env: ACME_HOOK_SECRET is shorter than 16 "
        "characters; set it to a secret of at least 16 characters shared with the receiver "
        "(such as the output of `openssl rand -hex 32`)",
        "1 problem(s) found.",
    ]
    assert result.stdout == ""
    assert_no_secret([result.stderr], short)


def test_mhub_config_check_passes_with_the_environment_right(tmp_path: Path) -> None:
    write(tmp_path, ROUTING)

    result = mhub(tmp_path, "config", "check", **GOOD_ENV)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"OK: 1 customer(s), 1 account(s), 0 schedule(s) in {tmp_path}\n"


def test_mhub_serve_refuses_to_start_with_the_line_config_check_prints(tmp_path: Path) -> None:
    acme = write(tmp_path, ROUTING)
    wrong = {**GOOD_ENV, "PD_KEY_ACME": "not-a-key"}
    line = (
        f"{acme}:11: routing.pagerduty.routing_key_env: PD_KEY_ACME is not a PagerDuty Events "
        "API v2 integration key (32 letters and digits) — copy it from the service's "
        "Integrations tab"
    )

    checked = mhub(tmp_path, "config", "check", **wrong)
    served = mhub(
        tmp_path,
        "serve",
        "--no-slack",
        "--no-web",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        **wrong,
    )

    assert checked.returncode == 1
    assert line in checked.stderr.splitlines()
    assert served.returncode == 2, served.stderr
    assert served.stderr.splitlines() == ["1 problem(s) in the configuration:", f"  {line}"]
    assert_no_secret([checked.stderr, served.stderr], "not-a-key")
    assert not (tmp_path / "hub.db").exists()  # refused before it opened the database
