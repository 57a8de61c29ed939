"""What people do to items: an account handed to a person, an operator's retry or cancel.

Each is one transaction with its ``item_events`` rows; the actor is recorded as the worker. An
operator's retry or cancel also appends its audit record in that transaction, so the record and
the change commit together, and a refused one leaves neither.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.audit import AuditAction, AuditEntry
from bot.db import TableRow
from bot.errors import InvalidTransition, NotFound
from bot.models import ItemState, SubmissionState
from bot.queue.sql import LEASE_CLEARED, Database, add_events, event, items, submissions

Appender = Callable[[Connection, AuditEntry], object]
"""Appends an audit entry inside the given transaction (``AuditTrail.append_in``)."""


class Operations:
    def __init__(self, db: Database) -> None:
        self.db = db

    def hand_account_to_human(self, payer: str, account: str, reason: str, now: datetime) -> int:
        def work(conn: Connection) -> int:
            rows = conn.execute(
                sa.select(items.c.id, items.c.state, items.c.attempts)
                .where(
                    items.c.payer == payer,
                    items.c.account == account,
                    items.c.state.in_((ItemState.QUEUED.value, ItemState.RETRY_WAIT.value)),
                )
                .with_for_update()
            ).all()
            if rows:
                conn.execute(
                    sa.update(items)
                    .where(items.c.id.in_([r.id for r in rows]))
                    .values(
                        state=ItemState.NEEDS_HUMAN.value,
                        last_error=reason,
                        last_error_kind="AccountDisabled",
                        finished_at=now,
                        updated_at=now,
                    )
                )
                add_events(
                    conn,
                    [
                        event(r.id, r.state, ItemState.NEEDS_HUMAN, at=now, attempt=r.attempts, detail=reason)
                        for r in rows
                    ],
                )
            return len(rows)

        return self.db.write(work)

    def _locked_item(self, conn: Connection, item_id: int) -> TableRow:
        row = conn.execute(
            sa.select(items.c.state, items.c.attempts, items.c.payer, items.c.account)
            .where(items.c.id == item_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"no work item {item_id}")
        return row

    def _open_submission_of(self, conn: Connection, item_id: int) -> TableRow | None:
        return conn.execute(
            sa.select(submissions.c.id, submissions.c.reference).where(
                submissions.c.item_id == item_id, submissions.c.state == SubmissionState.SUBMITTING
            )
        ).first()

    @staticmethod
    def _audit(
        conn: Connection,
        audit: Appender | None,
        action: AuditAction,
        actor: str,
        item_id: int,
        row: TableRow,
        outcome: str,
        **detail: Any,
    ) -> None:
        if audit is not None:
            entry = AuditEntry(
                action,
                outcome,
                payer=row.payer,
                account=row.account,
                item_id=item_id,
                actor=actor,
                detail={"from_state": row.state, **detail},
            )
            audit(conn, entry)

    def retry(
        self,
        item_id: int,
        actor: str,
        now: datetime,
        *,
        not_submitted: bool,
        reason: str | None = None,
        audit: Appender | None = None,
    ) -> None:
        """needs_human, failed or rejected -> queued with a fresh attempt budget.

        An open submission stays open, so the worker reconciles it with the portal's history first;
        ``not_submitted`` records the operator's word that the portal never got it.
        """

        def work(conn: Connection) -> None:
            row = self._locked_item(conn, item_id)
            allowed = (ItemState.NEEDS_HUMAN, ItemState.FAILED, ItemState.REJECTED)
            if row.state not in allowed:
                raise InvalidTransition(
                    f"item {item_id} is {row.state}; only {', '.join(allowed)} items can be retried"
                )
            detail = f"retried by {actor}"
            open_one = self._open_submission_of(conn, item_id)
            marked = None
            if open_one is not None and not_submitted:
                conn.execute(
                    sa.update(submissions)
                    .where(submissions.c.id == open_one.id)
                    .values(state=SubmissionState.NOT_FOUND)
                )
                detail += f"; {actor} says submission {open_one.id} never reached the portal"
                marked = open_one.id
            conn.execute(
                sa.update(items)
                .where(items.c.id == item_id)
                .values(
                    state=ItemState.QUEUED.value,
                    attempts=0,
                    not_before=now,
                    finished_at=None,
                    updated_at=now,
                    **LEASE_CLEARED,
                )
            )
            add_events(
                conn, [event(item_id, row.state, ItemState.QUEUED, at=now, worker=actor, detail=detail)]
            )
            # ``not_submitted``: the submission the operator vouched for, or None when none was open
            self._audit(
                conn,
                audit,
                AuditAction.QUEUE_RETRY,
                actor,
                item_id,
                row,
                ItemState.QUEUED.value,
                reason=reason,
                not_submitted=marked if not_submitted else False,
            )

        self.db.write(work)

    def cancel(
        self,
        item_id: int,
        actor: str,
        now: datetime,
        *,
        reason: str | None = None,
        audit: Appender | None = None,
    ) -> None:
        """Any unfinished item -> cancelled; a worker holding it is fenced off by the cleared token."""

        def work(conn: Connection) -> None:
            row = self._locked_item(conn, item_id)
            if row.state in (ItemState.DONE, ItemState.CANCELLED):
                raise InvalidTransition(f"item {item_id} is already {row.state}")
            open_one = self._open_submission_of(conn, item_id)
            if open_one is not None:
                raise InvalidTransition(
                    f"item {item_id} has an unconfirmed submission ({open_one.reference}) that may have "
                    "reached the portal; check the portal's history first, then `payerbot queue retry "
                    f"{item_id} --not-submitted` or record what you found"
                )
            conn.execute(
                sa.update(items)
                .where(items.c.id == item_id)
                .values(state=ItemState.CANCELLED.value, finished_at=now, updated_at=now, **LEASE_CLEARED)
            )
            add_events(
                conn,
                [
                    event(
                        item_id,
                        row.state,
                        ItemState.CANCELLED,
                        at=now,
                        worker=actor,
                        detail=f"cancelled by {actor}",
                    )
                ],
            )
            self._audit(
                conn,
                audit,
                AuditAction.QUEUE_CANCEL,
                actor,
                item_id,
                row,
                ItemState.CANCELLED.value,
                reason=reason,
            )

        self.db.write(work)
