"""Builders shared by the queue tests; their fixtures are in ``tests/fixtures/queue.py``."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import Account, WorkItem
from bot.models import NewItem, WorkKind

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


def appeal_payload(n: int = 1) -> dict[str, Any]:
    return {
        "claim_number": f"MH{n:010d}",
        "reason": "medical_necessity",
        "explanation": "Documented need; see letter.",
        "letter": {"path": "letters/letter.pdf", "sha256": LETTER_SHA256},  # under PAYERBOT_DOCUMENTS_DIR
        "approved_by": "R. Approver",
        "approved_at": "2026-01-05T08:00:00+00:00",
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
