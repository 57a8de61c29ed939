"""Replays of appeal submissions: nothing is sent without --allow-submit, and with it only an
approved item not yet submitted (no confirmed submission, no open "submitting" record) goes out,
through the worker's exactly-once path, once. And failed appeal and status runs whose pages showed a
canary patient leave bundles with no trace of that patient or of the account's secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser
from sqlalchemy.engine import Engine

from bot.db import PageFingerprint, Run
from bot.errors import ReplayRefused
from bot.models import ItemState
from bot.queue import Queue, submission_reference
from bot.settings import Settings
from portals import check_request
from sandbox import PortalState, SandboxAccount, SandboxServer
from sandbox.data import Patient
from scenarios.catalog.workspace import Workspace
from scenarios.replay import Replayer
from scenarios.runs import RunView, load_run
from scenarios.submit import submit_refusal
from tests.queue_support import add_account, appeal, claim
from tests.scenarios_support import appeal_item, bundle_texts, claim_item, drain, enqueue, spellings_of


@dataclass
class Appeals:
    ws: Workspace
    state: PortalState
    login: SandboxAccount
    canary: Patient
    explanation: str
    renamed_item: int
    renamed_run: RunView
    open_item: int
    open_run: RunView
    unmapped_run: RunView

    def ledger(self, item_id: int) -> int:
        view = self.ws.services.queue.get(item_id)
        return len(self.state.ledger_entries(reference=submission_reference(view.id, view.idempotency_key)))


@pytest.fixture(scope="module")
def appeals(
    sandbox: SandboxServer, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Appeals]:
    state = sandbox.portal("meridian")
    state.reset()
    ws = Workspace.create(tmp_path_factory.mktemp("appeals"))
    account, login = ws.seed_account(state)
    canary = state.add_patient(
        first_name="Ottoline",
        last_name="Quillfeather",
        member_id="MCANARY4417",
        date_of_birth=date(1961, 7, 23),
    )
    explanation = f"{canary.name} (member {canary.member_id}) needed the MRI; see the attached letter."

    # a status page showing the canary patient, then a wording no table knows: a person must look
    denied = state.add_claim("Denied", patient=canary)
    odd = denied.model_copy(update={"wording": "Referred to the medical director"})
    state.claims[odd.claim_number] = odd  # one dict store: the portal's thread sees it whole
    enqueue(ws, claim_item(account, odd.claim_number, key="unmapped"))
    unmapped = drain(ws, browser).outcomes
    assert [(o.state, o.error is not None) for o in unmapped] == [("needs_human", True)], unmapped

    # an appeal that meets renamed controls on the first wizard page: nothing sent
    plain = state.add_claim("Denied")
    [renamed_item] = enqueue(ws, appeal_item(ws, account, plain.claim_number))
    state.update_knobs(redesign="renamed")
    try:
        renamed = drain(ws, browser).outcomes
    finally:
        state.reset()
    assert [o.state for o in renamed] == ["needs_human"], renamed

    # the canary's appeal, recorded by the portal and answered with a 502: its submit stays open
    mine = state.add_claim("Denied", patient=canary)
    [open_item] = enqueue(ws, appeal_item(ws, account, mine.claim_number, explanation=explanation))
    state.update_knobs(record_then_fail="502")
    try:
        opened = drain(ws, browser).outcomes
    finally:
        state.reset()
    assert [o.state for o in opened] == ["retry_wait"], opened

    engine = ws.services.engine
    yield Appeals(
        ws,
        state,
        login,
        canary,
        explanation,
        renamed_item,
        load_run(engine, str(renamed[0].run_id)),
        open_item,
        load_run(engine, str(opened[0].run_id)),
        load_run(engine, str(unmapped[0].run_id)),
    )
    ws.close()


def test_no_canary_secret_or_patient_value_in_any_bundle_file_or_run_record(appeals: Appeals) -> None:
    vault = appeals.ws.services.vault
    account = appeals.open_run.account
    session = vault.load_session("meridian", account) or {}
    cookies = [str(c["value"]) for c in session.get("cookies", []) if len(str(c.get("value", ""))) >= 8]
    assert cookies, "the account's session should hold cookies to look for"
    canary = appeals.canary
    secrets = {appeals.login.password, str(appeals.login.totp_secret), appeals.login.username, *cookies}
    patient = spellings_of(canary.first_name, canary.last_name, canary.name, canary.member_id)
    patient |= spellings_of(canary.date_of_birth, appeals.explanation)
    forbidden = secrets | patient
    # the canary was really on the pages: typed into the appeal, shown with the claim
    assert appeals.state.ledger_entries()[-1].explanation == appeals.explanation
    scanned = 0
    for run in (appeals.open_run, appeals.unmapped_run, appeals.renamed_run):
        assert run.folder is not None, run.id
        for name, text in bundle_texts(run.folder):
            scanned += 1
            leaks = sorted(v for v in forbidden if v in text)
            assert not leaks, f"{run.id}/{name} holds {len(leaks)} canary values"
    assert scanned > 15
    # the patient's values were there and were replaced, not merely absent
    har = appeals.unmapped_run.file("har")
    assert har is not None and "[redacted]" in har.read_text()
    with appeals.ws.services.engine.connect() as conn:
        stored = " ".join(str(tuple(r)) for r in conn.execute(sa.select(Run.__table__)))
        stored += " ".join(str(tuple(r)) for r in conn.execute(sa.select(PageFingerprint.__table__)))
    assert not sorted(v for v in forbidden if v in stored)


def test_submission_replay_without_allow_submit_walks_to_the_final_page_and_stops_before_the_click(
    appeals: Appeals, browser: Browser
) -> None:
    before = appeals.ws.services.queue.get(appeals.renamed_item)
    lines: list[str] = []
    result = Replayer(appeals.ws.services, browser, out=lines.append).replay(appeals.renamed_run)
    assert result.outcome == "stopped", lines
    last = result.steps[-1].step
    assert (last.kind.value, last.target, last.url_path) == ("expect", "submit", "/appeals/new/review")
    assert appeals.ledger(appeals.renamed_item) == 0
    after = appeals.ws.services.queue.get(appeals.renamed_item)
    assert (after.state, after.attempts, after.submissions) == (before.state, before.attempts, [])
    assert any("before the submit click" in line for line in lines)


def test_allow_submit_submits_an_approved_unsent_appeal_exactly_once_then_refuses(
    appeals: Appeals, browser: Browser
) -> None:
    replayer = Replayer(appeals.ws.services, browser, out=lambda _line: None)
    sent = replayer.replay(appeals.renamed_run, allow_submit=True)
    assert sent.outcome == "ok", (sent.error_kind, sent.error)
    view = appeals.ws.services.queue.get(appeals.renamed_item)
    [entry] = appeals.state.ledger_entries(reference=view.submission_reference)
    assert view.state == ItemState.DONE and view.confirmation_id == entry.appeal_number
    assert [(s.state, s.via) for s in view.submissions] == [("confirmed", "click")]
    assert sent.run_id is not None and load_run(appeals.ws.services.engine, sent.run_id).outcome == "ok"
    with pytest.raises(ReplayRefused, match="already submitted"):
        replayer.replay(appeals.renamed_run, allow_submit=True)
    assert appeals.ledger(appeals.renamed_item) == 1


def test_allow_submit_is_refused_while_an_earlier_submit_may_have_reached_the_portal(
    appeals: Appeals, browser: Browser
) -> None:
    before = appeals.ws.services.queue.get(appeals.open_item)
    assert [s.state for s in before.submissions] == ["submitting"]
    with pytest.raises(ReplayRefused, match="open submitting record"):
        Replayer(appeals.ws.services, browser).replay(appeals.open_run, allow_submit=True)
    with pytest.raises(ReplayRefused, match="cannot go with --offline"):
        Replayer(appeals.ws.services, browser).replay(appeals.open_run, allow_submit=True, offline=True)
    after = appeals.ws.services.queue.get(appeals.open_item)
    assert (after.state, len(after.history)) == (before.state, len(before.history))
    assert appeals.ledger(appeals.open_item) == 1  # the one the portal recorded, nothing more


def test_allow_submit_refuses_a_cancelled_appeal_and_an_item_that_is_not_an_appeal(
    engine: Engine, tmp_path: Path
) -> None:
    queue = Queue(engine, Settings(documents_dir=tmp_path), check=check_request)
    add_account(engine, "acct-1")
    report = queue.enqueue([appeal(1), claim(2)])
    appeal_id, claim_id = report.queued
    assert submit_refusal(queue.get(appeal_id)) is None
    queue.cancel(appeal_id)
    assert "no longer an approved appeal" in str(submit_refusal(queue.get(appeal_id)))
    assert "not an appeal submission" in str(submit_refusal(queue.get(claim_id)))


def test_lease_item_leases_only_the_named_item_and_only_when_its_account_is_free(
    engine: Engine, tmp_path: Path
) -> None:
    queue = Queue(engine, Settings(documents_dir=tmp_path), check=check_request)
    add_account(engine, "acct-1")
    first, second = queue.enqueue([claim(1, priority=50), appeal(2)]).queued
    batch = queue.lease_item("replay:op", second)
    assert batch is not None and [i.id for i in batch.items] == [second] and batch.items[0].attempt == 1
    assert queue.get(first).state == ItemState.QUEUED and queue.get(second).state == ItemState.LEASED
    assert queue.lease_item("replay:other", first) is None  # the account is held
    assert queue.lease_batch("worker", limit=10) is None
    queue.release(batch)
    assert queue.get(second).state == ItemState.QUEUED
    queue.cancel(first)
    assert queue.lease_item("replay:op", first) is None  # not queued
    again = queue.lease_item("replay:op", second)
    assert again is not None and again.token == batch.token + 1  # a fresh fencing token
