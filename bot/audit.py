"""The audit trail: append-only, chained by a keyed MAC, apart from the debug logs.

Each row's hash is HMAC-SHA256, under the audit chain key, over the previous row's hash and the
row's own fields (its scheme included), so editing a row breaks its MAC and deleting one breaks the
next row's link, and a database writer without the vault key can recompute neither. The key is a
random 256-bit secret sealed in the vault (``vault.chainkey``): it never changes, so rows keep
verifying across key rotations. ``prev_hash`` is unique, so two writers can never fork the chain.

Rows written before the key (migration 0003) are plain SHA-256 and keep verifying; they are
allowed only before the first keyed row, whose MAC covers the last of them.

The newest rows can still be deleted and ``audit_head`` pointed at what is left: nothing in the
database says they existed. A checkpoint (the head's id and hash, written down outside the
database by ``payerbot audit checkpoint``) is what catches that: ``verify`` checks that every
checkpointed row is still there with the same hash. Each appended hash is also logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pwd
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from tenacity import retry, retry_if_exception_type, stop_after_attempt

from bot.clock import Clock, SystemClock
from bot.db import AuditEvent, AuditHead
from bot.errors import ConfigError, VaultKeyError
from bot.logging import get_logger

GENESIS = "0" * 64
UNKEYED = "sha256"  # rows written before migration 0003
KEYED = "hmac-sha256"
_ADVISORY_KEY = 0x7061796572626F74  # "payerbot": serialises appends across PostgreSQL sessions
_MAC_CONTEXT = b"payerbot-audit-chain-v1\x00"  # this key MACs audit rows and nothing else

log = get_logger()


class AuditAction(StrEnum):
    LOGIN = "login"
    VAULT_READ = "vault_read"
    SESSION_REUSED = "session_reused"
    STATUS_READ = "status_read"
    SUBMISSION_INTENT = "submission_intent"
    SUBMISSION = "submission"
    RECONCILE = "reconcile"
    HUMAN_HANDOFF = "human_handoff"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    ITEM_FAILED = "item_failed"
    OPERATOR = "operator"
    # operators' commands (the actor is ``operator:<OS user>``)
    QUEUE_RETRY = "queue_retry"
    QUEUE_CANCEL = "queue_cancel"
    VAULT_ADD = "vault_add"
    VAULT_UPDATE = "vault_update"
    VAULT_REMOVE = "vault_remove"
    SESSION_CLEARED = "session_cleared"
    VAULT_ROTATE = "vault_rotate"
    VAULT_RETIRE = "vault_retire"
    REPLAY_SUBMIT = "replay_submit"


CHAINED_FIELDS = (
    "id",
    "at",
    "actor",
    "host",
    "payer",
    "account",
    "approver",
    "action",
    "item_id",
    "outcome",
    "correlation_id",
    "submission_id",
    "detail",
)


KEYED_FIELDS = (*CHAINED_FIELDS, "scheme")  # what a keyed row's MAC covers, with prev_hash


def _body(fields: dict[str, Any], names: Sequence[str]) -> str:
    material = {k: fields.get(k) for k in names}
    if isinstance(material["at"], datetime):
        material["at"] = material["at"].isoformat()
    return json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)


def row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The unkeyed hash of the rows written before migration 0003 (anyone can recompute it)."""
    return hashlib.sha256((prev_hash + _body(fields, CHAINED_FIELDS)).encode()).hexdigest()


def row_mac(secret: bytes, prev_hash: str, fields: dict[str, Any]) -> str:
    """A keyed row's hash: HMAC-SHA256 over the previous hash, the fields and the scheme."""
    message = _MAC_CONTEXT + (prev_hash + _body(fields, KEYED_FIELDS)).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def operator_actor() -> str:
    """``operator:<name>`` of the operating-system user running this process.

    From the effective uid, not ``$USER`` or ``$LOGNAME``, which anyone can set to any name.
    """
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (some containers)
        name = f"uid{uid}"
    return f"operator:{name}"


@dataclass(frozen=True)
class ChainKey:
    """The audit chain key, and the first row it chained (unkeyed rows may only come before it)."""

    secret: bytes = field(repr=False)
    first_keyed_id: int


class ChainKeyStore(Protocol):
    """Where the chain key is kept (``vault.chainkey.VaultChainKeyStore``), read through ``conn``."""

    def load(self, conn: Connection) -> ChainKey | None: ...

    def create(self, conn: Connection, first_keyed_id: int) -> ChainKey: ...


@dataclass(frozen=True)
class AuditEntry:
    """One event to append: what happened, to what, with what outcome (the trail adds who and when)."""

    action: AuditAction | str
    outcome: str
    payer: str | None = None
    account: str | None = None
    approver: str | None = None
    item_id: int | None = None
    correlation_id: str | None = None
    submission_id: str | None = None
    detail: dict[str, Any] | None = None
    actor: str | None = None  # default: the trail's own (the service identity)


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head as written down outside the database: one JSON line."""

    id: int
    hash: str
    at: str
    where: str = field(default="", compare=False)  # the file and line it was read from

    def line(self) -> str:
        return json.dumps({"id": self.id, "hash": self.hash, "at": self.at})


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append one checkpoint line to ``path``, created 0600 (only its owner may read or add)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        os.fchmod(fd, 0o600)
        out.write(checkpoint.line() + "\n")
        out.flush()
        os.fsync(fd)


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """Every checkpoint line of ``path`` (blank lines skipped); a bad line is named."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read the checkpoint file {path}: {reason}") from None
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path} line {number}"
        try:
            data = json.loads(raw)
            found.append(Checkpoint(int(data["id"]), str(data["hash"]), str(data["at"]), where))
        except (ValueError, TypeError, KeyError):
            raise ConfigError(
                f'{where}: not an audit checkpoint (one JSON object with "id", "hash" and "at")'
            ) from None
    return found


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    last_id: int = 0  # the newest row checked, and its hash: what a checkpoint writes down
    last_hash: str = GENESIS


class AuditTrail:
    """Appends audit events and verifies the chain.

    ``key`` keeps the chain key; it is read (or, before the first keyed row, made) on first use and
    then held, so every process that appends or verifies needs the vault keyring.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        actor: str,
        key: ChainKeyStore,
        host: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.actor = actor
        self.host = host or socket.gethostname()
        self.clock = clock or SystemClock()
        self._store = key
        self._key: ChainKey | None = None

    def record(
        self,
        action: AuditAction | str,
        outcome: str,
        *,
        payer: str | None = None,
        account: str | None = None,
        approver: str | None = None,
        item_id: int | None = None,
        correlation_id: str | None = None,
        submission_id: str | None = None,
        detail: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> int:
        """Append one event in its own transaction; returns its row id."""
        entry = AuditEntry(
            action, outcome, payer, account, approver, item_id, correlation_id, submission_id, detail, actor
        )
        return self._append_retrying(entry)

    @retry(
        retry=retry_if_exception_type(IntegrityError),  # a concurrent append took our link
        stop=stop_after_attempt(5),
        reraise=True,
    )
    def _append_retrying(self, entry: AuditEntry) -> int:
        with self._locked() as conn:
            return self.append_in(conn, entry)

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """A write transaction of its own that holds the chain's append lock."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.info["begin_sql"] = "BEGIN IMMEDIATE"
            with conn.begin():
                yield conn

    def ready(self) -> None:
        """Load (or make) the chain key now, so a command fails before it changes anything."""
        with self._locked() as conn:
            self._lock(conn)
            head = conn.execute(sa.select(AuditHead.last_id)).scalar()
            self._chain_key(conn, (head or 0) + 1)

    @staticmethod
    def _lock(conn: Connection) -> None:
        # SQLite: the caller's transaction began IMMEDIATE, so it already holds the one write lock
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_KEY)))

    def _chain_key(self, conn: Connection, next_id: int) -> ChainKey:
        if self._key is not None:
            return self._key
        key = self._store.load(conn)
        if key is None:
            keyed = conn.execute(sa.select(AuditEvent.id).where(AuditEvent.scheme != UNKEYED).limit(1))
            if keyed.first() is not None:
                # a new key could not verify the rows already keyed: refuse rather than fork
                raise VaultKeyError(
                    "the audit chain key (vault record _audit/chain/key) is missing while the chain "
                    "holds keyed rows; restore it from a backup of vault_records"
                )
            key = self._store.create(conn, next_id)
        self._key = key
        return key

    def _fields(self, entry: AuditEntry) -> dict[str, Any]:
        return {
            "at": self.clock.now().replace(microsecond=0),
            "actor": entry.actor or self.actor,
            "host": self.host,
            "payer": entry.payer,
            "account": entry.account,
            "approver": entry.approver,
            "action": str(entry.action),
            "item_id": entry.item_id,
            "outcome": entry.outcome,
            "correlation_id": entry.correlation_id,
            "submission_id": entry.submission_id,
            "detail": json.dumps(entry.detail, sort_keys=True, default=str) if entry.detail else None,
            "scheme": KEYED,
        }

    def append_in(self, conn: Connection, entry: AuditEntry) -> int:
        """Append inside the caller's write transaction (on SQLite begun IMMEDIATE), so the event
        commits or rolls back with the change it records; returns its row id."""
        self._lock(conn)
        head = conn.execute(sa.select(AuditHead.last_id, AuditHead.last_hash)).first()
        prev_id, prev_hash = (head[0], head[1]) if head else (0, GENESIS)
        row_id = prev_id + 1
        key = self._chain_key(conn, row_id)
        fields = {**self._fields(entry), "id": row_id}
        digest = row_mac(key.secret, prev_hash, fields)
        conn.execute(sa.insert(AuditEvent).values(prev_hash=prev_hash, hash=digest, **fields))
        if head:
            conn.execute(sa.update(AuditHead).values(last_id=row_id, last_hash=digest))
        else:
            conn.execute(sa.insert(AuditHead).values(id=1, last_id=row_id, last_hash=digest))
        log.info(
            "audit",
            action=fields["action"],
            outcome=fields["outcome"],
            item_id=fields["item_id"],
            count=row_id,
            evidence_sha256=digest,
        )
        return row_id

    # -- verification ---------------------------------------------------------------------------

    def verify(self, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
        """Walk the chain; name the first row whose hash, link or scheme is wrong, the missing tail,
        or the first row a checkpoint holds that is gone or changed."""
        wanted = {c.id for c in checkpoints}
        seen: dict[int, str] = {}
        with self.engine.connect() as conn:
            report = self._walk(conn, wanted, seen)
        if not report.ok:
            return report
        return _against_checkpoints(report, checkpoints, seen)

    def _walk(self, conn: Connection, wanted: set[int], seen: dict[int, str]) -> VerifyReport:
        key = self._key or self._store.load(conn)  # None: no keyed row was ever written
        prev_hash, expected_id, checked = GENESIS, 1, 0
        for row in conn.execute(sa.select(AuditEvent).order_by(AuditEvent.id)).mappings():
            if row["id"] != expected_id:
                return VerifyReport(False, checked, expected_id, f"row {expected_id} is missing")
            if row["prev_hash"] != prev_hash:
                return VerifyReport(False, checked, row["id"], "its link to the previous row is broken")
            problem = _row_problem(dict(row), prev_hash, key)
            if problem:
                return VerifyReport(False, checked, row["id"], problem)
            if row["id"] in wanted:
                seen[row["id"]] = row["hash"]
            prev_hash, expected_id, checked = row["hash"], expected_id + 1, checked + 1
        head = conn.execute(sa.select(AuditHead.last_id, AuditHead.last_hash)).first()
        last_id = expected_id - 1
        if head is None:
            if checked:
                return VerifyReport(False, checked, 1, "the chain head record is missing")
            return VerifyReport(True, 0)
        if head[0] != last_id or head[1] != prev_hash:
            return VerifyReport(
                False, checked, last_id + 1, f"rows after {last_id} are missing (the head says {head[0]})"
            )
        return VerifyReport(True, checked, last_id=last_id, last_hash=prev_hash)

    def checkpoint(self) -> Checkpoint:
        """The verified head, to be kept outside the database; refused on a broken or empty chain."""
        report = self.verify()
        if not report.ok:
            raise ConfigError(
                f"no checkpoint of a broken audit trail: row {report.first_broken_id}: {report.reason}"
            )
        if not report.checked:
            raise ConfigError("the audit trail is empty: there is nothing to checkpoint yet")
        at = self.clock.now().replace(microsecond=0).isoformat()
        return Checkpoint(report.last_id, report.last_hash, at)


def _row_problem(row: dict[str, Any], prev_hash: str, key: ChainKey | None) -> str | None:
    """Why a row (whose link is right) is not what was written, or None."""
    scheme = row["scheme"]
    if scheme == UNKEYED:
        if key is not None and row["id"] >= key.first_keyed_id:
            return f"it is unkeyed (sha256), but the chain is keyed from row {key.first_keyed_id} on"
        expected = row_hash(prev_hash, row)
    elif scheme == KEYED:
        if key is None:
            return "it is keyed, but the audit chain key is not in the vault"
        if row["id"] < key.first_keyed_id:
            return f"it is keyed, but the chain key was made for row {key.first_keyed_id}"
        expected = row_mac(key.secret, prev_hash, row)
    else:
        return f"its scheme {str(scheme)[:20]!r} is not one payerbot writes"
    if not hmac.compare_digest(expected, str(row["hash"])):
        return "its content does not match its hash"
    return None


def _against_checkpoints(
    report: VerifyReport, checkpoints: Sequence[Checkpoint], seen: dict[int, str]
) -> VerifyReport:
    """The chain verified on its own; now every checkpointed row must still be there, unchanged."""
    for checkpoint in sorted(checkpoints, key=lambda c: c.id):
        where = checkpoint.where or "the checkpoint"
        if checkpoint.id > report.last_id:
            first = report.last_id + 1
            gone = f"row {first} is" if first == checkpoint.id else f"rows {first} to {checkpoint.id} are"
            return replace(
                report,
                ok=False,
                first_broken_id=first,
                reason=f"{gone} missing: {where} names row {checkpoint.id}, "
                f"but the chain ends at row {report.last_id}",
            )
        if not hmac.compare_digest(seen.get(checkpoint.id, ""), checkpoint.hash):
            return replace(
                report,
                ok=False,
                checked=checkpoint.id - 1,
                first_broken_id=checkpoint.id,
                reason=f"its hash is not the hash {where} holds",
            )
    return report
