"""Fakes of the places notices go, speaking real HTTP on loopback in the test's event loop: a
PagerDuty Events API v2 (:class:`FakePagerDuty`) and a webhook receiver that checks signatures
(:class:`FakeReceiver`). Every request is recorded; answers can be scripted."""

from tests.fakehooks.pagerduty import FakePagerDuty, Incident
from tests.fakehooks.receiver import FakeReceiver
from tests.fakehooks.server import Received, Served

__all__ = ["FakePagerDuty", "FakeReceiver", "Incident", "Received", "Served"]
