"""When a transient failure is tried again: exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the capped exponential) spreads the retries of many items
that failed together, for example during a portal outage, instead of sending them back in a herd.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float
    rng: random.Random

    def cap(self, attempt: int) -> float:
        """The longest wait after failed attempt ``attempt`` (1-based)."""
        exponent = min(max(attempt - 1, 0), 60)  # 2**60 s is already far past any cap
        return min(self.max_seconds, self.base_seconds * 2.0**exponent)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, self.cap(attempt))

    @staticmethod
    def exhausted(attempt: int, max_attempts: int) -> bool:
        return attempt >= max_attempts
