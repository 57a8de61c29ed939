"""RxPress through the whole engine: a redetermination whose confirmation was lost is looked up in a
history that lags, handed to a person while the history cannot tell, and never sent twice.

In process: the queue on SQLite, the vault, the runner and worker, real Chromium (pytest-playwright's
browser), the RxPress sandbox over HTTP with its e-mailed code read from the sandbox inbox, configured
as a deployment configures its relay.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from bot.documents import write_letter
from bot.evidence import sha256_file
from bot.migrate import upgrade
from bot.models import AppealReason, ItemState, NewItem, WorkKind
from bot.services import Services, build_services
from bot.settings import Settings
from bot.worker import Worker
from sandbox import SandboxAccount, code_inboxes
from tests.e2e_support import ledger_of
from tests.fixtures.sandbox import SandboxPortal, canary_claim
from vault import Keyring


@pytest.fixture
def services(tmp_path: Path, rxpress_sandbox: SandboxPortal) -> Iterator[Services]:
    key_file = tmp_path / "vault.key"
    key_file.write_text(Keyring.generate().dump(), encoding="utf-8")
    key_file.chmod(0o600)
    (tmp_path / "documents").mkdir()
    made = build_services(
        Settings(
            data_dir=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'payerbot.db'}",
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
    )
    upgrade(made.engine)
    yield made
    made.engine.dispose()


def test_a_lost_confirmation_goes_to_a_person_until_the_history_shows_it(
    services: Services,
    browser: Browser,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
) -> None:
    portal = rxpress_sandbox
    services.vault.add_account(
        "rxpress",
        "pharmacy",
        username=rxpress_account.username,
        password=rxpress_account.password,
        second_factor="out_of_band",
        portal_url=portal.url,
    )
    claim = canary_claim(portal.state, "REJECTED")
    settings = services.settings
    assert settings.documents_dir is not None
    letter = write_letter(settings.documents_dir, "letter.pdf", f"Redetermination of Rx {claim.claim_number}")
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
                    "approved_at": datetime(2026, 1, 5, 9, tzinfo=UTC).isoformat(),
                },
            )
        ]
    )
    [item_id] = report.queued
    worker = Worker(services, browser)

    # the submit is recorded, its answer is a 502: a transient failure after the click
    portal.state.update_knobs(record_then_fail="502", history_lag_requests=100_000)
    worker.drain(max_batches=1)
    assert services.queue.get(item_id).state == ItemState.RETRY_WAIT
    [entry] = portal.state.ledger_entries(reference=services.queue.get(item_id).submission_reference)

    # the retry asks the history first; the history lags, so a person decides: no blind resubmit
    portal.state.update_knobs(record_then_fail="none", history_lag_requests=100_000)
    worker.drain(until_settled=True)
    item = services.queue.get(item_id)
    assert item.state == ItemState.NEEDS_HUMAN
    assert item.last_error_kind == "AmbiguousSubmission"
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
