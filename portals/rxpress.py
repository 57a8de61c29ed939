"""RxPress PBM: an old-style pharmacy benefit manager portal (password, then a code sent by e-mail).

After log-in the portal is a menu beside an iframe titled "Work area"; every lookup and the
redetermination request (the PBM's word for an appeal) happen inside that frame, so their
locators are built on the frame (``content_frame``). Claims are keyed by Rx number and fill date
and carry NCPDP reject codes. The redetermination history lags behind submissions, so "not
found" there does not mean "not sent": ``history_lag`` says how long it may take, and the engine
looks an unconfirmed submission up again once that has passed, then hands it to a person rather
than submit again.
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
from bot.page_steps import personal_labels
from bot.parsing import format_us_date, parse_money
from bot.portal import PHARMACY_APPEAL_FIELDS, Action, Portal, SubmitGate, filing_deadlines
from bot.readers import CodesTable, HistoryTable, read_codes, read_details, shown_date
from bot.sign_in import Control, SignInForm
from bot.status import claim_rules, pa_rules
from bot.steps import StepRecorder

# The option labels of RxPress's "Reason for redetermination" select.
REASON_LABELS: dict[models.AppealReason, str] = {
    models.AppealReason.MEDICAL_NECESSITY: "Medical necessity",
    models.AppealReason.CODING_ERROR: "Claim submitted with incorrect information",
    models.AppealReason.TIMELY_FILING: "Submitted within the timely filing limit",
    models.AppealReason.COORDINATION_OF_BENEFITS: "Other coverage / coordination of benefits",
    models.AppealReason.DUPLICATE_DENIAL: "Rejected as a duplicate in error",
    models.AppealReason.OTHER: "Other",
}

# The option labels of its "Review level" select, and the request form's other fields by their
# AppealRequest.form_fields names (no NPI: the Rx number and fill date name the pharmacy's claim).
LEVEL_LABELS: dict[models.AppealLevel, str] = {
    models.AppealLevel.RECONSIDERATION: "Claim reconsideration",
    models.AppealLevel.FIRST_LEVEL: "Redetermination (level 1)",
    models.AppealLevel.SECOND_LEVEL: "Second-level review (level 2)",
    models.AppealLevel.EXTERNAL_REVIEW: "Independent review entity (IRE)",
}
FORM_LABELS = {
    "level": "Review level",
    "denial_date": "Date of rejection notice",
    "member_id": "Cardholder ID",
    "contact_name": "Pharmacy contact",
    "contact_phone": "Contact phone",
    "contact_email": "Contact e-mail",
}
PATIENT_LABELS = ("Patient name", "Cardholder ID", "Date of birth")
# every field that shows patient data: who, the prescription (its number, fill date and drug), the
# typed explanation, and the pharmacy's contact
PRESCRIPTION_LABELS = ("Rx number", "Fill date", "Drug")
SENSITIVE_LABELS = (*PATIENT_LABELS, *PRESCRIPTION_LABELS, "Explanation", *personal_labels(FORM_LABELS))
Field = tuple[str, str, bool]  # a search field's label, its value, and whether the value may be recorded
PAGE = "RxPress PBM page"  # how errors name a page of the work area
WORK_AREA = "Work area"  # the title of the iframe every lookup and request shows in
CODES = CodesTable(system=models.CodeSystem.NCPDP_REJECT)  # its reject codes are NCPDP's
HISTORY = HistoryTable(
    "redetermination history", "Your reference", "Redetermination number", "No redetermination requests found"
)


class RxPressPortal(Portal):
    payer_id = "rxpress"
    display_name = "RxPress PBM"
    default_url = "https://pharmacy.rxpress-pbm.example"
    actions = frozenset(Action)
    second_factor = SecondFactorKind.OUT_OF_BAND
    sign_in_form = SignInForm(  # the code is e-mailed; a remembered device skips it next time
        "/login",
        home="/main",
        signed_out=Control("button", "Log In"),
        signed_in=Control("link", "Log Out"),
        username="User ID",
        code="Security code",
        remember_device="Remember this device",
        steps=("log-in", "security code"),
    )
    history_lag = timedelta(minutes=2)  # new requests reach the history in batches, within minutes
    claim_number_pattern = r"^\d{7}$"  # claims are Rx numbers
    needs_fill_date = True
    appeal_requires = PHARMACY_APPEAL_FIELDS
    filing_deadline_days = filing_deadlines(
        reconsideration=65, first_level=65, second_level=60, external_review=120
    )
    # the row headers of every detail table in its work area
    known_fields = frozenset(SENSITIVE_LABELS).union(
        ("Claim status", "Amount billed", "Plan paid", "Patient pay"),
        ("PA number", "PA status", "Effective date", "Expiration date", "Reason"),
        ("Reason for redetermination", "Your reference", "Redetermination letter (PDF)", "Attachments"),
        FORM_LABELS.values(),
        ("Redetermination number", "Received", "Status"),
    )
    # what the portal shows instead of the page asked for, in the window or in its work area
    interruptions = (
        heading("System Unavailable", Shows.MAINTENANCE),
        heading("Security Check", Shows.CAPTCHA),
        heading("Password Expired", Shows.PASSWORD_EXPIRED),
        shown_text("Your session has timed out", Shows.SESSION_EXPIRED),
    )
    content_frame = WORK_AREA
    sensitive_labels = SENSITIVE_LABELS
    not_found_words = "No claim found"

    # RxPress's claim vocabulary in X12 277 terms (the sandbox's wording module says why each).
    claim_statuses = claim_rules("""
        wording                            | category | status code | code list | pharmacy status
        PAID                               | F1       | 65          |           | paid
        REJECTED                           | F2       |             | RX        | rejected
        REJECTED - INVALID CLAIM DATA      | A3       |             | RX        | rejected
        REVERSED                           | F3       | 686         |           | reversed
        IN PROCESS                         | P1       | 20          |           | captured
        CAPTURED - PENDING ADJUDICATION    | A2       | 20          |           | captured
    """)
    pa_statuses = pa_rules("""
        wording                    | hcr01
        APPROVED                   | A1
        DENIED                     | A3
        PENDED                     | A4
        MORE INFORMATION NEEDED    | A4
    """)

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        super().__init__(page, base_url, steps)
        p = page
        # the window: the menu beside the work area
        self.menu = p.get_by_role("navigation", name="Menu")
        self.work = w = self.content  # the work area: an iframe whose page changes with the menu
        self.work_alert = w.get_by_role("alert")
        self.work_status = w.get_by_role("status")
        self.search_form = w.get_by_role("search")
        self.search = self.search_form.get_by_role("button", name="Search", exact=True)
        self.claim_detail = w.get_by_role("table", name="Claim detail", exact=True)
        self.rejects = w.get_by_role("table", name="Reject codes", exact=True)
        self.pa_detail = w.get_by_role("table", name="Prior authorization detail", exact=True)
        self.request_form = w.get_by_role("form", name="Redetermination request", exact=True)
        self.summary = w.get_by_role("table", name="Request summary", exact=True)
        self.submit = w.get_by_role("button", name="Submit redetermination request", exact=True)
        self.received = w.get_by_role("heading", name="Redetermination request received", exact=True)
        self.rd_number = w.get_by_label("Redetermination number", exact=True)
        self.history = w.get_by_role("table", name="Redetermination requests", exact=True)

    # -- the work area --------------------------------------------------------------------------

    def _open(self, menu_item: str, expected: Locator) -> None:
        """Load the menu page and open one item of the menu in the work area."""
        self.open("/main")
        self.steps.click(self.menu.get_by_role("link", name=menu_item, exact=True), repeatable=True)
        self.land(expected, menu_item, frame=WORK_AREA)

    def _search(self, menu_item: str, fields: list[Field], result: Locator, what: str) -> None:
        """Search from a menu page; raise NotFoundOnPortal when the portal finds nothing."""
        self._open(menu_item, self.search_form)
        for label, value, safe in fields:
            self.steps.fill(self.search_form.get_by_label(label, exact=True), value, safe=safe)
        self.steps.click(self.search, repeatable=True)  # a look-up posts, and changes nothing
        nothing = self.work_status.filter(has_text=f"No {what} found")
        target, refused = f"{what} search result", f"the {what}"
        self.proceed(result.or_(nothing), self.work_alert, target, refused=refused, frame=WORK_AREA)
        # named by its labels: an Rx number and a fill date are the patient's, and errors reach logs
        self.found_nothing(nothing, f"{what} for the {' and '.join(label for label, _, _ in fields)} given")

    def check_claim_status(self, request: models.ClaimStatusRequest) -> models.ClaimReading:
        number, fill = request.claim_number, request.fill_date
        assert fill is not None  # check_request refused a claim without one (intake, lease)
        # the Rx number and fill date identify a patient's prescription: never written into the steps
        fields = [("Rx number", number, False), ("Fill date", format_us_date(fill), False)]
        self._search("Claim Inquiry", fields, self.claim_detail, "claim")
        needs = ("Claim status", *PATIENT_LABELS, *PRESCRIPTION_LABELS)
        shown = read_details(
            self.steps, self.claim_detail, page=PAGE, needs=needs, equals={"Rx number": number}
        )
        if shown_date(shown, "Fill date", page=PAGE) != fill:
            raise PortalChanged("the claim page shows another fill date than the one asked for")
        return models.ClaimReading(
            claim_number=number,
            status_text=shown["Claim status"],
            codes=read_codes(self.steps, self.rejects, CODES, what="reject codes table"),
            billed_amount=parse_money(shown.get("Amount billed", "")),
            paid_amount=parse_money(shown.get("Plan paid", "")),
            patient_responsibility=parse_money(shown.get("Patient pay", "")),
            sensitive=tuple(shown[label] for label in (*PATIENT_LABELS, *PRESCRIPTION_LABELS)),
        )

    def check_pa_status(self, request: models.PaStatusRequest) -> models.PaReading:
        number = request.pa_number
        fields = [("PA number", number, True)]
        self._search("Prior Authorization Status", fields, self.pa_detail, "prior authorization")
        needs = ("PA status", *PATIENT_LABELS, "Drug")
        shown = read_details(self.steps, self.pa_detail, page=PAGE, needs=needs, equals={"PA number": number})
        return models.PaReading(
            pa_number=number,
            status_text=shown["PA status"],
            valid_from=shown_date(shown, "Effective date", page=PAGE),
            valid_to=shown_date(shown, "Expiration date", page=PAGE),
            detail=shown.get("Reason") or None,
            sensitive=tuple(shown[label] for label in (*PATIENT_LABELS, "Drug")),
        )

    # -- redeterminations -----------------------------------------------------------------------

    def submit_appeal(
        self, request: models.AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> models.SubmissionResult:
        number, fill, form = request.claim_number, request.fill_date, self.request_form
        assert fill is not None  # check_request refused an appeal without one (intake, lease)
        self._open("Request a Redetermination", form)
        self.steps.fill(form.get_by_label("Rx number", exact=True), number)
        self.steps.fill(form.get_by_label("Fill date", exact=True), format_us_date(fill))
        self.steps.select(
            form.get_by_label("Reason for redetermination", exact=True), REASON_LABELS[request.reason]
        )
        self.fill_appeal_form(form, request, FORM_LABELS, LEVEL_LABELS)  # dates as MM/DD/YYYY
        self.steps.fill(form.get_by_label("Explanation", exact=True), request.explanation)
        self.steps.fill(form.get_by_label("Your reference", exact=True), reference, safe=True)
        self.steps.upload(form.get_by_label("Redetermination letter (PDF)", exact=True), [files.letter])
        if files.attachments:
            attachments = form.get_by_label("Supporting documents (optional)", exact=True)
            self.steps.upload(attachments, list(files.attachments))
        self.steps.click(form.get_by_role("button", name="Review request", exact=True), repeatable=True)
        refused = "the redetermination request"
        self.proceed(
            self.summary, self.work_alert, "redetermination review", refused=refused, frame=WORK_AREA
        )
        entered = {"Rx number": number, "Your reference": reference}
        read_details(self.steps, self.summary, page="review page", equals=entered)
        self.click_submit(self.submit, gate)
        confirmed, target = self.received, "redetermination confirmation"
        number = self.confirmation(confirmed, self.work_alert, target, number=self.rd_number, frame=WORK_AREA)
        return models.SubmissionResult(confirmation_id=number, reference=reference)

    def find_submission(self, reference: str) -> models.SubmissionLookup:
        self._open("Redetermination History", self.search_form)
        field = self.search_form.get_by_label("Reference", exact=True)
        return self.search_history(field, self.search, self.history, HISTORY, reference, frame=WORK_AREA)

    # -- what the engine needs ------------------------------------------------------------------

    def field_labels(self) -> Locator:
        return self.work.get_by_role("rowheader")
