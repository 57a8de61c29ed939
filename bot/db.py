"""The tables. They are an interface: upstream systems write work items and read results here.

Schema changes go through Alembic (``bot/migrations``); ``payerbot db upgrade`` applies them. The
README's "Queue tables" section documents which columns upstream writes and which the bot writes.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.models import ItemState, SubmissionState
from bot.settings import keep_private


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine.

    PostgreSQL stores ``timestamptz`` (so a row an upstream system inserts with its
    ``CURRENT_TIMESTAMP`` default is right whatever the server's time zone); SQLite keeps no zone,
    so values are stored as naive UTC, which is also what its ``CURRENT_TIMESTAMP`` writes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NOW = sa.text("CURRENT_TIMESTAMP")


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


TableRow: TypeAlias = sa.Row[*tuple[Any, ...]]
"""A row selected from a table's Core columns, which carry no Python types."""


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    # every mapped class here is declared with a Table (SQLAlchemy types it as any FromClause)
    __table__: ClassVar[sa.Table]
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: sa.JSON()}


class Account(Base):
    """A portal account the bot logs in as. Its secrets live in ``vault_records``."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("payer", "account"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payer: Mapped[str] = mapped_column(sa.String(40))
    account: Mapped[str] = mapped_column(sa.String(200))
    portal_url: Mapped[str | None] = mapped_column(sa.String(500))
    second_factor: Mapped[str] = mapped_column(sa.String(30), default="none")
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500))
    disabled_at: Mapped[datetime | None]
    # the last TOTP time step used to log in, claimed atomically so that no two processes ever
    # send the same one-time code (``UPDATE ... WHERE totp_last_step < :step``)
    totp_last_step: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    # the account lease: one worker (one browser session) per account at a time
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200))
    lease_token: Mapped[int] = mapped_column(default=0)  # the fencing token: +1 on every lease
    lease_expires_at: Mapped[datetime | None]
    lease_taken_at: Mapped[datetime | None]  # kept after release: accounts take turns by it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VaultRecord(Base):
    """One encrypted secret of one account; the ciphertext is bound to (payer, account, field)."""

    __tablename__ = "vault_records"
    __table_args__ = (sa.UniqueConstraint("payer", "account", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payer: Mapped[str] = mapped_column(sa.String(40))
    account: Mapped[str] = mapped_column(sa.String(200))
    field: Mapped[str] = mapped_column(sa.String(200))
    key_id: Mapped[str] = mapped_column(sa.String(64))
    ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkItem(Base):
    """One unit of portal work. Upstream writes the first block of columns; the bot the rest."""

    __tablename__ = "work_items"
    __table_args__ = (
        # The lease reads due items of one account level by level of priority (highest first,
        # a backward walk), then in (not_before, id) order: K rows per lease, however long the
        # queue. A DESC column would save a step, but Alembic cannot autogenerate such an index.
        sa.Index("ix_work_items_due", "state", "payer", "account", "priority", "not_before", "id"),
        # retry_wait items falling due, per account (a lease) or anywhere (the reaper)
        sa.Index("ix_work_items_wait", "state", "payer", "account", "not_before"),
        sa.Index("ix_work_items_lease", "state", "lease_expires_at"),  # the reaper
        # appeals with a filing deadline, earliest first within a priority level (the lease), and
        # those falling due within a span (`payerbot queue list --due-within`); only rows that
        # have a deadline are in it
        sa.Index(
            "ix_work_items_deadline",
            "state",
            "payer",
            "account",
            "priority",
            "deadline",
            "id",
            sqlite_where=sa.text("deadline IS NOT NULL"),
            postgresql_where=sa.text("deadline IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # written upstream (or by `payerbot enqueue`)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    payer: Mapped[str] = mapped_column(sa.String(40))
    account: Mapped[str] = mapped_column(sa.String(200))
    payload: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    not_before: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=NOW)
    # an appeal's filing deadline (the last day the payer takes it): set by `payerbot enqueue` from
    # the denial date and the payer's rule; upstream may write it; the lease works it first
    deadline: Mapped[date | None] = mapped_column(sa.Date)
    # written by the bot
    payload_digest: Mapped[str | None] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(
        sa.String(20), default=ItemState.QUEUED.value, server_default=ItemState.QUEUED.value
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200))
    lease_token: Mapped[int | None]
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_kind: Mapped[str | None] = mapped_column(sa.String(60))
    canonical_status: Mapped[str | None] = mapped_column(sa.String(40))
    result: Mapped[dict[str, Any] | None]
    confirmation_id: Mapped[str | None] = mapped_column(sa.String(200))
    submission_reference: Mapped[str | None] = mapped_column(sa.String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=NOW)
    finished_at: Mapped[datetime | None]


class ItemEvent(Base):
    """Every state change of an item, for `payerbot queue show`."""

    __tablename__ = "item_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("work_items.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_state: Mapped[str | None] = mapped_column(sa.String(20))
    to_state: Mapped[str] = mapped_column(sa.String(20))
    attempt: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(sa.String(200))
    detail: Mapped[str | None] = mapped_column(sa.Text)


class Submission(Base):
    """The exactly-once record of an appeal: intent before the click, confirmation after it."""

    __tablename__ = "submissions"
    # At most one unresolved submit per item, enforced by the database itself: a second
    # "submitting" row for an item fails to insert however the code around it goes wrong.
    __table_args__ = (
        sa.Index(
            "ix_submissions_one_open",
            "item_id",
            unique=True,
            sqlite_where=sa.text("state = 'submitting'"),
            postgresql_where=sa.text("state = 'submitting'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("work_items.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int]
    lease_token: Mapped[int]
    reference: Mapped[str] = mapped_column(sa.String(200))
    state: Mapped[str] = mapped_column(sa.String(20), default=SubmissionState.SUBMITTING.value)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    confirmation_id: Mapped[str | None] = mapped_column(sa.String(200))
    via: Mapped[str | None] = mapped_column(sa.String(20))  # "click" or "history"
    evidence_png: Mapped[str | None] = mapped_column(sa.String(500))
    evidence_png_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    evidence_html: Mapped[str | None] = mapped_column(sa.String(500))
    evidence_html_sha256: Mapped[str | None] = mapped_column(sa.String(64))


class Run(Base):
    """The light record of one portal run (steps and timings); the bundle path when one was kept."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    item_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("work_items.id", ondelete="SET NULL"), index=True
    )
    payer: Mapped[str] = mapped_column(sa.String(40))
    account: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(40))
    attempt: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(sa.String(20), default="running")
    error_kind: Mapped[str | None] = mapped_column(sa.String(60))
    error: Mapped[str | None] = mapped_column(sa.Text)
    steps: Mapped[dict[str, Any] | None]
    bundle_path: Mapped[str | None] = mapped_column(sa.String(500))
    replay_of: Mapped[str | None] = mapped_column(sa.String(40))  # set on an operator's replay of a run


class PageFingerprint(Base):
    """The last good structure of one portal page (payer + URL path), kept from successful runs.

    A page shows a few states (a search form, then its results), so a row keeps the states seen
    lately; a failed run's page is compared with the state closest to what it saw.
    """

    __tablename__ = "page_fingerprints"
    __table_args__ = (sa.UniqueConstraint("payer", "url_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payer: Mapped[str] = mapped_column(sa.String(40))
    url_path: Mapped[str] = mapped_column(sa.String(500))
    states: Mapped[list[Any]] = mapped_column(sa.JSON())
    run_id: Mapped[str | None] = mapped_column(sa.String(40))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Append-only and chained: each row's hash is a MAC (under the audit chain key) of its fields,
    its scheme and the previous hash. Rows from before migration 0003 are plain SHA-256 ("sha256")."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # gapless, set by the writer
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(sa.String(200))
    host: Mapped[str] = mapped_column(sa.String(200))
    payer: Mapped[str | None] = mapped_column(sa.String(40))
    account: Mapped[str | None] = mapped_column(sa.String(200))
    approver: Mapped[str | None] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(60))
    item_id: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(sa.String(40))
    correlation_id: Mapped[str | None] = mapped_column(sa.String(64))
    submission_id: Mapped[str | None] = mapped_column(sa.String(200))
    detail: Mapped[str | None] = mapped_column(sa.Text)
    scheme: Mapped[str] = mapped_column(sa.String(20), server_default="sha256")  # see bot.audit
    prev_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # the chain cannot fork
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)


class AuditHead(Base):
    """One row: the newest audit event's id and hash, so a deleted tail is detected."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[int]
    last_hash: Mapped[str] = mapped_column(sa.String(64))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a writer wait for the lock
    # instead of failing at once with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _private_sqlite(database: str | None) -> None:
    """A SQLite file (with its journal, WAL and shared memory) only this user can read. The file is
    made 0600 before SQLite opens it, and SQLite gives the files it adds the database's mode;
    looser ones already there are tightened. A folder made for it is 0700; an existing folder is
    left alone here (it may be shared: the data directory is tightened by ``bot.settings``)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o600))
    for suffix in ("", "-journal", "-wal", "-shm"):
        keep_private(path.with_name(path.name + suffix))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the per-dialect settings the queue relies on."""
    if url.startswith("sqlite"):
        _private_sqlite(sa.engine.make_url(url).database)
        # We issue BEGIN IMMEDIATE ourselves for leases; pysqlite's own transaction handling
        # would defer the BEGIN and break that, so it is switched off (autocommit at driver level).
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "isolation_level": None}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql(conn.info.pop("begin_sql", "BEGIN"))

        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)
