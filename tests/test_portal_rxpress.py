"""RxPress PBM's page objects in real Chromium against the sandbox portal over real HTTP."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request
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
    PayerbotError,
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
from bot.evidence import capture_evidence
from bot.login import LoginSecrets, SecondFactorKind
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
    WorkKind,
)
from bot.redact import Redactor
from bot.status import ClaimRule, PaRule, normalize_wording, normalized
from bot.steps import StepKind, StepRecorder
from portals import get_portal
from portals.rxpress import FORM_LABELS, LEVEL_LABELS, RxPressPortal
from sandbox import SandboxAccount
from sandbox.data import Claim
from sandbox.rxpress.formats import drug_of
from sandbox.rxpress.wording import CLAIM_KINDS, PA_KINDS, REVIEW_LEVELS, WORDS
from tests.claim_truth import assert_form_received, assert_reads_as_truth
from tests.fixtures.sandbox import SandboxPortal, canary_claim, inbox_secrets

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
KEY_REJECTS = ("70", "75", "76", "79", "88")


@pytest.fixture
def rxpress(rxpress_sandbox: SandboxPortal) -> SandboxPortal:
    return rxpress_sandbox


@pytest.fixture
def steps(page: Page, clock: ManualClock) -> StepRecorder:
    page.set_default_timeout(5_000)
    page.set_default_navigation_timeout(10_000)
    return StepRecorder(page, clock=clock)  # a retry's wait moves the test's clock


@pytest.fixture
def portal(page: Page, rxpress: SandboxPortal, steps: StepRecorder) -> RxPressPortal:
    return RxPressPortal(page, rxpress.url, steps)


@pytest.fixture
def signed_in(
    portal: RxPressPortal, rxpress: SandboxPortal, rxpress_account: SandboxAccount
) -> RxPressPortal:
    """A portal whose browser holds a fresh session, signed in over plain HTTP to keep tests quick
    (signing in through the page objects has tests of its own)."""
    with httpx.Client(base_url=rxpress.url) as client:
        client.post(
            "/login", data={"username": rxpress_account.username, "password": rxpress_account.password}
        )
        sent = rxpress.state.inbox.latest(rxpress_account.username)
        assert sent is not None
        assert client.post("/login/code", data={"code": sent.code}).headers["location"] == "/main"
        session = client.cookies["RXSESSIONID"]
    portal.page.context.add_cookies([{"name": "RXSESSIONID", "value": session, "url": rxpress.url}])
    return portal


@pytest.fixture
def files(tmp_path: Path) -> AppealFiles:
    letter = tmp_path / "redetermination-letter.pdf"
    letter.write_bytes(PDF)
    notes = tmp_path / "chart-notes.pdf"
    notes.write_bytes(PDF + b"% notes\n")
    return AppealFiles(letter=letter, attachments=[notes])


def claim_request(claim: Claim) -> ClaimStatusRequest:
    return ClaimStatusRequest(claim_number=claim.claim_number, fill_date=claim.service_date)


def appeal_for(
    claim_number: str,
    fill_date: date,
    reason: AppealReason = AppealReason.MEDICAL_NECESSITY,
    **fields: Any,
) -> AppealRequest:
    """An appeal with what RxPress's form requires (a first-level review of a rejection ten days
    old, the cardholder), and any other ``fields`` of AppealRequest."""
    today = datetime.now(UTC).date()
    return AppealRequest(
        claim_number=claim_number,
        fill_date=fill_date,
        reason=reason,
        explanation="Two formulary alternatives failed; see the prescriber's letter.",
        letter=DocumentRef(path="redetermination-letter.pdf", sha256=hashlib.sha256(PDF).hexdigest()),
        approved_by="Dana Reviewer",
        approved_at=datetime.now(UTC) - timedelta(hours=1),
        **{"denial_date": today - timedelta(days=10), "member_id": "CH0042", **fields},
    )


def appeal_of(
    claim: Claim, reason: AppealReason = AppealReason.MEDICAL_NECESSITY, **fields: Any
) -> AppealRequest:
    return appeal_for(claim.claim_number, claim.service_date, reason, **fields)


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


def recorded(portal: RxPressPortal) -> str:
    return json.dumps([s.model_dump(mode="json") for s in portal.steps.steps])


def never_asked() -> str:
    raise AssertionError("the portal asked for a code on a remembered device")


# -- registry and tables ------------------------------------------------------------------------------


def test_registry_finds_rxpress_and_intake_wants_rx_numbers_with_fill_dates() -> None:
    assert get_portal("rxpress") is RxPressPortal
    assert RxPressPortal.second_factor == SecondFactorKind.OUT_OF_BAND
    assert RxPressPortal.history_lag is not None and RxPressPortal.history_lag > timedelta(0)
    good = ClaimStatusRequest(claim_number="1234567", fill_date=date(2026, 1, 2))
    RxPressPortal.check_request(WorkKind.CLAIM_STATUS, good)
    with pytest.raises(IntakeError, match=r"payload\.claim_number"):
        RxPressPortal.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="MH2026000123"))
    with pytest.raises(IntakeError, match=r"payload\.fill_date"):
        RxPressPortal.check_request(WorkKind.CLAIM_STATUS, ClaimStatusRequest(claim_number="1234567"))


def test_every_wording_the_sandbox_can_show_maps_to_its_truth() -> None:
    claims, pas = normalized(RxPressPortal.claim_statuses), normalized(RxPressPortal.pa_statuses)
    for kind in CLAIM_KINDS:
        rule = claims.get(normalize_wording(kind.wording))
        assert isinstance(rule, ClaimRule), kind.wording
        assert (rule.category, rule.status_code) == (kind.category, kind.status_code), kind.wording
    for pa_kind in PA_KINDS:
        pa_rule = pas.get(normalize_wording(pa_kind.wording))
        assert isinstance(pa_rule, PaRule) and pa_rule.hcr01 == pa_kind.hcr01, pa_kind.wording


# -- log-in -----------------------------------------------------------------------------------------------


def test_login_with_the_emailed_code_makes_one_login_post(
    portal: RxPressPortal, rxpress: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    assert portal.is_logged_in() is False
    portal.login(inbox_secrets(rxpress, rxpress_account))
    assert portal.is_logged_in() is True
    stats = rxpress.state.stats()
    assert stats["login_posts"][rxpress_account.username] == 1
    assert stats["second_factor_posts"][rxpress_account.username] == 1
    sent = rxpress.state.inbox.latest(rxpress_account.username)
    assert sent is not None and sent.used
    assert sent.code not in recorded(portal) and rxpress_account.password not in recorded(portal)


def test_a_remembered_device_skips_the_code(
    portal: RxPressPortal, rxpress: SandboxPortal, rxpress_account: SandboxAccount, page: Page
) -> None:
    portal.login(inbox_secrets(rxpress, rxpress_account))
    assert {c["name"] for c in page.context.cookies()} >= {"RXSESSIONID", "rx_device"}
    page.context.clear_cookies(name="RXSESSIONID")  # the session is gone, the device is remembered
    assert portal.is_logged_in() is False
    password = SecretStr(rxpress_account.password)
    portal.login(LoginSecrets(rxpress_account.username, password, one_time_code=never_asked))
    assert portal.is_logged_in() is True
    stats = rxpress.state.stats()
    assert stats["login_posts"][rxpress_account.username] == 2
    assert stats["second_factor_posts"][rxpress_account.username] == 1


def test_wrong_password_raises_login_rejected_after_one_login_post(
    portal: RxPressPortal, rxpress: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    secrets = LoginSecrets(username=rxpress_account.username, password=SecretStr("not-the-password"))
    with pytest.raises(LoginRejected, match="User ID or password you entered is incorrect") as caught:
        portal.login(secrets)
    assert type(caught.value) is LoginRejected
    assert rxpress.state.stats()["login_posts"][rxpress_account.username] == 1
    assert "not-the-password" not in recorded(portal)


def test_a_wrong_code_raises_second_factor_rejected(
    portal: RxPressPortal, rxpress: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    def wrong_code() -> str:
        sent = rxpress.state.inbox.latest(rxpress_account.username)
        assert sent is not None
        return f"{(int(sent.code) + 1) % 10**6:06d}"

    secrets = LoginSecrets(
        rxpress_account.username, SecretStr(rxpress_account.password), one_time_code=wrong_code
    )
    with pytest.raises(SecondFactorRejected, match="security code you entered is incorrect"):
        portal.login(secrets)


@pytest.mark.parametrize(
    ("knobs", "raised"),
    [
        ({"captcha_after_logins": 0}, CaptchaShown),
        ({"maintenance": True}, PortalMaintenance),
        ({"password_expired": True}, PasswordExpired),
    ],
)
def test_what_the_portal_shows_instead_of_logging_in_is_classified(
    portal: RxPressPortal,
    rxpress: SandboxPortal,
    rxpress_account: SandboxAccount,
    knobs: dict[str, object],
    raised: type[PayerbotError],
) -> None:
    rxpress.state.update_knobs(**knobs)
    with pytest.raises(raised):
        portal.login(inbox_secrets(rxpress, rxpress_account))
    posts = rxpress.state.stats()["login_posts"].get(rxpress_account.username, 0)
    assert posts == (1 if raised is PasswordExpired else 0)  # a CAPTCHA or maintenance page: no POST


def test_server_errors_raise_portal_server_error(signed_in: RxPressPortal, rxpress: SandboxPortal) -> None:
    claim = canary_claim(rxpress.state, "PAID")
    rxpress.state.update_knobs(error_rate=1.0, error_statuses=(502,))
    with pytest.raises(PortalServerError, match="502"):
        signed_in.check_claim_status(claim_request(claim))


def test_a_session_timed_out_inside_the_work_area_raises_session_expired(
    signed_in: RxPressPortal, rxpress: SandboxPortal
) -> None:
    claim = canary_claim(rxpress.state, "PAID")
    rxpress.state.update_knobs(session_expiry_requests=2)  # /main and the welcome page, then no more
    with pytest.raises(SessionExpired, match="work area"):
        signed_in.check_claim_status(claim_request(claim))
    assert signed_in.is_logged_in() is False


# -- status ---------------------------------------------------------------------------------------------


def test_claim_of_every_wording_reads_back_as_its_truth(
    signed_in: RxPressPortal, rxpress: SandboxPortal
) -> None:
    sample = {c["wording"]: c for c in rxpress.state.truth()["claims"]}  # one seeded claim a wording
    mapper = StatusMapper(shipped_codelists())
    assert len(sample) == len(CLAIM_KINDS)
    for expected in sample.values():
        claim = rxpress.state.claims[expected["claim_number"]]
        reading = signed_in.check_claim_status(claim_request(claim))
        assert_reads_as_truth(mapper.claim(RxPressPortal, reading), claim)
        assert [c.code for c in reading.codes] == expected["ncpdp"]
        assert all(c.system == CodeSystem.NCPDP_REJECT for c in reading.codes)
        patient = claim.patient
        # who, and the prescription (Rx number, fill date, drug): each scrubbed from every artifact
        born, filled = f"{patient.date_of_birth:%m/%d/%Y}", f"{claim.service_date:%m/%d/%Y}"
        prescription = (claim.claim_number, filled, drug_of(claim))
        assert reading.sensitive == (patient.name, patient.member_id, born, *prescription)


def test_a_look_up_whose_post_fails_once_is_searched_again_from_the_menu(
    signed_in: RxPressPortal, rxpress: SandboxPortal, clock: ManualClock
) -> None:
    claim = canary_claim(rxpress.state, "PAID")
    rxpress.state.update_knobs(fail_path="/app/claims", fail_after=1)  # the search form loads; its post fails
    started = clock.now()
    injected = rxpress.state.errors_injected
    reading = signed_in.check_claim_status(claim_request(claim))
    assert reading.status_text == "PAID" and rxpress.state.errors_injected == injected + 1
    (retry,) = [s for s in signed_in.steps.steps if s.kind == StepKind.RETRY]
    # the menu page loaded, its link clicked, the work area landed on, the Rx number and fill date
    # typed, and Search clicked again (the failure showed in the work area after the click)
    assert retry.target == "load again, then 5 steps again"
    redone = [s.kind for s in signed_in.steps.steps if s.meta.get("retry") == "1"]
    assert redone[0] == StepKind.NAVIGATE and redone.count(StepKind.FILL) == 2
    assert clock.now() - started == timedelta(seconds=0.25)


def test_ncpdp_codes_carry_official_descriptions_and_no_patient_data_reaches_the_steps(
    signed_in: RxPressPortal, rxpress: SandboxPortal
) -> None:
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=KEY_REJECTS)
    reading = signed_in.check_claim_status(claim_request(claim))
    status = StatusMapper(shipped_codelists()).claim(RxPressPortal, reading)
    lists = shipped_codelists()
    assert [(c.system, c.code) for c in status.payer_codes] == [
        (CodeSystem.NCPDP_REJECT, c) for c in KEY_REJECTS
    ]
    for code in status.payer_codes:
        assert code.description == lists.describe(CodeSystem.NCPDP_REJECT, code.code)
    assert status.payer_codes[1].description == "Prior Authorization Required"
    steps = recorded(signed_in)
    fill = f"{claim.service_date:%m/%d/%Y}"
    for secret in (
        claim.patient.name,
        claim.patient.member_id,
        f"{claim.patient.date_of_birth:%m/%d/%Y}",
        fill,
    ):
        assert secret not in steps
        assert secret not in repr(reading)


def test_unknown_claim_wrong_fill_date_and_unknown_pa_raise_not_found(
    signed_in: RxPressPortal, rxpress: SandboxPortal
) -> None:
    claim = canary_claim(rxpress.state, "PAID")
    with pytest.raises(NotFoundOnPortal, match="no claim for the Rx number and Fill date given"):
        signed_in.check_claim_status(ClaimStatusRequest(claim_number="0000001", fill_date=claim.service_date))
    with pytest.raises(NotFoundOnPortal, match="no claim for the Rx number and Fill date given"):
        signed_in.check_claim_status(
            ClaimStatusRequest(claim_number=claim.claim_number, fill_date=date(2020, 2, 2))
        )
    with pytest.raises(NotFoundOnPortal, match="no prior authorization for the PA number given"):
        signed_in.check_pa_status(PaStatusRequest(pa_number="RXPA000000"))


def test_pa_of_every_decision_reads_back_as_its_truth(
    signed_in: RxPressPortal, rxpress: SandboxPortal
) -> None:
    sample = {p["wording"]: p for p in rxpress.state.truth()["pas"]}
    assert len(sample) == len(PA_KINDS)
    mapper = StatusMapper(shipped_codelists())
    for expected in sample.values():
        reading = signed_in.check_pa_status(PaStatusRequest(pa_number=expected["pa_number"]))
        status = mapper.pa(RxPressPortal, reading)
        assert (status.decision, status.hcr01) == (expected["decision"], expected["hcr01"])
        assert (reading.valid_from and reading.valid_from.isoformat()) == expected["valid_from"]
        assert (reading.valid_to and reading.valid_to.isoformat()) == expected["valid_to"]
        assert reading.detail == expected["reason"]


def test_a_work_area_page_that_never_arrives_is_a_timeout_not_a_changed_portal(
    signed_in: RxPressPortal, rxpress: SandboxPortal, page: Page
) -> None:
    claim = canary_claim(rxpress.state, "PAID")

    def stall(request: Request) -> None:  # the portal slows down once the bot is in the work area
        if request.url.endswith("/app/claims"):
            rxpress.state.update_knobs(latency_ms=6_000)

    page.on("request", stall)
    page.set_default_timeout(2_000)
    with pytest.raises(PortalTimeout):
        signed_in.check_claim_status(claim_request(claim))


def test_a_slow_portal_is_waited_for_without_timers(signed_in: RxPressPortal, rxpress: SandboxPortal) -> None:
    claim = canary_claim(rxpress.state, "PAID")
    rxpress.state.update_knobs(latency_ms=300)
    reading = signed_in.check_claim_status(claim_request(claim))
    assert (reading.status_text, reading.paid_amount) == ("PAID", str(claim.paid))


# -- redeterminations -----------------------------------------------------------------------------------


def test_redetermination_is_confirmed_once_with_the_ledger_number(
    signed_in: RxPressPortal, rxpress: SandboxPortal, files: AppealFiles, tmp_path: Path
) -> None:
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=("70",))
    reference, gate = _reference("ok"), Gate()
    result = signed_in.submit_appeal(appeal_of(claim, AppealReason.CODING_ERROR), files, reference, gate)
    assert gate.calls == 1
    [entry] = rxpress.state.ledger_entries(reference=reference)
    assert (result.confirmation_id, result.reference) == (entry.appeal_number, reference)
    assert entry.appeal_number.startswith("RD-")
    assert (entry.claim_number, entry.fill_date) == (claim.claim_number, claim.service_date)
    assert entry.reason == AppealReason.CODING_ERROR.value
    assert entry.letter_sha256 == hashlib.sha256(PDF).hexdigest()
    assert entry.attachments == ("chart-notes.pdf",)
    clicks = [s.locator or "" for s in signed_in.steps.steps if s.kind == StepKind.CLICK]
    assert sum("Submit redetermination request" in c for c in clicks) == 1
    evidence = capture_evidence(
        signed_in.page,
        folder=tmp_path,
        stem="confirmation",
        redactor=Redactor(),
        portal=signed_in,
    )
    assert entry.appeal_number in Path(evidence.html_path).read_text()  # the frame's page is kept too


def test_gate_that_raises_prevents_the_submit_click(
    signed_in: RxPressPortal, rxpress: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=("70",))
    reference, gate = _reference("stale"), Gate(StaleLease())
    before = len(rxpress.state.ledger)
    with pytest.raises(StaleLease):
        signed_in.submit_appeal(appeal_of(claim), files, reference, gate)
    assert gate.calls == 1
    assert len(rxpress.state.ledger) == before
    clicks = [s.locator or "" for s in signed_in.steps.steps if s.kind == StepKind.CLICK]
    assert not any("Submit redetermination request" in c for c in clicks)


def test_refusals_before_the_submit_never_reach_the_gate(
    signed_in: RxPressPortal, rxpress: SandboxPortal, files: AppealFiles, tmp_path: Path
) -> None:
    gate = Gate()
    paid = canary_claim(rxpress.state, "PAID")
    with pytest.raises(PortalValidationError, match="only for a rejected claim"):
        signed_in.submit_appeal(appeal_of(paid), files, _reference("paid"), gate)
    bad_data = canary_claim(rxpress.state, "REJECTED - INVALID CLAIM DATA")
    with pytest.raises(PortalValidationError, match="resubmit"):
        signed_in.submit_appeal(appeal_of(bad_data), files, _reference("mi"), gate)
    with pytest.raises(NotFoundOnPortal):
        signed_in.submit_appeal(appeal_for("0000002", paid.service_date), files, _reference("unknown"), gate)
    not_pdf = tmp_path / "letter.pdf"
    not_pdf.write_bytes(b"PK\x03\x04 a zip, not a PDF")
    rejected = canary_claim(rxpress.state, "REJECTED", ncpdp=("70",))
    with pytest.raises(PortalValidationError, match="must be a PDF"):
        signed_in.submit_appeal(appeal_of(rejected), AppealFiles(not_pdf), _reference("zip"), gate)
    assert gate.calls == 0


def test_history_finds_a_request_only_after_its_lag(
    signed_in: RxPressPortal, rxpress: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=("70",))
    reference = _reference("lag")
    rxpress.state.update_knobs(history_lag_requests=10_000)
    result = signed_in.submit_appeal(appeal_of(claim), files, reference, Gate())
    lookup = signed_in.find_submission(reference)
    assert (lookup.found, lookup.confirmation_id) == (False, None)  # read, and not there yet
    rxpress.state.update_knobs(history_lag_requests=0)
    lookup = signed_in.find_submission(reference)
    assert (lookup.found, lookup.confirmation_id) == (True, result.confirmation_id)
    assert signed_in.find_submission(_reference("never-sent")).found is False


@pytest.mark.parametrize(
    ("failure", "raised"), [("502", PortalServerError), ("drop", PortalTimeout), ("slow", PortalTimeout)]
)
def test_failure_after_the_click_is_transient_and_the_history_shows_it_later(
    signed_in: RxPressPortal,
    rxpress: SandboxPortal,
    files: AppealFiles,
    page: Page,
    failure: str,
    raised: type[Transient],
) -> None:
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=("70",))
    reference = _reference(failure)
    if failure == "slow":
        rxpress.state.update_knobs(slow_confirmation_ms=5_000)
    else:
        rxpress.state.update_knobs(record_then_fail=failure)
    page.set_default_timeout(3_500)  # under the slow answer's delay
    with pytest.raises(raised):
        signed_in.submit_appeal(appeal_of(claim), files, reference, Gate())
    rxpress.state.update_knobs(record_then_fail="none", slow_confirmation_ms=0, history_lag_requests=0)
    page.set_default_timeout(5_000)
    [entry] = rxpress.state.ledger_entries(reference=reference)
    found = signed_in.find_submission(reference)
    assert found.found and found.confirmation_id == entry.appeal_number


# -- redesigns ------------------------------------------------------------------------------------------


def test_cosmetic_redesign_changes_nothing_for_the_bot(
    portal: RxPressPortal, rxpress: SandboxPortal, rxpress_account: SandboxAccount, files: AppealFiles
) -> None:
    rxpress.state.update_knobs(redesign="cosmetic", history_lag_requests=0)
    portal.login(inbox_secrets(rxpress, rxpress_account))
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=("76", "88"))  # 76: an appeal can help
    reading = portal.check_claim_status(claim_request(claim))
    assert reading.status_text == "REJECTED"
    assert [(c.code, c.description) for c in reading.codes] == [
        ("76", "Plan Limitations Exceeded"),
        ("88", "DUR Reject Error"),
    ]
    pa = rxpress.state.add_pa("approved")
    assert portal.check_pa_status(PaStatusRequest(pa_number=pa.pa_number)).valid_to == pa.valid_to
    reference = _reference("cosmetic")
    result = portal.submit_appeal(appeal_of(claim), files, reference, Gate())
    assert portal.find_submission(reference).confirmation_id == result.confirmation_id
    assert [e.appeal_number for e in rxpress.state.ledger_entries(reference=reference)] == [
        result.confirmation_id
    ]


def test_renamed_redesign_raises_portal_changed_naming_the_locator(
    signed_in: RxPressPortal, rxpress: SandboxPortal, files: AppealFiles, page: Page
) -> None:
    rxpress.state.update_knobs(redesign="renamed")
    page.set_default_timeout(2_500)
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=("70",))
    with pytest.raises(PortalChanged) as changed:
        signed_in.check_claim_status(claim_request(claim))
    assert changed.value.locator and "Rx number" in changed.value.locator
    gate = Gate()
    reference = _reference("renamed")
    with pytest.raises(PortalChanged) as changed:
        signed_in.submit_appeal(appeal_of(claim), files, reference, gate)
    assert changed.value.locator and "Rx number" in changed.value.locator
    assert gate.calls == 0
    assert rxpress.state.ledger_entries(reference=reference) == []


def test_sensitive_locators_cover_the_patient_fields_in_the_work_area(
    signed_in: RxPressPortal, rxpress: SandboxPortal, page: Page
) -> None:
    claim = canary_claim(rxpress.state, "PAID")
    signed_in.check_claim_status(claim_request(claim))
    masks = signed_in.sensitive_locators()
    shown = {text for loc in masks for text in loc.all_inner_texts()}
    patient = claim.patient
    assert shown >= {patient.name, patient.member_id, f"{patient.date_of_birth:%m/%d/%Y}"}
    assert page.screenshot(mask=masks, mask_color="#000000")  # masks reach into the frame


# -- the form's other fields, and the filing limit ----------------------------------------------------


def test_the_sandboxs_levels_and_filing_limits_agree_with_the_portal_module() -> None:
    """Written apart (the plan's rule in the sandbox's wording, the bot's in its declaration)."""
    sandbox_limits = {AppealLevel(canonical): days for _, _, canonical, days in REVIEW_LEVELS}
    assert sandbox_limits == RxPressPortal.filing_deadline_days
    assert {AppealLevel(canonical): label for _, label, canonical, _ in REVIEW_LEVELS} == LEVEL_LABELS
    assert {name: WORDS[name] for name in FORM_LABELS} == FORM_LABELS


def test_a_redetermination_carries_every_field_the_form_asks_and_the_ledger_keeps_them(
    signed_in: RxPressPortal, rxpress: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=("70",))
    request = appeal_of(
        claim,
        level=AppealLevel.SECOND_LEVEL,
        member_id="ZQ55501234",
        contact=Contact(name="Pat Chen", phone="(555) 010-0199", email="pat@pharmacy.example"),
        billing_npi="1234567893",  # RxPress asks no NPI: not typed, not received
        disputed_amount="84.20",
    )
    reference = _reference("fields")
    signed_in.submit_appeal(request, files, reference, Gate())
    [entry] = rxpress.state.ledger_entries(reference=reference)
    assert_form_received(entry, request, FORM_LABELS)
    typed = recorded(signed_in)
    for personal in ("ZQ55501234", "Pat Chen", "(555) 010-0199", "pat@pharmacy.example"):
        assert personal not in typed  # typed as values to scrub, never written into the steps


def test_a_late_redetermination_is_refused_on_the_form_before_the_gate(
    signed_in: RxPressPortal, rxpress: SandboxPortal, files: AppealFiles
) -> None:
    claim = canary_claim(rxpress.state, "REJECTED", ncpdp=("70",))
    late = datetime.now(UTC).date() - timedelta(
        days=RxPressPortal.filing_deadline_days[AppealLevel.FIRST_LEVEL] + 1
    )
    gate, before = Gate(), len(rxpress.state.ledger)
    with pytest.raises(PortalValidationError, match=r"filing limit for this request has passed \(65 days"):
        signed_in.submit_appeal(appeal_of(claim, denial_date=late), files, _reference("late"), gate)
    assert gate.calls == 0
    assert len(rxpress.state.ledger) == before
