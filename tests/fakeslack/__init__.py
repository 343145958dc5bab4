"""A fake Slack for tests and benchmarks: the Web API, Socket Mode and response URLs, with
every payload validated against Slack's limits and every call recorded."""

from tests.fakeslack.server import Ack, Call, FakeSlack, Posted, SharedFile

__all__ = ["Ack", "Call", "FakeSlack", "Posted", "SharedFile"]
