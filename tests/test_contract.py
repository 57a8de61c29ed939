"""The payer contract: every registered payer, through the real runner, against its sandbox.

A new payer module (with its sandbox) gets this whole suite for free: its wording tables must cover
everything its portal can show; its actions must give the sandbox's truth; each failure knob must
end in the engine's designed answer (retry, wait, log in again, a person, reconcile); the cosmetic
redesign must simply work and the renamed one must be reported as "portal changed". Never a wrong
status, never a second submission.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from bot.codelists import shipped_codelists
from bot.demo import APPROVER, claim_fields, plan_of
from bot.documents import write_letter
from bot.errors import UnsupportedAction
from bot.evidence import sha256_file
from bot.mapping import StatusMapper
from bot.migrate import upgrade
from bot.models import AppealReason, ClaimReading, NewItem, PaReading, WorkKind
from bot.portal import ACTION_FOR_KIND, Action, Portal
from bot.queue import ItemView
from bot.services import Services, build_services
from bot.settings import Settings
from bot.status import claim_facts, composite_of
from bot.worker import Worker
from portals import get_portal, payer_ids
from sandbox import PortalState
from sandbox.data import Claim, PriorAuth
from sandbox.payers import code_inboxes, get_payer
from sandbox.server import SandboxServer
from tests.fixtures.sandbox import canary_account
from tests.queue_support import appeal_fields
from vault import Keyring

PAYERS = payer_ids()


@pytest.fixture(params=PAYERS)
def payer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- tables: no browser needed ------------------------------------------------------------------


def test_every_payer_has_a_sandbox_portal(payer: str) -> None:
    assert get_payer(payer).payer_id == payer


def test_every_wording_the_portal_can_show_maps_to_its_truth(payer: str) -> None:
    portal, spec = get_portal(payer), get_payer(payer).data
    mapper = StatusMapper(shipped_codelists())
    for kind in spec.claim_kinds:
        status = mapper.claim(portal, ClaimReading(claim_number="X", status_text=kind.wording))
        expected = (kind.category, kind.status_code, kind.entity, kind.detail, kind.code_list)
        assert composite_of(status.model_dump()) == expected, kind.wording
    for pa_kind in spec.pa_kinds:
        pa = mapper.pa(portal, PaReading(pa_number="X", status_text=pa_kind.wording))
        assert pa.hcr01 == pa_kind.hcr01, pa_kind.wording


def test_an_unsupported_action_is_refused_before_any_browser_starts() -> None:
    class StatusOnly(Portal):
        payer_id = "statusonly"
        display_name = "Status Only"
        default_url = "http://127.0.0.1:9"
        actions = frozenset({Action.CLAIM_STATUS})

    with pytest.raises(UnsupportedAction, match="does not support submit_appeal"):
        StatusOnly.require(ACTION_FOR_KIND[WorkKind.APPEAL_SUBMISSION])


# -- through the runner -------------------------------------------------------------------------


@dataclass
class Harness:
    services: Services
    state: PortalState
    payer: str
    account: str
    username: str
    browser: Browser
    documents: Path

    def status_item(self, claim: Claim) -> NewItem:
        payload = claim_fields(get_portal(self.payer), claim)
        return NewItem(kind=WorkKind.CLAIM_STATUS, payer=self.payer, account=self.account, payload=payload)

    def pa_item(self, pa: PriorAuth) -> NewItem:
        payload = {"pa_number": pa.pa_number, **plan_of(pa)}
        return NewItem(kind=WorkKind.PA_STATUS, payer=self.payer, account=self.account, payload=payload)

    def appeal_item(self, claim: Claim) -> NewItem:
        letter = write_letter(self.documents, f"{claim.claim_number}.pdf", f"Appeal {claim.claim_number}")
        payload: dict[str, Any] = {
            **claim_fields(get_portal(self.payer), claim),
            "reason": AppealReason.MEDICAL_NECESSITY.value,
            "explanation": "Medically necessary; see the letter.",
            "letter": {"path": letter.name, "sha256": sha256_file(letter)},
            "approved_by": APPROVER,
            **appeal_fields(),
        }
        return NewItem(
            kind=WorkKind.APPEAL_SUBMISSION, payer=self.payer, account=self.account, payload=payload
        )

    def run(self, items: list[NewItem], *, settle: bool = False) -> list[ItemView]:
        report = self.services.queue.enqueue(items)
        assert not report.rejected, report.rejected
        Worker(self.services, self.browser).drain(until_settled=settle)
        return [self.services.queue.get(i) for i in report.queued]

    def claims(self, n: int, *, appealable: bool = False) -> list[Claim]:
        pool = sorted(self.state.claims.values(), key=lambda c: c.claim_number)
        if appealable:
            pool = [c for c in pool if c.appealable]
        by_wording: dict[str, Claim] = {}
        for claim in pool:
            by_wording.setdefault(claim.wording, claim)
        picked = list(by_wording.values()) + [c for c in pool if c not in by_wording.values()]
        return picked[:n]


@pytest.fixture(scope="module")
def portals_up() -> Iterator[SandboxServer]:
    with SandboxServer(PAYERS) as server:
        yield server


@pytest.fixture
def harness(payer: str, portals_up: SandboxServer, browser: Browser, tmp_path: Path) -> Iterator[Harness]:
    state = portals_up.portal(payer)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'payerbot.db'}",
        vault_key=Keyring.generate().dump(),  # type: ignore[arg-type]
        artifacts_dir=tmp_path / "artifacts",
        documents_dir=tmp_path / "documents",
        lease_seconds=60,
        retry_base_seconds=0.2,
        retry_max_seconds=1,
        max_attempts_status=5,
        max_attempts_appeal=3,
        action_timeout_ms=6_000,
        navigation_timeout_ms=8_000,
        code_inboxes=code_inboxes(portals_up.urls),  # RxPress e-mails its login code
    )
    (tmp_path / "documents").mkdir()
    services = build_services(settings)
    upgrade(services.engine)
    account = canary_account(state)  # a login of its own: knobs on one test never lock another's
    services.vault.add_account(
        payer,
        account.account,
        username=account.username,
        password=account.password,
        second_factor=get_portal(payer).second_factor.value,
        totp_secret=account.totp_secret,
        answers=account.security_answers or None,
        portal_url=portals_up.url(payer),
    )
    yield Harness(services, state, payer, account.account, account.username, browser, tmp_path / "documents")
    state.reset()
    services.engine.dispose()


def _assert_true_status(h: Harness, view: ItemView) -> None:
    assert view.state == "done", (view.last_error_kind, view.last_error)
    truth = h.state.claim(view.payload["claim_number"], view.payload.get("plan"))
    assert truth is not None and view.result is not None
    assert claim_facts(view.result) == truth.facts


def test_status_reads_and_a_pa_give_the_truth_with_one_login(harness: Harness) -> None:
    pa = sorted(harness.state.pas.values(), key=lambda p: p.pa_number)[0]
    items = [harness.status_item(c) for c in harness.claims(3)]
    items.append(harness.pa_item(pa))
    views = harness.run(items)
    for view in views[:3]:
        _assert_true_status(harness, view)
    assert views[3].state == "done" and views[3].canonical_status == pa.hcr01.value
    assert harness.state.login_posts[harness.username] == 1


def test_an_approved_appeal_reaches_the_payer_exactly_once(harness: Harness) -> None:
    (claim,) = harness.claims(1, appealable=True)
    (view,) = harness.run([harness.appeal_item(claim)])
    assert view.state == "done", (view.last_error_kind, view.last_error)
    entries = harness.state.ledger_entries(reference=view.submission_reference)
    assert [e.appeal_number for e in entries] == [view.confirmation_id]


KNOB_OUTCOMES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("server errors", {"error_rate": 1.0, "error_statuses": [503]}, "retry_wait", "PortalServerError"),
    ("maintenance", {"maintenance": True}, "retry_wait", "PortalMaintenance"),
    ("captcha", {"captcha_after_logins": 0}, "needs_human", "CaptchaShown"),
    ("renamed redesign", {"redesign": "renamed"}, "needs_human", "PortalChanged"),
    ("cosmetic redesign", {"redesign": "cosmetic"}, "done", None),
    ("latency", {"latency_ms": 250}, "done", None),
    ("rejected password", {"reject_password": True}, "needs_human", "LoginRejected"),
    ("password expired", {"password_expired": True}, "needs_human", "PasswordExpired"),
]


@pytest.mark.parametrize(
    ("knob", "values", "state", "error_kind"), KNOB_OUTCOMES, ids=[k[0] for k in KNOB_OUTCOMES]
)
def test_each_failure_knob_gets_the_designed_answer(
    harness: Harness, knob: str, values: dict[str, Any], state: str, error_kind: str | None
) -> None:
    harness.state.update_knobs(**values)
    (claim,) = harness.claims(1)
    (view,) = harness.run([harness.status_item(claim)])
    assert view.state == state, (view.last_error_kind, view.last_error)
    assert view.last_error_kind == error_kind
    if state == "done":
        _assert_true_status(harness, view)
    if error_kind == "PortalChanged":
        assert "internal:" in (view.last_error or "") or "locator" in (view.last_error or "")
    if error_kind in {"LoginRejected", "PasswordExpired"}:
        assert not harness.services.vault.is_enabled(harness.payer, harness.account)
        assert harness.state.login_posts[harness.username] == 1


def _session_requests(h: Harness) -> int:
    (session,) = h.state.sessions.for_user(h.username)
    return session.requests


def test_a_session_that_expires_mid_batch_is_renewed_and_the_batch_completes(harness: Harness) -> None:
    # fresh claims, the newest of all, so a portal that lists claims newest first shows each on its
    # first page and every item costs the portal the same number of requests
    wording = harness.claims(1)[0].wording
    first, *rest = [harness.state.add_claim(wording, newest=True) for _ in range(3)]
    _assert_true_status(harness, harness.run([harness.status_item(first)])[0])  # logs in
    # the stored session passes the batch's check, then dies on the first item's second request
    harness.state.update_knobs(session_expiry_requests=_session_requests(harness) + 2)
    logins = harness.state.login_posts[harness.username]
    views = harness.run([harness.status_item(c) for c in rest])
    for view in views:
        _assert_true_status(harness, view)
    # renewed mid-batch (the knob ends every session after that many requests, so a new session
    # may die again later in the batch: never more than one login per item)
    assert logins < harness.state.login_posts[harness.username] <= logins + len(rest)


@pytest.mark.parametrize("failure", ["502", "drop"])
def test_a_submit_recorded_while_its_answer_failed_is_never_sent_twice(
    harness: Harness, failure: str
) -> None:
    harness.state.update_knobs(record_then_fail=failure)
    (claim,) = harness.claims(1, appealable=True)
    report = harness.services.queue.enqueue([harness.appeal_item(claim)])
    worker = Worker(harness.services, harness.browser)
    # the submit is recorded, the answer fails: a transient end (one batch: the retry must not come
    # while the portal still fails, nor reconcile before the history has caught up)
    worker.drain(max_batches=1)
    harness.state.update_knobs(record_then_fail="none")
    lag = get_portal(harness.payer).history_lag
    assert lag is not None, f"{harness.payer} declares no appeal history"
    harness.state.update_knobs(history_lag_requests=0)  # a lagging history has caught up
    worker.drain(until_settled=True)
    view = harness.services.queue.get(report.queued[0])
    entries = harness.state.ledger_entries(reference=view.submission_reference)
    assert len(entries) == 1
    assert view.state == "done" and view.confirmation_id == entries[0].appeal_number
    assert [s.via for s in view.submissions if s.state == "confirmed"] == ["history"]


def test_a_slow_confirmation_is_reconciled_not_resubmitted(harness: Harness) -> None:
    harness.state.update_knobs(slow_confirmation_ms=10_000)  # beyond the 8 s navigation timeout
    (claim,) = harness.claims(1, appealable=True)
    report = harness.services.queue.enqueue([harness.appeal_item(claim)])
    worker = Worker(harness.services, harness.browser)
    worker.drain(max_batches=1)  # one batch: the retry comes once the confirmation is quick again
    harness.state.update_knobs(slow_confirmation_ms=0, history_lag_requests=0)
    worker.drain(until_settled=True)
    view = harness.services.queue.get(report.queued[0])
    assert len(harness.state.ledger_entries(reference=view.submission_reference)) == 1
    assert view.state in {"done", "needs_human"}


def test_random_claims_never_get_a_wrong_status(harness: Harness) -> None:
    rng = random.Random(hash(harness.payer) & 0xFFFF)
    claims = rng.sample(sorted(harness.state.claims.values(), key=lambda c: c.claim_number), 3)
    harness.state.update_knobs(error_rate=0.2, error_seed=3)
    views = harness.run([harness.status_item(c) for c in claims], settle=True)
    for view in views:
        if view.state == "done":
            _assert_true_status(harness, view)
        else:
            assert view.state in {"failed", "needs_human"} and view.last_error
