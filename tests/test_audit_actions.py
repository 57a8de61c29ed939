"""The audit trail of real worker runs and of operators' commands, and its checkpoints.

One worker process logs in, reads a claim status, submits an appeal and hands an item whose status
wording no table knows to a person. Each of those actions leaves exactly one audit record carrying
who (service identity, host, account, approver), what, which item, when (UTC), the outcome and the
correlation and submission ids; `payerbot audit verify` passes, and fails naming the row once any
row is edited or deleted.

Operators' commands (queue retry and cancel, the vault's account and key commands, a replay that
submits) are chained too, under the operating-system user who ran them (not ``$USER``, which anyone
sets) and with the reason given. ``payerbot audit checkpoint`` writes the head down outside the
database, and ``audit verify --checkpoint`` catches a chain cut short with its head rewritten.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser

from bot.audit import AuditAction, AuditTrail
from bot.db import AuditEvent, AuditHead, Run
from bot.errors import AmbiguousSubmission, ReplayRefused, UnmappedStatus
from scenarios.catalog.workspace import Workspace as ScenarioWorkspace
from scenarios.replay import Replayer
from scenarios.runs import load_run
from tests.e2e_support import (
    APPROVER,
    Workspace,
    appeal_item,
    audit_rows,
    enqueue_appeals,
    enqueue_status,
    item_rows,
    ledger_by_reference,
    make_workspace,
    run_cli,
    run_worker,
    seed_account,
    submission_rows,
)
from tests.fixtures.sandbox import SandboxPortal
from tests.scenarios_support import appeal_item as scenario_appeal
from tests.scenarios_support import drain, enqueue
from vault.chainkey import VaultChainKeyStore

IDENTITY = "payerbot@audit-test"
OPERATOR = f"operator:{pwd.getpwuid(os.geteuid()).pw_name}"  # who really runs the commands
SPOOFED = {"USER": "mallory", "LOGNAME": "mallory"}  # what anyone can claim to be


@pytest.fixture
def ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, db_url)
    workspace.config.update(record="never", service_identity=IDENTITY)
    yield workspace
    workspace.dispose()


@pytest.fixture
def sqlite_ws(tmp_path: Path, sqlite_url: str) -> Iterator[Workspace]:
    """For commands whose audit record does not depend on the engine (each CLI run costs seconds)."""
    workspace = make_workspace(tmp_path, sqlite_url)
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
    trail = _trail(ws)
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


def _trail(ws: Workspace) -> AuditTrail:
    return AuditTrail(ws.engine, actor=IDENTITY, key=VaultChainKeyStore(ws.vault()))


def _operator_rows(ws: Workspace) -> list[dict[str, Any]]:
    return [r for r in audit_rows(ws) if r["actor"].startswith("operator")]


def _plain_account(ws: Workspace, account: str = "acct-op") -> str:
    """An account the queue accepts work for; no portal is reached by these tests."""
    ws.vault().add_account("meridian", account, username="u", password="p", portal_url="http://127.0.0.1:1")
    return account


# -- checkpoints ---------------------------------------------------------------------------------


def test_a_checkpoint_taken_before_a_truncation_catches_it_when_verify_alone_cannot(
    sqlite_ws: Workspace, tmp_path: Path
) -> None:
    ws = sqlite_ws
    trail = _trail(ws)
    for n in range(6):
        trail.record(AuditAction.LOGIN, "ok", payer="meridian", account="acct", correlation_id=f"run-{n}")
    kept = tmp_path / "kept" / "audit-checkpoints.jsonl"
    kept.parent.mkdir()

    taken = run_cli(ws, "audit", "checkpoint", "--append", str(kept))

    assert taken.returncode == 0, taken.describe()
    line = json.loads(taken.stdout)
    assert (line["id"], line["hash"]) == (6, audit_rows(ws)[-1]["hash"]) and line["at"], line
    assert [json.loads(x) for x in kept.read_text().splitlines()] == [line]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert run_cli(ws, "audit", "verify", "--checkpoint", str(kept)).returncode == 0

    # a database writer deletes the newest rows and points the head at the new last row
    with ws.engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id > 4))
        last_hash = conn.execute(sa.select(AuditEvent.hash).where(AuditEvent.id == 4)).scalar_one()
        conn.execute(sa.update(AuditHead).values(last_id=4, last_hash=last_hash))

    alone = run_cli(ws, "audit", "verify")
    assert alone.returncode == 0, alone.describe()  # nothing in the database says rows are gone
    caught = run_cli(ws, "audit", "verify", "--checkpoint", str(kept))
    assert caught.returncode == 1, caught.describe()
    assert "broken at row 5" in caught.stderr and "rows 5 to 6 are missing" in caught.stderr, caught.stderr


# -- operators -----------------------------------------------------------------------------------


def test_operator_queue_commands_are_chained_with_the_os_user_and_their_reason(ws: Workspace) -> None:
    account = _plain_account(ws)
    handed, cancelled = enqueue_status(ws, "meridian", account, ["MH0000000001", "MH0000000002"])
    report = ws.queue().enqueue([appeal_item(ws, "meridian", account, "MH0000000003", "appeal-op-3")])
    [appeal_id] = report.queued
    queue = ws.queue()
    batch = queue.lease_batch("worker-1", limit=10)
    assert batch is not None
    leased = {i.id: i for i in batch.items}
    queue.mark_running(leased[handed])
    queue.fail(leased[handed], UnmappedStatus("a wording no table knows"))
    queue.begin_submission(leased[appeal_id], leased[appeal_id].reference)
    queue.fail(leased[appeal_id], AmbiguousSubmission("the submit may have reached the portal"))
    queue.release(batch)
    [open_submission] = submission_rows(ws, appeal_id)

    retried = run_cli(ws, "queue", "retry", str(handed), "--reason", "wording mapped by hand", **SPOOFED)
    assert retried.returncode == 0, retried.describe()
    unexplained = run_cli(ws, "queue", "retry", str(appeal_id), "--not-submitted", **SPOOFED)
    assert unexplained.returncode == 2, unexplained.describe()
    assert "--reason" in unexplained.stderr
    assert [s["state"] for s in submission_rows(ws, appeal_id)] == ["submitting"]  # nothing changed
    checked = "portal history checked on 5 Jan: no appeal under the reference"
    not_sent = run_cli(
        ws, "queue", "retry", str(appeal_id), "--not-submitted", "--reason", checked, **SPOOFED
    )
    assert not_sent.returncode == 0, not_sent.describe()
    assert run_cli(ws, "queue", "cancel", str(cancelled), **SPOOFED).returncode == 0
    refused = run_cli(ws, "queue", "cancel", str(cancelled), "--reason", "again", **SPOOFED)
    assert refused.returncode == 2, refused.describe()  # already cancelled: changed nothing, so no record

    rows = _operator_rows(ws)
    assert [(r["action"], r["item_id"]) for r in rows] == [
        ("queue_retry", handed),
        ("queue_retry", appeal_id),
        ("queue_cancel", cancelled),
    ], rows
    for row in rows:
        assert (row["actor"], row["host"]) == (OPERATOR, socket.gethostname()), row
        assert (row["payer"], row["account"]) == ("meridian", account), row
        assert "mallory" not in row["actor"]
    details = [json.loads(r["detail"]) for r in rows]
    assert details[0]["reason"] == "wording mapped by hand" and details[0]["from_state"] == "needs_human"
    assert details[1]["reason"] == checked and details[1]["not_submitted"] == open_submission["id"]
    assert details[2]["reason"] is None
    assert run_cli(ws, "audit", "verify").returncode == 0


def test_operator_vault_commands_are_chained_with_the_os_user_and_no_secret(sqlite_ws: Workspace) -> None:
    ws = sqlite_ws
    old_kid = ws.keyring.active.kid
    secrets = {"username": "u-canary-81f2", "password": "p-canary-0c4e"}
    steps: list[tuple[list[str], str | None]] = [
        (
            [
                "add",
                "meridian",
                "acct-v",
                "--second-factor",
                "none",
                "--url",
                "http://127.0.0.1:1",
                "--stdin-json",
                "--reason",
                "new billing desk",
            ],
            json.dumps(secrets),
        ),
        (["update", "meridian", "acct-v", "--stdin-json"], json.dumps({"password": "p-canary-77aa"})),
        (["disable", "meridian", "acct-v", "--reason", "portal asked for a password reset"], None),
        (["enable", "meridian", "acct-v", "--reason", "password reset by the desk"], None),
        (["clear-session", "meridian", "acct-v"], None),
        (["keygen", "--add-to", str(ws.key_file), "--kid", "k2"], None),  # a file, not the database
        (["rotate"], None),
        (["retire", old_kid], None),
        (["remove", "meridian", "acct-v", "--yes", "--reason", "desk closed"], None),
    ]
    for args, stdin in steps:
        done = run_cli(ws, "vault", *args, stdin=stdin, **SPOOFED)
        assert done.returncode == 0, done.describe()
    refused = run_cli(ws, "vault", "enable", "meridian", "nobody", **SPOOFED)
    assert refused.returncode == 2, refused.describe()  # no such account: nothing changed, no record

    rows = _operator_rows(ws)
    assert [r["action"] for r in rows] == [
        "vault_add",
        "vault_update",
        "account_disabled",
        "account_enabled",
        "session_cleared",
        "vault_rotate",
        "vault_retire",
        "vault_remove",
    ], rows
    assert {r["actor"] for r in rows} == {OPERATOR}
    by_action = {r["action"]: (r, json.loads(r["detail"] or "{}")) for r in rows}
    for action, reason in (
        ("vault_add", "new billing desk"),
        ("account_disabled", "portal asked for a password reset"),
        ("account_enabled", "password reset by the desk"),
        ("vault_remove", "desk closed"),
    ):
        row, detail = by_action[action]
        assert (row["payer"], row["account"], detail["reason"]) == ("meridian", "acct-v", reason), row
    assert by_action["vault_update"][1]["changed"] == ["password"]
    assert by_action["vault_rotate"][1]["active_kid"] == "k2"
    assert by_action["vault_retire"][1]["kid"] == old_kid
    stored = json.dumps(audit_rows(ws), default=str)
    assert not [v for v in (*secrets.values(), "p-canary-77aa") if v in stored]
    verified = run_cli(ws, "audit", "verify")
    assert verified.returncode == 0, verified.describe()


@pytest.mark.slow
def test_a_replay_that_submits_is_chained_with_the_os_user(
    meridian_sandbox: SandboxPortal,
    browser: Browser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SPOOFED.items():
        monkeypatch.setenv(name, value)
    state = meridian_sandbox.state
    sws = ScenarioWorkspace.create(tmp_path / "replay")
    try:
        account, _login = sws.seed_account(state)
        [item_id] = enqueue(sws, scenario_appeal(sws, account, state.add_claim("Denied").claim_number))
        state.update_knobs(redesign="renamed")  # the first wizard page changed: a person must look
        [failed] = drain(sws, browser).outcomes
        state.reset()
        assert failed.state == "needs_human" and failed.run_id, failed
        run = load_run(sws.services.engine, failed.run_id)
        replayer = Replayer(sws.services, browser, out=lambda _line: None)

        sent = replayer.replay(run, allow_submit=True)
        assert sent.outcome == "ok", (sent.error_kind, sent.error)
        with pytest.raises(ReplayRefused, match="already submitted"):
            replayer.replay(run, allow_submit=True)  # refused: nothing changed, nothing recorded

        trail = sws.services.audit
        with sws.services.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(sa.select(AuditEvent).order_by(AuditEvent.id)).mappings()]
        ops = [r for r in rows if r["actor"].startswith("operator")]
        assert [(r["action"], r["item_id"], r["actor"]) for r in ops] == [
            ("queue_retry", item_id, OPERATOR),
            ("replay_submit", item_id, OPERATOR),
        ], ops
        assert json.loads(ops[1]["detail"])["run"] == run.id
        [submission] = [r for r in rows if r["action"] == "submission"]
        assert submission["id"] > ops[1]["id"] and submission["item_id"] == item_id
        assert trail.verify().ok
    finally:
        sws.close()
