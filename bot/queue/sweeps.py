"""Status sweeps: re-check every tracked claim and authorization whose status can still change.

A claim or PA is tracked once a status item for it has been queued. When its newest check is done
and the status is not final (not a finalized claim, not a decided authorization), a new check is
queued once the sweep interval has passed since it. Each sweep item has its own idempotency key
(the original key and the sweep's time slot), so two schedulers or a repeated tick cannot queue the
same check twice, and the history of checks stays in the table.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import WorkItem
from bot.models import ItemState, NewItem, WorkKind

# X12 278 HCR01 codes (bot.status.Hcr01) that end an authorization's story: certified in total,
# in part or modified, not certified, cancelled, or NR (payerbot's own: no authorization required).
# A4 (pended) and CT (contact payer) can still change, so they are checked again.
FINAL_PA_DECISIONS = frozenset({"A1", "A2", "A3", "A6", "C", "NR"})


# A claim returned as unprocessable (A3) or rejected for missing, invalid or related information
# (A6-A8) never changes again: a person corrects it and submits a new claim, which is tracked anew.
DEAD_ON_ARRIVAL = frozenset({"A3", "A6", "A7", "A8"})


def is_final(kind: str, canonical_status: str | None) -> bool:
    """Whether a status can no longer change. A finalized claim (F) or a returned one is final;
    E1/E2 ("try later", "not responding") and every pending or acknowledged one is checked again,
    and so is A4 (not found), which a claim in transit to the payer may still become."""
    if canonical_status is None:
        return False
    if kind == WorkKind.CLAIM_STATUS:
        return canonical_status.startswith("F") or canonical_status in DEAD_ON_ARRIVAL
    return canonical_status in FINAL_PA_DECISIONS


def due_sweeps(engine: Engine, *, now: datetime, interval: timedelta) -> list[NewItem]:
    """The status checks a sweep at ``now`` should queue."""
    kinds = (WorkKind.CLAIM_STATUS.value, WorkKind.PA_STATUS.value)
    latest = (
        sa.select(
            WorkItem.payer,
            WorkItem.account,
            WorkItem.kind,
            WorkItem.payload_digest,
            sa.func.max(WorkItem.id).label("last_id"),
        )
        .where(WorkItem.kind.in_(kinds), WorkItem.payload_digest.is_not(None))
        .group_by(WorkItem.payer, WorkItem.account, WorkItem.kind, WorkItem.payload_digest)
        .subquery()
    )
    items = WorkItem.__table__
    query = (
        sa.select(items).join(latest, items.c.id == latest.c.last_id).where(items.c.state == ItemState.DONE)
    )
    slot = int(now.timestamp() // interval.total_seconds())
    out: list[NewItem] = []
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            if is_final(row["kind"], row["canonical_status"]):
                continue
            finished = row["finished_at"] or row["updated_at"]
            if finished is not None and now - finished < interval:
                continue
            base_key = str(row["idempotency_key"]).split("|sweep:", 1)[0]
            out.append(
                NewItem(
                    kind=WorkKind(row["kind"]),
                    payer=row["payer"],
                    account=row["account"],
                    payload=row["payload"],
                    idempotency_key=f"{base_key}|sweep:{slot}",
                    priority=-1,  # sweeps yield to fresh work and appeals
                )
            )
    return out
