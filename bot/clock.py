"""Time, handed in: the system clock in production, a clock a test can drive.

``sleep`` has four callers, each a bounded wait: the worker waiting for the next retry to fall due
(a minute at most, then it looks at the queue again), the out-of-band inbox poll (until its
timeout), the wait for an unused TOTP time step (``max_wait_steps`` at most), and the backoff
before a page step that failed with a 5xx is tried again (``bot.step_retry.RetryPolicy``: 2 s at
most, 3 retries a step, 12 a run). The page itself is waited for on Playwright's locators.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FastForwardClock:
    """The system's time moved on by every wait it is asked for: ``sleep`` returns at once.

    For runs against the sandbox portals, which count requests rather than seconds: the scenario
    catalog settles an entry (retry back-offs, a lagging history's wait) without waiting for real.
    """

    def __init__(self) -> None:
        self._ahead = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._ahead

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._ahead += timedelta(seconds=seconds)


class ManualClock:
    """A clock that moves only when told to; ``sleep`` moves it instead of waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
