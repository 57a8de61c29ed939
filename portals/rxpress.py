"""RxPress PBM: an old-style pharmacy benefit manager portal (password, then a code sent by e-mail).

After log-in the portal is a menu beside an iframe titled "Work area"; every lookup and the
redetermination request (the PBM's word for an appeal) happen inside that frame, so their
locators are built on the frame (``content_frame``). Claims are keyed by Rx number and fill date
and carry NCPDP reject codes. The redetermination history lags behind submissions, so "not
found" there does not mean "not sent": ``history_reliable`` is False and the engine hands an
unconfirmed submission to a person instead of submitting again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import FrameLocator, Locator, Page, Request

from bot.documents import AppealFiles
from bot.errors import (
    CaptchaShown,
    IntakeError,
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
from bot.parsing import format_us_date, parse_money, parse_us_date
from bot.portal import Action, Portal, SubmitGate
from bot.status import ClaimRule, PaDecision, PaRule
from bot.steps import StepRecorder, describe_locator

# The option labels of RxPress's "Reason for redetermination" select.
REASON_LABELS: dict[AppealReason, str] = {
    AppealReason.MEDICAL_NECESSITY: "Medical necessity",
    AppealReason.CODING_ERROR: "Claim submitted with incorrect information",
    AppealReason.TIMELY_FILING: "Submitted within the timely filing limit",
    AppealReason.COORDINATION_OF_BENEFITS: "Other coverage / coordination of benefits",
    AppealReason.DUPLICATE_DENIAL: "Rejected as a duplicate in error",
    AppealReason.OTHER: "Other",
}

PATIENT_LABELS = ("Patient name", "Cardholder ID", "Date of birth")
# every field that shows patient data: who, the prescription (its number, fill date and drug), and
# the typed explanation
PRESCRIPTION_LABELS = ("Rx number", "Fill date", "Drug")
SENSITIVE_LABELS = (*PATIENT_LABELS, *PRESCRIPTION_LABELS, "Explanation")
NO_CLAIM = "No claim found"
Field = tuple[str, str, bool]  # a search field's label, its value, and whether the value may be recorded
GATEWAY_HEADING = re.compile(r"^5\d\d\b")  # the load balancer's bare "502 Bad Gateway" page


@dataclass(frozen=True)
class Interruptions:
    """The pages RxPress shows instead of the one asked for, in the window or in the work area."""

    maintenance: Locator
    captcha: Locator
    password_expired: Locator
    timed_out: Locator
    gateway_error: Locator

    @classmethod
    def on(cls, root: Page | FrameLocator) -> Interruptions:
        return cls(
            maintenance=root.get_by_role("heading", name="System Unavailable"),
            captcha=root.get_by_role("heading", name="Security Check"),
            password_expired=root.get_by_role("heading", name="Password Expired"),
            timed_out=root.get_by_text("Your session has timed out"),
            gateway_error=root.get_by_role("heading", name=GATEWAY_HEADING),
        )

    def any(self) -> Locator:
        return (
            self.maintenance.or_(self.captcha)
            .or_(self.password_expired)
            .or_(self.timed_out)
            .or_(self.gateway_error)
        )


class RxPressPortal(Portal):
    payer_id = "rxpress"
    display_name = "RxPress PBM"
    default_url = "https://pharmacy.rxpress-pbm.example"
    actions = frozenset(Action)
    second_factor = SecondFactorKind.OUT_OF_BAND
    history_reliable = False  # new requests reach the history only after a processing delay
    claim_number_pattern = r"^\d{7}$"  # claims are Rx numbers
    needs_fill_date = True
    # the row headers of every detail table in its work area
    known_fields = frozenset(
        {
            *SENSITIVE_LABELS,
            *("Claim status", "Amount billed", "Plan paid"),
            *("PA number", "PA status", "Effective date", "Expiration date", "Reason"),
            *("Reason for redetermination", "Your reference", "Redetermination letter (PDF)", "Attachments"),
            *("Redetermination number", "Received", "Status"),
        }
    )
    max_upload_bytes = 10 * 1024 * 1024  # its sandbox sets no limit; the default until the payer states one
    remember_device = True  # tick "Remember this device" so that a kept session skips the code

    # RxPress's claim vocabulary in X12 277 terms (the sandbox's wording module says why each).
    claim_statuses = {
        "PAID": ClaimRule(category="F1", status_code="65"),
        "REJECTED": ClaimRule(category="F2"),
        "REJECTED - INVALID CLAIM DATA": ClaimRule(category="A3", status_code="21"),
        "REVERSED": ClaimRule(category="F3", status_code="686"),
        "IN PROCESS": ClaimRule(category="P1"),
        "CAPTURED - PENDING ADJUDICATION": ClaimRule(category="A2", status_code="20"),
    }
    pa_statuses = {
        "APPROVED": PaRule(decision=PaDecision.APPROVED),
        "DENIED": PaRule(decision=PaDecision.DENIED),
        "PENDED": PaRule(decision=PaDecision.PENDED),
        "MORE INFORMATION NEEDED": PaRule(decision=PaDecision.MORE_INFO_REQUESTED),
    }

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        super().__init__(page, base_url, steps)
        p = page
        # the window: log-in, security code, and the menu beside the work area
        self.user_id = p.get_by_label("User ID", exact=True)
        self.password = p.get_by_label("Password", exact=True)
        self.log_in = p.get_by_role("button", name="Log In", exact=True)
        self.security_code = p.get_by_label("Security code", exact=True)
        self.remember = p.get_by_label("Remember this device", exact=True)
        self.verify = p.get_by_role("button", name="Verify", exact=True)
        self.log_out = p.get_by_role("link", name="Log Out", exact=True)
        self.alert = p.get_by_role("alert")
        self.menu = p.get_by_role("navigation", name="Menu")
        self.top = Interruptions.on(p)
        # the work area: an iframe whose page changes with the menu
        self.work = p.get_by_title("Work area", exact=True).content_frame
        w = self.work
        self.in_work = Interruptions.on(w)
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
        # the work area's own navigations, which the step recorder (main frame only) does not see
        self._frame_loads: set[Request] = set()
        page.on("request", self._frame_load_started)
        page.on("requestfinished", self._frame_load_done)
        page.on("requestfailed", self._frame_load_done)

    # -- the session ----------------------------------------------------------------------------

    def is_logged_in(self) -> bool:
        try:
            self.steps.goto(self.url("/main"), target="/main")
        except SessionExpired:
            return False
        self.steps.expect(self.log_out.or_(self.log_in).first, target="logged-in check")
        return self.steps.read_optional(self.log_out) is not None

    def login(self, secrets: LoginSecrets) -> None:
        self.steps.goto(self.url("/login"), target="/login")
        self.steps.fill(self.user_id, secrets.username)
        self.steps.fill(self.password, secrets.password.get_secret_value())
        self.steps.click(self.log_in, navigates=True)  # the one login POST; never repeated
        self._land(self.security_code.or_(self.log_out).or_(self.alert), "log-in outcome")
        refusal = self.steps.read_optional(self.alert)
        if refusal is not None:
            raise LoginRejected(f"{self.display_name} refused the log-in: {refusal}")
        if self.steps.read_optional(self.log_out) is not None:
            return  # a remembered device: no code asked
        if secrets.one_time_code is None:
            raise UnknownSecondFactorPrompt(
                f"{self.display_name} asks for the security code it e-mailed and no inbox is configured"
            )
        self.steps.fill(self.security_code, secrets.one_time_code())
        if self.remember_device:
            self.steps.check(self.remember)
        self.steps.click(self.verify, navigates=True)
        self._land(self.log_out.or_(self.alert), "security code outcome")
        refusal = self.steps.read_optional(self.alert)
        if refusal is not None:
            raise SecondFactorRejected(f"{self.display_name} refused the security code: {refusal}")

    # -- the work area --------------------------------------------------------------------------

    def _open(self, menu_item: str, expected: Locator) -> None:
        """Load the menu page and open one item of the menu in the work area."""
        self.steps.goto(self.url("/main"), target="/main")
        self.steps.click(self.menu.get_by_role("link", name=menu_item, exact=True))
        self._land_work(expected, menu_item)

    def _search(self, menu_item: str, fields: list[Field], result: Locator, what: str) -> None:
        """Search from a menu page; raise NotFoundOnPortal when the portal finds nothing."""
        self._open(menu_item, self.search_form)
        for label, value, safe in fields:
            self.steps.fill(self.search_form.get_by_label(label, exact=True), value, safe=safe)
        self.steps.click(self.search)
        nothing = self.work_status.filter(has_text=f"No {what} found")
        self._land_work(result.or_(nothing).or_(self.work_alert), f"{what} search result")
        self._raise_messages(what)
        if self.steps.read_optional(nothing) is not None:
            # named by its labels: an Rx number and a fill date are the patient's, and errors reach logs
            given = " and ".join(label for label, _, _ in fields)
            raise NotFoundOnPortal(f"{self.display_name} has no {what} for the {given} given")

    def _raise_messages(self, what: str) -> None:
        if self.steps.read_optional(self.work_alert) is None:
            return
        messages = self.steps.read_all(self.work_alert)
        if any(m.startswith(NO_CLAIM) for m in messages):
            raise NotFoundOnPortal(f"{self.display_name}: {' '.join(messages)}")
        raise PortalValidationError(f"{self.display_name} refused the {what}: {' '.join(messages)}")

    def _fill_date(self, request: ClaimStatusRequest | AppealRequest) -> date:
        if request.fill_date is None:
            raise IntakeError(
                f"payload.fill_date: {self.display_name} looks claims up by Rx number and fill date",
                field="payload.fill_date",
            )
        return request.fill_date

    def _details(self, table: Locator, needed: tuple[str, ...]) -> dict[str, str]:
        """A detail table (a row header and its value on each row), read in one step."""
        rows = self.steps.table(table.get_by_role("row"))
        details = {row[0]: row[1] for row in rows if len(row) == 2}
        for label in needed:
            if not details.get(label):
                cell = describe_locator(table.get_by_label(label, exact=True))
                raise PortalChanged(f"the {self.display_name} page shows no '{label}'", locator=cell)
        return details

    def _date(self, shown: dict[str, str], label: str) -> date | None:
        try:
            return parse_us_date(shown.get(label, ""))
        except ValueError:
            raise PortalChanged(
                f"the {self.display_name} page shows '{label}' in another date format"
            ) from None

    def check_claim_status(self, request: ClaimStatusRequest) -> ClaimReading:
        fill = self._fill_date(request)
        number = request.claim_number
        # the Rx number and fill date identify a patient's prescription: never written into the steps
        fields = [("Rx number", number, False), ("Fill date", format_us_date(fill), False)]
        self._search("Claim Inquiry", fields, self.claim_detail, "claim")
        shown = self._details(self.claim_detail, ("Claim status", *PATIENT_LABELS, *PRESCRIPTION_LABELS))
        if (shown["Rx number"], self._date(shown, "Fill date")) != (number, fill):
            raise PortalChanged("the claim page shows another claim than the one searched for")
        return ClaimReading(
            claim_number=number,
            status_text=shown["Claim status"],
            codes=self._reject_codes(),
            paid_amount=parse_money(shown.get("Plan paid", "")),
            sensitive=tuple(shown[label] for label in (*PATIENT_LABELS, *PRESCRIPTION_LABELS)),
        )

    def _reject_codes(self) -> tuple[PayerCode, ...]:
        if self.steps.read_optional(self.rejects.get_by_role("row").first) is None:
            return ()
        header, *rows = self.steps.table(self.rejects.get_by_role("row"))
        column = {name: i for i, name in enumerate(header)}
        if not {"Code", "Description"} <= set(column):
            raise PortalChanged(
                f"the reject codes table has columns {header}", locator=describe_locator(self.rejects)
            )
        return tuple(
            PayerCode(
                system=CodeSystem.NCPDP_REJECT,
                code=row[column["Code"]],
                description=row[column["Description"]] or None,
            )
            for row in rows
        )

    def check_pa_status(self, request: PaStatusRequest) -> PaReading:
        number = request.pa_number
        fields = [("PA number", number, True)]
        self._search("Prior Authorization Status", fields, self.pa_detail, "prior authorization")
        shown = self._details(self.pa_detail, ("PA number", "PA status", *PATIENT_LABELS, "Drug"))
        if shown["PA number"] != number:
            raise PortalChanged("the PA page shows another authorization than the one searched for")
        return PaReading(
            pa_number=number,
            status_text=shown["PA status"],
            valid_from=self._date(shown, "Effective date"),
            valid_to=self._date(shown, "Expiration date"),
            detail=shown.get("Reason") or None,
            sensitive=tuple(shown[label] for label in (*PATIENT_LABELS, "Drug")),
        )

    # -- redeterminations -----------------------------------------------------------------------

    def submit_appeal(
        self, request: AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> SubmissionResult:
        fill = self._fill_date(request)
        number = request.claim_number
        form = self.request_form
        self._open("Request a Redetermination", form)
        self.steps.fill(form.get_by_label("Rx number", exact=True), number)
        self.steps.fill(form.get_by_label("Fill date", exact=True), format_us_date(fill))
        self.steps.select(
            form.get_by_label("Reason for redetermination", exact=True), REASON_LABELS[request.reason]
        )
        self.steps.fill(form.get_by_label("Explanation", exact=True), request.explanation)
        self.steps.fill(form.get_by_label("Your reference", exact=True), reference, safe=True)
        self.steps.upload(form.get_by_label("Redetermination letter (PDF)", exact=True), [files.letter])
        if files.attachments:
            attachments = form.get_by_label("Supporting documents (optional)", exact=True)
            self.steps.upload(attachments, list(files.attachments))
        self.steps.click(form.get_by_role("button", name="Review request", exact=True))
        self._land_work(self.summary.or_(self.work_alert), "redetermination review")
        self._raise_messages("redetermination request")
        summary = self._details(self.summary, ("Rx number", "Your reference"))
        for label, expected in (("Rx number", number), ("Your reference", reference)):
            if summary[label] != expected:
                raise PortalChanged(f"the review page shows another {label.lower()} than was entered")
        self.steps.expect(self.submit, target="submit")
        gate()  # commits "submitting" and refuses a stale lease; only then the click
        try:
            self.steps.click(self.submit)
            self._land_work(self.received.or_(self.work_alert), "redetermination confirmation")
            if self.steps.read_optional(self.work_alert) is not None:
                raise PortalChanged("the portal answered the submit with a message instead of a confirmation")
            confirmation = self.steps.read(self.rd_number)
        except Transient:
            raise
        except PortalError as exc:
            # the click happened: whatever the page says now, the request may be recorded
            raise PortalTimeout(
                f"no confirmation after the submit click ({type(exc).__name__}); "
                "the redetermination history lags, so a person must check before any new submit"
            ) from None
        return SubmissionResult(confirmation_id=confirmation, reference=reference)

    def find_submission(self, reference: str) -> SubmissionLookup:
        self._open("Redetermination History", self.search_form)
        self.steps.fill(self.search_form.get_by_label("Reference", exact=True), reference, safe=True)
        self.steps.click(self.search)
        none_found = self.work_status.filter(has_text="No redetermination requests found")
        self._land_work(self.history.or_(none_found), "redetermination history")
        if self.steps.read_optional(none_found) is not None:
            return SubmissionLookup(reference=reference, found=False)
        header, *rows = self.steps.table(self.history.get_by_role("row"))
        column = {name: i for i, name in enumerate(header)}
        if not {"Your reference", "Redetermination number"} <= set(column):
            raise PortalChanged(
                f"the redetermination history has columns {header}", locator=describe_locator(self.history)
            )
        numbers = [
            row[column["Redetermination number"]]
            for row in rows
            if row[column["Your reference"]] == reference
        ]
        # newest first: the last match is the first submission
        return SubmissionLookup(
            reference=reference, found=bool(numbers), confirmation_id=numbers[-1] if numbers else None
        )

    # -- what the engine needs ------------------------------------------------------------------

    def _land(self, expected: Locator, target: str) -> None:
        """Wait for the expected window page, or one the portal shows instead, and classify it."""
        self.steps.expect(expected.or_(self.top.any()).first, target=target)
        self.steps.after_navigation()  # check_page, then any 5xx the page answered

    def _land_work(self, expected: Locator, target: str) -> None:
        """The same inside the work area (a locator cannot span the window and a frame)."""
        self.steps.expect(expected.or_(self.in_work.any()).first, target=target)
        self.steps.after_navigation()

    @staticmethod
    def _shows(locator: Locator) -> bool:
        return locator.count() > 0 and locator.first.is_visible()

    def check_page(self) -> None:
        for seen, where in ((self.top, ""), (self.in_work, " in its work area")):
            try:
                if self._shows(seen.maintenance):
                    raise PortalMaintenance(f"{self.display_name} shows its maintenance page{where}")
                if self._shows(seen.captcha):
                    raise CaptchaShown(f"{self.display_name} shows a CAPTCHA{where}")
                if self._shows(seen.password_expired):
                    raise PasswordExpired(f"{self.display_name} demands a password change{where}")
                if self._shows(seen.timed_out):
                    raise SessionExpired(f"{self.display_name} timed the session out{where}")
                if self._shows(seen.gateway_error):
                    heading = seen.gateway_error.first.inner_text().strip()
                    raise PortalServerError(
                        f"{self.display_name} answered with a gateway error page{where} ({heading})"
                    )
            except PlaywrightError:
                continue  # mid-navigation; the next step will look again

    def _frame_load_started(self, request: Request) -> None:
        try:
            if request.is_navigation_request() and request.frame.parent_frame is not None:
                self._frame_loads.add(request)
        except PlaywrightError:  # a service worker's request has no frame
            pass

    def _frame_load_done(self, request: Request) -> None:
        self._frame_loads.discard(request)

    def is_busy(self, page: Page) -> bool:
        """A work-area page still on its way is slowness, not a changed portal."""
        if self._frame_loads:
            return True
        frame = page.frame(name="workarea")
        try:
            return frame is not None and frame.evaluate("document.readyState") != "complete"
        except PlaywrightError:
            return True

    def sensitive_locators(self) -> list[Locator]:
        return [self.work.get_by_label(label, exact=True) for label in SENSITIVE_LABELS]

    def content_area(self) -> Locator:
        """The work area: every lookup and request shows in it (the menu beside it stays readable)."""
        return self.page.get_by_title("Work area", exact=True)

    def field_labels(self) -> Locator:
        return self.work.get_by_role("rowheader")
