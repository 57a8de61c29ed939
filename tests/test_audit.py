"""The audit trail: one record per action with every field, and tampering named at its row."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.audit import AuditAction, AuditTrail
from bot.clock import ManualClock
from bot.db import AuditEvent


def _trail(engine: Engine) -> AuditTrail:
    return AuditTrail(engine, actor="payerbot@test", host="host-a", clock=ManualClock())


def _fill(trail: AuditTrail, n: int = 5) -> None:
    for i in range(n):
        trail.record(
            AuditAction.STATUS_READ,
            "ok",
            payer="meridian",
            account="acct",
            item_id=i + 1,
            correlation_id=f"run-{i}",
            detail={"canonical_status": "F1"},
        )


def test_each_record_keeps_every_field_and_the_chain_verifies(engine: Engine) -> None:
    trail = _trail(engine)
    trail.record(
        AuditAction.SUBMISSION,
        "confirmed",
        payer="meridian",
        account="acct",
        approver="Dr. Approver",
        item_id=9,
        correlation_id="run-9",
        submission_id="MA-123",
    )
    with engine.connect() as conn:
        row = conn.execute(sa.select(AuditEvent)).mappings().one()
    assert row["actor"] == "payerbot@test" and row["host"] == "host-a"
    assert (row["action"], row["outcome"], row["approver"]) == ("submission", "confirmed", "Dr. Approver")
    assert (row["item_id"], row["submission_id"], row["correlation_id"]) == (9, "MA-123", "run-9")
    assert row["at"].tzinfo is not None
    report = trail.verify()
    assert report.ok and report.checked == 1


def test_an_edited_row_is_named(engine: Engine) -> None:
    trail = _trail(engine)
    _fill(trail)
    with engine.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == 3).values(outcome="forged"))
    report = trail.verify()
    assert not report.ok and report.first_broken_id == 3


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(engine: Engine) -> None:
    from bot.audit import row_hash

    trail = _trail(engine)
    _fill(trail)
    with engine.begin() as conn:
        row = dict(conn.execute(sa.select(AuditEvent).where(AuditEvent.id == 2)).mappings().one())
        row["outcome"] = "forged"
        conn.execute(
            sa.update(AuditEvent)
            .where(AuditEvent.id == 2)
            .values(outcome="forged", hash=row_hash(row["prev_hash"], row))
        )
    report = trail.verify()
    assert not report.ok and report.first_broken_id == 3


def test_a_deleted_row_is_named(engine: Engine) -> None:
    trail = _trail(engine)
    _fill(trail)
    with engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == 4))
    report = trail.verify()
    assert not report.ok and report.first_broken_id == 4


def test_a_deleted_newest_row_is_detected(engine: Engine) -> None:
    trail = _trail(engine)
    _fill(trail)
    with engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == 5))
    report = trail.verify()
    assert not report.ok and report.first_broken_id == 5


def test_concurrent_writers_never_fork_the_chain(engine: Engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    trails = [_trail(engine) for _ in range(4)]

    def write(n: int) -> None:
        for i in range(10):
            trails[n].record(AuditAction.LOGIN, "ok", item_id=n * 100 + i)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(4)))
    report = trails[0].verify()
    assert report.ok and report.checked == 40
    with engine.connect() as conn:
        ids = conn.execute(sa.select(AuditEvent.item_id)).scalars().all()
    assert sorted(ids) == sorted(n * 100 + i for n in range(4) for i in range(10))
