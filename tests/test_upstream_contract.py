"""The queue tables are an interface: an upstream system's plain INSERT is enough, whatever its
session's time zone, and the results it reads back are where the README says."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine

from bot.clock import SystemClock
from bot.queue import Queue
from bot.settings import Settings
from portals import check_request
from vault import Keyring, Vault


def test_a_minimal_upstream_insert_is_leased_and_answered(engine: Engine) -> None:
    Vault(engine, Keyring.generate()).add_account(
        "meridian",
        "billing",
        username="u",
        password="p",
        second_factor="totp",
        totp_secret="JBSWY3DPEHPK3PXP",
    )
    payload = json.dumps({"claim_number": "MH2026000042"})
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'America/New_York'")  # a pharmacy on the east coast
        marker = "%s" if conn.dialect.name == "postgresql" else "?"  # each driver's own placeholder
        conn.exec_driver_sql(
            "INSERT INTO work_items (idempotency_key, kind, payer, account, payload) "
            "VALUES ('pharmacy-17', 'claim_status', 'meridian', 'billing', " + marker + ")",
            (payload,),
        )
    queue = Queue(engine, Settings(), clock=SystemClock(), check=check_request)
    batch = queue.lease_batch("worker-1")
    assert batch is not None, "an item inserted just now is due now"
    (item,) = batch.items
    assert (item.kind, item.request.claim_number) == ("claim_status", "MH2026000042")  # type: ignore[union-attr]
    queue.mark_running(item)
    queue.complete(item, canonical_status="F1", result={"category": "F1"})
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT state, canonical_status, confirmation_id, finished_at FROM work_items "
            "WHERE idempotency_key = 'pharmacy-17'"
        ).one()
    assert (row[0], row[1], row[2]) == ("done", "F1", None)
    assert row[3] is not None
