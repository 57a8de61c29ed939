"""Leases: who holds an account and its items, taken, extended, given back and reaped.

The lease unit is one (payer, account): the account row carries the owner, expiry and fencing
token; the leased items carry copies of them. Taking an account bumps its token, so every holder
before it is fenced off at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.db import TableRow
from bot.errors import IntakeError
from bot.models import ItemState, Payload, WorkKind
from bot.queue.sql import (
    ACTIVE,
    Database,
    accounts,
    add_events,
    event,
    items,
    return_items,
)

Validator = Callable[[str, str, str], tuple[WorkKind, Payload]]
"""(kind, payer, payload JSON text) -> parsed kind and request, or IntakeError naming the field."""

ACCOUNTS_TRIED_PER_LEASE = 8  # accounts whose due rows all turned out bad before giving up


@dataclass(frozen=True)
class LeasedRow:
    id: int
    kind: WorkKind
    payer: str
    account: str
    request: Payload
    attempt: int
    idempotency_key: str


@dataclass(frozen=True)
class AccountLease:
    payer: str
    account: str
    token: int
    expires_at: datetime
    items: list[LeasedRow]


QUEUED = ItemState.QUEUED.value
RETRY_WAIT = ItemState.RETRY_WAIT.value


def _due(state: str, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        items.c.state == state,
        items.c.payer == accounts.c.payer,
        items.c.account == accounts.c.account,
        items.c.not_before <= now,
    )


class Leases:
    def __init__(self, db: Database, max_attempts: Callable[[str], int]) -> None:
        self.db = db
        self.max_attempts = max_attempts
        # ``not_before`` as a filter only: SQLite would rather range over it in ix_work_items_due
        # and sort every row of the level than read the few appeals of ix_work_items_deadline in
        # order; a unary + is SQLite's documented way to keep a term from choosing the index
        self._not_before_unindexed: sa.ColumnElement[datetime] = (
            sa.literal_column("+work_items.not_before", type_=items.c.not_before.type)
            if db.sqlite
            else items.c.not_before
        )

    # -- lease --------------------------------------------------------------------------------

    def lease(
        self, owner: str, *, limit: int, now: datetime, expires_at: datetime, validate: Validator
    ) -> AccountLease | None:
        def work(conn: Connection) -> AccountLease | None:
            tried: list[int] = []
            for _ in range(ACCOUNTS_TRIED_PER_LEASE):
                picked = self._pick_account(conn, now, exclude=tried)
                if picked is None:
                    return None
                tried.append(picked.id)
                token = self._take_account(conn, picked.id, owner, now, expires_at)
                if token is None:
                    continue  # another worker took it between our read and our write
                where = sa.and_(items.c.payer == picked.payer, items.c.account == picked.account)
                if picked.lease_owner is not None:  # an expired lease nobody reaped yet
                    return_items(
                        conn,
                        where,
                        now=now,
                        max_attempts=self.max_attempts,
                        detail=f"lease of {picked.lease_owner} expired; account taken by {owner}",
                    )
                self._promote_due(conn, where, now)
                rows = self._lease_items(
                    conn, picked.payer, picked.account, owner, token, limit, now, expires_at, validate
                )
                if rows:
                    return AccountLease(picked.payer, picked.account, token, expires_at, rows)
                conn.execute(
                    sa.update(accounts)
                    .where(accounts.c.id == picked.id)
                    .values(lease_owner=None, lease_expires_at=None)
                )
            return None

        return self.db.write(work)

    def lease_item(
        self, owner: str, item_id: int, *, now: datetime, expires_at: datetime, validate: Validator
    ) -> AccountLease | None:
        """Lease one named queued item with its account (an operator's replay that submits it).

        None when the item is not queued or its account is held by a live lease; an item the
        lease cannot parse raises its IntakeError (the caller names the item).
        """

        def work(conn: Connection) -> AccountLease | None:
            row = conn.execute(
                sa.select(
                    items.c.id,
                    items.c.kind,
                    items.c.payer,
                    items.c.account,
                    items.c.state,
                    items.c.attempts,
                    items.c.idempotency_key,
                    sa.cast(items.c.payload, sa.Text).label("payload_text"),
                ).where(items.c.id == item_id)
            ).first()
            if row is None or row.state != QUEUED:
                return None
            account = conn.execute(
                sa.select(accounts.c.id, accounts.c.lease_owner)
                .where(accounts.c.payer == row.payer, accounts.c.account == row.account)
                .with_for_update()
            ).first()
            if account is None:
                return None
            token = self._take_account(conn, account.id, owner, now, expires_at)
            if token is None:
                return None
            if account.lease_owner is not None:  # an expired lease nobody reaped yet
                return_items(
                    conn,
                    sa.and_(items.c.payer == row.payer, items.c.account == row.account),
                    now=now,
                    max_attempts=self.max_attempts,
                    detail=f"lease of {account.lease_owner} expired; account taken by {owner}",
                )
            kind, request = validate(row.kind, row.payer, row.payload_text)
            taken = conn.execute(
                sa.update(items)
                .where(items.c.id == item_id, items.c.state == QUEUED)
                .values(
                    state=ItemState.LEASED.value,
                    lease_owner=owner,
                    lease_token=token,
                    lease_expires_at=expires_at,
                    updated_at=now,
                )
            ).rowcount
            if not taken:  # the expired lease above held it: it is queued again, lease it next time
                conn.execute(
                    sa.update(accounts)
                    .where(accounts.c.id == account.id)
                    .values(lease_owner=None, lease_expires_at=None)
                )
                return None
            leased = LeasedRow(
                row.id, kind, row.payer, row.account, request, row.attempts + 1, row.idempotency_key
            )
            add_events(
                conn,
                [
                    event(
                        row.id,
                        QUEUED,
                        ItemState.LEASED,
                        at=now,
                        attempt=leased.attempt,
                        worker=owner,
                        detail=f"token {token} (this item only)",
                    )
                ],
            )
            return AccountLease(row.payer, row.account, token, expires_at, [leased])

        return self.db.write(work)

    def _pick_account(self, conn: Connection, now: datetime, *, exclude: list[int]) -> TableRow | None:
        """The free, enabled account whose best due item has the highest priority, then the nearest
        filing deadline at that priority; ties take turns.

        An account whose lease expired counts too: its items come back as part of this lease.

        Each correlated subquery is one probe of ``ix_work_items_due``: the cost grows with the
        number of accounts, not with the number of queued items.
        """
        top_priority = (
            sa.select(items.c.priority)
            .where(_due(QUEUED, now))
            .order_by(items.c.priority.desc())
            .limit(1)
            .correlate(accounts)
            .scalar_subquery()
        )
        # among accounts whose best level ties, the one with the nearest filing deadline at that
        # level goes first (one probe of ``ix_work_items_deadline``)
        top_deadline = (
            sa.select(items.c.deadline)
            .where(_due(QUEUED, now), items.c.priority == top_priority, items.c.deadline.is_not(None))
            .order_by(items.c.deadline)
            .limit(1)
            .correlate(accounts)
            .scalar_subquery()
        )
        waiting = sa.exists().where(_due(RETRY_WAIT, now)).correlate(accounts)
        query = (
            sa.select(accounts.c.id, accounts.c.payer, accounts.c.account, accounts.c.lease_owner)
            .where(
                accounts.c.enabled == sa.true(),
                sa.or_(
                    # free, with due work
                    sa.and_(accounts.c.lease_owner.is_(None), sa.or_(top_priority.is_not(None), waiting)),
                    # or held by a lease that expired: taking it over takes its items back first
                    sa.and_(accounts.c.lease_owner.is_not(None), accounts.c.lease_expires_at <= now),
                ),
            )
            .order_by(
                top_priority.desc().nulls_last(),
                top_deadline.asc().nulls_last(),
                accounts.c.lease_taken_at.asc().nulls_first(),
                accounts.c.id,
            )
            .limit(1)
            .with_for_update(of=accounts, skip_locked=True)
        )
        if exclude:
            query = query.where(accounts.c.id.not_in(exclude))
        return conn.execute(query).first()

    def _take_account(
        self, conn: Connection, account_id: int, owner: str, now: datetime, expires_at: datetime
    ) -> int | None:
        return conn.execute(
            sa.update(accounts)
            .where(
                accounts.c.id == account_id,
                accounts.c.enabled == sa.true(),
                sa.or_(accounts.c.lease_owner.is_(None), accounts.c.lease_expires_at <= now),
            )
            .values(
                lease_owner=owner,
                lease_token=accounts.c.lease_token + 1,
                lease_expires_at=expires_at,
                lease_taken_at=now,
            )
            .returning(accounts.c.lease_token)
        ).scalar()

    def _promote_due(self, conn: Connection, where: sa.ColumnElement[bool], now: datetime) -> int:
        """retry_wait items whose time has come go back to queued (this account's only)."""
        promoted = conn.execute(
            sa.update(items)
            .where(items.c.state == RETRY_WAIT, items.c.not_before <= now, where)
            .values(state=QUEUED, updated_at=now)
            .returning(items.c.id, items.c.attempts)
        ).all()
        add_events(
            conn,
            [
                event(r.id, RETRY_WAIT, QUEUED, at=now, attempt=r.attempts, detail="retry due")
                for r in promoted
            ],
        )
        return len(promoted)

    def _lease_items(
        self,
        conn: Connection,
        payer: str,
        account: str,
        owner: str,
        token: int,
        limit: int,
        now: datetime,
        expires_at: datetime,
        validate: Validator,
    ) -> list[LeasedRow]:
        """Up to ``limit`` due items, by priority level (highest first); within a level, appeals
        with a filing deadline earliest deadline first, then the rest by age.

        How deadline and priority combine: priority is the upstream's or operator's word and
        always wins; the deadline orders items within one priority level. Appeals are queued at 0
        and sweeps at -1 (``bot.queue.sweeps``), so at the default priorities every appeal goes
        before every sweep, and an appeal due tomorrow before one due next month. An appeal given
        a lower priority than a sweep's waits behind it, as asked.

        Each level is two index ranges read in order (``ix_work_items_deadline`` for the rows with
        a deadline, ``ix_work_items_due`` for the others), so a lease reads about ``limit`` rows. A
        row that fails validation (upstream wrote it) is rejected on the spot and the next is read.
        """
        same_account = sa.and_(
            items.c.state == QUEUED,
            items.c.payer == payer,
            items.c.account == account,
            items.c.not_before <= now,
        )
        good: list[LeasedRow] = []
        below: int | None = None
        while len(good) < limit:
            level_query = sa.select(items.c.priority).where(same_account)
            if below is not None:
                level_query = level_query.where(items.c.priority < below)
            level = conn.execute(level_query.order_by(items.c.priority.desc()).limit(1)).scalar()
            if level is None:
                break
            wanted = limit - len(good)
            columns = sa.select(
                items.c.id,
                items.c.kind,
                items.c.attempts,
                items.c.idempotency_key,
                sa.cast(items.c.payload, sa.Text).label("payload_text"),
            )
            rows = list(
                conn.execute(
                    columns.where(
                        items.c.state == QUEUED,
                        items.c.payer == payer,
                        items.c.account == account,
                        items.c.priority == level,
                        items.c.deadline.is_not(None),
                        self._not_before_unindexed <= now,
                    )
                    .order_by(items.c.deadline, items.c.id)
                    .limit(wanted)
                    .with_for_update(skip_locked=True)
                ).all()
            )
            if len(rows) < wanted:
                rows += conn.execute(
                    columns.where(same_account, items.c.priority == level, items.c.deadline.is_(None))
                    .order_by(items.c.not_before, items.c.id)
                    .limit(wanted - len(rows))
                    .with_for_update(skip_locked=True)
                ).all()
            if len(rows) < wanted:
                below = level
            for row in rows:
                try:
                    kind, request = validate(row.kind, payer, row.payload_text)
                except IntakeError as exc:
                    self._reject(conn, row.id, row.attempts, exc.message, now, owner)
                    continue
                good.append(
                    LeasedRow(row.id, kind, payer, account, request, row.attempts + 1, row.idempotency_key)
                )
        if good:
            conn.execute(
                sa.update(items)
                .where(items.c.id.in_([g.id for g in good]))
                .values(
                    state=ItemState.LEASED.value,
                    lease_owner=owner,
                    lease_token=token,
                    lease_expires_at=expires_at,
                    updated_at=now,
                )
            )
            add_events(
                conn,
                [
                    event(
                        g.id,
                        QUEUED,
                        ItemState.LEASED,
                        at=now,
                        attempt=g.attempt,
                        worker=owner,
                        detail=f"token {token}",
                    )
                    for g in good
                ],
            )
        return good

    def _reject(
        self, conn: Connection, item_id: int, attempts: int, reason: str, now: datetime, owner: str
    ) -> None:
        conn.execute(
            sa.update(items)
            .where(items.c.id == item_id)
            .values(
                state=ItemState.REJECTED.value,
                last_error=reason,
                last_error_kind="IntakeError",
                finished_at=now,
                updated_at=now,
            )
        )
        add_events(
            conn,
            [
                event(
                    item_id, QUEUED, ItemState.REJECTED, at=now, attempt=attempts, worker=owner, detail=reason
                )
            ],
        )

    # -- keep, give back, take back ---------------------------------------------------------------

    def heartbeat(self, payer: str, account: str, token: int, expires_at: datetime) -> bool:
        """Extend the account lease and its items'. False once the lease was taken back."""

        def work(conn: Connection) -> bool:
            held = conn.execute(
                sa.update(accounts)
                .where(
                    accounts.c.payer == payer,
                    accounts.c.account == account,
                    accounts.c.lease_token == token,
                    accounts.c.lease_owner.is_not(None),
                )
                .values(lease_expires_at=expires_at)
                .returning(accounts.c.id)
            ).first()
            if held is None:
                return False
            conn.execute(
                sa.update(items)
                .where(
                    items.c.payer == payer,
                    items.c.account == account,
                    items.c.lease_token == token,
                    items.c.state.in_(ACTIVE),
                )
                .values(lease_expires_at=expires_at)
            )
            return True

        return self.db.write(work)

    def release(self, payer: str, account: str, token: int, owner: str, now: datetime) -> int:
        """Give the account back; items of this lease still leased or running go back too."""

        def work(conn: Connection) -> int:
            conn.execute(
                sa.update(accounts)
                .where(
                    accounts.c.payer == payer, accounts.c.account == account, accounts.c.lease_token == token
                )
                .values(lease_owner=None, lease_expires_at=None)
            )
            return return_items(
                conn,
                sa.and_(items.c.payer == payer, items.c.account == account, items.c.lease_token == token),
                now=now,
                detail="released by its worker",
                max_attempts=self.max_attempts,
                worker=owner,
            )

        return self.db.write(work)

    def reap(self, now: datetime) -> int:
        """Take back expired leases (accounts first, then items); promote due retries.

        Returns the number of items taken back from expired leases.
        """

        def work(conn: Connection) -> int:
            conn.execute(
                sa.update(accounts)
                .where(accounts.c.lease_owner.is_not(None), accounts.c.lease_expires_at <= now)
                .values(lease_owner=None, lease_expires_at=None)
            )
            taken = return_items(
                conn,
                items.c.lease_expires_at <= now,
                now=now,
                detail="lease expired",
                max_attempts=self.max_attempts,
            )
            promoted = conn.execute(
                sa.update(items)
                .where(items.c.state == RETRY_WAIT, items.c.not_before <= now)
                .values(state=QUEUED, updated_at=now)
                .returning(items.c.id, items.c.attempts)
            ).all()
            add_events(
                conn,
                [
                    event(r.id, RETRY_WAIT, QUEUED, at=now, attempt=r.attempts, detail="retry due")
                    for r in promoted
                ],
            )
            return taken

        return self.db.write(work)

    def reject_orphans(self, now: datetime) -> int:
        """Queued rows naming an account that does not exist can never lease: reject them, saying why."""
        no_account = ~sa.exists().where(
            accounts.c.payer == items.c.payer, accounts.c.account == items.c.account
        )
        orphan_query = sa.select(items.c.id, items.c.state, items.c.attempts).where(
            items.c.state.in_((QUEUED, RETRY_WAIT)), no_account
        )
        if not self.db.read(lambda conn: conn.execute(orphan_query.limit(1)).first()):
            return 0  # the common case stays a read, without taking SQLite's write lock

        def work(conn: Connection) -> int:
            rows = conn.execute(orphan_query.with_for_update()).all()
            reason = "account: no such account for this payer (add it with `payerbot vault add`)"
            conn.execute(
                sa.update(items)
                .where(items.c.id.in_([r.id for r in rows]))
                .values(
                    state=ItemState.REJECTED.value,
                    last_error=reason,
                    last_error_kind="IntakeError",
                    finished_at=now,
                    updated_at=now,
                )
            )
            add_events(
                conn,
                [
                    event(r.id, r.state, ItemState.REJECTED, at=now, attempt=r.attempts, detail=reason)
                    for r in rows
                ],
            )
            return len(rows)

        return self.db.write(work)
