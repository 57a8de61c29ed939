"""Meridian Health: a server-rendered provider portal (password, then a TOTP code).

Claim and prior-authorization lookups, a four-page appeal wizard (claim, reason, documents,
review) and an appeal history searchable by our own reference, which shows every submission at
once. Locators are by role and label only, so a restyled page (new classes, ids, wrappers, order)
needs no change here; a renamed control ends in ``PortalChanged`` naming the locator.
"""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Locator, Page

from bot import models
from bot.documents import AppealFiles
from bot.errors import PortalChanged
from bot.interruptions import Interruption as Shows
from bot.interruptions import heading, shown_text
from bot.login import SecondFactorKind
from bot.parsing import parse_us_date
from bot.portal import MEDICAL_APPEAL_FIELDS, Action, Portal, SubmitGate, filing_deadlines
from bot.readers import ClaimAmounts, CodesTable, HistoryTable, PaDetails, read_codes, read_field
from bot.sign_in import Control, SignInForm
from bot.status import claim_rules, pa_rules
from bot.steps import StepRecorder

# The option labels of Meridian's "Reason for appeal" select.
REASON_LABELS: dict[models.AppealReason, str] = {
    models.AppealReason.MEDICAL_NECESSITY: "Medical necessity",
    models.AppealReason.CODING_ERROR: "Coding error",
    models.AppealReason.TIMELY_FILING: "Timely filing",
    models.AppealReason.COORDINATION_OF_BENEFITS: "Coordination of benefits",
    models.AppealReason.DUPLICATE_DENIAL: "Duplicate claim denial",
    models.AppealReason.OTHER: "Other",
}

# The option labels of the wizard's "Appeal level" select, and its other fields' labels by form field.
LEVEL_LABELS: dict[models.AppealLevel, str] = {
    models.AppealLevel.RECONSIDERATION: "Reconsideration",
    models.AppealLevel.FIRST_LEVEL: "Level 1 appeal",
    models.AppealLevel.SECOND_LEVEL: "Level 2 appeal",
    models.AppealLevel.EXTERNAL_REVIEW: "External review (IRO)",
}
FORM_LABELS = {
    "level": "Appeal level",
    "denial_date": "Denial date",
    "member_id": "Member ID",
    "service_from": "Service date",
    "service_to": "Service end date",
    "billing_npi": "Billing provider NPI",
    "disputed_codes": "Denial codes",
    "disputed_amount": "Amount in dispute",
}

# The labels of the fields that show patient data: who, when and what care, and the typed explanation.
PATIENT_LABELS = ("Patient name", "Member ID", "Date of birth")
SENSITIVE_LABELS = (*PATIENT_LABELS, "Service date", "Service end date", "Service", "Explanation")

# The codes table on a claim page (its "Type" column names each code's system), and the appeal history.
CODES = CodesTable(
    system_column="Type",
    systems={"Adjustment reason": models.CodeSystem.CARC, "Remark": models.CodeSystem.RARC},
    group_column="Group",
    amount_column="Amount",
)
AMOUNTS = ClaimAmounts()
HISTORY = HistoryTable("appeal history", "Reference", "Appeal number", none_found="No appeals found")


class MeridianPortal(Portal):
    payer_id = "meridian"
    display_name = "Meridian Health"
    default_url = "https://provider.meridian-health.example"
    actions = frozenset(Action)
    second_factor = SecondFactorKind.TOTP
    sign_in_form = SignInForm(
        "/login",
        home="/dashboard",
        signed_out=Control("button", "Sign in"),
        signed_in=Control("link", "Sign out"),
        code="One-time code",
    )
    history_lag = timedelta(0)  # an appeal is in its history as soon as it is submitted
    claim_number_pattern = r"^MH\d{10}$"
    appeal_requires = MEDICAL_APPEAL_FIELDS
    filing_deadline_days = filing_deadlines(
        reconsideration=180, first_level=180, second_level=60, external_review=120
    )
    # the terms of every description list on its claim, authorization and appeal pages
    known_fields = frozenset(SENSITIVE_LABELS).union(
        ("Claim number", "Status", "Billed amount", "Paid amount", "Patient responsibility"),
        ("Authorization number", "Valid from", "Valid to", *PaDetails().labels),
        ("Appeal level", "Reason for appeal", "Your reference", "Appeal letter (PDF)", "Attachments"),
        FORM_LABELS.values(),
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
    )

    # Meridian's claim vocabulary in X12 277 terms: each wording with the category and the claim
    # status code (STC01-2) Meridian shows it for; none where Meridian gives none.
    claim_statuses = claim_rules("""
        wording                                                | category | status code | entity | detail code
        Received                                               | A1       | 19          | PR     |
        Accepted for processing                                | A2       | 20          |        |
        Returned - missing or invalid diagnosis code           | A3       | 21          |        | 255
        Returned - missing or invalid date of service          | A3       | 21          |        | 187
        In process                                             | P1       | 20          |        |
        Under review                                           | P2       | 46          |        |
        Pending - awaiting medical records from provider       | P3       | 294         |        | 297
        Additional information requested - other payer's EOB   | P3       | 294         |        | 286
        Paid                                                   | F1       | 65          |        |
        Partially paid                                         | F1       | 1           |        |
        Denied                                                 | F2       | 1           |        |
        Adjusted                                               | F3       | 101         |        |
        Processed - no payment due                             | F4       | 107         |        |
    """)
    pa_statuses = pa_rules("""
        wording                                  | hcr01
        Approved                                 | A1
        Partially approved                       | A2
        Approved with modifications              | A6
        Authorized at a different site of care   | A6
        Denied                                   | A3
        Pending review                           | A4
        Additional information needed            | A4
        Cancelled                                | C
        No authorization required                | NR
    """)

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        super().__init__(page, base_url, steps)
        p = page
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

    def check_claim_status(self, request: models.ClaimStatusRequest) -> models.ClaimReading:
        number, claim = request.claim_number, self.claim
        self._search("/claims", "Claim number", number, claim, "claim")
        read_field(self.steps, claim, "Claim number", page="claim page", equals=number)
        status = read_field(self.steps, claim, "Status", page="claim page")
        return models.ClaimReading(
            claim_number=number,
            status_text=status,
            codes=read_codes(self.steps, self.codes, CODES, what="codes table"),
            **AMOUNTS.read(self.steps, claim),
            sensitive=self._patient(self.patient, self.claim.get_by_label("Service date", exact=True)),
        )

    def check_pa_status(self, request: models.PaStatusRequest) -> models.PaReading:
        self._search(
            "/authorizations", "Authorization number", request.pa_number, self.authorization, "authorization"
        )
        region = self.authorization
        return models.PaReading(
            pa_number=request.pa_number,
            status_text=read_field(self.steps, region, "Status", page="authorization page"),
            valid_from=parse_us_date(self.steps.read(region.get_by_label("Valid from", exact=True))),
            valid_to=parse_us_date(self.steps.read(region.get_by_label("Valid to", exact=True))),
            **PaDetails().read(self.steps, region),  # reason and its code, certification, units
            sensitive=self._patient(region, region.get_by_label("Service", exact=True)),
        )

    # -- appeals --------------------------------------------------------------------------------

    def _wizard_step(self, next_control: Locator, step: str) -> None:
        """Wait for the wizard's next step; a message instead is a refusal ("No claim found": none)."""
        refused = f"the appeal before the {step} step"
        self.proceed(next_control, self.alert, f"appeal {step} step", refused=refused)

    def submit_appeal(
        self, request: models.AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> models.SubmissionResult:
        number = request.claim_number
        self.open("/appeals/new?restart=1")
        self.steps.fill(self.wizard_claim_number, number, safe=True)
        self.fill_appeal_form(self.page, request, FORM_LABELS, LEVEL_LABELS)  # level, denial, member...
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
        return models.SubmissionResult(confirmation_id=number, reference=reference)

    def find_submission(self, reference: str) -> models.SubmissionLookup:
        self.open("/appeals")
        field = self.search_form.get_by_label("Reference", exact=True)
        return self.search_history(field, self.search, self.history, HISTORY, reference, navigates=True)
