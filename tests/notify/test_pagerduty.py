"""The Events API v2 body a notice becomes, PagerDuty's refusals in one line, and the setting
that points the hub at another PagerDuty address."""

from __future__ import annotations

import json

import pytest

from app.notify import pagerduty
from app.settings import EnvironmentInvalid, Settings
from tests.notify.support import PD_KEY, payload


def test_a_trigger_carries_the_finding() -> None:
    body = pagerduty.event("trigger", payload(7), PD_KEY)
    assert body["routing_key"] == PD_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "mhub:acme:7"
    assert body["client"] == "Monitoring Hub"
    assert body["links"] == [{"href": "https://hub.example.com/runs/42", "text": "Run #42"}]
    assert body["payload"] == {
        "summary": "Acme · acme-prod · rds: CPU max 93.2 % (crit ≥ 90 %) on db-7",
        "source": "acme-prod",
        "severity": "critical",
        "component": "db-7",
        "group": "acme",
        "class": "rds",
        "custom_details": {
            "region": "us-east-1",
            "fingerprint": "rds:us-east-1:db-7:cpu",
            "first_seen": "2026-12-01T07:00:00+00:00",
            "last_seen": "2026-12-01T08:00:00+00:00",
            "run_id": 42,
            "state": "open",
        },
    }
    json.dumps(body)  # all of it is JSON


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_carry_only_the_key(action: str) -> None:
    assert pagerduty.event(action, payload(7), PD_KEY) == {
        "routing_key": PD_KEY,
        "event_action": action,
        "dedup_key": "mhub:acme:7",
    }


def test_a_warning_is_a_warning_and_long_things_are_cut() -> None:
    links = [{"href": f"https://hub.example.com/{n}", "text": str(n)} for n in range(15)]
    body = pagerduty.event(
        "trigger", payload(1, severity="warn", summary="x" * 5000, links=links), PD_KEY
    )
    assert body["payload"]["severity"] == "warning"
    assert len(body["payload"]["summary"]) == 1024
    assert body["payload"]["summary"].endswith("…")
    assert len(body["links"]) == 10


@pytest.mark.parametrize(
    ("action", "changes"),
    [("snooze", {}), ("trigger", {"dedup_key": ""}), ("resolve", {"dedup_key": "k" * 256})],
)
def test_a_notice_that_cannot_be_an_event_is_a_value_error(
    action: str, changes: dict[str, str]
) -> None:
    with pytest.raises(ValueError):
        pagerduty.event(action, payload(1, **changes), PD_KEY)


def test_refusals_are_read_in_pagerduty_s_words() -> None:
    text = json.dumps(
        {"status": "invalid event", "message": "Event object is invalid",
         "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]}
    )  # fmt: skip
    assert pagerduty.refusal(text) == (
        "Event object is invalid: Length of 'routing_key' is incorrect (should be 32 characters)"
    )
    assert pagerduty.refusal(
        '{"message": "Invalid routing key", "errors": ["Invalid routing key"]}'
    ) == ("Invalid routing key")
    assert pagerduty.refusal("<html>\n  Bad gateway </html>") == "<html> Bad gateway </html>"


def test_the_events_address_is_a_setting() -> None:
    assert Settings.from_env().pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"
    eu = "https://events.eu.pagerduty.com/v2/enqueue"
    assert Settings.from_env(HUB_PAGERDUTY_EVENTS_URL=eu).pagerduty_events_url == eu
    with pytest.raises(EnvironmentInvalid, match="HUB_PAGERDUTY_EVENTS_URL"):
        Settings.from_env(HUB_PAGERDUTY_EVENTS_URL="events.pagerduty.com")
