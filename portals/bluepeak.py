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
from datetime import date, datetime

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
from bot.parsing import NO_VALUE, parse_money
from bot.portal import Action, Portal, SubmitGate
from bot.status import ClaimRule, PaDecision, PaRule
from bot.steps import StepRecorder, describe_locator

# The labels of the fields that show patient data: who, when and what care, the typed explanation,
# and the answer to a security question.
PATIENT_LABELS = ("Patient name", "Member ID", "Date of birth")
SENSITIVE_LABELS = (*PATIENT_LABELS, "Service date", "Service", "Explanation", "Answer")

# The option labels of BluePeak's "Reason" select.
REASON_LABELS: dict[AppealReason, str] = {
    AppealReason.MEDICAL_NECESSITY: "Medically necessary service",
    AppealReason.CODING_ERROR: "Billing or coding correction",
    AppealReason.TIMELY_FILING: "Filed on time",
    AppealReason.COORDINATION_OF_BENEFITS: "Other insurance / coordination of benefits",
    AppealReason.DUPLICATE_DENIAL: "Not a duplicate claim",
    AppealReason.OTHER: "Something else",
}

# The "Code type" column of a claim's adjustment codes.
CODE_TYPES: dict[str, CodeSystem] = {"CARC": CodeSystem.CARC, "RARC": CodeSystem.RARC}

APPEAL_NUMBER = re.compile(r"\bBPA-APL-\d+\b")
PAGE_SIZE = 10
MAX_PAGES = 40  # lists are newest first; a claim further back than 400 rows is out of reach
MAX_TERMS = 3  # the terms of use are accepted at most this often while waiting for one view


def parse_bp_date(text: str) -> date | None:
    """'Jan 05, 2026' -> date; a dash -> None."""
    text = text.strip()
    return None if text.casefold() in NO_VALUE else datetime.strptime(text, "%b %d, %Y").date()


class BluePeakPortal(Portal):
    payer_id = "bluepeak"
    display_name = "BluePeak Benefits"
    default_url = "https://provider.bluepeak-benefits.example"
    actions = frozenset(Action)
    second_factor = SecondFactorKind.SECURITY_QUESTIONS
    history_reliable = True
    claim_number_pattern = r"^BP-\d{9}$"
    # the terms of every description list its views show
    known_fields = frozenset(
        {
            *SENSITIVE_LABELS,
            *("Claim number", "Billed amount", "Paid amount", "Status"),
            *("Authorization number", "Valid from", "Valid to", "Decision reason", "Security question"),
        }
    )
    max_upload_bytes = 10 * 1024 * 1024  # its sandbox sets no limit; the default until the payer states one

    # BluePeak's claim vocabulary in X12 277 terms: each wording with the category and the claim
    # status code (STC01-2) BluePeak shows it for; none where BluePeak gives none.
    claim_statuses = {
        "Received": ClaimRule(category="A1", status_code="19"),
        "Accepted - in queue": ClaimRule(category="A2", status_code="20"),
        "Returned - correct and resubmit": ClaimRule(category="A3", status_code="21"),
        "Processing": ClaimRule(category="P1"),
        "Under review": ClaimRule(category="P2"),
        "Awaiting documents": ClaimRule(category="R4", status_code="294"),
        "Approved - payment issued": ClaimRule(category="F1", status_code="65"),
        "Partially approved": ClaimRule(category="F1", status_code="1"),
        "Not covered": ClaimRule(category="F2"),
        "Denied - duplicate claim": ClaimRule(category="F2", status_code="54"),
        "Reprocessed": ClaimRule(category="F3", status_code="101"),
        "Closed - no payment due": ClaimRule(category="F4", status_code="107"),
    }
    pa_statuses = {
        "Authorized": PaRule(decision=PaDecision.APPROVED),
        "Authorized with changes": PaRule(decision=PaDecision.PARTIALLY_APPROVED),
        "Not authorized": PaRule(decision=PaDecision.DENIED),
        "In review": PaRule(decision=PaDecision.PENDED),
        "Information requested": PaRule(decision=PaDecision.MORE_INFO_REQUESTED),
        "Withdrawn": PaRule(decision=PaDecision.CANCELLED),
    }

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        super().__init__(page, base_url, steps)
        p = page
        # sign-in
        self.username = p.get_by_label("Username", exact=True)
        self.password = p.get_by_label("Password", exact=True)
        self.sign_in = p.get_by_role("button", name="Sign in", exact=True)
        self.question = p.get_by_label("Security question", exact=True)
        self.answer = p.get_by_label("Answer", exact=True)
        self.verify = p.get_by_role("button", name="Verify", exact=True)
        self.sign_out = p.get_by_role("button", name="Sign out", exact=True)
        self.alert = p.get_by_role("alert")
        self.agree = p.get_by_role("button", name="I agree", exact=True)
        # what the app shows instead of the view asked for
        self.maintenance = p.get_by_role("heading", name="Scheduled maintenance")
        self.captcha = p.get_by_role("heading", name="Verify you are human")
        self.password_expired = p.get_by_text("Your password has expired")
        self.session_expired = p.get_by_text("Your session has expired")
        self.gateway_error = p.get_by_role("heading", name=re.compile(r"^5\d\d\b"))
        self.app_error = self.alert.filter(has=p.get_by_role("heading", name="Something went wrong"))
        self.connection_error = self.alert.filter(has=p.get_by_role("heading", name="Connection problem"))
        self.interruptions = self.maintenance.or_(self.captcha).or_(self.password_expired)
        self.interruptions = self.interruptions.or_(self.session_expired).or_(self.gateway_error)
        self.interruptions = self.interruptions.or_(self.app_error).or_(self.connection_error)
        # lists and details
        self.empty = p.get_by_role("status")
        self.next_page = p.get_by_role("navigation", name="Pagination").get_by_role(
            "button", name="Next", exact=True
        )
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

    # -- the session ----------------------------------------------------------------------------

    def is_logged_in(self) -> bool:
        try:
            self.steps.goto(self.url("/app/claims"), target="/app/claims")
            self._land(self.sign_out.or_(self.sign_in), "signed-in check", accept_terms=False)
        except SessionExpired:
            return False
        return self.steps.read_optional(self.sign_out) is not None

    def login(self, secrets: LoginSecrets) -> None:
        self.steps.goto(self.url("/app/login"), target="/app/login")
        self._land(self.username, "sign-in form")
        self.steps.fill(self.username, secrets.username)
        self.steps.fill(self.password, secrets.password.get_secret_value())
        self.steps.click(self.sign_in)  # the one login POST; never repeated
        self._land(self.question.or_(self.alert), "sign-in outcome")
        refusal = self.steps.read_optional(self.alert)
        if refusal is not None:
            raise LoginRejected(f"{self.display_name} refused the sign-in: {refusal}")
        # the vault answers; a question it does not know raises UnknownSecondFactorPrompt there
        answer = secrets.answer(self.steps.read(self.question))
        self.steps.fill(self.answer, answer)
        self.steps.click(self.verify)
        self._land(self.sign_out.or_(self.alert), "security answer outcome")
        refusal = self.steps.read_optional(self.alert)
        if refusal is not None:
            raise SecondFactorRejected(f"{self.display_name} refused the security answer: {refusal}")

    # -- lookups --------------------------------------------------------------------------------

    def _open_from_list(self, path: str, caption: str, number: str, what: str) -> None:
        """Page the recent list, newest first, until the record's row shows; open it."""
        self.steps.goto(self.url(path), target=path)
        listing = self.page.get_by_role("table", name=caption, exact=True)
        none_found = self.empty.filter(has_text=f"No {what}s found")
        for page_no in range(1, MAX_PAGES + 1):
            label = self.page.get_by_text(re.compile(rf"^Page {page_no} of \d+$"))
            self._land(label.or_(none_found), f"{what} list page {page_no}")
            if self.steps.read_optional(none_found) is not None:
                break
            self.steps.expect(listing, target=f"{what} list")
            row = listing.get_by_role("link", name=number, exact=True)
            if self.steps.read_optional(row) is not None:
                self.steps.click(row)
                return
            pages = int(self.steps.read(label).rsplit(" ", 1)[-1])
            if page_no >= pages:
                break
            self.steps.click(self.next_page)
        else:
            raise NotFoundOnPortal(
                f"{self.display_name} lists no {what} {number} among its {MAX_PAGES * PAGE_SIZE} most recent"
            )
        raise NotFoundOnPortal(f"{self.display_name} has no {what} {number}")

    def _patient(self, care: Locator) -> tuple[str, ...]:
        """The patient fields, then the page's date or kind of care (``care``)."""
        name, member_id, dob = (
            self.steps.read(self.patient.get_by_label(label, exact=True)) for label in PATIENT_LABELS
        )
        shown = (name, member_id, dob, self.steps.read(care))
        # the API carries the same values; its ISO dates too, should a network log keep them
        dates = [parse_bp_date(dob)]
        with contextlib.suppress(ValueError):  # a service is a word, a date of service a date
            dates.append(parse_bp_date(shown[3]))
        return shown + tuple(d.isoformat() for d in dates if d)

    def _status(self, region: Locator, what: str) -> str:
        field = region.get_by_label("Status", exact=True)
        status = self.steps.read(field)
        if not status:
            raise PortalChanged(f"the {what} page shows no status", locator=describe_locator(field))
        return status

    def check_claim_status(self, request: ClaimStatusRequest) -> ClaimReading:
        number = request.claim_number
        self._open_from_list("/app/claims", "Claims", number, "claim")
        self._land(self.claim, "claim details")
        if self.steps.read(self.claim.get_by_label("Claim number", exact=True)) != number:
            raise PortalChanged("the claim page shows another claim than the one opened")
        status = self._status(self.claim, "claim")
        paid = self.steps.read(self.claim.get_by_label("Paid amount", exact=True))
        return ClaimReading(
            claim_number=number,
            status_text=status,
            codes=self._codes(),
            paid_amount=parse_money(paid),
            sensitive=self._patient(self.claim.get_by_label("Service date", exact=True)),
        )

    def _codes(self) -> tuple[PayerCode, ...]:
        if self.steps.read_optional(self.codes.get_by_role("row").first) is None:
            return ()
        header, *rows = self.steps.table(self.codes.get_by_role("row"))
        column = {name: i for i, name in enumerate(header)}
        if not {"Code type", "Code", "Description"} <= set(column):
            raise PortalChanged(f"the codes table has columns {header}", locator=describe_locator(self.codes))
        return tuple(
            PayerCode(
                system=CODE_TYPES.get(row[column["Code type"]], CodeSystem.PAYER),
                code=row[column["Code"]],
                description=row[column["Description"]] or None,
            )
            for row in rows
        )

    def check_pa_status(self, request: PaStatusRequest) -> PaReading:
        number = request.pa_number
        self._open_from_list("/app/pa", "Prior authorizations", number, "authorization")
        region = self.authorization
        self._land(region, "authorization details")
        if self.steps.read(region.get_by_label("Authorization number", exact=True)) != number:
            raise PortalChanged("the authorization page shows another authorization than the one opened")
        return PaReading(
            pa_number=number,
            status_text=self._status(region, "authorization"),
            valid_from=parse_bp_date(self.steps.read(region.get_by_label("Valid from", exact=True))),
            valid_to=parse_bp_date(self.steps.read(region.get_by_label("Valid to", exact=True))),
            detail=self.steps.read_optional(region.get_by_label("Decision reason", exact=True)),
            sensitive=self._patient(region.get_by_label("Service", exact=True)),
        )

    # -- appeals --------------------------------------------------------------------------------

    def submit_appeal(
        self, request: AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> SubmissionResult:
        self._open_from_list("/app/claims", "Claims", request.claim_number, "claim")
        self._land(self.file_appeal.or_(self.not_appealable), "appeal button")
        if self.steps.read(self.claim.get_by_label("Claim number", exact=True)) != request.claim_number:
            raise PortalChanged("the claim page shows another claim than the one opened for the appeal")
        refusal = self.steps.read_optional(self.not_appealable)
        if refusal is not None:
            raise PortalValidationError(f"{self.display_name} refused the appeal: {refusal}")
        self.steps.click(self.file_appeal)
        self.steps.expect(self.dialog, target="appeal dialog")
        self.steps.select(self.reason, REASON_LABELS[request.reason])
        self.steps.fill(self.explanation, request.explanation)
        self.steps.fill(self.reference, reference, safe=True)
        self.steps.upload(self.letter, [files.letter])
        # the app reads the letter before it takes it: a name in the attached list, or a message
        accepted = self.attached.get_by_text(f"{files.letter.name} attached", exact=True)
        self._land(accepted.or_(self.dialog_alert), "appeal letter check")
        message = self.steps.read_optional(self.dialog_alert)
        if message is not None:
            raise PortalValidationError(f"{self.display_name} refused the appeal letter: {message}")
        if files.attachments:
            self.steps.upload(self.attachments, list(files.attachments))
        self.steps.expect(self.submit, target="submit")
        gate()  # commits "submitting" and refuses a stale lease; only then the click
        try:
            self.steps.click(self.submit)
            self._land(self.toast.or_(self.dialog_alert), "appeal confirmation")
            if self.steps.read_optional(self.dialog_alert) is not None:
                raise PortalChanged("the portal answered the submit with a message instead of a confirmation")
            found = APPEAL_NUMBER.search(self.steps.read(self.toast.first))
            if found is None:
                raise PortalChanged("the confirmation shows no appeal number")
        except Transient:
            raise
        except PortalError as exc:
            # the click happened: whatever the app shows now, the appeal may be recorded
            raise PortalTimeout(
                f"no confirmation after the submit click ({type(exc).__name__}); "
                "look the reference up in the appeal history before any new submit"
            ) from None
        return SubmissionResult(confirmation_id=found.group(0), reference=reference)

    def find_submission(self, reference: str) -> SubmissionLookup:
        self.steps.goto(self.url("/app/appeals"), target="/app/appeals")
        self._land(self.history_reference, "appeal history search")
        self.steps.fill(self.history_reference, reference, safe=True)
        self.steps.click(self.search)
        none_found = self.empty.filter(has_text="No appeals found")
        self._land(self.history.or_(none_found), "appeal history")
        if self.steps.read_optional(none_found) is not None:
            return SubmissionLookup(reference=reference, found=False)
        header, *rows = self.steps.table(self.history.get_by_role("row"))
        column = {name: i for i, name in enumerate(header)}
        if not {"Your reference", "Appeal number"} <= set(column):
            raise PortalChanged(
                f"the appeal history has columns {header}", locator=describe_locator(self.history)
            )
        numbers = [row[column["Appeal number"]] for row in rows if row[column["Your reference"]] == reference]
        # newest first: the last match is the first submission
        return SubmissionLookup(
            reference=reference, found=bool(numbers), confirmation_id=numbers[-1] if numbers else None
        )

    # -- what the engine needs ------------------------------------------------------------------

    def _land(self, expected: Locator, target: str, *, accept_terms: bool = True) -> None:
        """Wait for the expected view, or one the app shows instead: accept the terms of use where
        they stand in the way, and classify anything else (``check_page``)."""
        interruptions = self.interruptions.or_(self.agree) if accept_terms else self.interruptions
        for _ in range(MAX_TERMS + 1):
            self.steps.expect(expected.or_(interruptions).first, target=target)
            self.steps.after_navigation()  # check_page, then any 5xx the app was answered
            if not accept_terms or self.steps.read_optional(self.agree) is None:
                return
            self.steps.click(self.agree)
        raise PortalChanged(
            f"the terms of use came back {MAX_TERMS} times in a row", locator=describe_locator(self.agree)
        )

    @staticmethod
    def _shows(locator: Locator) -> bool:
        return locator.count() > 0 and locator.first.is_visible()

    def check_page(self) -> None:
        try:
            if self.interruptions.count() == 0:
                return  # one look for the usual case; the checks below name what is shown
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
            if self._shows(self.app_error):
                detail = " ".join(self.app_error.first.inner_text().split())
                raise PortalServerError(f"{self.display_name} shows an error: {detail}")
            if self._shows(self.connection_error):
                raise PortalTimeout(f"{self.display_name} lost the connection to its server")
        except PlaywrightError:
            return  # the page is mid-navigation; the next step will look again

    def is_busy(self, page: Page) -> bool:
        try:
            return self._shows(page.get_by_role("progressbar"))
        except PlaywrightError:
            return False

    def sensitive_locators(self) -> list[Locator]:
        return [self.page.get_by_label(label, exact=True) for label in SENSITIVE_LABELS]

    def content_area(self) -> Locator:
        """The main landmark, and the appeal dialog the app opens over it (outside ``main``)."""
        return self.page.get_by_role("main").or_(self.page.get_by_role("dialog"))

    def field_labels(self) -> Locator:
        return self.page.get_by_role("term")
