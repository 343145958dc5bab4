"""The notifier's fakes as fixtures: each started on 127.0.0.1 (a free port) in the test's
event loop, yielded with its base URL in ``.url``, and stopped afterwards. A fake that saw a
caller come back before its ``Retry-After`` fails the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakehooks import FakePagerDuty, FakeReceiver
from tests.notify.support import HOOK_PATH, HOOK_SECRET, PD_KEY


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    """A fake PagerDuty knowing :data:`PD_KEY`; ``.events_url`` is its ``/v2/enqueue``."""
    async with FakePagerDuty(keys=[PD_KEY]) as fake:
        yield fake
        assert fake.violations == []


@pytest.fixture
async def receiver() -> AsyncIterator[FakeReceiver]:
    """A webhook receiver taking :data:`HOOK_PATH` signed with :data:`HOOK_SECRET`."""
    async with FakeReceiver({HOOK_PATH: HOOK_SECRET}) as fake:
        yield fake
        assert fake.violations == []
