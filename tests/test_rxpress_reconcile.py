"""RxPress through the whole engine: a redetermination whose confirmation was lost is looked up in a
history that lags. While the lag RxPress declares has not passed since the intent, the item waits
(no attempt spent) and is looked up again; only a history that still lacks it then goes to a
person. Never sent twice.

In process: the queue on SQLite and on PostgreSQL, the vault, the runner and worker, real Chromium
(pytest-playwright's browser), the RxPress sandbox over HTTP with its e-mailed code read from the
sandbox inbox, configured as a deployment configures its relay. Time passes on a ``ManualClock``:
the worker's wait for a due retry moves it instead of sleeping. The sandbox's history lags by
requests (``history_lag_requests``); turning that knob down is the history catching up.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser

from bot.clock import ManualClock
from bot.db import AuditEvent
from bot.documents import write_letter
from bot.evidence import sha256_file
from bot.models import AppealReason, ItemState, NewItem, WorkKind
from bot.services import Services, build_services
from bot.settings import Settings
from bot.worker import Worker
from portals import get_portal
from sandbox import LedgerEntry, SandboxAccount, code_inboxes
from tests.e2e_support import ledger_of
from tests.fixtures.sandbox import SandboxPortal, canary_claim
from tests.queue_support import appeal_fields
from vault import Keyring

LAGGING = 100_000  # requests: a history that does not show the appeal within the test


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def services(
    tmp_path: Path, db_url: str, clock: ManualClock, rxpress_sandbox: SandboxPortal
) -> Iterator[Services]:
    key_file = tmp_path / "vault.key"
    key_file.write_text(Keyring.generate().dump(), encoding="utf-8")
    key_file.chmod(0o600)
    (tmp_path / "documents").mkdir()
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        artifacts_dir=tmp_path / "artifacts",
        documents_dir=tmp_path / "documents",
        vault_key_file=key_file,
        record="never",
        retry_base_seconds=0.2,
        retry_max_seconds=0.5,
        action_timeout_ms=5_000,
        navigation_timeout_ms=10_000,
        code_inboxes=code_inboxes({"rxpress": rxpress_sandbox.url}),
    )
    made = build_services(settings, clock=clock)
    yield made
    made.engine.dispose()


def _appeal(services: Services, portal: SandboxPortal, login: SandboxAccount) -> int:
    services.vault.add_account(
        "rxpress",
        "pharmacy",
        username=login.username,
        password=login.password,
        second_factor="out_of_band",
        portal_url=portal.url,
    )
    claim = canary_claim(portal.state, "REJECTED", ncpdp=("70",))
    assert services.settings.documents_dir is not None
    letter = write_letter(
        services.settings.documents_dir, "letter.pdf", f"Redetermination of Rx {claim.claim_number}"
    )
    report = services.queue.enqueue(
        [
            NewItem(
                kind=WorkKind.APPEAL_SUBMISSION,
                payer="rxpress",
                account="pharmacy",
                payload={
                    "claim_number": claim.claim_number,
                    "fill_date": claim.service_date.isoformat(),
                    "reason": AppealReason.MEDICAL_NECESSITY.value,
                    "explanation": "Two formulary alternatives failed.",
                    "letter": {"path": letter.name, "sha256": sha256_file(letter)},
                    "approved_by": "Dana Reviewer, PharmD",
                    **appeal_fields(),
                },
            )
        ]
    )
    [item_id] = report.queued
    return item_id


def _submit_unanswered(
    services: Services, browser: Browser, portal: SandboxPortal, login: SandboxAccount, failure: str
) -> tuple[int, Worker, LedgerEntry]:
    """One batch: the portal records the submit and its answer fails (``record_then_fail``), while
    the history lags; the item waits for its retry. Returns the item, the worker and the entry."""
    item_id = _appeal(services, portal, login)
    worker = Worker(services, browser)
    portal.state.update_knobs(record_then_fail=failure, history_lag_requests=LAGGING)
    worker.drain(max_batches=1)
    assert services.queue.get(item_id).state == ItemState.RETRY_WAIT
    [entry] = portal.state.ledger_entries(reference=services.queue.get(item_id).submission_reference)
    portal.state.update_knobs(record_then_fail="none")
    return item_id, worker, entry


def _reconciliations(services: Services) -> list[str]:
    query = sa.select(AuditEvent.outcome).where(AuditEvent.action == "reconcile").order_by(AuditEvent.id)
    with services.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def test_a_lost_confirmation_that_shows_in_the_history_within_its_lag_is_done_without_a_person(
    services: Services,
    clock: ManualClock,
    browser: Browser,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
) -> None:
    portal = rxpress_sandbox
    # the submit is recorded, its answer is a 502: a transient failure after the click
    item_id, worker, entry = _submit_unanswered(services, browser, portal, rxpress_account, "502")

    # the retry asks the history, which does not show it yet: the item waits for the lag, no person
    clock.advance(services.settings.retry_max_seconds + 1)
    worker.drain(max_batches=1)
    item = services.queue.get(item_id)
    assert (item.state, item.attempts) == (ItemState.RETRY_WAIT, 1)  # the look-up spent no attempt
    [intent] = item.submissions
    lag = get_portal("rxpress").history_lag
    assert lag is not None and lag.total_seconds() > 0
    assert item.not_before == intent.started_at + lag
    deferral = services.queue.history(item_id)[-1]
    assert (deferral.from_state, deferral.to_state) == ("running", "retry_wait")
    assert deferral.detail is not None and "history" in deferral.detail and "no attempt" in deferral.detail
    assert _reconciliations(services) == ["not_found"]

    # a minute on, the history shows it: looked up again once the lag has passed, found, done
    portal.state.update_knobs(history_lag_requests=0)
    worker.drain(until_settled=True)
    item = services.queue.get(item_id)
    assert (item.state, item.confirmation_id) == (ItemState.DONE, entry.appeal_number)
    assert clock.now() >= intent.started_at + lag  # not looked up again before the lag had passed
    assert [s.via for s in item.submissions] == ["history"]
    assert _reconciliations(services) == ["not_found", "found"]
    assert ledger_of(portal.state, rxpress_account.username) == [entry]  # never sent twice
    assert "needs_human" not in {e.to_state for e in services.queue.history(item_id)}


def test_a_history_that_still_lacks_it_after_the_lag_goes_to_a_person_and_retry_reconciles(
    services: Services,
    clock: ManualClock,
    browser: Browser,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
) -> None:
    portal = rxpress_sandbox
    # the submit is recorded and the connection dropped; the history never catches up by itself
    item_id, worker, entry = _submit_unanswered(services, browser, portal, rxpress_account, "drop")
    worker.drain(until_settled=True)
    item = services.queue.get(item_id)
    assert (item.state, item.last_error_kind) == (ItemState.NEEDS_HUMAN, "AmbiguousSubmission")
    lag = get_portal("rxpress").history_lag
    assert lag is not None and clock.now() >= item.submissions[0].started_at + lag
    assert item.attempts == 2  # the failed submit and the last look-up; the wait spent none
    assert ledger_of(portal.state, rxpress_account.username) == [entry]

    # once the history shows it, an operator's retry reconciles from it
    portal.state.update_knobs(history_lag_requests=0)
    services.queue.retry(item_id)
    worker.drain(until_settled=True)
    item = services.queue.get(item_id)
    assert (item.state, item.confirmation_id) == (ItemState.DONE, entry.appeal_number)
    assert ledger_of(portal.state, rxpress_account.username) == [entry]  # never sent twice
    stats = portal.state.stats()
    assert stats["second_factor_posts"][rxpress_account.username] == 1  # one e-mailed code for all runs
