"""BluePeak's page objects in real Chromium against the sandbox's single-page app over real HTTP."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from pydantic import SecretStr

from bot.clock import ManualClock
from bot.codelists import shipped_codelists
from bot.documents import AppealFiles
from bot.errors import (
    CaptchaShown,
    IntakeError,
    LoginRejected,
    NotFoundOnPortal,
    PasswordExpired,
    PortalChanged,
    PortalMaintenance,
    PortalServerError,
    PortalTimeout,
    PortalValidationError,
    SecondFactorRejected,
    SessionExpired,
    StaleLease,
    Transient,
    UnknownSecondFactorPrompt,
)
from bot.login import LoginSecrets
from bot.mapping import StatusMapper
from bot.models import (
    AppealLevel,
    AppealReason,
    AppealRequest,
    ClaimStatusRequest,
    CodeSystem,
    Contact,
    DocumentRef,
    PaStatusRequest,
    ServiceDates,
    WorkKind,
)
from bot.portal import submit_through_gate
from bot.status import ClaimRule, PaRule, normalize_wording, normalized
from bot.steps import StepKind, StepRecorder
from portals import get_portal
from portals.bluepeak import FORM_LABELS, BluePeakPortal
from sandbox import PortalState, SandboxAccount
from sandbox.bluepeak.api import COOKIE, PAGE_SIZE, TERMS_EVERY, recent_claims
from sandbox.bluepeak.wording import CLAIM_KINDS, PA_KINDS
from sandbox.data import Claim
from tests.claim_truth import assert_form_received, assert_reads_as_truth
from tests.fixtures.sandbox import SandboxPortal, canary_claim, known_answers, login_secrets

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def bluepeak(bluepeak_sandbox: SandboxPortal) -> SandboxPortal:
    return bluepeak_sandbox


@pytest.fixture
def steps(page: Page, clock: ManualClock) -> StepRecorder:
    page.set_default_timeout(5_000)
    page.set_default_navigation_timeout(10_000)
    return StepRecorder(page, clock=clock)  # a retry's wait moves the test's clock


@pytest.fixture
def portal(page: Page, bluepeak: SandboxPortal, steps: StepRecorder) -> BluePeakPortal:
    return BluePeakPortal(page, bluepeak.url, steps)


@pytest.fixture
def signed_in(
    portal: BluePeakPortal, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> BluePeakPortal:
    """A portal whose browser holds a fresh session with the terms accepted, signed in over plain
    HTTP to keep tests quick (signing in through the page objects has tests of its own)."""
    with httpx.Client(base_url=bluepeak.url) as client:
        account = bluepeak_account
        question = client.post(
            "/api/login", json={"username": account.username, "password": account.password}
        )
        answer = account.security_answers[question.json()["question"]]
        assert client.post("/api/login/answer", json={"answer": answer}).status_code == 200
        assert client.post("/api/terms").status_code == 200
        session = client.cookies[COOKIE]
    portal.page.context.add_cookies([{"name": COOKIE, "value": session, "url": bluepeak.url}])
    return portal


@pytest.fixture
def files(tmp_path: Path) -> AppealFiles:
    letter = tmp_path / "appeal-letter.pdf"
    letter.write_bytes(PDF)
    notes = tmp_path / "clinical-notes.pdf"
    notes.write_bytes(PDF + b"% notes\n")
    return AppealFiles(letter=letter, attachments=[notes])


def appeal_for(
    claim_number: str, reason: AppealReason = AppealReason.MEDICAL_NECESSITY, **fields: Any
) -> AppealRequest:
    """An appeal with what BluePeak requires (``fields`` add to or replace it): denied ten days ago."""
    required = {
        "denial_date": datetime.now(UTC).date() - timedelta(days=10),
        "member_id": "M00001",
        "billing_npi": "1234567893",
    }
    return AppealRequest(
        claim_number=claim_number,
        reason=reason,
        explanation="The CT was ordered after two emergency visits for the same pain.",
        letter=DocumentRef(path="appeal-letter.pdf", sha256=hashlib.sha256(PDF).hexdigest()),
        approved_by="Dana Reviewer",
        approved_at=datetime.now(UTC),
        **{**required, **fields},
    )


class Gate:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    def __call__(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


def newest_claim(state: PortalState, wording: str, **fields: object) -> Claim:
    """A canary claim served later than any other, so it heads the list's first page (tests of
    paging pick their claims from the seeded ones)."""
    return canary_claim(state, wording, newest=True, **fields)


def _reference(name: str) -> str:
    return f"PB-{name}-{datetime.now(UTC):%H%M%S%f}"


def _session(state: PortalState, account: SandboxAccount) -> Iterator[dict[str, object]]:
    """The server-side data of the account's sessions (where the terms-of-use flags live)."""
    return (s.data for s in state.sessions.for_user(account.username))


def _clicked(portal: BluePeakPortal, name: str) -> int:
    return sum(1 for s in portal.steps.steps if s.kind == StepKind.CLICK and name in (s.locator or ""))


# -- registry and tables ------------------------------------------------------------------------------


def test_registry_finds_bluepeak_and_intake_refuses_foreign_claim_numbers() -> None:
    assert get_portal("bluepeak") is BluePeakPortal
    BluePeakPortal.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="BP-204812345"))
    with pytest.raises(IntakeError, match=r"payload\.claim_number"):
        BluePeakPortal.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="MH2026000123"))


def test_every_wording_the_sandbox_can_show_maps_to_its_truth() -> None:
    claims, pas = normalized(BluePeakPortal.claim_statuses), normalized(BluePeakPortal.pa_statuses)
    assert len(claims) == len(CLAIM_KINDS) and len(pas) == len(PA_KINDS)
    for kind in CLAIM_KINDS:
        rule = claims.get(normalize_wording(kind.wording))
        assert isinstance(rule, ClaimRule), kind.wording
        assert (rule.category, rule.status_code) == (kind.category, kind.status_code), kind.wording
    for pa_kind in PA_KINDS:
        pa_rule = pas.get(normalize_wording(pa_kind.wording))
        assert isinstance(pa_rule, PaRule) and pa_rule.hcr01 == pa_kind.hcr01, pa_kind.wording


# -- sign-in --------------------------------------------------------------------------------------------


def test_login_answers_the_question_asked_each_time_with_one_login_post(
    portal: BluePeakPortal, bluepeak: SandboxPortal, page: Page
) -> None:
    account = bluepeak.state.add_account("bp-chromium-questions")
    answers = known_answers(account.security_answers)
    asked: list[str] = []

    def answer(question: str) -> str:
        asked.append(question)
        return answers(question)

    secrets = LoginSecrets(account.username, SecretStr(account.password), answer=answer)
    assert portal.is_logged_in() is False
    for n in (1, 2):
        page.context.clear_cookies()
        portal.login(secrets)
        assert bluepeak.state.stats()["login_posts"][account.username] == n
    assert portal.is_logged_in() is True
    assert len(asked) == 2 and len(set(asked)) == 2  # seeded per login: not always the same question
    assert set(asked) <= set(account.security_answers)
    recorded = json.dumps([s.model_dump(mode="json") for s in portal.steps.steps])
    for secret in (account.password, *account.security_answers.values()):
        assert secret not in recorded


def test_a_question_the_vault_cannot_answer_raises_unknown_prompt_without_an_answer_post(
    portal: BluePeakPortal, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    secrets = LoginSecrets(bluepeak_account.username, SecretStr(bluepeak_account.password))
    with pytest.raises(UnknownSecondFactorPrompt):
        portal.login(secrets)
    stats = bluepeak.state.stats()
    assert stats["login_posts"][bluepeak_account.username] == 1
    assert bluepeak_account.username not in stats["second_factor_posts"]


def test_wrong_password_raises_login_rejected_after_one_login_post(
    portal: BluePeakPortal, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    secrets = LoginSecrets(username=bluepeak_account.username, password=SecretStr("not-the-password"))
    with pytest.raises(LoginRejected, match="Invalid username or password") as caught:
        portal.login(secrets)
    assert type(caught.value) is LoginRejected
    assert bluepeak.state.stats()["login_posts"][bluepeak_account.username] == 1
    assert "not-the-password" not in json.dumps([s.model_dump(mode="json") for s in portal.steps.steps])


def test_wrong_answer_raises_second_factor_rejected(
    portal: BluePeakPortal, bluepeak_account: SandboxAccount
) -> None:
    secrets = LoginSecrets(
        bluepeak_account.username, SecretStr(bluepeak_account.password), answer=lambda q: "no"
    )
    with pytest.raises(SecondFactorRejected, match="does not match"):
        portal.login(secrets)


@pytest.mark.parametrize(
    ("knobs", "raised"),
    [
        ({"password_expired": True}, PasswordExpired),
        ({"reject_password": True}, LoginRejected),
        ({"maintenance": True}, PortalMaintenance),
    ],
)
def test_login_knobs_raise_their_errors(
    portal: BluePeakPortal,
    bluepeak: SandboxPortal,
    bluepeak_account: SandboxAccount,
    knobs: dict[str, bool],
    raised: type[Exception],
) -> None:
    bluepeak.state.update_knobs(**knobs)
    with pytest.raises(raised):
        portal.login(login_secrets(bluepeak_account))


def test_captcha_raises_captcha_shown_without_a_login_post(
    portal: BluePeakPortal, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    bluepeak.state.update_knobs(captcha_after_logins=0)
    with pytest.raises(CaptchaShown):
        portal.login(login_secrets(bluepeak_account))
    assert bluepeak_account.username not in bluepeak.state.stats()["login_posts"]


# -- what the app shows instead -------------------------------------------------------------------------


def test_server_errors_in_the_page_or_the_api_raise_portal_server_error(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal
) -> None:
    """Each error persists past the step retries (three for each step: nine in all), then is raised."""
    number = next(iter(bluepeak.state.claims))
    bluepeak.state.update_knobs(error_rate=1.0, error_statuses=(502,))
    with pytest.raises(PortalServerError, match="502"):  # the shell itself: a gateway error page
        signed_in.check_claim_status(ClaimStatusRequest(claim_number=number))
    # the shell, its style sheet and script load; the API then fails: the app shows its error state
    bluepeak.state.set_knobs({"fail_path": "/api/", "fail_times": 100, "error_statuses": [502]})
    with pytest.raises(PortalServerError, match="502"):
        signed_in.check_claim_status(ClaimStatusRequest(claim_number=number))
    assert "Something went wrong" in signed_in.page.get_by_role("alert").inner_text()
    with pytest.raises(PortalServerError, match="shows an error"):
        signed_in.check_page()
    # the shell loads and its script does not: the shell's own error state, with no 5xx document
    bluepeak.state.set_knobs({"fail_path": "/static/app.js", "fail_times": 100, "error_statuses": [502]})
    with pytest.raises(PortalServerError, match="could not load"):
        signed_in.check_claim_status(ClaimStatusRequest(claim_number=number))
    assert len([s for s in signed_in.steps.steps if s.kind == StepKind.RETRY]) == 9


def test_expired_session_raises_session_expired(signed_in: BluePeakPortal, bluepeak: SandboxPortal) -> None:
    bluepeak.state.update_knobs(session_expiry_requests=1)
    claims = recent_claims(list(bluepeak.state.claims.values()))
    with pytest.raises(SessionExpired):  # page one is the one request; page two finds it gone
        signed_in.check_claim_status(ClaimStatusRequest(claim_number=claims[PAGE_SIZE].claim_number))
    assert signed_in.page.get_by_text("Your session has expired").is_visible()
    assert signed_in.is_logged_in() is False


# -- status ---------------------------------------------------------------------------------------------


def test_claim_of_every_wording_reads_back_as_its_truth_paging_as_needed(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal
) -> None:
    order = [c.claim_number for c in recent_claims(list(bluepeak.state.claims.values()))]
    truth = {c["claim_number"]: c for c in bluepeak.state.truth()["claims"]}
    sample: dict[str, dict[str, object]] = {}
    for number in order:  # the newest claim of each wording, to keep the paging short
        sample.setdefault(str(truth[number]["wording"]), truth[number])
    assert len(sample) == len(CLAIM_KINDS)
    assert any(order.index(c["claim_number"]) >= PAGE_SIZE for c in sample.values())  # beyond page one
    mapper = StatusMapper(shipped_codelists())
    for expected in sample.values():
        reading = signed_in.check_claim_status(ClaimStatusRequest(claim_number=expected["claim_number"]))
        claim = bluepeak.state.claims[str(expected["claim_number"])]
        assert_reads_as_truth(mapper.claim(BluePeakPortal, reading), claim)
        assert [c.code for c in reading.codes if c.system == CodeSystem.CARC] == expected["carc"]
        assert [c.code for c in reading.codes if c.system == CodeSystem.RARC] == expected["rarc"]
        patient = bluepeak.state.claims[expected["claim_number"]].patient
        assert reading.sensitive[:3] == (
            patient.name,
            patient.member_id,
            f"{patient.date_of_birth:%b %d, %Y}",
        )
    assert _clicked(signed_in, '"Next"') > 0


def test_pa_of_every_decision_reads_back_as_its_truth(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal
) -> None:
    sample = {p["wording"]: p for p in bluepeak.state.truth()["pas"]}
    assert len(sample) == len(PA_KINDS)
    mapper = StatusMapper(shipped_codelists())
    for expected in sample.values():
        reading = signed_in.check_pa_status(PaStatusRequest(pa_number=expected["pa_number"]))
        status = mapper.pa(BluePeakPortal, reading)
        assert (status.decision, status.hcr01) == (expected["decision"], expected["hcr01"])
        assert (reading.valid_from and reading.valid_from.isoformat()) == expected["valid_from"]
        assert (reading.valid_to and reading.valid_to.isoformat()) == expected["valid_to"]
        assert reading.detail == expected["reason"]


def test_unknown_authorization_raises_not_found_after_the_last_page(signed_in: BluePeakPortal) -> None:
    with pytest.raises(NotFoundOnPortal, match="BPA-000001"):
        signed_in.check_pa_status(PaStatusRequest(pa_number="BPA-000001"))
    assert _clicked(signed_in, '"Next"') >= 2


def test_terms_of_use_are_accepted_wherever_they_appear(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    claims = recent_claims(list(bluepeak.state.claims.values()))
    for data in _session(bluepeak.state, bluepeak_account):
        data["terms_due"] = True  # before the first page
    first = signed_in.check_claim_status(ClaimStatusRequest(claim_number=claims[0].claim_number))
    assert first.status_text == claims[0].wording
    assert _clicked(signed_in, '"I agree"') == 1
    for data in _session(bluepeak.state, bluepeak_account):
        data["views"] = TERMS_EVERY - 2  # page one is the last view before they come back
    second = signed_in.check_claim_status(ClaimStatusRequest(claim_number=claims[PAGE_SIZE + 1].claim_number))
    assert second.status_text == claims[PAGE_SIZE + 1].wording
    assert _clicked(signed_in, '"I agree"') == 2


def test_a_slow_portal_is_waited_for_behind_its_spinners(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal
) -> None:
    claim = newest_claim(bluepeak.state, "Approved - payment issued")
    bluepeak.state.update_knobs(latency_ms=400)
    reading = signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert reading.status_text == "Approved - payment issued"
    assert reading.paid_amount == str(claim.paid)


def test_a_view_whose_data_request_fails_once_is_asked_again_through_try_again(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, clock: ManualClock
) -> None:
    claim = newest_claim(bluepeak.state, "Not covered")
    bluepeak.state.update_knobs(fail_path="/api/claims/", fail_times=1)  # the claim's own data, once
    started = clock.now()
    injected = bluepeak.state.errors_injected
    reading = signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert reading.status_text == "Not covered" and bluepeak.state.errors_injected == injected + 1
    (retry,) = [s for s in signed_in.steps.steps if s.kind == StepKind.RETRY]
    assert (retry.target, retry.error) == ("retry control", "PortalServerError")
    assert _clicked(signed_in, '"Try again"') == 1
    assert clock.now() - started == timedelta(seconds=0.25)


def test_claim_reading_keeps_code_descriptions_and_no_phi_in_steps(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal
) -> None:
    claim = newest_claim(bluepeak.state, "Not covered", carc=("50",), rarc=("N130",))
    reading = signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert [(c.system, c.code) for c in reading.codes] == [(CodeSystem.CARC, "50"), (CodeSystem.RARC, "N130")]
    assert reading.codes[0].description and "medical necessity" in reading.codes[0].description
    recorded = json.dumps([s.model_dump(mode="json") for s in signed_in.steps.steps])
    dob = claim.patient.date_of_birth
    for secret in (claim.patient.name, claim.patient.member_id, f"{dob:%b %d, %Y}"):
        assert secret not in recorded
        assert secret not in repr(reading)
    assert dob.isoformat() in reading.sensitive
    shown = {t for loc in signed_in.sensitive_locators() for t in loc.all_inner_texts()}
    assert shown >= {claim.patient.name, claim.patient.member_id, f"{dob:%b %d, %Y}"}


# -- appeals --------------------------------------------------------------------------------------------


def test_submitted_appeal_is_in_the_ledger_once_with_the_toasts_number(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, files: AppealFiles
) -> None:
    claim = newest_claim(bluepeak.state, "Not covered")
    reference, gate = _reference("ok"), Gate()
    result = signed_in.submit_appeal(
        appeal_for(claim.claim_number, AppealReason.CODING_ERROR), files, reference, gate
    )
    assert gate.calls == 1
    [entry] = bluepeak.state.ledger_entries(reference=reference)
    assert result.confirmation_id == entry.appeal_number and result.reference == reference
    assert entry.reason == AppealReason.CODING_ERROR.value
    assert entry.letter_sha256 == hashlib.sha256(PDF).hexdigest()
    assert entry.attachments == ("clinical-notes.pdf",)
    found = signed_in.find_submission(reference)
    assert found.found and found.confirmation_id == entry.appeal_number
    assert signed_in.find_submission(_reference("never-sent")).found is False


def test_gate_that_raises_prevents_the_submit_click(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, files: AppealFiles
) -> None:
    claim = newest_claim(bluepeak.state, "Not covered")
    gate, before = Gate(StaleLease()), len(bluepeak.state.ledger)
    with pytest.raises(StaleLease):
        signed_in.submit_appeal(appeal_for(claim.claim_number), files, _reference("stale"), gate)
    assert gate.calls == 1
    assert len(bluepeak.state.ledger) == before
    assert _clicked(signed_in, "Submit appeal") == 0


def test_refusals_before_the_submit_never_reach_the_gate(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, files: AppealFiles, tmp_path: Path
) -> None:
    gate = Gate()
    pending = newest_claim(bluepeak.state, "Processing")
    with pytest.raises(PortalValidationError, match="once the claim is finalized"):
        signed_in.submit_appeal(appeal_for(pending.claim_number), files, _reference("pending"), gate)
    not_pdf = tmp_path / "letter.pdf"
    not_pdf.write_bytes(b"PK\x03\x04 a zip, not a PDF")
    denied = newest_claim(bluepeak.state, "Not covered")
    with pytest.raises(PortalValidationError, match="must be a PDF"):
        signed_in.submit_appeal(
            appeal_for(denied.claim_number), AppealFiles(not_pdf), _reference("zip"), gate
        )
    assert gate.calls == 0


@pytest.mark.parametrize(
    ("failure", "raised"), [("502", PortalServerError), ("drop", PortalTimeout), ("slow", PortalTimeout)]
)
def test_failure_after_the_click_is_transient_and_history_finds_the_appeal(
    signed_in: BluePeakPortal,
    bluepeak: SandboxPortal,
    files: AppealFiles,
    page: Page,
    failure: str,
    raised: type[Transient],
) -> None:
    claim = newest_claim(bluepeak.state, "Not covered")
    reference = _reference(failure)
    if failure == "slow":
        bluepeak.state.update_knobs(slow_confirmation_ms=4_000)
    else:
        bluepeak.state.update_knobs(record_then_fail=failure)
    page.set_default_timeout(2_500)  # under the slow answer's delay
    with pytest.raises(raised):
        signed_in.submit_appeal(appeal_for(claim.claim_number), files, reference, Gate())
    bluepeak.state.reset()
    page.set_default_timeout(5_000)
    [entry] = bluepeak.state.ledger_entries(reference=reference)
    found = signed_in.find_submission(reference)
    assert found.found and found.confirmation_id == entry.appeal_number


def test_a_submit_that_fails_is_never_sent_again_within_the_run(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, files: AppealFiles
) -> None:
    claim = newest_claim(bluepeak.state, "Not covered")
    bluepeak.state.update_knobs(fail_path="/api/appeals", fail_times=1)  # the submit, before it is recorded
    reference, gate = _reference("failed"), Gate()
    with pytest.raises(PortalServerError):  # transient: the next attempt reconciles first
        submit_through_gate(signed_in, appeal_for(claim.claim_number), files, reference, gate)
    assert gate.calls == 1 and _clicked(signed_in, "Submit appeal") == 1
    assert _clicked(signed_in, '"Try again"') == 0  # the dialog offers it: never taken after the gate
    assert not [s for s in signed_in.steps.steps if s.kind == StepKind.RETRY]
    assert bluepeak.state.ledger_entries(reference=reference) == []
    assert signed_in.find_submission(reference).found is False


# -- redesigns ------------------------------------------------------------------------------------------


def test_cosmetic_redesign_changes_nothing_for_the_bot(
    portal: BluePeakPortal, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount, files: AppealFiles
) -> None:
    bluepeak.state.update_knobs(redesign="cosmetic")
    portal.login(login_secrets(bluepeak_account))
    claim = newest_claim(bluepeak.state, "Not covered", carc=("16",), rarc=("M51",))
    reading = portal.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert reading.status_text == "Not covered"
    assert [(c.system, c.code) for c in reading.codes] == [(CodeSystem.CARC, "16"), (CodeSystem.RARC, "M51")]
    pa = bluepeak.state.add_pa("approved")
    assert portal.check_pa_status(PaStatusRequest(pa_number=pa.pa_number)).valid_to == pa.valid_to
    reference = _reference("cosmetic")
    result = portal.submit_appeal(appeal_for(claim.claim_number), files, reference, Gate())
    assert portal.find_submission(reference).confirmation_id == result.confirmation_id
    assert [e.appeal_number for e in bluepeak.state.ledger_entries(reference=reference)] == [
        result.confirmation_id
    ]


def test_renamed_redesign_raises_portal_changed_naming_the_locator(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, files: AppealFiles, page: Page
) -> None:
    bluepeak.state.update_knobs(redesign="renamed")
    page.set_default_timeout(1_500)
    claim = newest_claim(bluepeak.state, "Not covered")
    with pytest.raises(PortalChanged) as changed:
        signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert changed.value.locator and '"Status"' in changed.value.locator
    gate = Gate()
    with pytest.raises(PortalChanged) as changed:
        signed_in.submit_appeal(appeal_for(claim.claim_number), files, _reference("renamed"), gate)
    assert changed.value.locator and "File an appeal" in changed.value.locator
    assert gate.calls == 0
    assert [e for e in bluepeak.state.ledger if e.claim_number == claim.claim_number] == []


def test_renamed_dialog_asks_for_the_reference_on_a_second_step(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, files: AppealFiles, page: Page
) -> None:
    """What a person sees after the rename (the bot stops before it, see above): the same appeal,
    sent with the renamed controls, the reference on a second step."""
    bluepeak.state.update_knobs(redesign="renamed")
    claim = newest_claim(bluepeak.state, "Not covered")
    page.goto(f"{bluepeak.url}/app/claims")
    page.get_by_role("link", name=claim.claim_number).click()
    page.get_by_role("button", name="Request a review").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Request type").select_option(label="First-level appeal")
    dialog.get_by_label("Denial letter date").fill(f"{datetime.now(UTC).date() - timedelta(days=3)}")
    dialog.get_by_label("Member ID").fill("M00001")
    dialog.get_by_label("Billing NPI").fill("1234567893")
    dialog.get_by_label("Appeal type").select_option(label="Something else")
    dialog.get_by_label("Explanation").fill("Sent by hand.")
    dialog.get_by_label("Request letter (PDF)").set_input_files(files.letter)
    expect(dialog.get_by_text("appeal-letter.pdf attached")).to_be_visible()
    expect(dialog.get_by_label("Internal tracking ID")).to_have_count(0)
    dialog.get_by_role("button", name="Continue").click()
    reference = _reference("by-hand")
    dialog.get_by_label("Internal tracking ID").fill(reference)
    dialog.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("status").filter(has_text="Request number: BPA-APL-")).to_be_visible()
    [entry] = bluepeak.state.ledger_entries(reference=reference)
    assert entry.claim_number == claim.claim_number and entry.reason == "other"


# -- the appeal dialog's fields and the filing limit ----------------------------------------------------


def test_the_ledger_holds_every_field_the_dialog_asks_as_approved(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, files: AppealFiles
) -> None:
    claim = newest_claim(bluepeak.state, "Not covered")
    request = appeal_for(
        claim.claim_number,
        level=AppealLevel.RECONSIDERATION,
        service_dates=ServiceDates(from_date=date(2026, 1, 5), to_date=date(2026, 1, 7)),
        disputed_amount=Decimal("1125.5"),
        disputed_codes=("CO-50",),  # the dialog asks for none of these four
        rendering_npi="1245319599",
        tin="123456789",
        contact=Contact(name="Pat Biller", email="pat@example.org"),
    )
    reference = _reference("fields")
    signed_in.submit_appeal(request, files, reference, Gate())
    [entry] = bluepeak.state.ledger_entries(reference=reference)
    assert_form_received(entry, request, FORM_LABELS)
    typed = [s.value for s in signed_in.steps.steps if s.kind == StepKind.FILL]
    assert "M00001" not in typed and "2026-01-05" not in typed  # the member and the care, never written down


@pytest.mark.parametrize("level", list(AppealLevel))
def test_a_late_appeal_is_refused_by_the_dialog_before_the_gate(
    signed_in: BluePeakPortal, bluepeak: SandboxPortal, files: AppealFiles, level: AppealLevel
) -> None:
    claim = newest_claim(bluepeak.state, "Not covered")
    days = BluePeakPortal.filing_deadline_days[level]
    late = appeal_for(
        claim.claim_number, level=level, denial_date=datetime.now(UTC).date() - timedelta(days + 1)
    )
    gate, before = Gate(), len(bluepeak.state.ledger)
    message = f"The filing limit for this appeal has passed ({days} days from the denial)."
    with pytest.raises(PortalValidationError) as refused:
        signed_in.submit_appeal(late, files, _reference("late"), gate)
    assert str(refused.value) == f"BluePeak Benefits refused the appeal: {message}"
    assert gate.calls == 0 and len(bluepeak.state.ledger) == before
    assert _clicked(signed_in, "Submit appeal") == 0
