"""The log redacts every secret, whoever logs it, at any level, however the line is built; it
reads as text on a terminal and as JSON lines elsewhere, at the level the environment sets."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import logs
from app.settings import EnvironmentInvalid, Settings
from tests.conftest import mhub

TICKET_URL = "wss://wss-primary.slack.com/link/?ticket=0f3a-live-ticket&app_id=A0FAKE"
HOOK = "https://hooks.slack.com/commands/T0FAKE/1234/s3cretHookPart"


@pytest.fixture
def restored() -> Iterator[None]:
    """Put the logging setup back as it was after the test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*logs.NOISY, "sqlalchemy")}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


@pytest.fixture
def captured(restored: None) -> io.StringIO:
    """``logs.setup(-vv)`` writing JSON lines to a buffer."""
    logs.setup(logs.EVERYTHING, as_json=True)
    buffer = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    return buffer


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


class Secretive:
    """An argument whose str() holds a token: formatted only when the line is written."""

    def __str__(self) -> str:
        return "client(token=xoxb-1-from-str)"


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        (f"body: {{'ok': True, 'url': '{TICKET_URL}'}}", ["0f3a-live-ticket"]),
        (  # the SDK's log of a received envelope: the repr of its JSON, slashes escaped
            'data: \'{"payload": {"token": "verif-tok", "response_url": '
            '"https:\\/\\/hooks.slack.com\\/commands\\/T0\\/1\\/hookPart", "trigger_id": "9.8"}}\'',
            ["verif-tok", "hookPart", "9.8"],
        ),
        ("{'token': 'verif-tok', 'team_id': 'T0FAKE'}", ["verif-tok"]),
        (  # files.getUploadURLExternal's answer, logged by the SDK
            "{'ok': True, 'upload_url': 'https://files.slack.com/upload/v1/CwABAAAAXl8Kup', "
            "'file_id': 'F0ABC'}",
            ["CwABAAAAXl8Kup"],
        ),
        ("POST https:\\/\\/files.slack.com\\/upload\\/v1\\/Zq9secret", ["Zq9secret"]),
        (f"Sending a request - url: {HOOK}, body: {{}}", ["s3cretHookPart", "T0FAKE/1234"]),
        ("POST http://127.0.0.1:4000/hooks/commands/7", ["/commands/7"]),
        (
            "bot xoxb-11-22-abc, user xoxp-1-x, rotated xoxe.xoxb-1-y, app xapp-1-A0-2-z",
            ["abc", "-x", "-y", "-z"],
        ),
        (
            "headers: {'Authorization': 'Bearer xoxb-99', 'X-Amz-Security-Token': b'FQoGtok'}",
            ["99", "FQoGtok"],
        ),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=ASIAABCDEFGHIJKLMNOP/20260101/"
            "us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0a1b2c3d4e5f",
            ["ASIAABCDEFGHIJKLMNOP", "0a1b2c3d4e5f"],
        ),
        (
            "<Credentials><AccessKeyId>ASIAABCDEFGHIJKLMNOP</AccessKeyId><SecretAccessKey>"
            "wJalrXUt/K7MDENG</SecretAccessKey><SessionToken>FQoG+x/y=</SessionToken>",
            ["ASIAABCDEFGHIJKLMNOP", "wJalrXUt", "FQoG+x"],
        ),
        ("CanonicalRequest:\nhost:x\nx-amz-security-token:FQoGtok\n\nhost", ["FQoGtok"]),
        ("aws_secret_access_key = abc/def+g  aws_session_token=FQo9", ["abc/def", "FQo9"]),
        (
            '{"client_secret": "cs1", "signing_secret":"ss1", "routing_key": "R0key"}',
            ["cs1", "ss1", "R0key"],
        ),
        ("DATABASE_URL=postgresql+asyncpg://hub:pa55word@db:5432/hub", ["pa55word"]),
    ],
)
def test_redact_removes_each_kind_of_secret(text: str, secrets: list[str]) -> None:
    redacted = logs.redact(text)
    assert [s for s in secrets if s in redacted] == [], redacted
    assert logs.redact(redacted) == redacted  # redacting twice changes nothing more


@pytest.mark.parametrize(
    "text",
    [
        "Slack refused SLACK_APP_TOKEN (invalid_auth). Copy the Bot User OAuth Token (xoxb-…)",
        "run #12 queued for arbel (rds, budget) by U0ALICE in C0OPS",
        "token_count=5 team_id=T0FAKE envelope_id=6cca836b api_app_id=A0FAKE",
        "https://hub.example/runs/12",
    ],
)
def test_redact_leaves_ordinary_lines_alone(text: str) -> None:
    assert logs.redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "-".join(f"{i:032x}" for i in range(30_000)),  # a run of words and dashes
        "token-" * 200_000,
        "token " * 200_000,
        "http://" * 100_000,
        "a." * 500_000,
    ],
)
def test_redact_takes_linear_time_on_a_megabyte(text: str) -> None:
    began = time.perf_counter()
    logs.redact(text)
    assert time.perf_counter() - began < 5


def test_lazily_formatted_and_non_str_arguments_are_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("slack_sdk.socket_mode.aiohttp")  # a library's logger, at DEBUG
    log.debug("opening %s", TICKET_URL)
    log.debug("payload %s", {"token": "verif-tok", "response_url": HOOK, "n": 1})
    log.debug("%s and %r and %d", Secretive(), b"xoxb-bytes-2", 3)
    log.debug("bad arguments %s %s", "xapp-1-lonely")  # too few: logged anyway, redacted
    logging.getLogger("botocore.parsers").debug(
        "Response body:\n%r", b"<SessionToken>FQoGz</SessionToken>"
    )
    text = captured.getvalue()
    for secret in (
        "0f3a-live-ticket",
        "verif-tok",
        "s3cretHookPart",
        "from-str",
        "bytes-2",
        "lonely",
        "FQoGz",
    ):
        assert secret not in text, secret
    messages = [line["message"] for line in lines(captured)]
    assert messages[0] == "opening wss://wss-primary.slack.com/link/?ticket=***&app_id=A0FAKE"
    assert "'n': 1" in messages[1] and " and 3" in messages[2]
    assert {line["logger"] for line in lines(captured)} == {
        "slack_sdk.socket_mode.aiohttp",
        "botocore.parsers",
    }


def test_exception_text_and_stack_are_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("aiohttp.client")
    try:
        raise ConnectionError(f"cannot connect to {TICKET_URL} with xoxb-in-exception")
    except ConnectionError:
        log.exception("Failed to connect")
        log.warning("with the stack, %s", Secretive(), stack_info=True)
    text = captured.getvalue()
    assert "Traceback" in text and "ConnectionError" in text and "ticket=***" in text
    assert "Stack (most recent call last)" in text
    for secret in ("0f3a-live-ticket", "xoxb-in-exception", "from-str"):
        assert secret not in text, secret


def test_a_record_is_redacted_for_every_handler_after_the_first(captured: io.StringIO) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logging.getLogger().addHandler(keep)
    logging.getLogger("slack_bolt.App").info("respond to %s", HOOK)
    logging.getLogger().removeHandler(keep)
    assert "s3cretHookPart" not in seen[0].getMessage()
    assert "s3cretHookPart" not in logging.Formatter().format(seen[0])


def test_json_lines_stay_json_whatever_the_message(captured: io.StringIO) -> None:
    log = logging.getLogger("app.test")
    for message in ("password=", 'token: "unterminated', '{"token": "x"} \\" \'', 'token="\n'):
        log.info(message)
    assert len(lines(captured)) == 4


def test_verbosity_decides_which_libraries_log_at_debug(restored: None) -> None:
    logs.setup(1, as_json=True)
    assert logging.getLogger("app.slack").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("slack_sdk.web").isEnabledFor(logging.INFO)
    logs.setup(2, as_json=True)
    assert logging.getLogger("slack_sdk.web").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.DEBUG)
    [handler] = logging.getLogger().handlers
    assert any(isinstance(f, logs.Redact) for f in handler.filters)


# -- format and level: text on a terminal, JSON otherwise, both settable --------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_anywhere_else() -> None:
    assert logs.wants_json("auto", Terminal()) is False
    assert logs.wants_json("auto", io.StringIO()) is True  # a file, a pipe, journald
    assert logs.wants_json("text", io.StringIO()) is False
    assert logs.wants_json("json", Terminal()) is True


def test_text_lines_read_as_text_and_are_redacted_too(restored: None) -> None:
    logs.setup(0, as_json=False)
    buffer = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    with logs.context(run_id=7):
        logging.getLogger("app.engine").info("posting with %s", "xoxb-1-secret")
    [line] = buffer.getvalue().splitlines()
    assert not line.startswith("{")
    assert " INFO    app.engine: posting with xox?-***  [run_id=7]" in line
    assert "secret" not in line


def test_the_level_setting_decides_what_is_logged_and_v_still_shows_debug(
    restored: None,
) -> None:
    logs.setup(0, as_json=True, level="WARNING")
    app = logging.getLogger("app.engine")
    assert not app.isEnabledFor(logging.INFO) and app.isEnabledFor(logging.WARNING)
    logs.setup(1, as_json=True, level="ERROR")
    assert app.isEnabledFor(logging.DEBUG)
    logs.setup(0, as_json=True)
    logs.at_least(logging.WARNING)  # what `mhub demo` does: its card reads alone
    assert not app.isEnabledFor(logging.INFO)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("HUB_LOG_FORMAT", "yaml", "HUB_LOG_FORMAT: use auto (text on a terminal, else JSON), "),
        ("HUB_LOG_LEVEL", "loud", "HUB_LOG_LEVEL: use DEBUG, INFO, WARNING or ERROR"),
    ],
)
def test_a_bad_format_or_level_is_an_environment_problem_that_says_what_to_use(
    name: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(EnvironmentInvalid) as caught:
        Settings.from_env()
    [problem] = caught.value.problems
    assert problem.startswith(says) and value not in problem


def test_format_and_level_are_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_LOG_FORMAT", "JSON")
    monkeypatch.setenv("HUB_LOG_LEVEL", "warning")
    settings = Settings.from_env()
    assert (settings.log_format, settings.log_level) == ("json", "WARNING")
    monkeypatch.delenv("HUB_LOG_FORMAT")
    monkeypatch.delenv("HUB_LOG_LEVEL")
    assert (Settings.from_env().log_format, Settings.from_env().log_level) == ("auto", "INFO")


HTTP_ONLY = """\
id: local
name: Local
accounts:
  - {id: here, name: Here, account_id: "000000000001", regions: [eu-west-1], checks: [http]}
checks:
  http: {endpoints: [{name: closed, url: "http://127.0.0.1:9/"}]}
"""


@pytest.mark.parametrize(
    ("settings", "expect"),
    [
        ({"HUB_LOG_FORMAT": "json"}, "json"),
        ({"HUB_LOG_FORMAT": "text"}, "text"),
        ({"HUB_LOG_FORMAT": "text", "HUB_LOG_LEVEL": "WARNING"}, "nothing"),
    ],
)
def test_mhub_logs_as_the_environment_says(
    settings: dict[str, str], expect: str, tmp_path: Path
) -> None:
    customers = tmp_path / "config" / "customers"
    customers.mkdir(parents=True)
    (customers / "local.yaml").write_text(HTTP_ONLY)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "HUB_"))},
        "HUB_CONFIG_DIR": str(customers.parent),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        **settings,
    }
    done = mhub(env, "run", "here", "--json")
    assert done.returncode == 2, done.stderr  # the endpoint is closed: an error, not a finding
    assert json.loads(done.stdout)["status"] == "completed"  # stdout holds the JSON alone
    said = [line for line in done.stderr.splitlines() if "run #1 completed" in line]
    if expect == "nothing":
        assert said == []
    elif expect == "json":
        [line] = said
        record = json.loads(line)
        assert (record["level"], record["logger"]) == ("info", "app.engine.executor")
        assert record["run_id"] == 1
    else:
        [line] = said
        assert " INFO    app.engine.executor: run #1 completed" in line and "{" not in line


def test_the_demo_prints_its_card_with_no_log_line_in_between(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "HUB_"))}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo"],
        env=env,  # stderr is no terminal: the log would be JSON lines
        cwd=tmp_path,  # its database goes to ./data/demo
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "🔴 Critical · Demo Retail" in done.stdout
    logged = [line for line in done.stderr.splitlines() if " INFO " in line or "{" in line]
    assert logged == []  # not even the run's "run #1 completed"
