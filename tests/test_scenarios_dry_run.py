"""`payerbot worker --dry-run`: every item walked to its last page before any write, the submission
stopped before its click, every run's bundle kept, and the queue and the portal's ledger unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.db import AuditEvent, Submission, WorkItem
from bot.queue import submission_reference
from bot.recording.recorder import Bundle
from bot.recording.store import RunStore
from sandbox import SandboxServer
from scenarios.catalog.workspace import Workspace
from tests.scenarios_support import appeal_item, claim_item, enqueue, env_of, payerbot


def _items(engine: sa.Engine) -> list[tuple[object, ...]]:
    """What a dry run must leave as it was: everything but the lease bookkeeping's timestamps."""
    columns = [c for c in WorkItem.__table__.c if c.name != "updated_at"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*columns).order_by(WorkItem.id))]


def test_dry_run_walks_a_submission_to_its_review_page_keeps_the_bundle_and_changes_nothing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    state = sandbox.portal("meridian")
    state.reset()
    ws = Workspace.create(tmp_path)
    try:
        account, _ = ws.seed_account(state)
        denied, pending = state.add_claim("Denied"), state.add_claim("In process")
        appeal_id, status_id = enqueue(
            ws, appeal_item(ws, account, denied.claim_number), claim_item(account, pending.claim_number)
        )
        engine = ws.services.engine
        items_before = _items(engine)
        ledger_before = len(state.ledger_entries())

        done = payerbot(env_of(ws), "worker", "--dry-run")
        assert done.returncode == 0, done.stderr[-2000:]
        assert "'dry_run': 2" in done.stdout

        # the queue: the same rows (state, attempts, errors, results); no submission, no intent
        assert _items(engine) == items_before
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(Submission)).scalar() == 0
            actions = set(conn.execute(sa.select(AuditEvent.action)).scalars())
        assert not actions & {"submission_intent", "submission", "status_read", "item_failed"}
        # the portal: nothing submitted
        assert len(state.ledger_entries()) == ledger_before
        view = ws.services.queue.get(appeal_id)
        assert state.ledger_entries(reference=submission_reference(view.id, view.idempotency_key)) == []

        runs = {r["item_id"]: r for r in RunStore(engine).list()}
        assert {runs[appeal_id]["outcome"], runs[status_id]["outcome"]} == {"dry_run"}
        for item_id in (appeal_id, status_id):  # each item names the command that shows its bundle
            assert f"item {item_id}: dry_run, payerbot scenarios show {runs[item_id]['id']}" in done.stdout
        bundle = Bundle.load(Path(runs[appeal_id]["bundle_path"]))
        assert bundle.info.dry_run and bundle.error_kind == "DryRunStop"
        last = bundle.steps[-1]
        assert (last.kind.value, last.target, last.url_path, last.outcome.value) == (
            "expect",
            "submit",
            "/appeals/new/review",
            "ok",
        )
        assert {"trace", "har", "dom"} <= set(bundle.files)
        status_bundle = Bundle.load(Path(runs[status_id]["bundle_path"]))
        assert status_bundle.error is not None and "read P1" in status_bundle.error
        listed = payerbot(env_of(ws), "scenarios", "list", "--failed", "--json")
        assert listed.returncode == 0 and listed.stdout.strip() == "[]"  # a dry run is not a failure
    finally:
        ws.close()


@pytest.fixture(autouse=True)
def _portal_reset(sandbox: SandboxServer) -> None:
    sandbox.portal("meridian").reset()
