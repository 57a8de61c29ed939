"""The only vault code that touches the database: one small function per query.

Writes run in short transactions; on SQLite they begin with ``BEGIN IMMEDIATE`` (through the
engine's ``begin_sql`` hook in ``bot.db``) so that a read-then-write never fails on a lock upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from bot.db import Account, TableRow, VaultRecord
from bot.errors import NotFound
from vault.sealing import RecordRef

RECORD = VaultRecord.__table__
ACCOUNT = Account.__table__


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.info["begin_sql"] = "BEGIN IMMEDIATE"
        with conn.begin():
            yield conn


def _account_where(payer: str, account: str) -> sa.ColumnElement[bool]:
    return sa.and_(Account.payer == payer, Account.account == account)


def _records_where(payer: str, account: str) -> sa.ColumnElement[bool]:
    return sa.and_(VaultRecord.payer == payer, VaultRecord.account == account)


def account_row(conn: Connection, payer: str, account: str) -> TableRow:
    row = conn.execute(sa.select(ACCOUNT).where(_account_where(payer, account))).first()
    if row is None:
        raise NotFound(f"no vault account {payer}/{account} (`payerbot vault list` shows them)")
    return row


def account_exists(conn: Connection, payer: str, account: str) -> bool:
    return conn.execute(sa.select(Account.id).where(_account_where(payer, account))).first() is not None


def insert_account(conn: Connection, **values: Any) -> None:
    conn.execute(sa.insert(Account).values(**values))


def update_account(conn: Connection, payer: str, account: str, **values: Any) -> None:
    result = conn.execute(sa.update(Account).where(_account_where(payer, account)).values(**values))
    if result.rowcount == 0:
        raise NotFound(f"no vault account {payer}/{account} (`payerbot vault list` shows them)")


def delete_account(conn: Connection, payer: str, account: str) -> None:
    conn.execute(sa.delete(VaultRecord).where(_records_where(payer, account)))
    if conn.execute(sa.delete(Account).where(_account_where(payer, account))).rowcount == 0:
        raise NotFound(f"no vault account {payer}/{account} (`payerbot vault list` shows them)")


def all_accounts(conn: Connection) -> list[TableRow]:
    return list(conn.execute(sa.select(ACCOUNT).order_by(Account.payer, Account.account)))


def record_summaries(
    conn: Connection, payer: str | None = None, account: str | None = None
) -> list[TableRow]:
    """(payer, account, field, key_id, updated_at) of every record, or one account's: no ciphertext."""
    cols = (VaultRecord.payer, VaultRecord.account, VaultRecord.field, VaultRecord.key_id)
    query = sa.select(*cols, VaultRecord.updated_at)
    if payer is not None and account is not None:
        query = query.where(_records_where(payer, account))
    return list(conn.execute(query))


def get_record(conn: Connection, ref: RecordRef) -> tuple[str, bytes] | None:
    row = conn.execute(
        sa.select(VaultRecord.key_id, VaultRecord.ciphertext).where(
            _records_where(ref.payer, ref.account), VaultRecord.field == ref.field
        )
    ).first()
    return None if row is None else (row.key_id, bytes(row.ciphertext))


def put_record(conn: Connection, ref: RecordRef, kid: str, blob: bytes, at: datetime) -> None:
    """Insert or replace one record (an upsert, so two writers never collide on the unique key)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(VaultRecord).values(
        payer=ref.payer, account=ref.account, field=ref.field, key_id=kid, ciphertext=blob, updated_at=at
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["payer", "account", "field"],
            set_={"key_id": kid, "ciphertext": blob, "updated_at": at},
        )
    )


def insert_record_if_absent(conn: Connection, ref: RecordRef, kid: str, blob: bytes, at: datetime) -> None:
    """Insert one record unless it exists: of two writers racing, the first one's stays."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(VaultRecord).values(
        payer=ref.payer, account=ref.account, field=ref.field, key_id=kid, ciphertext=blob, updated_at=at
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["payer", "account", "field"]))


def delete_records(conn: Connection, payer: str, account: str, fields: list[str] | None = None) -> int:
    where = _records_where(payer, account)
    if fields is not None:
        where = sa.and_(where, VaultRecord.field.in_(fields))
    return conn.execute(sa.delete(VaultRecord).where(where)).rowcount


def claim_totp_step(engine: Engine, payer: str, account: str, step: int) -> bool:
    """Atomically take ``step`` for the account: true for exactly one caller per step."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(Account)
            .where(_account_where(payer, account), Account.totp_last_step < step)
            .values(totp_last_step=step)
        )
        return result.rowcount == 1


# --- rotation -------------------------------------------------------------------------------


def record_ids_not_under(conn: Connection, kid: str) -> list[int]:
    return list(
        conn.scalars(sa.select(VaultRecord.id).where(VaultRecord.key_id != kid).order_by(VaultRecord.id))
    )


def lock_record(conn: Connection, record_id: int) -> TableRow | None:
    """The record's row, locked until the transaction ends (SQLite: BEGIN IMMEDIATE already is)."""
    return conn.execute(sa.select(RECORD).where(VaultRecord.id == record_id).with_for_update()).first()


def reseal_record(conn: Connection, record_id: int, kid: str, blob: bytes) -> None:
    conn.execute(
        sa.update(VaultRecord).where(VaultRecord.id == record_id).values(key_id=kid, ciphertext=blob)
    )


def key_usage(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(VaultRecord.key_id, sa.func.count()).group_by(VaultRecord.key_id))
    return {kid: int(count) for kid, count in rows}
