"""PayerHub's page objects in real Chromium against the sandbox portal over real HTTP: what the
contract suite does not ask of every payer (plans, the view state, date ranges, paged history)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from pydantic import SecretStr

from bot.codelists import shipped_codelists
from bot.documents import AppealFiles
from bot.errors import (
    IntakeError,
    LoginRejected,
    NotFoundOnPortal,
    PortalServerError,
    PortalValidationError,
    StaleLease,
)
from bot.evidence import screenshot_mask
from bot.login import LoginSecrets
from bot.mapping import StatusMapper
from bot.models import (
    AppealLevel,
    AppealReason,
    AppealRequest,
    ClaimStatusRequest,
    Contact,
    DocumentRef,
    PaStatusRequest,
    ServiceDates,
    WorkKind,
)
from bot.steps import StepKind, StepRecorder
from portals import get_portal
from portals.payerhub import FORM_LABELS, LEVEL_LABELS, PayerHubPortal
from sandbox import SandboxAccount
from sandbox.data import Claim
from sandbox.payerhub.wording import APPEAL_LEVELS, PLANS, WORDS
from tests.claim_truth import assert_form_received, assert_reads_as_truth
from tests.fixtures.sandbox import SandboxPortal, canary_claim, login_secrets

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
BLUE, CARDINAL, SUMMIT = (p.name for p in PLANS)
NPI = "1234567893"  # the CMS example NPI: its Luhn check digit is right


@pytest.fixture
def steps(page: Page) -> StepRecorder:
    page.set_default_timeout(5_000)
    page.set_default_navigation_timeout(10_000)
    return StepRecorder(page)


@pytest.fixture
def portal(page: Page, payerhub_sandbox: SandboxPortal, steps: StepRecorder) -> PayerHubPortal:
    return PayerHubPortal(page, payerhub_sandbox.url, steps)


@pytest.fixture
def signed_in(portal: PayerHubPortal, payerhub_account: SandboxAccount) -> PayerHubPortal:
    portal.login(login_secrets(payerhub_account))
    return portal


@pytest.fixture
def files(tmp_path: Path) -> AppealFiles:
    letter = tmp_path / "reconsideration-letter.pdf"
    letter.write_bytes(PDF)
    notes = tmp_path / "clinical-notes.pdf"
    notes.write_bytes(PDF + b"% notes\n")
    return AppealFiles(letter=letter, attachments=[notes])


def appeal_for(claim: Claim, plan: str | None = None, **fields: Any) -> AppealRequest:
    """An appeal with what PayerHub's claim step requires (a first-level appeal of a denial ten days
    old, the member, the billing NPI), and any other ``fields`` of AppealRequest."""
    required = {
        "denial_date": datetime.now(UTC).date() - timedelta(days=10),
        "member_id": claim.patient.member_id,
        "billing_npi": NPI,
    }
    return AppealRequest(
        claim_number=claim.claim_number,
        plan=plan or claim.plan,
        reason=AppealReason.CODING_ERROR,
        explanation="The claim was billed with the right code; see the letter.",
        letter=DocumentRef(path="reconsideration-letter.pdf", sha256=hashlib.sha256(PDF).hexdigest()),
        approved_by="Dana Reviewer",
        approved_at=datetime.now(UTC) - timedelta(hours=1),
        **{**required, **fields},
    )


def twins(portal: SandboxPortal) -> list[tuple[Claim, Claim]]:
    """The claims whose number two plans use (the sandbox seeds a few)."""
    by_number: dict[str, list[Claim]] = {}
    for claim in list(portal.state.claims.values()):
        by_number.setdefault(claim.claim_number, []).append(claim)
    return [(a, b) for a, b, *_ in (c for c in by_number.values() if len(c) > 1)]


def searched_ranges(portal: PayerHubPortal) -> list[tuple[date, date]]:
    """The (From, To) service dates of each claim search the run typed, in order."""
    typed = [
        s.value or "" for s in portal.steps.steps if s.kind == StepKind.FILL and s.value and "/" in s.value
    ]
    dates = [datetime.strptime(value, "%m/%d/%Y").date() for value in typed]
    return list(zip(dates[::2], dates[1::2], strict=True))


def claim_request(claim: Claim, plan: str | None = None) -> ClaimStatusRequest:
    return ClaimStatusRequest(claim_number=claim.claim_number, plan=plan or claim.plan)


class Gate:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    def __call__(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error


def _reference(name: str) -> str:
    return f"PB-{name}-{datetime.now(UTC):%H%M%S%f}"


# -- intake and sign-in ---------------------------------------------------------------------------------


def test_intake_wants_a_plan_it_serves_and_a_thirteen_digit_claim_number() -> None:
    assert get_portal("payerhub") is PayerHubPortal
    PayerHubPortal.check_request(
        WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="2126001000123", plan=BLUE)
    )
    with pytest.raises(IntakeError, match=r"serves several health plans; name one \(its plans: Blue Lakes"):
        PayerHubPortal.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="2126001000123"))
    with pytest.raises(IntakeError, match="not a plan PayerHub serves"):
        PayerHubPortal.check_request(WorkKind.PA_STATUS, PaStatusRequest(pa_number="AU00000001", plan="Acme"))
    with pytest.raises(IntakeError, match=r"payload\.claim_number"):
        PayerHubPortal.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="MH1", plan=BLUE))


def test_login_is_one_password_post_then_one_totp_post(
    portal: PayerHubPortal, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    assert portal.is_logged_in() is False
    portal.login(login_secrets(payerhub_account))
    assert portal.is_logged_in() is True
    stats = payerhub_sandbox.state.stats()
    assert stats["login_posts"][payerhub_account.username] == 1
    assert stats["second_factor_posts"][payerhub_account.username] == 1


def test_a_wrong_password_is_refused_in_the_portals_words(
    portal: PayerHubPortal, payerhub_account: SandboxAccount
) -> None:
    secrets = LoginSecrets(username=payerhub_account.username, password=SecretStr("not-the-password"))
    with pytest.raises(LoginRejected, match="The user name or password is incorrect"):
        portal.login(secrets)


# -- plans, date ranges and the view state --------------------------------------------------------------


def test_a_claim_number_in_two_plans_reads_each_plans_own_status(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal
) -> None:
    one, other = next(pair for pair in twins(payerhub_sandbox) if pair[0].wording != pair[1].wording)
    for claim in (one, other):
        assert signed_in.check_claim_status(claim_request(claim)).status_text == claim.wording
    (neither,) = {BLUE, CARDINAL, SUMMIT} - {one.plan, other.plan}
    with pytest.raises(NotFoundOnPortal, match=f"has no claim {one.claim_number} for {neither}"):
        signed_in.check_claim_status(claim_request(one, neither))


def test_claim_of_every_wording_reads_back_as_its_truth(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal
) -> None:
    """The full composite, the amounts and each adjustment's group and amount, one claim a wording
    (a claim the patient owes part of among them: deductible and coinsurance are PR)."""
    state = payerhub_sandbox.state
    owed = canary_claim(state, "Finalized - paid, see remittance", carc=("2", "45"))
    sample = {c.wording: c for c in sorted(state.claims.values(), key=lambda c: c.key)}
    sample["owed"] = owed
    mapper = StatusMapper(shipped_codelists())
    for claim in sample.values():
        reading = signed_in.check_claim_status(claim_request(claim))
        assert_reads_as_truth(mapper.claim(PayerHubPortal, reading), claim)
    assert owed.patient_responsibility and owed.patient_responsibility == owed.adjustments[0].amount > 0


def test_claims_are_searched_24_months_at_a_time_back_six_years(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal
) -> None:
    today = datetime.now(UTC).date()
    older = canary_claim(
        payerhub_sandbox.state, "Finalized - adjusted", service_date=today - timedelta(days=900)
    )
    reading = signed_in.check_claim_status(claim_request(older))
    assert reading.status_text == "Finalized - adjusted"
    assert f"{older.service_date:%m/%d/%Y}" in reading.sensitive
    before = today - timedelta(days=731)  # the day before the first range
    first, second = (today - timedelta(days=730), today), (before - timedelta(days=730), before)
    assert searched_ranges(signed_in) == [first, second]
    signed_in.steps.steps.clear()
    with pytest.raises(NotFoundOnPortal, match="has no claim 2126001999999 for Blue Lakes Health in 6 years"):
        signed_in.check_claim_status(ClaimStatusRequest(claim_number="2126001999999", plan=BLUE))
    assert len(searched_ranges(signed_in)) == 3


def test_an_authorization_inquiry_for_a_plan_without_one_is_refused_in_the_portals_words(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal
) -> None:
    pa = payerhub_sandbox.state.add_pa("approved", plan=CARDINAL)
    assert (
        signed_in.check_pa_status(PaStatusRequest(pa_number=pa.pa_number, plan=CARDINAL)).status_text
        == "Certified"
    )
    with pytest.raises(PortalValidationError, match="not available for Summit Medicare Advantage"):
        signed_in.check_pa_status(PaStatusRequest(pa_number=pa.pa_number, plan=SUMMIT))
    with pytest.raises(NotFoundOnPortal, match="has no authorization"):
        signed_in.check_pa_status(PaStatusRequest(pa_number=pa.pa_number, plan=BLUE))


def test_a_postback_with_a_stale_view_state_is_a_transient_server_error(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal, page: Page
) -> None:
    signed_in.open("/Claims/ClaimStatus.aspx", signed_in.plan_list, "plan step")
    other = page.context.new_page()  # a second tab: its page now holds the session's newest view state
    other.goto(f"{payerhub_sandbox.url}/Default.aspx")
    other.close()
    signed_in.steps.select(signed_in.plan_list, BLUE)
    with pytest.raises(PortalServerError, match=r"Server Error in ./. Application"):
        signed_in.steps.click(signed_in.named("button", name="Select plan"), navigates=True)


# -- reconsiderations and their history -----------------------------------------------------------------


def test_a_reconsideration_goes_to_the_named_plan_once_and_the_history_finds_it(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal, files: AppealFiles
) -> None:
    state = payerhub_sandbox.state
    # a finalized claim whose number another plan uses too (a new twin would upset the sandbox's
    # own count of its seeded ones, in the session all tests share)
    denied, _ = next(
        (a, b) for pair in twins(payerhub_sandbox) for a, b in (pair, pair[::-1]) if a.appealable
    )
    reference, gate = _reference("ok"), Gate()
    result = signed_in.submit_appeal(appeal_for(denied), files, reference, gate)
    assert gate.calls == 1
    [entry] = state.ledger_entries(reference=reference)
    assert (entry.appeal_number, entry.plan, entry.claim_number) == (
        result.confirmation_id,
        denied.plan,
        denied.claim_number,
    )
    assert entry.reason == AppealReason.CODING_ERROR.value
    assert entry.letter_sha256 == hashlib.sha256(PDF).hexdigest()
    assert entry.attachments == ("clinical-notes.pdf",)
    assert signed_in.find_submission(reference).confirmation_id == entry.appeal_number
    assert signed_in.find_submission(_reference("never-sent")).found is False


def test_refusals_and_a_stale_lease_stop_before_the_submit_click(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal, files: AppealFiles
) -> None:
    state, gate = payerhub_sandbox.state, Gate()
    before = len(state.ledger)
    pending = canary_claim(state, "Pended - in adjudication", plan=BLUE)
    with pytest.raises(PortalValidationError, match="Only finalized claims can be reconsidered"):
        signed_in.submit_appeal(appeal_for(pending), files, _reference("pending"), gate)
    denied = canary_claim(state, "Finalized - denied", plan=BLUE)
    with pytest.raises(NotFoundOnPortal, match="No claim with this number was found for Cardinal Care"):
        signed_in.submit_appeal(appeal_for(denied, CARDINAL), files, _reference("other-plan"), gate)
    assert gate.calls == 0
    with pytest.raises(StaleLease):
        signed_in.submit_appeal(appeal_for(denied), files, _reference("stale"), Gate(StaleLease()))
    assert len(state.ledger) == before
    clicks = [s.locator or "" for s in signed_in.steps.steps if s.kind == StepKind.CLICK]
    assert not any("Submit request" in c for c in clicks)


def test_the_history_is_read_page_by_page_until_our_reference_shows(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal
) -> None:
    state, ours = payerhub_sandbox.state, _reference("paged")
    fields = {"claim_number": "2126001000123", "plan": BLUE, "reason": "other", "explanation": "-"}
    fields |= {"letter_filename": "l.pdf", "letter_sha256": "0" * 64, "username": "someone"}
    first = state.record_appeal(reference=ours, **fields)
    for n in range(12):  # newer requests whose references contain ours push it to the second page
        state.record_appeal(reference=f"{ours}-{n}", **fields)
    found = signed_in.find_submission(ours)
    assert found.found and found.confirmation_id == first.appeal_number
    assert any("Next" in (s.locator or "") for s in signed_in.steps.steps if s.kind == StepKind.CLICK)


# -- what screenshots mask --------------------------------------------------------------------------------


def test_the_claim_results_mask_their_patient_columns_and_a_renamed_column_masks_the_page(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal, page: Page
) -> None:
    claim = canary_claim(payerhub_sandbox.state, "Finalized - paid", plan=BLUE)
    signed_in._open_for_plan("/Claims/ClaimStatus.aspx", BLUE, signed_in.named("search", name="Claim search"))
    box = signed_in.named("search", name="Claim search")
    today = datetime.now(UTC).date()
    box.get_by_label("From", exact=True).fill(f"{today - timedelta(days=700):%m/%d/%Y}")
    box.get_by_label("To", exact=True).fill(f"{today:%m/%d/%Y}")
    box.get_by_label("Claim number", exact=True).fill(claim.claim_number)
    box.get_by_role("button", name="Search", exact=True).click()
    signed_in.results.wait_for()
    masked = {text for loc in screenshot_mask(page, signed_in) for text in loc.all_inner_texts()}
    service = f"{claim.service_date:%m/%d/%Y}"
    assert {claim.patient.name, claim.patient.member_id, service} <= masked
    assert claim.claim_number not in masked  # the rest of the row shows
    page.get_by_role("columnheader", name="Patient name").evaluate("th => { th.textContent = 'Member' }")
    # a header it does not know: the page is masked whole (the content area after the patient fields)
    assert len(screenshot_mask(page, signed_in)) == len(signed_in.sensitive_locators()) + 1


# -- the claim step's other fields, and the filing limit ----------------------------------------------


def test_the_sandboxs_levels_and_filing_limits_agree_with_the_portal_module() -> None:
    """Written apart (the plans' rule in the sandbox's wording, the bot's in its declaration)."""
    sandbox_limits = {AppealLevel(canonical): days for _, _, canonical, days in APPEAL_LEVELS}
    assert sandbox_limits == PayerHubPortal.filing_deadline_days
    assert {AppealLevel(canonical): label for _, label, canonical, _ in APPEAL_LEVELS} == LEVEL_LABELS
    assert {name: WORDS[name] for name in FORM_LABELS} == FORM_LABELS


def test_a_reconsideration_carries_every_field_the_claim_step_asks_and_the_ledger_keeps_them(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(payerhub_sandbox.state, "Finalized - denied", plan=CARDINAL)
    request = appeal_for(
        claim,
        level=AppealLevel.RECONSIDERATION,
        service_dates=ServiceDates(
            from_date=claim.service_date, to_date=claim.service_date + timedelta(days=2)
        ),
        disputed_amount="1125.5",
        disputed_codes=("CO-50",),  # asked nowhere on PayerHub's form: not typed, not received
        contact=Contact(name="Pat Chen", email="pat@clinic.example"),
    )
    reference = _reference("fields")
    signed_in.submit_appeal(request, files, reference, Gate())
    [entry] = payerhub_sandbox.state.ledger_entries(reference=reference)
    assert_form_received(entry, request, FORM_LABELS)
    assert entry.form["disputed_amount"] == "1125.50" and entry.form["level"] == "reconsideration"
    typed = [s.value or "" for s in signed_in.steps.steps if s.kind == StepKind.FILL]
    for personal in (claim.patient.member_id, f"{claim.service_date:%m/%d/%Y}"):
        assert personal not in typed  # typed as values to scrub, never written into the steps


def test_a_late_reconsideration_is_refused_at_the_claim_step_before_the_gate(
    signed_in: PayerHubPortal, payerhub_sandbox: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(payerhub_sandbox.state, "Finalized - denied", plan=BLUE)
    days = PayerHubPortal.filing_deadline_days[AppealLevel.SECOND_LEVEL]
    late = datetime.now(UTC).date() - timedelta(days=days + 1)
    gate, before = Gate(), len(payerhub_sandbox.state.ledger)
    request = appeal_for(claim, level=AppealLevel.SECOND_LEVEL, denial_date=late)
    with pytest.raises(PortalValidationError, match=r"filing limit for this request has passed \(60 days"):
        signed_in.submit_appeal(request, files, _reference("late"), gate)
    assert gate.calls == 0
    assert len(payerhub_sandbox.state.ledger) == before
