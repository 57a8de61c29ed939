"""Transactions and the statements several queue operations share.

Only ``bot.queue`` touches the queue tables: ``leases.py`` (who holds what), ``manager.py`` (a
worker's fenced writes and intake inserts), ``operations.py`` (people's actions) and ``reads.py``,
all built on this module.

SQLite: every write transaction starts with ``BEGIN IMMEDIATE``. A deferred transaction that reads
and then writes takes its write lock late, and under WAL a writer whose read snapshot went stale
meanwhile fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT): busy_timeout does not
help it. Taking the write lock at BEGIN makes every writer queue on busy_timeout instead, and makes
a lease (pick an account, then its items) one serial step, which SQLite needs because
``FOR UPDATE`` means nothing to it. Reads stay deferred and never wait, thanks to WAL.

PostgreSQL: READ COMMITTED with row locks. Leases pick their account and items with ``FOR UPDATE
SKIP LOCKED``; every multi-row change locks the account row before item rows, and a deadlock or
serialization failure (which PostgreSQL resolves by failing one side) reruns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from bot.db import Account, ItemEvent, Submission, WorkItem
from bot.errors import AmbiguousSubmission, LeaseExpired
from bot.models import ItemState, SubmissionState

T = TypeVar("T")

items = WorkItem.__table__
accounts = Account.__table__
events = ItemEvent.__table__
submissions = Submission.__table__

ACTIVE = (ItemState.LEASED.value, ItemState.RUNNING.value)
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
TX_RETRIES = 5


class Database:
    """An engine and the two kinds of transaction the queue runs on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.sqlite and write:
                conn.info["begin_sql"] = "BEGIN IMMEDIATE"
            else:
                conn.info.pop("begin_sql", None)
            with conn.begin():
                yield conn

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction; rerun it when PostgreSQL breaks a deadlock."""
        for attempt in range(TX_RETRIES):
            try:
                with self._transaction(write=True) as conn:
                    return work(conn)
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if sqlstate not in RETRYABLE_SQLSTATES or attempt == TX_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, work: Callable[[Connection], T]) -> T:
        with self._transaction(write=False) as conn:
            return work(conn)


def add_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Write item_events rows: item_id, from_state, to_state, attempt, worker, detail, at."""
    if rows:
        conn.execute(sa.insert(events), list(rows))


def event(
    item_id: int,
    from_state: str | None,
    to_state: str,
    *,
    at: datetime,
    attempt: int = 0,
    worker: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "from_state": from_state,
        "to_state": to_state,
        "attempt": attempt,
        "worker": worker,
        "detail": detail,
        "at": at,
    }


LEASE_CLEARED: dict[str, Any] = {"lease_owner": None, "lease_token": None, "lease_expires_at": None}
AMBIGUOUS_NOTE = (
    "no attempts left, and an earlier submit may have reached the portal: check its appeal history "
    "(`payerbot queue retry` reconciles with it before any new submit)"
)


def return_items(
    conn: Connection,
    where: sa.ColumnElement[bool],
    *,
    now: datetime,
    detail: str,
    max_attempts: Callable[[str], int],
    worker: str | None = None,
) -> int:
    """Take leased and running items matching ``where`` back from their lease.

    Unstarted items go back to ``queued`` as they were. Started ones have used an attempt: back to
    ``queued`` while attempts remain, else ``failed``. An appeal whose submit may have gone out
    (an open ``submitting`` record) is never failed: while attempts remain the next worker
    reconciles it first; out of attempts it goes to a person (``needs_human``), since the portal
    may well hold it and "failed" would say it was never sent.
    """
    rows = conn.execute(
        sa.select(items.c.id, items.c.state, items.c.kind, items.c.attempts, items.c.lease_owner)
        .where(items.c.state.in_(ACTIVE), where)
        .order_by(items.c.id)
        .with_for_update()
    ).all()
    if not rows:
        return 0
    open_submits = set(
        conn.execute(
            sa.select(submissions.c.item_id).where(
                submissions.c.item_id.in_([r.id for r in rows]),
                submissions.c.state == SubmissionState.SUBMITTING,
            )
        ).scalars()
    )
    requeue: list[int] = []
    exhausted: list[int] = []
    ambiguous: list[int] = []
    log = []
    for row in rows:
        out_of_attempts = row.state == ItemState.RUNNING and row.attempts >= max_attempts(row.kind)
        if out_of_attempts and row.id in open_submits:
            to_state, note = ItemState.NEEDS_HUMAN, f"{detail}; {AMBIGUOUS_NOTE}"
            ambiguous.append(row.id)
        elif out_of_attempts:
            to_state, note = ItemState.FAILED, f"{detail}; no attempts left"
            exhausted.append(row.id)
        else:
            to_state, note = ItemState.QUEUED, detail
            requeue.append(row.id)
        log.append(
            event(
                row.id,
                row.state,
                to_state,
                at=now,
                attempt=row.attempts,
                worker=worker or row.lease_owner,
                detail=note,
            )
        )
    if requeue:
        conn.execute(
            sa.update(items)
            .where(items.c.id.in_(requeue))
            .values(state=ItemState.QUEUED.value, updated_at=now, **LEASE_CLEARED)
        )
    if exhausted:
        conn.execute(
            sa.update(items)
            .where(items.c.id.in_(exhausted))
            .values(
                state=ItemState.FAILED.value,
                last_error=f"{detail}; no attempts left",
                last_error_kind=LeaseExpired.__name__,
                finished_at=now,
                updated_at=now,
                **LEASE_CLEARED,
            )
        )
    if ambiguous:
        conn.execute(
            sa.update(items)
            .where(items.c.id.in_(ambiguous))
            .values(
                state=ItemState.NEEDS_HUMAN.value,
                last_error=f"{detail}; {AMBIGUOUS_NOTE}",
                last_error_kind=AmbiguousSubmission.__name__,
                finished_at=now,
                updated_at=now,
                **LEASE_CLEARED,
            )
        )
    add_events(conn, log)
    return len(rows)
