"""BluePeak Benefits: a single-page app (password, then one security question).

The app draws every view from a JSON API behind spinners, so no click navigates: each step waits on
the next view's controls. A claim or authorization is found by paging the recent list (its detail
page has an opaque id); an appeal goes through a dialog whose confirmation is a toast that fades;
the appeal history, searchable by our reference, shows every submission at once. A terms-of-use page
may stand in for any view; it is accepted wherever it appears. Locators are by role and label only,
so a restyled app needs no change here; a renamed control ends in ``PortalChanged`` naming it.
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, timedelta

from playwright.sync_api import Locator, Page

from bot import models
from bot.documents import AppealFiles
from bot.interruptions import Interruption as Shows
from bot.interruptions import Interstitial, RetryControl, Sign, heading, shown_text
from bot.login import SecondFactorKind
from bot.parsing import parse_date
from bot.portal import MEDICAL_APPEAL_FIELDS, Action, Portal, SubmitGate, filing_deadlines
from bot.readers import CARC_RARC_TABLE, ClaimAmounts, HistoryTable, Pager, read_codes, read_field
from bot.sign_in import Control, SignInForm
from bot.status import claim_rules, pa_rules
from bot.steps import StepRecorder

# Patient data: who, when and what care, the typed explanation, and the answer to a security question.
PATIENT_LABELS = ("Patient name", "Member ID", "Date of birth")
SENSITIVE_LABELS = (*PATIENT_LABELS, "Service date", "Last service date", "Service", "Explanation", "Answer")

# The option labels of the appeal dialog's "Reason" and "Review type" selects, and its other fields'
# labels by form field (``AppealRequest.form_fields``).
REASON_LABELS: dict[models.AppealReason, str] = {
    models.AppealReason.MEDICAL_NECESSITY: "Medically necessary service",
    models.AppealReason.CODING_ERROR: "Billing or coding correction",
    models.AppealReason.TIMELY_FILING: "Filed on time",
    models.AppealReason.COORDINATION_OF_BENEFITS: "Other insurance / coordination of benefits",
    models.AppealReason.DUPLICATE_DENIAL: "Not a duplicate claim",
    models.AppealReason.OTHER: "Something else",
}
LEVEL_LABELS: dict[models.AppealLevel, str] = {
    models.AppealLevel.RECONSIDERATION: "Reconsideration",
    models.AppealLevel.FIRST_LEVEL: "First-level appeal",
    models.AppealLevel.SECOND_LEVEL: "Second-level appeal",
    models.AppealLevel.EXTERNAL_REVIEW: "Independent external review",
}
FORM_LABELS = {
    "level": "Review type",
    "denial_date": "Date of denial",
    "member_id": "Member ID",
    "service_from": "Service date",
    "service_to": "Last service date",
    "billing_npi": "Billing NPI",
    "disputed_amount": "Amount disputed",
}

# A claim's adjustment codes (its "Code type" column names each code's system), and the appeal history.
CODES = CARC_RARC_TABLE
AMOUNTS = ClaimAmounts()
HISTORY = HistoryTable("appeal history", "Your reference", "Appeal number", none_found="No appeals found")
APPEAL_NUMBER = re.compile(r"\bBPA-APL-\d+\b")
DATE = "%b %d, %Y"  # how the app shows dates: Jan 05, 2026
PAGER = Pager(navigation="Pagination", max_pages=40)  # newest first, 10 rows a page: 400 rows at most


class BluePeakPortal(Portal):
    payer_id = "bluepeak"
    display_name = "BluePeak Benefits"
    default_url = "https://provider.bluepeak-benefits.example"
    actions = frozenset(Action)
    second_factor = SecondFactorKind.SECURITY_QUESTIONS
    sign_in_form = SignInForm(  # one page of the app, swapped in place
        "/app/login",
        home="/app/claims",
        signed_out=Control("button", "Sign in"),
        signed_in=Control("button", "Sign out"),
        question="Security question",
        answer="Answer",
        steps=("sign-in", "security answer"),
        navigates=False,
    )
    history_lag = timedelta(0)  # an appeal is in its history as soon as it is submitted
    claim_number_pattern = r"^BP-\d{9}$"
    appeal_requires = MEDICAL_APPEAL_FIELDS
    filing_deadline_days = filing_deadlines(
        reconsideration=90, first_level=180, second_level=60, external_review=120
    )
    # the terms of every description list its views show
    known_fields = frozenset(SENSITIVE_LABELS).union(
        ("Claim number", "Billed amount", "Paid amount", "Patient responsibility", "Status"),
        ("Authorization number", "Valid from", "Valid to", "Decision reason", "Security question"),
    )
    sensitive_labels = SENSITIVE_LABELS
    busy_role = "progressbar"  # the app's spinner while it waits for its API
    # what the app shows instead of the view asked for: its own error states are alerts
    interruptions = (
        heading("Scheduled maintenance", Shows.MAINTENANCE),
        heading("Verify you are human", Shows.CAPTCHA),
        shown_text("Your password has expired", Shows.PASSWORD_EXPIRED),
        shown_text("Your session has expired", Shows.SESSION_EXPIRED),
        Sign(Shows.APP_ERROR, role="heading", name="Something went wrong", inside="alert"),
        Sign(Shows.CONNECTION_LOST, role="heading", name="Connection problem", inside="alert"),
    )
    interstitial = Interstitial("the terms of use", role="button", name="I agree", times=3)
    retry_control = RetryControl(role="button", name="Try again")  # its error state asks the API again

    # BluePeak's claim vocabulary in X12 277 terms: each wording with the category and the claim
    # status code (STC01-2) BluePeak shows it for; none where BluePeak gives none.
    claim_statuses = claim_rules("""
        wording                                                | category | status code | entity | detail code
        Received                                               | A1       | 19          | PR     |
        Accepted - in queue                                    | A2       | 20          |        |
        Returned - correct the diagnosis code and resubmit     | A3       | 21          |        | 255
        Returned - correct the procedure code and resubmit     | A3       | 21          |        | 454
        Processing                                             | P1       | 20          |        |
        Under review                                           | P2       | 46          |        |
        Awaiting documents - medical records                   | P3       | 294         |        | 297
        Approved - payment issued                              | F1       | 65          |        |
        Partially approved                                     | F1       | 1           |        |
        Not covered                                            | F2       | 1           |        |
        Denied - duplicate claim                               | F2       | 54          |        |
        Reprocessed                                            | F3       | 101         |        |
        Closed - no payment due                                | F4       | 107         |        |
    """)
    pa_statuses = pa_rules("""
        wording                    | hcr01
        Authorized                 | A1
        Authorized with changes    | A6
        Not authorized             | A3
        In review                  | A4
        Information requested      | A4
        Withdrawn                  | C
    """)

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        super().__init__(page, base_url, steps)
        p = page
        # lists and details
        self.empty = p.get_by_role("status")
        self.patient = p.get_by_role("region", name="Patient", exact=True)
        self.claim = p.get_by_role("region", name="Claim", exact=True)
        self.authorization = p.get_by_role("region", name="Authorization", exact=True)
        self.codes = p.get_by_role("table", name="Adjustment codes", exact=True)
        # the appeal dialog and the history
        self.file_appeal = p.get_by_role("button", name="File an appeal", exact=True)
        self.not_appealable = p.get_by_text("Appeals can be filed once the claim is finalized")
        self.dialog = p.get_by_role("dialog", name="File an appeal", exact=True)
        self.reason = self.dialog.get_by_label("Reason", exact=True)
        self.explanation = self.dialog.get_by_label("Explanation", exact=True)
        self.reference = self.dialog.get_by_label("Your reference", exact=True)
        self.letter = self.dialog.get_by_label("Appeal letter (PDF)", exact=True)
        self.attachments = self.dialog.get_by_label("Supporting documents (optional)", exact=True)
        self.attached = self.dialog.get_by_role("list", name="Attached files", exact=True)
        self.dialog_alert = self.dialog.get_by_role("alert")
        self.submit = self.dialog.get_by_role("button", name="Submit appeal", exact=True)
        self.toast = p.get_by_role("status").filter(has_text=APPEAL_NUMBER)
        self.search_form = p.get_by_role("search")
        self.search = self.search_form.get_by_role("button", name="Search", exact=True)
        self.history_reference = self.search_form.get_by_label("Your reference", exact=True)
        self.history = p.get_by_role("table", name="Submitted appeals", exact=True)

    # -- lookups --------------------------------------------------------------------------------

    def _open_from_list(self, path: str, caption: str, number: str, what: str, then: Locator) -> None:
        """Page the recent list, newest first, until the record's row shows; open it, land on ``then``."""
        self.open(path)
        listing = self.page.get_by_role("table", name=caption, exact=True)
        row = listing.get_by_role("link", name=number, exact=True)
        none_found = self.empty.filter(has_text=f"No {what}s found")
        self.open_from_pages(listing, row, what=what, number=number, pager=PAGER, none_found=none_found)
        self.land(then, f"{what} details")

    def _patient(self, care: Locator) -> tuple[str, ...]:
        """The patient fields, then the page's date or kind of care (``care``)."""
        who = [self.patient.get_by_label(label, exact=True) for label in PATIENT_LABELS]
        shown = tuple(self.steps.read(field) for field in (*who, care))
        # the API carries the same values; its ISO dates too, should a network log keep them
        dates = [parse_date(shown[2], DATE)]
        with contextlib.suppress(ValueError):  # a service is a word, a date of service a date
            dates.append(parse_date(shown[3], DATE))
        return shown + tuple(d.isoformat() for d in dates if d)

    def check_claim_status(self, request: models.ClaimStatusRequest) -> models.ClaimReading:
        number = request.claim_number
        self._open_from_list("/app/claims", "Claims", number, "claim", self.claim)
        read_field(self.steps, self.claim, "Claim number", page="claim page", equals=number)
        status = read_field(self.steps, self.claim, "Status", page="claim page")
        return models.ClaimReading(
            claim_number=number,
            status_text=status,
            codes=read_codes(self.steps, self.codes, CODES, what="codes table"),
            **AMOUNTS.read(self.steps, self.claim),
            sensitive=self._patient(self.claim.get_by_label("Service date", exact=True)),
        )

    def check_pa_status(self, request: models.PaStatusRequest) -> models.PaReading:
        number = request.pa_number
        region = self.authorization
        self._open_from_list("/app/pa", "Prior authorizations", number, "authorization", region)
        read_field(self.steps, region, "Authorization number", page="authorization page", equals=number)
        return models.PaReading(
            pa_number=number,
            status_text=read_field(self.steps, region, "Status", page="authorization page"),
            valid_from=parse_date(self.steps.read(region.get_by_label("Valid from", exact=True)), DATE),
            valid_to=parse_date(self.steps.read(region.get_by_label("Valid to", exact=True)), DATE),
            detail=self.steps.read_optional(region.get_by_label("Decision reason", exact=True)),
            sensitive=self._patient(region.get_by_label("Service", exact=True)),
        )

    # -- appeals --------------------------------------------------------------------------------

    def submit_appeal(
        self, request: models.AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> models.SubmissionResult:
        appeal_button = self.file_appeal.or_(self.not_appealable)
        self._open_from_list("/app/claims", "Claims", request.claim_number, "claim", appeal_button)
        read_field(self.steps, self.claim, "Claim number", page="claim page", equals=request.claim_number)
        self.refusal(self.not_appealable, "the appeal")
        self.steps.click(self.file_appeal)
        self.steps.expect(self.dialog, target="appeal dialog")
        self.fill_appeal_form(self.dialog, request, FORM_LABELS, LEVEL_LABELS, dates=date.isoformat)
        self.refusal(self.dialog_alert, "the appeal")  # past the filing limit: the app says so at once
        self.steps.select(self.reason, REASON_LABELS[request.reason])
        self.steps.fill(self.explanation, request.explanation)
        self.steps.fill(self.reference, reference, safe=True)
        self.steps.upload(self.letter, [files.letter])
        # the app reads the letter before it takes it: a name in the attached list, or a message
        accepted = self.attached.get_by_text(f"{files.letter.name} attached", exact=True)
        self.proceed(accepted, self.dialog_alert, "appeal letter check", refused="the appeal letter")
        if files.attachments:
            self.steps.upload(self.attachments, list(files.attachments))
        self.click_submit(self.submit, gate)
        toast, alert = self.toast.first, self.dialog_alert
        number = self.confirmation(toast, alert, "appeal confirmation", pattern=APPEAL_NUMBER)
        return models.SubmissionResult(confirmation_id=number, reference=reference)

    def find_submission(self, reference: str) -> models.SubmissionLookup:
        self.open("/app/appeals", self.history_reference, "appeal history search")
        return self.search_history(self.history_reference, self.search, self.history, HISTORY, reference)

    def content_area(self) -> Locator:
        """The main landmark, and the appeal dialog the app opens over it (outside ``main``)."""
        return self.page.get_by_role("main").or_(self.page.get_by_role("dialog"))

    def field_labels(self) -> Locator:
        return self.page.get_by_role("term")
