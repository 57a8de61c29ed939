"""The lease reads through indexes, so its cost does not grow with the queue (SQLite's planner).

PostgreSQL's planner rightly prefers sequential scans on small tables, so its plans are checked at
100k rows by bench/bench_queue.py instead.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.db import make_engine
from bot.queue import Queue
from bot.settings import Settings
from portals import check_request
from tests.queue_support import add_account, claim


def _statements_of_one_lease(engine: Engine, queue: Queue) -> list[tuple[str, Any]]:
    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not many and re.match(r"\s*(SELECT|UPDATE)", statement) and "work_items" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert queue.lease_batch("w1") is not None
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return captured


def test_every_lease_statement_on_work_items_searches_an_index(sqlite_url: str, settings: Settings) -> None:
    engine = make_engine(sqlite_url)
    for account in ("acct-1", "acct-2"):
        add_account(engine, account)
    queue = Queue(engine, settings, check=check_request)
    queue.enqueue(claim(n, f"acct-{1 + n % 2}", priority=n % 3) for n in range(400))

    statements = _statements_of_one_lease(engine, queue)

    assert len(statements) >= 4  # pick the account, level, items, mark them leased
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            touching = [step for step in plan if " work_items " in f" {step} "]
            assert touching, plan
            assert all(step.startswith("SEARCH work_items USING") for step in touching), (statement, plan)
    engine.dispose()


def test_a_lease_does_the_same_work_whatever_the_queue_length(sqlite_url: str, settings: Settings) -> None:
    """Ten times the queue must not mean more work per lease (counted in SQLite VM instructions)."""
    size = 100
    engine = make_engine(sqlite_url)
    add_account(engine, "acct-1")
    queue = Queue(engine, settings, check=check_request)
    queue.enqueue(claim(n) for n in range(size))
    small = _vm_steps(engine, queue)
    queue.enqueue(claim(n) for n in range(size, size * 10))
    large = _vm_steps(engine, queue)

    assert large < small * 1.5, (small, large)


def _vm_steps(engine: Engine, queue: Queue) -> int:
    """SQLite virtual-machine instructions run by one lease: a deterministic measure of its work."""
    counter = [0]

    def progress() -> int:
        counter[0] += 1
        return 0  # 0: go on

    def on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        dbapi_conn.set_progress_handler(progress, 1)

    def on_checkin(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.set_progress_handler(None, 1)

    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)
    try:
        batch = queue.lease_batch("w1")
    finally:
        event.remove(engine, "checkout", on_checkout)
        event.remove(engine, "checkin", on_checkin)
    assert batch is not None
    queue.release(batch)
    return counter[0]
