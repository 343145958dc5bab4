"""The retry policy: transient errors back off with jitter, permanent ones and bugs do not."""

from __future__ import annotations

from random import Random

from app.engine.retry import RetryPolicy
from checks.errors import PermanentError, TransientError


def test_it_retries_throttling_with_growing_jittered_delays() -> None:
    policy = RetryPolicy(max_tries=6, base_s=1.0, cap_s=3.0, rng=Random(7))
    for tries, ceiling in [(1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0), (5, 3.0)]:
        delays = [policy.decide(tries, TransientError("Throttling")).delay_s for _ in range(50)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1  # spread out, so replicas do not retry in lockstep
        assert max(delays) > ceiling / 2


def test_it_retries_a_timeout_raised_inside_the_check() -> None:
    decision = RetryPolicy().decide(1, TimeoutError())
    assert decision.retry


def test_it_gives_up_after_the_last_try() -> None:
    decision = RetryPolicy(max_tries=3).decide(3, TransientError("503"))
    assert not decision.retry and "3 tries" in decision.reason


def test_it_never_retries_access_denied() -> None:
    decision = RetryPolicy().decide(1, PermanentError("AccessDenied"))
    assert not decision.retry and "permanent" in decision.reason


def test_it_never_retries_a_bug_in_a_check() -> None:
    decision = RetryPolicy().decide(1, KeyError("Datapoints"))
    assert not decision.retry and "unexpected" in decision.reason
