"""The audit trail: append-only, hash-chained, apart from the debug logs.

Each row's hash is SHA-256 over the previous row's hash and the row's own fields, so editing a row
breaks its hash and deleting one breaks the next row's link. ``prev_hash`` is unique, so two writers
can never fork the chain, and ``audit_head`` holds the newest row's id and hash, so deleting the
newest rows is detected too. The chain has no secret key: it shows tampering by anyone who does not
also recompute every later hash; each appended hash is also written to the JSON log, an anchor
outside the database.
"""

from __future__ import annotations

import hashlib
import json
import socket
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from tenacity import retry, retry_if_exception_type, stop_after_attempt

from bot.clock import Clock, SystemClock
from bot.db import AuditEvent, AuditHead
from bot.logging import get_logger

GENESIS = "0" * 64
_ADVISORY_KEY = 0x7061796572626F74  # "payerbot": serialises appends across PostgreSQL sessions

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


def row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    material = {k: fields.get(k) for k in CHAINED_FIELDS}
    if isinstance(material["at"], datetime):
        material["at"] = material["at"].isoformat()
    body = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None


class AuditTrail:
    """Appends audit events and verifies the chain."""

    def __init__(
        self,
        engine: Engine,
        *,
        actor: str,
        host: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.actor = actor
        self.host = host or socket.gethostname()
        self.clock = clock or SystemClock()

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
    ) -> int:
        fields: dict[str, Any] = {
            "at": self.clock.now().replace(microsecond=0),
            "actor": self.actor,
            "host": self.host,
            "payer": payer,
            "account": account,
            "approver": approver,
            "action": str(action),
            "item_id": item_id,
            "outcome": outcome,
            "correlation_id": correlation_id,
            "submission_id": submission_id,
            "detail": json.dumps(detail, sort_keys=True, default=str) if detail else None,
        }
        return self._append_retrying(fields)

    @retry(
        retry=retry_if_exception_type(IntegrityError),  # a concurrent append took our link
        stop=stop_after_attempt(5),
        reraise=True,
    )
    def _append_retrying(self, fields: dict[str, Any]) -> int:
        return self._append(fields)

    def _append(self, fields: dict[str, Any]) -> int:
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.info["begin_sql"] = "BEGIN IMMEDIATE"
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_KEY)))
                head = conn.execute(sa.select(AuditHead.last_id, AuditHead.last_hash)).first()
                prev_id, prev_hash = (head[0], head[1]) if head else (0, GENESIS)
                row_id = prev_id + 1
                digest = row_hash(prev_hash, {**fields, "id": row_id})
                conn.execute(
                    sa.insert(AuditEvent).values(id=row_id, prev_hash=prev_hash, hash=digest, **fields)
                )
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

    def verify(self) -> VerifyReport:
        """Walk the chain; name the first row whose hash or link is wrong, or the missing tail."""
        prev_hash, expected_id, checked = GENESIS, 1, 0
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(AuditEvent).order_by(AuditEvent.id)).mappings()
            for row in rows:
                if row["id"] != expected_id:
                    return VerifyReport(False, checked, expected_id, f"row {expected_id} is missing")
                if row["prev_hash"] != prev_hash:
                    return VerifyReport(False, checked, row["id"], "its link to the previous row is broken")
                if row_hash(prev_hash, dict(row)) != row["hash"]:
                    return VerifyReport(False, checked, row["id"], "its content does not match its hash")
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
        return VerifyReport(True, checked)
