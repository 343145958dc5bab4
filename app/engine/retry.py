"""When to try a failed check again: a decision, not a loop.

The executor asks :meth:`RetryPolicy.decide` after every failed try and does what it says.
Transient errors (throttling, timeouts, 5xx: :class:`~checks.base.TransientError`, or a
``TimeoutError`` raised inside the check) are retried with exponential backoff and full jitter;
permanent ones (access denied, a role that cannot be assumed) and bugs in a check are not.

AWS calls have **one** retry layer, botocore's standard mode (``AwsOptions.max_attempts``
requests per call), and this policy does not add a second: an error marked ``retried`` gives up
at once. Retrying the call where it failed repeats one request, not every call the check made
before it; botocore reads AWS's own signals (throttling codes, 5xx, dropped connections) and
its retry quota stops retrying when a whole endpoint is failing. Stacked, the two layers turned
one throttled call into up to 4 × 3 = 12 requests, at the moment AWS asked for fewer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from checks.errors import CheckError


@dataclass(frozen=True)
class Decision:
    """Try again after ``delay_s`` seconds, or give up; ``reason`` says which and why."""

    retry: bool
    delay_s: float
    reason: str

    @classmethod
    def again(cls, delay_s: float, reason: str) -> Decision:
        return cls(True, delay_s, reason)

    @classmethod
    def give_up(cls, reason: str) -> Decision:
        return cls(False, 0.0, reason)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: try ``n + 1`` waits a random time in
    ``[0, min(cap_s, base_s * 2 ** (n - 1))]``; at most ``max_tries`` tries in all."""

    max_tries: int = 3
    base_s: float = 0.5
    cap_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def decide(self, tries: int, error: BaseException) -> Decision:
        """What to do after ``tries`` failed tries, the last of which raised ``error``."""
        if isinstance(error, CheckError) and error.permanent:
            return Decision.give_up("permanent error; trying again would fail the same way")
        if isinstance(error, CheckError) and error.retried:
            return Decision.give_up("AWS's own retries were spent on this call already")
        if not isinstance(error, CheckError | TimeoutError):
            return Decision.give_up("unexpected error in the check; trying again will not cure it")
        if tries >= self.max_tries:
            return Decision.give_up(f"still failing after {tries} tries")
        ceiling = min(self.cap_s, self.base_s * 2 ** (tries - 1))
        return Decision.again(self.rng.uniform(0, ceiling), "transient error")
