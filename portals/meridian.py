"""Meridian Health: a server-rendered provider portal (password, then a TOTP code).

Claim and prior-authorization lookups, a four-page appeal wizard (claim, reason, documents,
review) and an appeal history searchable by our own reference, which shows every submission at
once. Locators are by role and label only, so a restyled page (new classes, ids, wrappers, order)
needs no change here; a renamed control ends in ``PortalChanged`` naming the locator.
"""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Locator, Page

from bot.documents import AppealFiles
from bot.errors import PortalChanged
from bot.interruptions import GATEWAY_ERROR_PAGE, heading, shown_text
from bot.interruptions import Interruption as Shows
from bot.login import LoginSecrets, SecondFactorKind
from bot.models import (
    AppealReason,
    AppealRequest,
    ClaimReading,
    ClaimStatusRequest,
    CodeSystem,
    PaReading,
    PaStatusRequest,
    SubmissionLookup,
    SubmissionResult,
)
from bot.parsing import parse_money, parse_us_date
from bot.portal import Action, Portal, SubmitGate
from bot.readers import CodesTable, HistoryTable, read_codes, read_field
from bot.status import ClaimRule, PaDecision, PaRule
from bot.steps import StepRecorder

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

# The codes table on a claim page (its "Type" column names each code's system), and the appeal history.
CODES = CodesTable(
    system_column="Type", systems={"Adjustment reason": CodeSystem.CARC, "Remark": CodeSystem.RARC}
)
HISTORY = HistoryTable("appeal history", "Reference", "Appeal number", none_found="No appeals found")


class MeridianPortal(Portal):
    payer_id = "meridian"
    display_name = "Meridian Health"
    default_url = "https://provider.meridian-health.example"
    actions = frozenset(Action)
    second_factor = SecondFactorKind.TOTP
    history_lag = timedelta(0)  # an appeal is in its history as soon as it is submitted
    claim_number_pattern = r"^MH\d{10}$"
    # the terms of every description list on its claim, authorization and appeal pages
    known_fields = frozenset(SENSITIVE_LABELS).union(
        ("Claim number", "Status", "Billed amount", "Paid amount"),
        ("Authorization number", "Valid from", "Valid to", "Decision reason"),
        ("Reason for appeal", "Your reference", "Appeal letter (PDF)", "Attachments"),
        ("Appeal number", "Reference", "Received"),
    )
    sensitive_labels = SENSITIVE_LABELS
    not_found_words = "No claim found"  # the appeal wizard's message for a claim it does not know
    # what the portal shows instead of the page asked for
    interruptions = (
        heading("Scheduled maintenance", Shows.MAINTENANCE),
        heading("Verify you are human", Shows.CAPTCHA),
        shown_text("Your password has expired", Shows.PASSWORD_EXPIRED),
        shown_text("Your session has expired", Shows.SESSION_EXPIRED),
        GATEWAY_ERROR_PAGE,
    )

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
        return self.session_shows("/dashboard", self.sign_out, self.sign_in)

    def login(self, secrets: LoginSecrets) -> None:
        self.open("/login")
        self.enter_password(secrets, self.username, self.password, self.sign_in, navigates=True)
        self.sign_in_outcome(self.one_time_code, self.alert, "sign-in")
        code = self.code_from_vault(
            secrets, asked="a one-time code", lacking="the vault holds no TOTP secret"
        )
        self.steps.fill(self.one_time_code, code)
        self.steps.click(self.verify, navigates=True)
        self.sign_in_outcome(self.sign_out, self.alert, "one-time code", second_factor=True)

    # -- lookups --------------------------------------------------------------------------------

    def _search(self, path: str, label: str, number: str, result: Locator, what: str) -> None:
        self.open(path)
        self.steps.fill(self.search_form.get_by_label(label, exact=True), number, safe=True)
        self.steps.click(self.search, navigates=True, repeatable=True)  # a GET search changes nothing
        not_found = self.empty.filter(has_text=f"No {what} found")
        self.land(result.or_(not_found), f"{what} search result")
        self.found_nothing(not_found, f"{what} {number}")

    def _patient(self, region: Locator, care: Locator) -> tuple[str, ...]:
        """The patient fields of a claim or authorization page, and its date or kind of care."""
        who = [region.get_by_label(label, exact=True) for label in PATIENT_LABELS]
        return tuple(self.steps.read(field) for field in (*who, care))

    def check_claim_status(self, request: ClaimStatusRequest) -> ClaimReading:
        number, claim = request.claim_number, self.claim
        self._search("/claims", "Claim number", number, claim, "claim")
        read_field(self.steps, claim, "Claim number", page="claim page", equals=number)
        status = read_field(self.steps, claim, "Status", page="claim page")
        paid = self.steps.read(claim.get_by_label("Paid amount", exact=True))
        return ClaimReading(
            claim_number=number,
            status_text=status,
            codes=read_codes(self.steps, self.codes, CODES, what="codes table"),
            paid_amount=parse_money(paid),
            sensitive=self._patient(self.patient, self.claim.get_by_label("Service date", exact=True)),
        )

    def check_pa_status(self, request: PaStatusRequest) -> PaReading:
        self._search(
            "/authorizations", "Authorization number", request.pa_number, self.authorization, "authorization"
        )
        region = self.authorization
        return PaReading(
            pa_number=request.pa_number,
            status_text=read_field(self.steps, region, "Status", page="authorization page"),
            valid_from=parse_us_date(self.steps.read(region.get_by_label("Valid from", exact=True))),
            valid_to=parse_us_date(self.steps.read(region.get_by_label("Valid to", exact=True))),
            detail=self.steps.read_optional(region.get_by_label("Decision reason", exact=True)),
            sensitive=self._patient(region, region.get_by_label("Service", exact=True)),
        )

    # -- appeals --------------------------------------------------------------------------------

    def _wizard_step(self, next_control: Locator, step: str) -> None:
        """Wait for the wizard's next step; a message instead is a refusal ("No claim found": none)."""
        refused = f"the appeal before the {step} step"
        self.proceed(next_control, self.alert, f"appeal {step} step", refused=refused)

    def submit_appeal(
        self, request: AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> SubmissionResult:
        number = request.claim_number
        self.open("/appeals/new?restart=1")
        self.steps.fill(self.wizard_claim_number, number, safe=True)
        # each wizard step posts the draft kept in the session, never the appeal: safe to post again
        self.steps.click(self.continue_, navigates=True, repeatable=True)
        self._wizard_step(self.reason, "reason")
        self.steps.select(self.reason, REASON_LABELS[request.reason])
        self.steps.fill(self.explanation, request.explanation)
        self.steps.fill(self.reference, reference, safe=True)
        self.steps.click(self.continue_, navigates=True, repeatable=True)
        self._wizard_step(self.letter, "documents")
        self.steps.upload(self.letter, [files.letter])
        if files.attachments:
            self.steps.upload(self.attachments, list(files.attachments))
        self.steps.click(self.upload_and_continue, navigates=True, repeatable=True)
        self._wizard_step(self.submit, "review")
        for label, expected in (("Claim number", number), ("Your reference", reference)):
            if self.steps.read(self.page.get_by_label(label, exact=True).last) != expected:
                raise PortalChanged(f"the review page shows another {label.lower()} than was entered")
        self.steps.check(self.confirm)
        self.click_submit(self.submit, gate)
        confirmed = self.received
        number = self.confirmation(confirmed, self.alert, "appeal confirmation", number=self.appeal_number)
        return SubmissionResult(confirmation_id=number, reference=reference)

    def find_submission(self, reference: str) -> SubmissionLookup:
        self.open("/appeals")
        field = self.search_form.get_by_label("Reference", exact=True)
        return self.search_history(field, self.search, self.history, HISTORY, reference, navigates=True)
