"""The log redacts every secret, whoever logs it, at any level, however the line is built."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app import logs

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
