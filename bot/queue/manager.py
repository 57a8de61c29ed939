"""Writes to one item: fenced transitions, the submission record, intake inserts, operator actions.

Every write a worker makes presents its lease token; the row is locked and checked first, and a
stale token raises ``StaleLease`` with nothing changed. Each transition is one transaction that
also writes its ``item_events`` row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bot.db import TableRow
from bot.errors import AmbiguousSubmission, InvalidTransition, NotFound, StaleLease
from bot.models import ItemState, SubmissionState, WorkKind
from bot.queue.intake import StoredAppeal
from bot.queue.sql import (
    ACTIVE,
    LEASE_CLEARED,
    Database,
    accounts,
    add_events,
    event,
    items,
    submissions,
)
from bot.queue.types import Evidence

RUNNING = ItemState.RUNNING.value

AuditWrite = Callable[[Connection], object]
"""Appends an item's audit record inside the transaction of the change it records."""


@dataclass(frozen=True)
class Fence:
    """What a worker presents with each write: the item, its lease token and this attempt."""

    item_id: int
    token: int
    attempt: int
    owner: str | None = None


@dataclass(frozen=True)
class ExistingKey:
    id: int
    digest: str | None
    kind: str
    payer: str
    account: str
    payload: str | None  # the stored JSON text


class Manager:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- fenced item writes -----------------------------------------------------------------------

    def _fenced(
        self, conn: Connection, fence: Fence, now: datetime, *, margin: float | None = None
    ) -> TableRow:
        row = conn.execute(
            sa.select(items.c.state, items.c.kind, items.c.attempts, items.c.lease_expires_at)
            .where(items.c.id == fence.item_id, items.c.lease_token == fence.token, items.c.state.in_(ACTIVE))
            .with_for_update()
        ).first()
        if row is None:
            raise StaleLease(f"item {fence.item_id}: lease token {fence.token} is no longer current")
        if margin is not None and (
            row.lease_expires_at is None or row.lease_expires_at <= now + timedelta(seconds=margin)
        ):
            raise StaleLease(
                f"item {fence.item_id}: lease expires within {margin:g} s; not starting a submit"
            )
        return row

    def _start(self, conn: Connection, fence: Fence, row: TableRow, now: datetime) -> None:
        """leased -> running: the attempt counts from here."""
        if row.state == RUNNING:
            return
        conn.execute(
            sa.update(items)
            .where(items.c.id == fence.item_id)
            .values(state=RUNNING, attempts=fence.attempt, updated_at=now)
        )
        add_events(
            conn,
            [event(fence.item_id, row.state, RUNNING, at=now, attempt=fence.attempt, worker=fence.owner)],
        )

    def mark_running(self, fence: Fence, now: datetime) -> None:
        def work(conn: Connection) -> None:
            self._start(conn, fence, self._fenced(conn, fence, now), now)

        self.db.write(work)

    def finish(
        self,
        fence: Fence,
        now: datetime,
        *,
        to_state: ItemState,
        values: dict[str, Any],
        detail: str | None,
    ) -> None:
        """Leave the lease for ``to_state`` (done, retry_wait, failed, needs_human).

        An item failed or completed straight from ``leased`` has used its attempt too (a login that
        failed for the batch counts against each item), so ``attempts`` is set either way.
        """

        def work(conn: Connection) -> None:
            row = self._fenced(conn, fence, now)
            final = to_state not in (ItemState.RETRY_WAIT, ItemState.QUEUED)
            conn.execute(
                sa.update(items)
                .where(items.c.id == fence.item_id)
                .values(
                    {
                        "state": to_state.value,
                        "attempts": max(row.attempts, fence.attempt),
                        "updated_at": now,
                        "finished_at": now if final else None,
                        **LEASE_CLEARED,
                        **values,  # a deferral hands its attempt back: it sets ``attempts``
                    }
                )
            )
            add_events(
                conn,
                [
                    event(
                        fence.item_id,
                        row.state,
                        to_state,
                        at=now,
                        attempt=fence.attempt,
                        worker=fence.owner,
                        detail=detail,
                    )
                ],
            )

        self.db.write(work)

    # -- the exactly-once record ---------------------------------------------------------------

    def begin_submission(
        self, fence: Fence, reference: str, now: datetime, margin: float, audit: AuditWrite | None = None
    ) -> int:
        def work(conn: Connection) -> int:
            row = self._fenced(conn, fence, now, margin=margin)
            open_one = conn.execute(
                sa.select(submissions.c.id, submissions.c.attempt).where(
                    submissions.c.item_id == fence.item_id, submissions.c.state == SubmissionState.SUBMITTING
                )
            ).first()
            if open_one is not None:
                raise AmbiguousSubmission(
                    f"item {fence.item_id}: submission {open_one.id} (attempt {open_one.attempt}) "
                    "is still unconfirmed; reconcile it before submitting again"
                )
            self._start(conn, fence, row, now)
            submission_id = conn.execute(
                sa.insert(submissions)
                .values(
                    item_id=fence.item_id,
                    attempt=fence.attempt,
                    lease_token=fence.token,
                    reference=reference,
                    state=SubmissionState.SUBMITTING,
                    started_at=now,
                )
                .returning(submissions.c.id)
            ).scalar_one()
            conn.execute(
                sa.update(items).where(items.c.id == fence.item_id).values(submission_reference=reference)
            )
            add_events(
                conn,
                [
                    event(
                        fence.item_id,
                        RUNNING,
                        RUNNING,
                        at=now,
                        attempt=fence.attempt,
                        worker=fence.owner,
                        detail=f"submitting {reference} (submission {submission_id})",
                    )
                ],
            )
            if audit is not None:
                audit(conn)
            return int(submission_id)

        return self.db.write(work)

    def _open_submission(self, conn: Connection, item_id: int, submission_id: int) -> TableRow:
        row = conn.execute(
            sa.select(submissions.c.id, submissions.c.reference, submissions.c.state)
            .where(submissions.c.id == submission_id, submissions.c.item_id == item_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"item {item_id} has no submission {submission_id}")
        if row.state != SubmissionState.SUBMITTING:
            raise InvalidTransition(f"submission {submission_id} of item {item_id} is already {row.state}")
        return row

    def confirm_submission(
        self,
        fence: Fence,
        now: datetime,
        *,
        submission_id: int,
        confirmation_id: str,
        via: str,
        evidence: Evidence | None,
        audit: AuditWrite | None = None,
    ) -> None:
        def work(conn: Connection) -> None:
            row = self._fenced(conn, fence, now)
            sub = self._open_submission(conn, fence.item_id, submission_id)
            conn.execute(
                sa.update(submissions)
                .where(submissions.c.id == submission_id)
                .values(
                    state=SubmissionState.CONFIRMED,
                    confirmed_at=now,
                    confirmation_id=confirmation_id,
                    via=via,
                    evidence_png=evidence.png_path if evidence else None,
                    evidence_png_sha256=evidence.png_sha256 if evidence else None,
                    evidence_html=evidence.html_path if evidence else None,
                    evidence_html_sha256=evidence.html_sha256 if evidence else None,
                )
            )
            result = {"confirmation_id": confirmation_id, "reference": sub.reference, "via": via}
            conn.execute(
                sa.update(items)
                .where(items.c.id == fence.item_id)
                .values(
                    state=ItemState.DONE.value,
                    attempts=max(row.attempts, fence.attempt),
                    confirmation_id=confirmation_id,
                    result=result,
                    last_error=None,
                    last_error_kind=None,
                    finished_at=now,
                    updated_at=now,
                    **LEASE_CLEARED,
                )
            )
            add_events(
                conn,
                [
                    event(
                        fence.item_id,
                        row.state,
                        ItemState.DONE,
                        at=now,
                        attempt=fence.attempt,
                        worker=fence.owner,
                        detail=f"confirmed via {via} (submission {submission_id})",
                    )
                ],
            )
            if audit is not None:  # one commit: a crash never leaves a confirmation unaudited
                audit(conn)

        self.db.write(work)

    def mark_submission_not_found(self, fence: Fence, submission_id: int, now: datetime) -> None:
        def work(conn: Connection) -> None:
            row = self._fenced(conn, fence, now)
            self._open_submission(conn, fence.item_id, submission_id)
            conn.execute(
                sa.update(submissions)
                .where(submissions.c.id == submission_id)
                .values(state=SubmissionState.NOT_FOUND)
            )
            add_events(
                conn,
                [
                    event(
                        fence.item_id,
                        row.state,
                        row.state,
                        at=now,
                        attempt=fence.attempt,
                        worker=fence.owner,
                        detail=f"submission {submission_id} not in the portal's history",
                    )
                ],
            )

        self.db.write(work)

    # -- intake -----------------------------------------------------------------------------------

    def known_accounts(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        if not pairs:
            return set()
        payers = {p for p, _ in pairs}
        rows = self.db.read(
            lambda conn: conn.execute(
                sa.select(accounts.c.payer, accounts.c.account).where(accounts.c.payer.in_(payers))
            ).all()
        )
        return {(r.payer, r.account) for r in rows} & pairs

    def existing_keys(self, conn: Connection, keys: Sequence[str]) -> dict[str, ExistingKey]:
        rows = conn.execute(
            sa.select(
                items.c.id,
                items.c.idempotency_key,
                items.c.payload_digest,
                items.c.kind,
                items.c.payer,
                items.c.account,
                sa.cast(items.c.payload, sa.Text).label("payload"),
            ).where(items.c.idempotency_key.in_(list(keys)))
        ).all()
        return {
            r.idempotency_key: ExistingKey(r.id, r.payload_digest, r.kind, r.payer, r.account, r.payload)
            for r in rows
        }

    def appeals_of(
        self, conn: Connection, claims: set[tuple[str, str]]
    ) -> list[tuple[tuple[str, str], StoredAppeal]]:
        """The appeal items of these (payer, claim number) pairs, whatever their state, by pair.

        On PostgreSQL each pair's transaction-scoped advisory lock is taken first (in one order,
        so two intakes cannot deadlock): a second intake of the same claim waits until this one has
        committed its insert, then sees it. SQLite's write transaction is already the only one.
        """
        if not claims:
            return []
        if not self.db.sqlite:
            for payer, number in sorted(claims):
                conn.execute(
                    sa.select(
                        sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"appeal:{payer}:{number}", 0))
                    )
                )
        number = items.c.payload["claim_number"].as_string()
        rows = conn.execute(
            sa.select(
                items.c.id,
                items.c.payer,
                number.label("claim_number"),
                items.c.idempotency_key,
                items.c.state,
                sa.cast(items.c.payload, sa.Text).label("payload_text"),
            ).where(
                items.c.kind == WorkKind.APPEAL_SUBMISSION.value,
                sa.tuple_(items.c.payer, number).in_(sorted(claims)),
            )
        ).all()
        return [
            ((r.payer, r.claim_number), StoredAppeal(r.id, r.idempotency_key, r.state, r.payload_text))
            for r in rows
        ]

    def checked_claims(self, conn: Connection, claims: set[tuple[str, str]]) -> list[tuple[str, Any, Any]]:
        """The done status checks of these (payer, claim number) pairs, oldest first: each row's
        payer, payload and result (what an appeal's intake reads of the claim's latest status)."""
        if not claims:
            return []
        number = items.c.payload["claim_number"].as_string()
        rows = conn.execute(
            sa.select(items.c.payer, items.c.payload, items.c.result)
            .where(
                items.c.kind == WorkKind.CLAIM_STATUS.value,
                items.c.state == ItemState.DONE.value,
                sa.tuple_(items.c.payer, number).in_(sorted(claims)),
            )
            .order_by(items.c.finished_at, items.c.id)
        ).all()
        return [(r.payer, r.payload, r.result) for r in rows]

    def insert_items(self, conn: Connection, rows: list[dict[str, Any]], now: datetime) -> dict[str, int]:
        """Insert new rows; a key another writer inserted meanwhile is skipped, not an error."""
        if not rows:
            return {}
        insert = (postgresql.insert if not self.db.sqlite else sqlite.insert)(items)
        inserted = conn.execute(
            insert.on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(
                items.c.id, items.c.idempotency_key, sort_by_parameter_order=True
            ),
            rows,
        ).all()
        ids = {r.idempotency_key: r.id for r in inserted}
        add_events(conn, [event(i, None, ItemState.QUEUED, at=now, detail="enqueued") for i in ids.values()])
        return ids
