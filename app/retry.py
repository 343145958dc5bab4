"""When to try a failed check again: a decision, not a loop."""

from __future__ import annotations

import random
from dataclasses import dataclass

from checks.base import CheckError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient errors; never for permanent ones."""

    max_tries: int = 3
    base_s: float = 0.5
    cap_s: float = 10.0

    def delay(self, tries: int, error: BaseException) -> float | None:
        """Seconds to wait before try ``tries + 1``, or None to give up.

        ``tries`` counts the tries made so far (1 after the first failure).
        """
        if isinstance(error, CheckError) and error.permanent:
            return None
        if not isinstance(error, CheckError | TimeoutError):
            return None  # a bug in a check is not cured by trying again
        if tries >= self.max_tries:
            return None
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (tries - 1)))
