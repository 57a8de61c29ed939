"""The worker: lease a batch for one payer account, run it under a heartbeat, release, repeat."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from playwright.sync_api import Browser

from bot.browser import driver, launch
from bot.leased_run import ItemOutcome
from bot.logging import get_logger
from bot.recording.recorder import RecordMode
from bot.runner import BatchReport, Runner, held
from bot.services import Services
from bot.settings import Settings

log = get_logger()


@contextmanager
def open_browser(
    settings: Settings, *, headless: bool | None = None, slow_mo: float | None = None
) -> Iterator[Browser]:
    """One Chromium for the worker's life; each item gets its own context in it."""
    with driver() as playwright:  # its environment holds none of our settings
        browser = launch(
            playwright,
            configured=settings.browser,
            ws_endpoint=settings.browser_ws_endpoint,
            headless=settings.headless if headless is None else headless,
            slow_mo=slow_mo,
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class DrainReport:
    batches: int = 0
    logins: int = 0
    reaped: int = 0
    outcomes: list[ItemOutcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for outcome in self.outcomes:
            out[outcome.state] = out.get(outcome.state, 0) + 1
        return out


class Worker:
    def __init__(
        self,
        services: Services,
        browser: Browser,
        *,
        owner: str | None = None,
        record: RecordMode | None = None,
        dry_run: bool = False,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        self.s = services
        self.owner = owner or services.settings.resolved_worker_id
        self.runner = Runner(services, browser, record=record, dry_run=dry_run)
        self.dry_run = dry_run
        self.on_batch = on_batch

    def drain(
        self,
        *,
        stop: threading.Event | None = None,
        max_batches: int | None = None,
        until_settled: bool = False,
    ) -> DrainReport:
        """Work until nothing is due (or ``stop`` is set). A dry run visits each item once.

        With ``until_settled`` the worker also waits out retry back-offs until every item is
        final; that wait is the worker loop's own, on the clock it was handed.
        """
        report = DrainReport(reaped=self.s.queue.reap())
        seen: set[int] = set()
        while not (stop and stop.is_set()) and (max_batches is None or report.batches < max_batches):
            batch = self.s.queue.lease_batch(self.owner, limit=self.s.settings.batch_size)
            if batch is None:
                if until_settled and not self.dry_run and self._wait_for_next_due():
                    continue
                break
            if self.dry_run and all(item.id in seen for item in batch.items):
                self.s.queue.release(batch)
                break
            seen.update(item.id for item in batch.items)
            log.info(
                "leased",
                payer=batch.payer,
                account=batch.account,
                batch_size=len(batch.items),
                token=batch.token,
                worker=self.owner,
            )
            with held(self.s.queue, batch, self.s.settings.lease_seconds) as heartbeat:
                batch_report = self.runner.run_batch(batch, heartbeat)
            report.batches += 1
            report.logins += batch_report.logins
            report.outcomes.extend(batch_report.outcomes)
            if self.on_batch is not None:
                self.on_batch(batch_report)
        return report

    def _wait_for_next_due(self) -> bool:
        """Sleep until the earliest retry is due; False when nothing is waiting."""
        due = self.s.queue.next_due_at()
        if due is None:
            return False
        self.s.clock.sleep(min(max((due - self.s.clock.now()).total_seconds(), 0.0), 60.0))
        self.s.queue.reap()
        return True
