"""Meridian Health: a server-rendered provider portal (password, then a TOTP code).

Claim and prior-authorization lookups, a four-page appeal wizard (claim, reason, documents,
review) and an appeal history searchable by our own reference, which shows every submission at
once. Locators are by role and label only, so a restyled page (new classes, ids, wrappers, order)
needs no change here; a renamed control ends in ``PortalChanged`` naming the locator.
"""

from __future__ import annotations

import re

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

from bot.documents import AppealFiles
from bot.errors import (
    CaptchaShown,
    LoginRejected,
    NotFoundOnPortal,
    PasswordExpired,
    PortalChanged,
    PortalError,
    PortalMaintenance,
    PortalServerError,
    PortalTimeout,
    PortalValidationError,
    SecondFactorRejected,
    SessionExpired,
    Transient,
    UnknownSecondFactorPrompt,
)
from bot.login import LoginSecrets, SecondFactorKind
from bot.models import (
    AppealReason,
    AppealRequest,
    ClaimReading,
    ClaimStatusRequest,
    CodeSystem,
    PaReading,
    PaStatusRequest,
    PayerCode,
    SubmissionLookup,
    SubmissionResult,
)
from bot.parsing import parse_money, parse_us_date
from bot.portal import Action, Portal, SubmitGate
from bot.status import ClaimRule, PaDecision, PaRule
from bot.steps import StepRecorder, describe_locator

# The option labels of Meridian's "Reason for appeal" select.
REASON_LABELS: dict[AppealReason, str] = {
    AppealReason.MEDICAL_NECESSITY: "Medical necessity",
    AppealReason.CODING_ERROR: "Coding error",
    AppealReason.TIMELY_FILING: "Timely filing",
    AppealReason.COORDINATION_OF_BENEFITS: "Coordination of benefits",
    AppealReason.DUPLICATE_DENIAL: "Duplicate claim denial",
    AppealReason.OTHER: "Other",
}

# The labels of the fields that show patient data: who, when and what care, and the typed explanation.
PATIENT_LABELS = ("Patient name", "Member ID", "Date of birth")
SENSITIVE_LABELS = (*PATIENT_LABELS, "Service date", "Service", "Explanation")

# The "Type" column of the codes table on a claim page.
CODE_TYPES: dict[str, CodeSystem] = {"Adjustment reason": CodeSystem.CARC, "Remark": CodeSystem.RARC}


class MeridianPortal(Portal):
    payer_id = "meridian"
    display_name = "Meridian Health"
    default_url = "https://provider.meridian-health.example"
    actions = frozenset(Action)
    second_factor = SecondFactorKind.TOTP
    history_reliable = True
    claim_number_pattern = r"^MH\d{10}$"
    # the terms of every description list on its claim, authorization and appeal pages
    known_fields = frozenset(
        {
            *SENSITIVE_LABELS,
            *("Claim number", "Status", "Billed amount", "Paid amount"),
            *("Authorization number", "Valid from", "Valid to", "Decision reason"),
            *("Reason for appeal", "Your reference", "Appeal letter (PDF)", "Attachments"),
            *("Appeal number", "Reference", "Received"),
        }
    )
    max_upload_bytes = 10 * 1024 * 1024  # its sandbox sets no limit; the default until the payer states one

    # Meridian's claim vocabulary in X12 277 terms: each wording with the category and the claim
    # status code (STC01-2) Meridian shows it for; none where Meridian gives none.
    claim_statuses = {
        "Received": ClaimRule(category="A1", status_code="19"),
        "Accepted for processing": ClaimRule(category="A2", status_code="20"),
        "Returned - missing or invalid information": ClaimRule(category="A3", status_code="21"),
        "In process": ClaimRule(category="P1"),
        "Under review": ClaimRule(category="P2"),
        "Pending - awaiting information from provider": ClaimRule(category="P3", status_code="294"),
        "Additional information requested": ClaimRule(category="R4", status_code="294"),
        "Paid": ClaimRule(category="F1", status_code="65"),
        "Partially paid": ClaimRule(category="F1", status_code="1"),
        "Denied": ClaimRule(category="F2"),
        "Adjusted": ClaimRule(category="F3", status_code="101"),
        "Processed - no payment due": ClaimRule(category="F4", status_code="107"),
    }
    pa_statuses = {
        "Approved": PaRule(decision=PaDecision.APPROVED),
        "Approved with modifications": PaRule(decision=PaDecision.PARTIALLY_APPROVED),
        "Denied": PaRule(decision=PaDecision.DENIED),
        "Pending review": PaRule(decision=PaDecision.PENDED),
        "Additional information needed": PaRule(decision=PaDecision.MORE_INFO_REQUESTED),
        "Cancelled": PaRule(decision=PaDecision.CANCELLED),
    }

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        super().__init__(page, base_url, steps)
        p = page
        # sign-in
        self.username = p.get_by_label("Username", exact=True)
        self.password = p.get_by_label("Password", exact=True)
        self.sign_in = p.get_by_role("button", name="Sign in", exact=True)
        self.one_time_code = p.get_by_label("One-time code", exact=True)
        self.verify = p.get_by_role("button", name="Verify", exact=True)
        self.sign_out = p.get_by_role("link", name="Sign out", exact=True)
        self.alert = p.get_by_role("alert")
        # what the portal shows instead of the page asked for
        self.maintenance = p.get_by_role("heading", name="Scheduled maintenance")
        self.captcha = p.get_by_role("heading", name="Verify you are human")
        self.password_expired = p.get_by_text("Your password has expired")
        self.session_expired = p.get_by_text("Your session has expired")
        self.gateway_error = p.get_by_role("heading", name=re.compile(r"^5\d\d\b"))
        # lookups: the search form, then the result's regions
        self.search_form = p.get_by_role("search")
        self.search = self.search_form.get_by_role("button", name="Search", exact=True)
        self.patient = p.get_by_role("region", name="Patient", exact=True)
        self.claim = p.get_by_role("region", name="Claim", exact=True)
        self.authorization = p.get_by_role("region", name="Authorization", exact=True)
        self.codes = p.get_by_role("table", name="Adjustment and remark codes")
        self.empty = p.get_by_role("status")
        # the appeal wizard
        self.wizard_claim_number = p.get_by_label("Claim number", exact=True)
        self.continue_ = p.get_by_role("button", name="Continue", exact=True)
        self.reason = p.get_by_label("Reason for appeal", exact=True)
        self.explanation = p.get_by_label("Explanation", exact=True)
        self.reference = p.get_by_label("Your reference", exact=True)
        self.letter = p.get_by_label("Appeal letter (PDF)", exact=True)
        self.attachments = p.get_by_label("Supporting documents (optional)", exact=True)
        self.upload_and_continue = p.get_by_role("button", name="Upload and continue", exact=True)
        self.confirm = p.get_by_label("I confirm this appeal is accurate and authorized")
        self.submit = p.get_by_role("button", name="Submit appeal", exact=True)
        self.received = p.get_by_role("heading", name="Appeal received", exact=True)
        self.appeal_number = p.get_by_label("Appeal number", exact=True)
        self.history = p.get_by_role("table", name="Submitted appeals")

    # -- the session ----------------------------------------------------------------------------

    def is_logged_in(self) -> bool:
        try:
            self.steps.goto(self.url("/dashboard"), target="/dashboard")
        except SessionExpired:
            return False
        self.steps.expect(self.sign_out.or_(self.sign_in).first, target="signed-in check")
        return self.steps.read_optional(self.sign_out) is not None

    def login(self, secrets: LoginSecrets) -> None:
        self.steps.goto(self.url("/login"), target="/login")
        self.steps.fill(self.username, secrets.username)
        self.steps.fill(self.password, secrets.password.get_secret_value())
        self.steps.click(self.sign_in, navigates=True)  # the one login POST; never repeated
        self._land(self.one_time_code.or_(self.alert), "sign-in outcome")
        refusal = self.steps.read_optional(self.alert)
        if refusal is not None:
            raise LoginRejected(f"{self.display_name} refused the sign-in: {refusal}")
        if secrets.one_time_code is None:
            raise UnknownSecondFactorPrompt(
                f"{self.display_name} asks for a one-time code and the vault holds no TOTP secret"
            )
        self.steps.fill(self.one_time_code, secrets.one_time_code())
        self.steps.click(self.verify, navigates=True)
        self._land(self.sign_out.or_(self.alert), "one-time code outcome")
        refusal = self.steps.read_optional(self.alert)
        if refusal is not None:
            raise SecondFactorRejected(f"{self.display_name} refused the one-time code: {refusal}")

    # -- lookups --------------------------------------------------------------------------------

    def _search(self, path: str, label: str, number: str, result: Locator, what: str) -> None:
        self.steps.goto(self.url(path), target=path)
        self.steps.fill(self.search_form.get_by_label(label, exact=True), number, safe=True)
        self.steps.click(self.search, navigates=True)
        not_found = self.empty.filter(has_text=f"No {what} found")
        self._land(result.or_(not_found), f"{what} search result")
        if self.steps.read_optional(not_found) is not None:
            raise NotFoundOnPortal(f"{self.display_name} has no {what} {number}")

    def _patient(self, region: Locator, care: Locator) -> tuple[str, ...]:
        """The patient fields of a claim or authorization page, and its date or kind of care."""
        who = [region.get_by_label(label, exact=True) for label in PATIENT_LABELS]
        return tuple(self.steps.read(field) for field in (*who, care))

    def check_claim_status(self, request: ClaimStatusRequest) -> ClaimReading:
        self._search("/claims", "Claim number", request.claim_number, self.claim, "claim")
        shown = self.steps.read(self.claim.get_by_label("Claim number", exact=True))
        if shown != request.claim_number:
            raise PortalChanged("the claim page shows another claim than the one searched for")
        status_field = self.claim.get_by_label("Status", exact=True)
        status = self.steps.read(status_field)
        if not status:
            raise PortalChanged("the claim page shows no status", locator=describe_locator(status_field))
        paid = self.steps.read(self.claim.get_by_label("Paid amount", exact=True))
        return ClaimReading(
            claim_number=request.claim_number,
            status_text=status,
            codes=self._codes(),
            paid_amount=parse_money(paid),
            sensitive=self._patient(self.patient, self.claim.get_by_label("Service date", exact=True)),
        )

    def _codes(self) -> tuple[PayerCode, ...]:
        if self.steps.read_optional(self.codes.get_by_role("row").first) is None:
            return ()
        header, *rows = self.steps.table(self.codes.get_by_role("row"))
        column = {name: i for i, name in enumerate(header)}
        if not {"Type", "Code", "Description"} <= set(column):
            raise PortalChanged(f"the codes table has columns {header}", locator=describe_locator(self.codes))
        return tuple(
            PayerCode(
                system=CODE_TYPES.get(row[column["Type"]], CodeSystem.PAYER),
                code=row[column["Code"]],
                description=row[column["Description"]] or None,
            )
            for row in rows
        )

    def check_pa_status(self, request: PaStatusRequest) -> PaReading:
        self._search(
            "/authorizations", "Authorization number", request.pa_number, self.authorization, "authorization"
        )
        region = self.authorization
        status_field = region.get_by_label("Status", exact=True)
        status = self.steps.read(status_field)
        if not status:
            raise PortalChanged(
                "the authorization page shows no status", locator=describe_locator(status_field)
            )
        return PaReading(
            pa_number=request.pa_number,
            status_text=status,
            valid_from=parse_us_date(self.steps.read(region.get_by_label("Valid from", exact=True))),
            valid_to=parse_us_date(self.steps.read(region.get_by_label("Valid to", exact=True))),
            detail=self.steps.read_optional(region.get_by_label("Decision reason", exact=True)),
            sensitive=self._patient(region, region.get_by_label("Service", exact=True)),
        )

    # -- appeals --------------------------------------------------------------------------------

    def _wizard_step(self, next_control: Locator, step: str, claim_number: str) -> None:
        """Wait for the next step (or a validation message) and raise on the message."""
        self._land(next_control.or_(self.alert), f"appeal {step} step")
        message = self.steps.read_optional(self.alert)
        if message == "No claim found":
            raise NotFoundOnPortal(f"{self.display_name} has no claim {claim_number}")
        if message is not None:
            raise PortalValidationError(
                f"{self.display_name} refused the appeal before the {step} step: {message}"
            )

    def submit_appeal(
        self, request: AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> SubmissionResult:
        number = request.claim_number
        self.steps.goto(self.url("/appeals/new?restart=1"), target="/appeals/new")
        self.steps.fill(self.wizard_claim_number, number, safe=True)
        self.steps.click(self.continue_, navigates=True)
        self._wizard_step(self.reason, "reason", number)
        self.steps.select(self.reason, REASON_LABELS[request.reason])
        self.steps.fill(self.explanation, request.explanation)
        self.steps.fill(self.reference, reference, safe=True)
        self.steps.click(self.continue_, navigates=True)
        self._wizard_step(self.letter, "documents", number)
        self.steps.upload(self.letter, [files.letter])
        if files.attachments:
            self.steps.upload(self.attachments, list(files.attachments))
        self.steps.click(self.upload_and_continue, navigates=True)
        self._wizard_step(self.submit, "review", number)
        for label, expected in (("Claim number", number), ("Your reference", reference)):
            if self.steps.read(self.page.get_by_label(label, exact=True).last) != expected:
                raise PortalChanged(f"the review page shows another {label.lower()} than was entered")
        self.steps.check(self.confirm)
        self.steps.expect(self.submit, target="submit")
        gate()  # commits "submitting" and refuses a stale lease; only then the click
        try:
            self.steps.click(self.submit)  # a hung answer must not hold us past the timeout
            self._land(self.received.or_(self.alert), "appeal confirmation")
            if self.steps.read_optional(self.alert) is not None:
                raise PortalChanged("the portal answered the submit with a message instead of a confirmation")
            confirmation = self.steps.read(self.appeal_number)
        except Transient:
            raise
        except PortalError as exc:
            # the click happened: whatever the page says now, the appeal may be recorded
            raise PortalTimeout(
                f"no confirmation after the submit click ({type(exc).__name__}); "
                "look the reference up in the appeal history before any new submit"
            ) from None
        return SubmissionResult(confirmation_id=confirmation, reference=reference)

    def find_submission(self, reference: str) -> SubmissionLookup:
        self.steps.goto(self.url("/appeals"), target="/appeals")
        self.steps.fill(self.search_form.get_by_label("Reference", exact=True), reference, safe=True)
        self.steps.click(self.search, navigates=True)
        none_found = self.empty.filter(has_text="No appeals found")
        self._land(self.history.or_(none_found), "appeal history")
        if self.steps.read_optional(none_found) is not None:
            return SubmissionLookup(reference=reference, found=False)
        header, *rows = self.steps.table(self.history.get_by_role("row"))
        column = {name: i for i, name in enumerate(header)}
        if not {"Reference", "Appeal number"} <= set(column):
            raise PortalChanged(
                f"the appeal history has columns {header}", locator=describe_locator(self.history)
            )
        numbers = [row[column["Appeal number"]] for row in rows if row[column["Reference"]] == reference]
        # newest first: the last match is the first submission
        return SubmissionLookup(
            reference=reference, found=bool(numbers), confirmation_id=numbers[-1] if numbers else None
        )

    # -- what the engine needs ------------------------------------------------------------------

    def _land(self, expected: Locator, target: str) -> None:
        """Wait for the expected page, or one the portal shows instead, and classify the latter."""
        interruptions = self.maintenance.or_(self.captcha).or_(self.password_expired)
        interruptions = interruptions.or_(self.session_expired).or_(self.gateway_error)
        self.steps.expect(expected.or_(interruptions).first, target=target)
        self.steps.after_navigation()  # check_page, then any 5xx the page answered

    @staticmethod
    def _shows(locator: Locator) -> bool:
        return locator.count() > 0 and locator.first.is_visible()

    def check_page(self) -> None:
        try:
            if self._shows(self.maintenance):
                raise PortalMaintenance(f"{self.display_name} shows its scheduled-maintenance page")
            if self._shows(self.captcha):
                raise CaptchaShown(f"{self.display_name} shows a CAPTCHA")
            if self._shows(self.password_expired):
                raise PasswordExpired(f"{self.display_name} demands a password change")
            if self._shows(self.session_expired):
                raise SessionExpired(f"{self.display_name} ended the session")
            if self._shows(self.gateway_error):
                heading = self.gateway_error.first.inner_text().strip()
                raise PortalServerError(f"{self.display_name} answered with a gateway error page ({heading})")
        except PlaywrightError:
            return  # the page is mid-navigation; the next step will look again

    def sensitive_locators(self) -> list[Locator]:
        return [self.page.get_by_label(label, exact=True) for label in SENSITIVE_LABELS]
