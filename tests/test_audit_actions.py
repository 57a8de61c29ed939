"""The audit trail of real worker runs: one record per action with every field, tampering named.

One worker process logs in, reads a claim status, submits an appeal and hands an item whose status
wording no table knows to a person. Each of those actions leaves exactly one audit record carrying
who (service identity, host, account, approver), what, which item, when (UTC), the outcome and the
correlation and submission ids; `payerbot audit verify` passes, and fails naming the row once any
row is edited or deleted.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.audit import AuditTrail
from bot.db import AuditEvent, Run
from tests.e2e_support import (
    APPROVER,
    Workspace,
    audit_rows,
    enqueue_appeals,
    enqueue_status,
    item_rows,
    ledger_by_reference,
    make_workspace,
    run_cli,
    run_worker,
    seed_account,
)
from tests.fixtures.sandbox import SandboxPortal

IDENTITY = "payerbot@audit-test"


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, db_url)
    workspace.config.update(record="never", service_identity=IDENTITY)
    yield workspace
    workspace.dispose()


def _one(rows: list[dict[str, Any]], action: str) -> dict[str, Any]:
    found = [r for r in rows if r["action"] == action]
    assert len(found) == 1, (action, found)
    return found[0]


@pytest.mark.slow
def test_each_action_of_a_run_leaves_one_complete_record_and_tampering_is_named_at_its_row(
    ws: Workspace, meridian_sandbox: SandboxPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    portal = meridian_sandbox
    account, _login = seed_account(ws, portal.state)
    [status_id] = enqueue_status(ws, "meridian", account, [portal.state.add_claim("Paid").claim_number])
    [appeal_id] = enqueue_appeals(ws, "meridian", account, [portal.state.add_claim("Denied")])
    # a claim worded in a way no table knows (and no model is configured): a person must look
    paid = portal.state.add_claim("Paid")
    unknown = paid.model_copy(update={"wording": "Escalated to the medical director"})
    # undone at teardown: other tests read every seeded wording off the shared sandbox
    monkeypatch.setitem(portal.state.claims, unknown.claim_number, unknown)
    [handoff_id] = enqueue_status(ws, "meridian", account, [unknown.claim_number])
    before = datetime.now(UTC).replace(microsecond=0)

    run = run_worker(ws)

    assert run.returncode == 0, run.describe()
    after = datetime.now(UTC) + timedelta(seconds=1)
    items = {r["id"]: r for r in item_rows(ws)}
    assert [items[i]["state"] for i in (status_id, appeal_id, handoff_id)] == ["done", "done", "needs_human"]
    rows = audit_rows(ws)
    assert Counter(r["action"] for r in rows) == {
        "vault_read": 1,
        "login": 1,
        "status_read": 1,
        "submission_intent": 1,
        "submission": 1,
        "human_handoff": 1,
    }, [(r["action"], r["outcome"]) for r in rows]
    for row in rows:  # who, when, where
        assert (row["actor"], row["host"]) == (IDENTITY, socket.gethostname()), row
        assert (row["payer"], row["account"]) == ("meridian", account), row
        assert before <= row["at"] <= after and row["at"].utcoffset() == timedelta(0), row
        assert row["outcome"] and row["hash"] and row["prev_hash"], row
    with ws.engine.connect() as conn:
        run_ids = set(conn.execute(sa.select(Run.id)).scalars())

    vault_read, login = _one(rows, "vault_read"), _one(rows, "login")
    assert vault_read["outcome"] == "ok" and vault_read["id"] < login["id"]
    assert login["outcome"] == "ok" and login["item_id"] is None

    status = _one(rows, "status_read")
    assert (status["item_id"], status["outcome"]) == (status_id, items[status_id]["canonical_status"])
    assert status["correlation_id"] in run_ids
    assert json.loads(status["detail"]) == {"source": "table", "confidence": 1.0}

    intent, submission = _one(rows, "submission_intent"), _one(rows, "submission")
    appeal = items[appeal_id]
    assert (intent["item_id"], intent["approver"], intent["outcome"]) == (appeal_id, APPROVER, "submitting")
    assert intent["submission_id"] == appeal["submission_reference"]
    assert (submission["item_id"], submission["approver"]) == (appeal_id, APPROVER)
    assert submission["submission_id"] == appeal["confirmation_id"]
    assert ledger_by_reference(portal.state)[appeal["submission_reference"]] == [appeal["confirmation_id"]]
    assert submission["correlation_id"] == intent["correlation_id"] and intent["correlation_id"] in run_ids
    assert intent["id"] < submission["id"]

    handoff = _one(rows, "human_handoff")
    assert (handoff["item_id"], handoff["outcome"]) == (handoff_id, "needs_human")
    assert json.loads(handoff["detail"])["error_kind"] == "UnmappedStatus"

    # -- the chain: intact, then each row edited or deleted in turn is named
    verified = run_cli(ws, "audit", "verify")
    assert verified.returncode == 0, verified.describe()
    assert f"intact: {len(rows)} records" in verified.stdout
    trail = AuditTrail(ws.engine, actor=IDENTITY)
    for row in rows:
        _set(ws, row["id"], outcome="forged")
        report = trail.verify()
        assert (report.ok, report.first_broken_id) == (False, row["id"]), report
        _set(ws, row["id"], outcome=row["outcome"])
    for row in rows[:-1]:
        _delete(ws, row["id"])
        report = trail.verify()
        assert (report.ok, report.first_broken_id) == (False, row["id"]), report
        _insert(ws, row)
    assert trail.verify().ok

    middle = rows[len(rows) // 2]
    _set(ws, middle["id"], approver="Someone Else")
    edited = run_cli(ws, "audit", "verify")
    assert edited.returncode == 1, edited.describe()
    assert f"broken at row {middle['id']}" in edited.stderr and "does not match its hash" in edited.stderr
    _set(ws, middle["id"], approver=middle["approver"])

    _delete(ws, middle["id"])
    deleted = run_cli(ws, "audit", "verify")
    assert deleted.returncode == 1, deleted.describe()
    assert f"broken at row {middle['id']}" in deleted.stderr and "is missing" in deleted.stderr
    _insert(ws, middle)

    last = rows[-1]
    _delete(ws, last["id"])
    tail = run_cli(ws, "audit", "verify")
    assert tail.returncode == 1, tail.describe()
    assert f"broken at row {last['id']}" in tail.stderr and f"rows after {last['id'] - 1}" in tail.stderr


def _set(ws: Workspace, row_id: int, **values: Any) -> None:
    with ws.engine.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == row_id).values(**values))


def _delete(ws: Workspace, row_id: int) -> None:
    with ws.engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == row_id))


def _insert(ws: Workspace, row: dict[str, Any]) -> None:
    with ws.engine.begin() as conn:
        conn.execute(sa.insert(AuditEvent).values(**row))
