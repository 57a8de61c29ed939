"""Several worker processes on one database: every item completed exactly once, none lost.

Each worker is a forked process with its own engine. It writes the ids whose ``complete`` it was
granted to its own file; the test checks the files against each other and against the tables.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.db import Account, ItemEvent, WorkItem, make_engine
from bot.queue import Queue
from bot.settings import Settings
from portals import check_request
from tests.queue_support import add_account, claim

DEADLINE_SECONDS = 50.0
FORK = multiprocessing.get_context("fork")
CRASHED = "crashed-worker"


def _work_left(engine: Engine) -> int:
    """Queued items a live worker could still get: not behind the crashed worker's account lease."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(WorkItem)
                .join(Account, sa.and_(Account.payer == WorkItem.payer, Account.account == WorkItem.account))
                .where(
                    WorkItem.state == "queued",
                    sa.or_(Account.lease_owner.is_(None), Account.lease_owner != CRASHED),
                )
            ).scalar_one()
        )


def _settings(batch: int) -> Settings:
    return Settings(lease_seconds=60, batch_size=batch, max_attempts_status=3)


def _worker(
    db_url: str, owner: str, out: str, batch: int, barriers: tuple[Any, Any], abandon_first: bool
) -> None:
    """Lease, run and complete until nothing is left; exits through os._exit (see below)."""
    code = 0
    try:
        engine = make_engine(db_url)
        queue = Queue(engine, _settings(batch), check=check_request)
        start, together = barriers
        if abandon_first:  # lease a batch and walk away holding it, as a killed worker would
            assert queue.lease_batch(CRASHED) is not None
        start.wait(DEADLINE_SECONDS)
        completed: list[int] = []
        deadline = time.monotonic() + DEADLINE_SECONDS
        first = True
        while time.monotonic() < deadline:
            leased = queue.lease_batch(owner)
            if first:
                # every worker holds its first lease at the same time before any goes on: SQLite's
                # busy wait is not fair, so one process could otherwise drain the queue alone
                first = False
                together.wait(DEADLINE_SECONDS)
            if leased is None:
                if _work_left(engine) == 0:
                    break
                continue  # every account with work is held by another worker right now
            for item in leased.items:
                queue.mark_running(item)
                queue.complete(item, canonical_status="pending", result={"by": owner})
                completed.append(item.id)
            queue.release(leased)
        Path(out).write_text(json.dumps(completed))
        engine.dispose()
    except BaseException:
        Path(out + ".error").write_text(traceback.format_exc())
        code = 1
    # Skip interpreter teardown: objects inherited from the parent by fork (its pooled
    # connections) must not be finalized here, or they would close the parent's sockets.
    os._exit(code)


def _run_workers(
    db_url: str, tmp_path: Path, count: int, batch: int, *, abandon: int = 0
) -> dict[str, list[int]]:
    barriers = (FORK.Barrier(count), FORK.Barrier(count))
    procs = []
    for n in range(count):
        out = str(tmp_path / f"w{n}.json")
        proc = FORK.Process(target=_worker, args=(db_url, f"w{n}", out, batch, barriers, n < abandon))
        proc.start()
        procs.append((proc, out))
    for proc, _ in procs:
        proc.join(DEADLINE_SECONDS + 10)
    errors = [Path(out + ".error").read_text() for _, out in procs if Path(out + ".error").exists()]
    assert not errors, errors[0]
    assert [p.exitcode for p, _ in procs] == [0] * count
    return {out: json.loads(Path(out).read_text()) for _, out in procs}


def _assert_each_done_exactly_once(engine: Engine, runs: dict[str, list[int]], total: int) -> None:
    granted = [i for ids in runs.values() for i in ids]
    assert len(granted) == len(set(granted)), "an item was completed by two workers"
    with engine.connect() as conn:
        states = dict(conn.execute(sa.select(WorkItem.state, sa.func.count()).group_by(WorkItem.state)).all())
        done_events = conn.execute(
            sa.select(ItemEvent.item_id, sa.func.count())
            .where(ItemEvent.to_state == "done")
            .group_by(ItemEvent.item_id)
        ).all()
    assert states == {"done": total}, states
    assert len(done_events) == total and all(n == 1 for _, n in done_events)
    assert set(granted) == {item_id for item_id, _ in done_events}


def _reap_and_drain(engine: Engine) -> list[int]:
    """The crashed worker's batch comes back once its lease expired; a last worker drains it."""
    later = ManualClock(ManualClock().now().replace(year=2100))
    assert Queue(engine, _settings(10), clock=later, check=check_request).reap() >= 1
    drain = Queue(engine, _settings(10), check=check_request)
    drained: list[int] = []
    while (batch := drain.lease_batch("drain")) is not None:
        for item in batch.items:
            drain.complete(item, canonical_status="pending", result={})
            drained.append(item.id)
        drain.release(batch)
    assert drained, "the crashed worker's items did not come back"
    return drained


def _seed(engine: Engine, queue: Queue, accounts: int, total: int) -> None:
    for a in range(accounts):
        add_account(engine, f"acct-{a}")
    report = queue.enqueue(claim(n, f"acct-{n % accounts}") for n in range(total))
    assert len(report.queued) == total


@pytest.mark.slow
def test_two_processes_on_sqlite_complete_every_item_once(sqlite_url: str, tmp_path: Path) -> None:
    engine = make_engine(sqlite_url)
    _seed(engine, Queue(engine, _settings(5), check=check_request), accounts=6, total=300)
    engine.dispose()

    runs = _run_workers(sqlite_url, tmp_path, count=2, batch=5, abandon=1)

    engine = make_engine(sqlite_url)
    runs["drain"] = _reap_and_drain(engine)
    _assert_each_done_exactly_once(engine, runs, 300)
    assert runs[str(tmp_path / "w0.json")] and runs[str(tmp_path / "w1.json")], "no contention to test"
    engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_eight_processes_on_postgres_complete_every_item_once_after_a_crash(
    pg_url: str, tmp_path: Path
) -> None:
    engine = make_engine(pg_url)
    _seed(engine, Queue(engine, _settings(10), check=check_request), accounts=50, total=1000)
    engine.dispose()

    runs = _run_workers(pg_url, tmp_path, count=8, batch=10, abandon=1)

    engine = make_engine(pg_url)
    runs["drain"] = _reap_and_drain(engine)
    _assert_each_done_exactly_once(engine, runs, 1000)
    assert sum(1 for ids in runs.values() if ids) >= 4, "the work was not spread over the workers"
    engine.dispose()
