"""Meridian's page objects in real Chromium against the sandbox portal over real HTTP."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Page
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
from bot.status import ClaimRule, PaRule, normalize_wording, normalized
from bot.steps import StepKind, StepRecorder
from portals import get_portal
from portals.meridian import FORM_LABELS, MeridianPortal
from sandbox import SandboxAccount
from sandbox.meridian.wording import CLAIM_KINDS, PA_KINDS
from tests.claim_truth import assert_form_received, assert_reads_as_truth
from tests.fixtures.sandbox import SandboxPortal, canary_claim, login_secrets

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def meridian(meridian_sandbox: SandboxPortal) -> SandboxPortal:
    """This module's ``meridian`` is the sandbox portal, whatever other plugins call by that name."""
    return meridian_sandbox


@pytest.fixture
def steps(page: Page, clock: ManualClock) -> StepRecorder:
    page.set_default_timeout(5_000)
    page.set_default_navigation_timeout(10_000)
    return StepRecorder(page, clock=clock)  # a retry's wait moves the test's clock


@pytest.fixture
def portal(page: Page, meridian: SandboxPortal, steps: StepRecorder) -> MeridianPortal:
    return MeridianPortal(page, meridian.url, steps)


@pytest.fixture
def signed_in(
    portal: MeridianPortal, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> MeridianPortal:
    """A portal whose browser holds a fresh session, signed in over plain HTTP to keep tests quick
    (signing in through the page objects has tests of its own)."""
    with httpx.Client(base_url=meridian.url) as client:
        client.post(
            "/login", data={"username": meridian_account.username, "password": meridian_account.password}
        )
        code = pyotp.TOTP(meridian_account.totp_secret or "").now()
        assert client.post("/login/verify", data={"code": code}).headers["location"] == "/dashboard"
        session = client.cookies["mh_session"]
    portal.page.context.add_cookies([{"name": "mh_session", "value": session, "url": meridian.url}])
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
    """An appeal with what Meridian requires (``fields`` add to or replace it): denied ten days ago."""
    required = {
        "denial_date": datetime.now(UTC).date() - timedelta(days=10),
        "member_id": "M00001",
        "billing_npi": "1234567893",
    }
    return AppealRequest(
        claim_number=claim_number,
        reason=reason,
        explanation="The MRI was ordered after six weeks of failed conservative therapy.",
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


def _reference(name: str) -> str:
    return f"PB-{name}-{datetime.now(UTC):%H%M%S%f}"


# -- registry and tables ------------------------------------------------------------------------------


def test_registry_finds_meridian_and_intake_refuses_foreign_claim_numbers() -> None:
    assert get_portal("meridian") is MeridianPortal
    MeridianPortal.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="MH2026000123"))
    with pytest.raises(IntakeError, match=r"payload\.claim_number"):
        MeridianPortal.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="CLM-1"))


def test_every_wording_the_sandbox_can_show_maps_to_its_truth() -> None:
    claims, pas = normalized(MeridianPortal.claim_statuses), normalized(MeridianPortal.pa_statuses)
    for kind in CLAIM_KINDS:
        rule = claims.get(normalize_wording(kind.wording))
        assert isinstance(rule, ClaimRule), kind.wording
        assert rule.category == kind.category, kind.wording
        assert rule.status_code == kind.status_code, kind.wording
    for pa_kind in PA_KINDS:
        pa_rule = pas.get(normalize_wording(pa_kind.wording))
        assert isinstance(pa_rule, PaRule) and pa_rule.hcr01 == pa_kind.hcr01, pa_kind.wording


# -- sign-in --------------------------------------------------------------------------------------------


def test_login_with_totp_makes_exactly_one_login_post(
    portal: MeridianPortal, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    assert portal.is_logged_in() is False
    portal.login(login_secrets(meridian_account))
    assert portal.is_logged_in() is True
    stats = meridian.state.stats()
    assert stats["login_posts"][meridian_account.username] == 1
    assert stats["second_factor_posts"][meridian_account.username] == 1


def test_wrong_password_raises_login_rejected_after_one_login_post(
    portal: MeridianPortal, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    secrets = LoginSecrets(username=meridian_account.username, password=SecretStr("not-the-password"))
    with pytest.raises(LoginRejected, match="Invalid username or password") as caught:
        portal.login(secrets)
    assert type(caught.value) is LoginRejected
    assert meridian.state.stats()["login_posts"][meridian_account.username] == 1
    assert "not-the-password" not in json.dumps([s.model_dump(mode="json") for s in portal.steps.steps])


def test_refused_and_replayed_codes_raise_second_factor_rejected(
    portal: MeridianPortal, meridian_account: SandboxAccount, page: Page
) -> None:
    secrets = login_secrets(meridian_account)
    totp = pyotp.TOTP(meridian_account.totp_secret or "")
    valid = {totp.at(datetime.now(UTC).timestamp() + 30 * k) for k in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    with pytest.raises(SecondFactorRejected, match="not valid"):
        portal.login(LoginSecrets(secrets.username, secrets.password, one_time_code=lambda: wrong))
    code = totp.now()
    portal.login(LoginSecrets(secrets.username, secrets.password, one_time_code=lambda: code))
    page.context.clear_cookies()
    with pytest.raises(SecondFactorRejected, match="already been used"):
        portal.login(LoginSecrets(secrets.username, secrets.password, one_time_code=lambda: code))


def test_password_expiry_raises_password_expired(
    portal: MeridianPortal, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    meridian.state.update_knobs(password_expired=True)
    with pytest.raises(PasswordExpired):
        portal.login(login_secrets(meridian_account))


def test_captcha_raises_captcha_shown_without_a_login_post(
    portal: MeridianPortal, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    meridian.state.update_knobs(captcha_after_logins=0)
    with pytest.raises(CaptchaShown):
        portal.login(login_secrets(meridian_account))
    assert meridian_account.username not in meridian.state.stats()["login_posts"]


def test_maintenance_raises_portal_maintenance(
    portal: MeridianPortal, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    meridian.state.update_knobs(maintenance=True)
    with pytest.raises(PortalMaintenance):
        portal.login(login_secrets(meridian_account))


def test_server_errors_raise_portal_server_error(signed_in: MeridianPortal, meridian: SandboxPortal) -> None:
    meridian.state.update_knobs(error_rate=1.0, error_statuses=(502,))
    with pytest.raises(PortalServerError, match="502"):
        signed_in.check_claim_status(ClaimStatusRequest(claim_number=next(iter(meridian.state.claims))))


def test_expired_session_raises_session_expired(signed_in: MeridianPortal, meridian: SandboxPortal) -> None:
    meridian.state.update_knobs(session_expiry_requests=1)
    number = next(iter(meridian.state.claims))
    with pytest.raises(SessionExpired):
        signed_in.check_claim_status(ClaimStatusRequest(claim_number=number))
    assert signed_in.is_logged_in() is False


# -- status ---------------------------------------------------------------------------------------------


def test_claim_of_every_wording_reads_back_as_its_truth(
    signed_in: MeridianPortal, meridian: SandboxPortal
) -> None:
    truth = meridian.state.truth()["claims"]
    sample = {c["wording"]: c for c in truth}  # one seeded claim of each wording
    mapper = StatusMapper(shipped_codelists())
    assert len(sample) == len(CLAIM_KINDS)
    for expected in sample.values():
        reading = signed_in.check_claim_status(ClaimStatusRequest(claim_number=expected["claim_number"]))
        assert_reads_as_truth(
            mapper.claim(MeridianPortal, reading), meridian.state.claims[expected["claim_number"]]
        )
        assert [c.code for c in reading.codes if c.system == CodeSystem.CARC] == expected["carc"]
        assert [c.code for c in reading.codes if c.system == CodeSystem.RARC] == expected["rarc"]
        claim = meridian.state.claims[expected["claim_number"]]
        patient = claim.patient
        # who, and the date of service: each a patient value every artifact is scrubbed of
        born, served = f"{patient.date_of_birth:%m/%d/%Y}", f"{claim.service_date:%m/%d/%Y}"
        assert reading.sensitive == (patient.name, patient.member_id, born, served)


def test_a_slow_portal_is_waited_for_without_timers(
    signed_in: MeridianPortal, meridian: SandboxPortal
) -> None:
    claim = canary_claim(meridian.state, "Paid")
    meridian.state.update_knobs(latency_ms=400)
    reading = signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert reading.status_text == "Paid"
    assert reading.paid_amount == str(claim.paid)


def test_a_search_answered_with_a_server_error_once_is_searched_again(
    signed_in: MeridianPortal, meridian: SandboxPortal, clock: ManualClock
) -> None:
    claim = canary_claim(meridian.state, "Paid")
    meridian.state.update_knobs(fail_path="/claims", fail_after=1)  # the search page loads; its answer fails
    started = clock.now()
    injected = meridian.state.errors_injected
    reading = signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert reading.status_text == "Paid" and meridian.state.errors_injected == injected + 1
    (retry,) = [s for s in signed_in.steps.steps if s.kind == StepKind.RETRY]
    assert retry.target == "load again, then 1 steps again"  # the search page, the number typed
    searches = [
        s for s in signed_in.steps.steps if s.kind == StepKind.CLICK and '"Search"' in (s.locator or "")
    ]
    assert len(searches) == 2 and searches[0].meta == {"repeatable": "true"}
    assert clock.now() - started == timedelta(seconds=0.25)


def test_claim_reading_keeps_code_descriptions_and_no_phi_in_steps(
    signed_in: MeridianPortal, meridian: SandboxPortal
) -> None:
    claim = canary_claim(meridian.state, "Denied", carc=("50",), rarc=("N130",))
    reading = signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert [(c.system, c.code) for c in reading.codes] == [(CodeSystem.CARC, "50"), (CodeSystem.RARC, "N130")]
    assert reading.codes[0].description and "medical necessity" in reading.codes[0].description
    recorded = json.dumps([s.model_dump(mode="json") for s in signed_in.steps.steps])
    for secret in (claim.patient.name, claim.patient.member_id, f"{claim.patient.date_of_birth:%m/%d/%Y}"):
        assert secret not in recorded
        assert secret not in repr(reading)


def test_unknown_claim_and_pa_raise_not_found(signed_in: MeridianPortal) -> None:
    with pytest.raises(NotFoundOnPortal, match="MH0000000001"):
        signed_in.check_claim_status(ClaimStatusRequest(claim_number="MH0000000001"))
    with pytest.raises(NotFoundOnPortal, match="MPA0000001"):
        signed_in.check_pa_status(PaStatusRequest(pa_number="MPA0000001"))


PA_DETAILS = ("certification_number", "units_requested", "units_approved", "reason_code")


def test_pa_of_every_decision_reads_back_as_its_truth(
    signed_in: MeridianPortal, meridian: SandboxPortal
) -> None:
    sample = {p["wording"]: p for p in meridian.state.truth()["pas"]}
    assert len(sample) == len(PA_KINDS)
    for expected in sample.values():
        reading = signed_in.check_pa_status(PaStatusRequest(pa_number=expected["pa_number"]))
        status = StatusMapper(shipped_codelists()).pa(MeridianPortal, reading)
        assert status.decision == expected["decision"]
        assert status.hcr01 == expected["hcr01"]
        assert (reading.valid_from and reading.valid_from.isoformat()) == expected["valid_from"]
        assert (reading.valid_to and reading.valid_to.isoformat()) == expected["valid_to"]
        assert reading.detail == expected["reason"]
        shown = (
            status.certification_number,
            status.units_requested,
            status.units_approved,
            status.reason_code,
        )
        assert shown == tuple(expected[k] for k in PA_DETAILS), expected["wording"]


# -- appeals --------------------------------------------------------------------------------------------


def test_submitted_appeal_is_in_the_ledger_once_with_the_confirmation_number(
    signed_in: MeridianPortal, meridian: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    reference, gate = _reference("ok"), Gate()
    result = signed_in.submit_appeal(
        appeal_for(claim.claim_number, AppealReason.CODING_ERROR), files, reference, gate
    )
    assert gate.calls == 1
    [entry] = meridian.state.ledger_entries(reference=reference)
    assert result.confirmation_id == entry.appeal_number
    assert result.reference == reference
    assert entry.reason == AppealReason.CODING_ERROR.value
    assert entry.letter_sha256 == hashlib.sha256(PDF).hexdigest()
    assert entry.attachments == ("clinical-notes.pdf",)
    found = signed_in.find_submission(reference)
    assert found.found and found.confirmation_id == entry.appeal_number
    assert signed_in.find_submission(_reference("never-sent")).found is False


def test_gate_that_raises_prevents_the_submit_click(
    signed_in: MeridianPortal, meridian: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    reference, gate = _reference("stale"), Gate(StaleLease())
    before = len(meridian.state.ledger)
    with pytest.raises(StaleLease):
        signed_in.submit_appeal(appeal_for(claim.claim_number), files, reference, gate)
    assert gate.calls == 1
    assert len(meridian.state.ledger) == before
    clicks = [s.locator or "" for s in signed_in.steps.steps if s.kind == StepKind.CLICK]
    assert not any("Submit appeal" in c for c in clicks)


def test_a_wizard_step_that_fails_once_is_posted_again_and_the_appeal_goes_once(
    signed_in: MeridianPortal, meridian: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    meridian.state.update_knobs(fail_path="/appeals/new/reason")  # where the claim step leads, once
    reference, gate = _reference("wizard"), Gate()
    result = signed_in.submit_appeal(appeal_for(claim.claim_number), files, reference, gate)
    [entry] = meridian.state.ledger_entries(reference=reference)
    assert result.confirmation_id == entry.appeal_number and gate.calls == 1
    (retry,) = [s for s in signed_in.steps.steps if s.kind == StepKind.RETRY]
    # the wizard restarted: the number typed, the level chosen, the denial, member and NPI typed again
    assert retry.target == "load again, then 5 steps again"
    clicks = [s.locator or "" for s in signed_in.steps.steps if s.kind == StepKind.CLICK]
    assert sum("Submit appeal" in c for c in clicks) == 1


def test_refusals_before_the_submit_never_reach_the_gate(
    signed_in: MeridianPortal, meridian: SandboxPortal, files: AppealFiles, tmp_path: Path
) -> None:
    gate = Gate()
    pending = canary_claim(meridian.state, "In process")
    with pytest.raises(PortalValidationError, match="cannot be appealed"):
        signed_in.submit_appeal(appeal_for(pending.claim_number), files, _reference("pending"), gate)
    with pytest.raises(NotFoundOnPortal):
        signed_in.submit_appeal(appeal_for("MH0000000002"), files, _reference("unknown"), gate)
    not_pdf = tmp_path / "letter.pdf"
    not_pdf.write_bytes(b"PK\x03\x04 a zip, not a PDF")
    denied = canary_claim(meridian.state, "Denied")
    with pytest.raises(PortalValidationError, match="must be a PDF"):
        signed_in.submit_appeal(
            appeal_for(denied.claim_number), AppealFiles(not_pdf), _reference("zip"), gate
        )
    assert gate.calls == 0


@pytest.mark.parametrize(
    ("failure", "raised"), [("502", PortalServerError), ("drop", PortalTimeout), ("slow", PortalTimeout)]
)
def test_failure_after_the_click_is_transient_and_history_finds_the_appeal(
    signed_in: MeridianPortal,
    meridian: SandboxPortal,
    files: AppealFiles,
    page: Page,
    failure: str,
    raised: type[Transient],
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    reference = _reference(failure)
    if failure == "slow":
        meridian.state.update_knobs(slow_confirmation_ms=5_000)
    else:
        meridian.state.update_knobs(record_then_fail=failure)
    page.set_default_timeout(3_000)  # under the slow answer's delay
    page.set_default_navigation_timeout(3_000)
    with pytest.raises(raised):
        signed_in.submit_appeal(appeal_for(claim.claim_number), files, reference, Gate())
    meridian.state.reset()
    page.set_default_timeout(5_000)
    [entry] = meridian.state.ledger_entries(reference=reference)
    found = signed_in.find_submission(reference)
    assert found.found and found.confirmation_id == entry.appeal_number


# -- redesigns ------------------------------------------------------------------------------------------


def test_cosmetic_redesign_changes_nothing_for_the_bot(
    portal: MeridianPortal, meridian: SandboxPortal, meridian_account: SandboxAccount, files: AppealFiles
) -> None:
    meridian.state.update_knobs(redesign="cosmetic")
    portal.login(login_secrets(meridian_account))
    claim = canary_claim(meridian.state, "Denied", carc=("16",), rarc=("M51",))
    reading = portal.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert reading.status_text == "Denied"
    assert [(c.system, c.code) for c in reading.codes] == [(CodeSystem.CARC, "16"), (CodeSystem.RARC, "M51")]
    pa = meridian.state.add_pa("approved")
    assert portal.check_pa_status(PaStatusRequest(pa_number=pa.pa_number)).valid_to == pa.valid_to
    reference = _reference("cosmetic")
    result = portal.submit_appeal(appeal_for(claim.claim_number), files, reference, Gate())
    assert portal.find_submission(reference).confirmation_id == result.confirmation_id
    assert [e.appeal_number for e in meridian.state.ledger_entries(reference=reference)] == [
        result.confirmation_id
    ]


def test_renamed_redesign_raises_portal_changed_naming_the_locator(
    signed_in: MeridianPortal, meridian: SandboxPortal, files: AppealFiles, page: Page
) -> None:
    meridian.state.update_knobs(redesign="renamed")
    page.set_default_timeout(1_500)
    claim = canary_claim(meridian.state, "Denied")
    with pytest.raises(PortalChanged) as changed:
        signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    assert changed.value.locator and "Claim number" in changed.value.locator
    gate = Gate()
    with pytest.raises(PortalChanged) as changed:
        signed_in.submit_appeal(appeal_for(claim.claim_number), files, _reference("renamed"), gate)
    assert changed.value.locator and "Claim number" in changed.value.locator
    assert gate.calls == 0
    assert meridian.state.ledger_entries(reference=claim.claim_number) == []


def test_sensitive_locators_cover_the_patient_fields(
    signed_in: MeridianPortal, meridian: SandboxPortal
) -> None:
    claim = canary_claim(meridian.state, "Paid")
    signed_in.check_claim_status(ClaimStatusRequest(claim_number=claim.claim_number))
    shown = {text for loc in signed_in.sensitive_locators() for text in loc.all_inner_texts()}
    assert shown >= {claim.patient.name, claim.patient.member_id, f"{claim.patient.date_of_birth:%m/%d/%Y}"}


# -- the appeal form's fields and the filing limit ----------------------------------------------------


def test_the_ledger_holds_every_field_the_wizard_asks_as_approved(
    signed_in: MeridianPortal, meridian: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    request = appeal_for(
        claim.claim_number,
        level=AppealLevel.SECOND_LEVEL,
        service_dates=ServiceDates(from_date=date(2026, 1, 5), to_date=date(2026, 1, 7)),
        disputed_codes=("CO-50", "N115"),
        disputed_amount=Decimal("1125.5"),
        rendering_npi="1245319599",  # the form asks for neither of these two, nor a contact
        tin="123456789",
        contact=Contact(name="Pat Biller", phone="555-0100"),
    )
    reference = _reference("fields")
    signed_in.submit_appeal(request, files, reference, Gate())
    [entry] = meridian.state.ledger_entries(reference=reference)
    assert_form_received(entry, request, FORM_LABELS)
    typed = [s.value for s in signed_in.steps.steps if s.kind == StepKind.FILL]
    assert "M00001" not in typed and "01/05/2026" not in typed  # the member and the care, never written down
    assert "1234567893" in typed


@pytest.mark.parametrize("level", list(AppealLevel))
def test_a_late_appeal_is_refused_at_the_claim_step_before_the_gate(
    signed_in: MeridianPortal, meridian: SandboxPortal, files: AppealFiles, level: AppealLevel
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    days = MeridianPortal.filing_deadline_days[level]
    late = appeal_for(
        claim.claim_number, level=level, denial_date=datetime.now(UTC).date() - timedelta(days + 1)
    )
    gate, before = Gate(), len(meridian.state.ledger)
    with pytest.raises(
        PortalValidationError, match=rf"filing limit .* within {days} days of the denial date"
    ):
        signed_in.submit_appeal(late, files, _reference("late"), gate)
    assert gate.calls == 0 and len(meridian.state.ledger) == before
