"""The long-running entry point: ``python scheduler.py`` (or ``payerbot schedule``).

APScheduler's jobs live in memory and only tick: queue due status sweeps, drain the queue with a
worker, reap expired leases. The SQL queue decides who owns an item, never the scheduler, so any
number of ``payerbot worker`` processes may run beside it. Only one scheduler runs at a time: it
holds a PostgreSQL advisory lock, or a lock file beside the SQLite database. Ctrl-C or SIGTERM
stops it after the running jobs finish.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Connection

from bot.errors import ConfigError, SchedulerBusy
from bot.logging import configure_logging, get_logger
from bot.migrate import upgrade
from bot.queue.sweeps import due_sweeps
from bot.services import Services, build_services
from bot.settings import Settings, load_settings
from bot.worker import Worker, open_browser

log = get_logger()
SCHEDULER_LOCK_KEY = 0x7062736368656475  # "pbschedu"


@contextmanager
def single_scheduler(services: Services) -> Iterator[None]:
    """Hold the one-scheduler lock for as long as the scheduler runs."""
    engine = services.engine
    if engine.dialect.name == "postgresql":
        conn: Connection = engine.connect()  # held for the scheduler's life: the lock is the session's
        try:
            got = conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({SCHEDULER_LOCK_KEY})").scalar()
            conn.commit()
            if not got:
                raise SchedulerBusy("another payerbot scheduler holds this database's lock")
            try:
                yield
            finally:
                # the pool keeps the session open after close(), so the lock is released by name
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({SCHEDULER_LOCK_KEY})")
                conn.commit()
        finally:
            conn.close()
        return
    database = engine.url.database or "payerbot.db"
    lock_path = Path(f"{database}.scheduler.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = lock_path.open("w")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SchedulerBusy(f"another payerbot scheduler holds {lock_path}") from None
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


class Ticks:
    """The three jobs. Each is safe to run at any time and any number of times."""

    def __init__(self, services: Services) -> None:
        self.s = services

    def sweep(self) -> int:
        interval = timedelta(minutes=self.s.settings.sweep_interval_minutes)
        items = due_sweeps(self.s.engine, now=self.s.clock.now(), interval=interval)
        if not items:
            return 0
        report = self.s.queue.enqueue(items)
        log.info("sweep queued status checks", job="sweep", count=len(report.queued))
        return len(report.queued)

    def work(self) -> int:
        with open_browser(self.s.settings) as browser:
            report = Worker(self.s, browser).drain(stop=STOP)
        if report.outcomes:
            log.info("worker drained", job="work", counts=report.counts(), count=len(report.outcomes))
        return len(report.outcomes)

    def reap(self) -> int:
        reaped = self.s.queue.reap()
        if reaped:
            log.info("reaped expired leases", job="reap", reaped=reaped)
        return reaped


STOP = threading.Event()


def build_scheduler(services: Services) -> BackgroundScheduler:
    settings = services.settings
    ticks = Ticks(services)
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=3)},
        timezone="UTC",
    )
    jobs: list[tuple[str, Callable[[], object], float]] = [
        ("sweep", ticks.sweep, settings.sweep_interval_minutes * 60),
        ("work", ticks.work, settings.worker_interval_seconds),
        ("reap", ticks.reap, settings.reaper_interval_seconds),
    ]
    for name, func, seconds in jobs:
        scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            max_instances=1,  # a slow tick never overlaps itself
            coalesce=True,  # ticks missed while one ran become one tick, not a burst
            next_run_time=services.clock.now(),  # first tick at start, then every interval
            misfire_grace_time=max(int(seconds), 1),  # a tick late by more than its interval is dropped
        )
    return scheduler


def run(settings: Settings | None = None) -> int:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    services = build_services(settings)
    upgrade(services.engine)
    done = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("stopping", reason=signal.Signals(signum).name)
        STOP.set()
        done.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with single_scheduler(services):
        scheduler = build_scheduler(services)
        scheduler.start()
        log.info("scheduler started", job="all", interval_s=settings.worker_interval_seconds)
        done.wait()
        scheduler.shutdown(wait=True)
    log.info("scheduler stopped")
    return 0


def main() -> None:
    try:
        sys.exit(run())
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
