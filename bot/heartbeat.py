"""Keeping a batch's lease alive while the browser works, and knowing at once when it is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bot import faults
from bot.errors import StaleLease
from bot.logging import get_logger

log = get_logger()


class Heartbeat:
    """Extends the lease every ``interval`` seconds from a background thread.

    ``check()`` is called before anything that must only happen under a live lease (above all the
    submit click): it raises ``StaleLease`` when a beat failed, or when no beat succeeded for longer
    than the lease minus a margin, which is what a process paused past its lease sees on waking.
    """

    def __init__(
        self, beat: Callable[[], bool], *, lease_seconds: float, margin_seconds: float = 10.0
    ) -> None:
        self._beat = beat
        self.lease_seconds = lease_seconds
        self.interval = max(lease_seconds / 4, 0.5)
        self.fresh_for = max(lease_seconds - margin_seconds, lease_seconds / 2)
        self._last_ok = time.monotonic()
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="payerbot-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):  # the worker loop's one timed wait
            self.beat_now()
            if self._lost.is_set():
                return

    def beat_now(self) -> bool:
        try:
            with faults.BETWEEN_TRANSACTIONS:
                ok = self._beat()
        except Exception as exc:  # a database hiccup is not a lost lease yet; freshness decides
            log.warning("heartbeat failed", error_kind=type(exc).__name__)
            return False
        if ok:
            self._last_ok = time.monotonic()
        else:
            self._lost.set()
        return ok

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def renew(self) -> None:
        """Extend the lease now (not at the next beat); raise ``StaleLease`` when it is gone."""
        self.check()
        if not self.beat_now():
            raise StaleLease("this worker's lease could not be extended; not going on")

    def check(self) -> None:
        if self._lost.is_set():
            raise StaleLease("this worker's lease was taken back")
        if time.monotonic() - self._last_ok > self.fresh_for:
            raise StaleLease("this worker's lease may have expired (no heartbeat got through in time)")
