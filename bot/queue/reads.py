"""Read-only queries: one item, its submissions and history, lists and counts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.db import TableRow
from bot.errors import NotFound
from bot.models import ItemState, SubmissionState
from bot.queue.sql import Database, events, items, submissions
from bot.queue.types import EventView, Evidence, ItemSummary, ItemView, SubmissionRecord


def _submission(row: TableRow) -> SubmissionRecord:
    has_evidence = row.evidence_png is not None or row.evidence_html is not None
    return SubmissionRecord(
        id=row.id,
        item_id=row.item_id,
        attempt=row.attempt,
        lease_token=row.lease_token,
        reference=row.reference,
        state=SubmissionState(row.state),
        started_at=row.started_at,
        confirmed_at=row.confirmed_at,
        confirmation_id=row.confirmation_id,
        via=row.via,
        evidence=Evidence(
            row.evidence_png, row.evidence_png_sha256, row.evidence_html, row.evidence_html_sha256
        )
        if has_evidence
        else None,
    )


DEADLINE_OPEN = tuple(
    s.value
    for s in (
        ItemState.QUEUED,
        ItemState.LEASED,
        ItemState.RUNNING,
        ItemState.RETRY_WAIT,
        ItemState.NEEDS_HUMAN,
    )
)
"""The states of an appeal whose filing deadline still matters: not yet filed, or with a person."""


class Reads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def pending_submission(self, item_id: int) -> SubmissionRecord | None:
        """The item's latest ``submitting`` record that has no confirmation, if any."""
        row = self.db.read(
            lambda conn: conn.execute(
                sa.select(submissions)
                .where(
                    submissions.c.item_id == item_id,
                    submissions.c.state == SubmissionState.SUBMITTING,
                    submissions.c.confirmation_id.is_(None),
                )
                .order_by(submissions.c.id.desc())
                .limit(1)
            ).first()
        )
        return _submission(row) if row is not None else None

    def submissions(self, conn: Connection, item_id: int) -> list[SubmissionRecord]:
        rows = conn.execute(
            sa.select(submissions).where(submissions.c.item_id == item_id).order_by(submissions.c.id)
        ).all()
        return [_submission(r) for r in rows]

    def history(self, item_id: int) -> list[EventView]:
        return self.db.read(lambda conn: self._history(conn, item_id))

    def _history(self, conn: Connection, item_id: int) -> list[EventView]:
        rows = conn.execute(sa.select(events).where(events.c.item_id == item_id).order_by(events.c.id)).all()
        return [EventView(r.at, r.from_state, r.to_state, r.attempt, r.worker, r.detail) for r in rows]

    def get(self, item_id: int) -> ItemView:
        def work(conn: Connection) -> ItemView:
            row = conn.execute(sa.select(items).where(items.c.id == item_id)).first()
            if row is None:
                raise NotFound(f"no work item {item_id}")
            return ItemView(
                id=row.id,
                idempotency_key=row.idempotency_key,
                kind=row.kind,
                payer=row.payer,
                account=row.account,
                state=ItemState(row.state),
                attempts=row.attempts,
                priority=row.priority,
                not_before=row.not_before,
                created_at=row.created_at,
                updated_at=row.updated_at,
                finished_at=row.finished_at,
                lease_owner=row.lease_owner,
                lease_expires_at=row.lease_expires_at,
                last_error=row.last_error,
                last_error_kind=row.last_error_kind,
                canonical_status=row.canonical_status,
                result=row.result,
                confirmation_id=row.confirmation_id,
                submission_reference=row.submission_reference,
                payload=row.payload if isinstance(row.payload, dict) else {},
                submissions=self.submissions(conn, item_id),
                history=self._history(conn, item_id),
            )

        return self.db.read(work)

    def list(
        self,
        *,
        state: str | None = None,
        payer: str | None = None,
        kind: str | None = None,
        due_by: date | None = None,
        limit: int = 100,
    ) -> list[ItemSummary]:
        """Items oldest first; with ``due_by``, the appeals still open (``DEADLINE_OPEN``: waiting,
        at work or with a person) whose filing deadline falls on or before it, nearest first."""
        query = sa.select(
            items.c.id,
            items.c.kind,
            items.c.payer,
            items.c.account,
            items.c.state,
            items.c.attempts,
            items.c.priority,
            items.c.not_before,
            items.c.updated_at,
            items.c.last_error,
            items.c.deadline,
        )
        order: tuple[sa.ColumnElement[Any], ...] = (items.c.id,)
        if due_by is not None:
            query = query.where(
                items.c.deadline.is_not(None),
                items.c.deadline <= due_by,
                items.c.state.in_(DEADLINE_OPEN),
            )
            order = (items.c.deadline, items.c.id)
        if state:
            query = query.where(items.c.state == state)
        if payer:
            query = query.where(items.c.payer == payer)
        if kind:
            query = query.where(items.c.kind == kind)
        rows = self.db.read(lambda conn: conn.execute(query.order_by(*order).limit(limit)).all())
        return [ItemSummary(**r._mapping) for r in rows]

    def appeals_due(self, due_by: date) -> int:
        """How many open appeals (``DEADLINE_OPEN``) have a filing deadline on or before ``due_by``."""
        query = sa.select(sa.func.count()).where(
            items.c.deadline.is_not(None), items.c.deadline <= due_by, items.c.state.in_(DEADLINE_OPEN)
        )
        return int(self.db.read(lambda conn: conn.execute(query).scalar_one()))

    def next_due_at(self) -> datetime | None:
        """When something next becomes workable: a retry's or a queued item's time, or the
        expiry of a lease the reaper will take back. None when nothing is waiting."""
        waiting = (ItemState.QUEUED.value, ItemState.RETRY_WAIT.value)
        active = (ItemState.LEASED.value, ItemState.RUNNING.value)

        def work(conn: Connection) -> list[datetime | None]:
            return [
                conn.execute(
                    sa.select(sa.func.min(items.c.not_before)).where(items.c.state.in_(waiting))
                ).scalar(),
                conn.execute(
                    sa.select(sa.func.min(items.c.lease_expires_at)).where(items.c.state.in_(active))
                ).scalar(),
            ]

        found = [t for t in self.db.read(work) if t is not None]
        return min(found) if found else None

    def counts(self) -> dict[str, Any]:
        """Items by state, and by payer and by kind (each split by state)."""
        rows = self.db.read(
            lambda conn: conn.execute(
                sa.select(items.c.payer, items.c.kind, items.c.state, sa.func.count().label("n")).group_by(
                    items.c.payer, items.c.kind, items.c.state
                )
            ).all()
        )
        by_state: dict[str, int] = {s.value: 0 for s in ItemState}
        by_payer: dict[str, dict[str, int]] = {}
        by_kind: dict[str, dict[str, int]] = {}
        for r in rows:
            by_state[r.state] = by_state.get(r.state, 0) + r.n
            by_payer.setdefault(r.payer, {}).setdefault(r.state, 0)
            by_payer[r.payer][r.state] += r.n
            by_kind.setdefault(r.kind, {}).setdefault(r.state, 0)
            by_kind[r.kind][r.state] += r.n
        return {
            "total": sum(by_state.values()),
            "by_state": by_state,
            "by_payer": by_payer,
            "by_kind": by_kind,
        }
