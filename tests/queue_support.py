"""Builders shared by the queue tests; their fixtures are in ``tests/fixtures/queue.py``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import Account, WorkItem
from bot.models import NewItem, WorkKind
from bot.queue import Queue

PAYER = "meridian"
LETTER_SHA256 = hashlib.sha256(b"%PDF-1.4 approved letter").hexdigest()  # the file need not exist to queue


def add_account(engine: Engine, account: str, *, payer: str = PAYER, enabled: bool = True) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(Account.__table__).values(payer=payer, account=account, enabled=enabled))


def claim(n: int, account: str = "acct-1", *, key: str | None = None, priority: int = 0) -> NewItem:
    return NewItem(
        kind=WorkKind.CLAIM_STATUS,
        payer=PAYER,
        account=account,
        payload={"claim_number": f"MH{n:010d}"},
        idempotency_key=key or f"claim-{account}-{n}",
        priority=priority,
    )


APPEAL_NPI = "1234567893"  # the CMS example NPI: its Luhn check digit is right


def appeal_fields(approved_at: datetime | None = None) -> dict[str, Any]:
    """What every payer's appeal form asks for beyond the claim (``Portal.appeal_requires``), and
    the approval: approved at ``approved_at`` (now when not given), the denial ten days before."""
    approved = approved_at or datetime.now(UTC)
    return {
        "approved_at": approved.isoformat(),
        "denial_date": (approved.date() - timedelta(days=10)).isoformat(),
        "member_id": "M00001",
        "billing_npi": APPEAL_NPI,
    }


def appeal_payload(n: int = 1) -> dict[str, Any]:
    return {
        "claim_number": f"MH{n:010d}",
        "reason": "medical_necessity",
        "explanation": "Documented need; see letter.",
        "letter": {"path": "letters/letter.pdf", "sha256": LETTER_SHA256},  # under PAYERBOT_DOCUMENTS_DIR
        "approved_by": "R. Approver",
        **appeal_fields(datetime(2026, 1, 5, 8, tzinfo=UTC)),
    }


def appeal(n: int = 1, account: str = "acct-1") -> NewItem:
    return NewItem(
        kind=WorkKind.APPEAL_SUBMISSION,
        payer=PAYER,
        account=account,
        payload=appeal_payload(n),
        idempotency_key=f"appeal-{n}",
    )


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    """Every work item's row, for "nothing changed" assertions."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(WorkItem.__table__).order_by(WorkItem.id))]


def state_of(engine: Engine, item_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.select(WorkItem.state).where(WorkItem.id == item_id)).scalar_one())


def finish(queue: Queue, item: NewItem, canonical_status: str, result: dict[str, Any]) -> None:
    """Queue ``item``, lease and complete it with this status: a check already done."""
    queue.enqueue([item])
    batch = queue.lease_batch("test-worker")
    assert batch is not None
    for leased in batch.items:
        queue.mark_running(leased)
        queue.complete(leased, canonical_status=canonical_status, result=result)
    queue.release(batch)
