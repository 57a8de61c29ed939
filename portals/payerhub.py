"""PayerHub: a clearinghouse portal serving several health plans (password, then a TOTP code).

Each page is one form posting back to itself with a view state only its newest copy holds: every
action opens its page afresh, picks the request's plan and goes on by clicks, never Back. A claim is
searched by its number over 24 months of service dates, the widest range the portal takes (requests
carry no date of service; the number finds the plan's claim), stepping back from today.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from playwright.sync_api import Locator, Page

from bot import models, readers
from bot.documents import AppealFiles
from bot.errors import NotFoundOnPortal
from bot.interruptions import Interruption as Shows
from bot.interruptions import heading, shown_text
from bot.login import SecondFactorKind
from bot.page_steps import personal_labels
from bot.parsing import format_us_date, parse_us_date
from bot.portal import MEDICAL_APPEAL_FIELDS, Action, Portal, SubmitGate, filing_deadlines
from bot.readers import ClaimAmounts, HistoryTable, Pager, read_codes, read_field
from bot.sign_in import Control, SignInForm
from bot.status import claim_rules, pa_rules
from bot.steps import StepRecorder

REASON_LABELS: dict[models.AppealReason, str] = {  # the options of "Reason for reconsideration"
    models.AppealReason.MEDICAL_NECESSITY: "Medical necessity review",
    models.AppealReason.CODING_ERROR: "Coding or billing correction",
    models.AppealReason.TIMELY_FILING: "Proof of timely filing",
    models.AppealReason.COORDINATION_OF_BENEFITS: "Other insurance / coordination of benefits",
    models.AppealReason.DUPLICATE_DENIAL: "Incorrect duplicate denial",
    models.AppealReason.OTHER: "Other (explain below)",
}
LEVEL_LABELS: dict[models.AppealLevel, str] = {  # the options of "Appeal level"
    models.AppealLevel.RECONSIDERATION: "Reconsideration",
    models.AppealLevel.FIRST_LEVEL: "First-level appeal",
    models.AppealLevel.SECOND_LEVEL: "Second-level appeal",
    models.AppealLevel.EXTERNAL_REVIEW: "External review (IRO)",
}
FORM_LABELS = {  # what a reconsideration's claim step asks, by AppealRequest.form_fields names
    "level": "Appeal level",
    "denial_date": "Denial date",
    "member_id": "Member ID",
    "billing_npi": "Billing provider NPI",
    "service_from": "First date of service",
    "service_to": "Last date of service",
    "disputed_amount": "Amount in dispute",
}
PATIENT_LABELS = ("Patient name", "Member ID", "Date of birth")
SENSITIVE_LABELS: tuple[str, ...] = (*PATIENT_LABELS, "Date of service", "Service", "Explanation")
SENSITIVE_LABELS += personal_labels(FORM_LABELS)  # the member and dates of service a request types
CODES = readers.CARC_RARC_TABLE
HISTORY = HistoryTable("reconsideration history", "Your reference", "Request number", "No reconsideration")
PAGER = Pager(navigation="Result pages", position=r"^Page {page} of (\d+) \(\d+ \w+\)$", max_pages=40)
SPAN, RANGES = timedelta(days=730), 3  # 24 months a search, six years back in all


class PayerHubPortal(Portal):
    payer_id = "payerhub"
    display_name = "PayerHub"
    default_url = "https://providers.payerhub.example"
    actions = frozenset(Action)
    second_factor = SecondFactorKind.TOTP
    sign_in_form = SignInForm(
        "/Account/Login.aspx",
        home="/Default.aspx",
        signed_out=Control("button", "Sign in"),
        signed_in=Control("link", "Sign out", inside=("navigation", "Main menu")),
        username="User name",
        code="Verification code",
        steps=("sign-in", "verification code"),
    )
    history_lag = timedelta(0)  # a request is in the history as soon as it is submitted
    claim_number_pattern = r"^\d{13}$"
    plans_required = True
    plans = frozenset({"Blue Lakes Health", "Cardinal Care", "Summit Medicare Advantage"})
    appeal_requires = MEDICAL_APPEAL_FIELDS
    filing_deadline_days = filing_deadlines(
        reconsideration=65, first_level=120, second_level=60, external_review=120
    )
    known_fields = frozenset((*SENSITIVE_LABELS, *FORM_LABELS.values(), *readers.PaDetails().labels)).union(
        ("Selected plan", "Health plan", "Claim number", "Billed amount", "Paid amount", "Claim status"),
        ("Patient responsibility",),
        ("Authorization number", "Certification status", "Effective from", "Effective through"),
        ("Decision reason", "Request number", "Your reference", "Received", "Details", "Submitted"),
        ("Request status", "Code type", "Code", "Description", "Payer ID", "Authorization inquiry"),
    )
    sensitive_labels = SENSITIVE_LABELS
    not_found_words = "No claim with this number was found"  # the reconsideration's claim step
    interruptions = (
        heading("PayerHub is unavailable", Shows.MAINTENANCE),
        heading("Security check", Shows.CAPTCHA),
        shown_text("Your password has expired", Shows.PASSWORD_EXPIRED),
        shown_text("Your session has timed out", Shows.SESSION_EXPIRED),
        heading("Server Error in '/' Application.", Shows.APP_ERROR),  # an invalid postback, say
    )

    # What the plans answered, as PayerHub relays it, in X12 277 terms (the sandbox says why each)
    claim_statuses = claim_rules("""
        wording                                           | category | status code | entity | detail code
        Forwarded to payer                                | A0       | 16          | PR     |
        Acknowledged - received by payer                  | A1       | 19          | PR     |
        Acknowledged - accepted for adjudication          | A2       | 20          |        |
        Rejected - missing or invalid diagnosis code      | A3       | 21          |        | 255
        Rejected - missing or invalid date of service     | A3       | 21          |        | 187
        Pended - in adjudication                          | P1       | 20          |        |
        Pended - payer review                             | P2       | 46          |        |
        Pended - administrative hold                      | P5       | 38          |        |
        Pended - medical records requested                | P3       | 294         |        | 297
        Finalized - paid                                  | F1       | 65          |        |
        Finalized - paid, see remittance                  | F1       | 1           |        |
        Finalized - denied                                | F2       | 1           |        |
        Finalized - denied as duplicate                   | F2       | 54          |        |
        Finalized - adjusted                              | F3       | 101         |        |
        Finalized - no payment forthcoming                | F4       | 107         |        |
    """)
    pa_statuses = pa_rules("""
        wording                                       | hcr01
        Certified                                     | A1
        Certified - modified                          | A6
        Not certified                                 | A3
        Pended - in clinical review                   | A4
        Pended - information requested                | A4
        Request canceled                              | C
        Contact the plan's utilization management     | CT
        Certification not required                    | NR
    """)

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        super().__init__(page, base_url, steps)
        self.label, self.named = partial(page.get_by_label, exact=True), partial(page.get_by_role, exact=True)
        self.alert, self.status = page.get_by_role("alert"), page.get_by_role("status")
        self.plan_list = self.label("Health plan")  # the plan step that starts each page but the history
        self.results = self.named("table", name="Claim search results")
        self.claim = self.named("region", name="Claim detail")
        self.codes = self.named("table", name="Reason and remark codes")
        self.no_claims = self.status.filter(has_text="No claims match your search.")
        self.request_form = self.named("group", name="Request")  # of a reconsideration
        self.history = self.named("table", name="Reconsideration requests")

    def _open_for_plan(self, path: str, plan: str | None, then: Locator) -> str:
        """Open ``path``, choose ``plan``, land on ``then``: clicks that only show something, safe to redo."""
        assert plan is not None  # check_request refused a request without one (intake, lease)
        self.open(path, self.plan_list, "plan step")
        self.steps.select(self.plan_list, plan)
        self.steps.click(self.named("button", name="Select plan"), navigates=True, repeatable=True)
        self.proceed(then, self.alert, "plan step", refused="the plan")
        read_field(self.steps, self.page.get_by_role("main"), "Selected plan", page="plan step", equals=plan)
        return plan

    def _search(self, box: Locator, result: Locator, what: str, button: str = "Search") -> None:
        """Click the search (or look-up) ``button`` in ``box``; land on ``result`` or a refusal."""
        self.steps.click(box.get_by_role("button", name=button, exact=True), navigates=True, repeatable=True)
        self.proceed(result, self.alert, f"{what} result", refused=f"the {what}")

    def _patient(self, region: Locator, care: str) -> tuple[str, ...]:
        """The patient fields of a claim or authorization, and its date or kind of care."""
        return tuple(self.steps.read(region.get_by_label(f, exact=True)) for f in (*PATIENT_LABELS, care))

    def _open_claim(self, box: Locator, number: str, plan: str) -> None:
        """Search the number over 24 months of service dates up to today, then before; open the claim."""
        end, listed, empty = datetime.now(UTC).date(), self.results, self.no_claims
        dates = box.get_by_role("group", name="Dates of service", exact=True)
        row = listed.get_by_role("button", name=f"View claim {number}", exact=True)
        for _ in range(RANGES):
            self.steps.fill(dates.get_by_label("From", exact=True), format_us_date(end - SPAN), safe=True)
            self.steps.fill(dates.get_by_label("To", exact=True), format_us_date(end), safe=True)
            self.steps.fill(box.get_by_label("Claim number", exact=True), number, safe=True)
            self._search(box, listed.or_(empty), "claim search")
            if self.steps.read_optional(empty) is None:
                self.open_from_pages(listed, row, what="claim", number=number, pager=PAGER, none_found=empty)
                self.land(self.claim, "claim detail")
                return
            end -= SPAN + timedelta(days=1)
        raise NotFoundOnPortal(f"{self.display_name} has no claim {number} for {plan} in {2 * RANGES} years")

    def check_claim_status(self, request: models.ClaimStatusRequest) -> models.ClaimReading:
        number, claim, box = request.claim_number, self.claim, self.named("search", name="Claim search")
        plan = self._open_for_plan("/Claims/ClaimStatus.aspx", request.plan, box)
        self._open_claim(box, number, plan)
        read_field(self.steps, claim, "Health plan", page="claim page", equals=plan)
        read_field(self.steps, claim, "Claim number", page="claim page", equals=number)
        return models.ClaimReading(
            claim_number=number,
            status_text=read_field(self.steps, claim, "Claim status", page="claim page"),
            codes=read_codes(self.steps, self.codes, CODES, what="reason and remark codes table"),
            **ClaimAmounts().read(self.steps, claim),
            sensitive=self._patient(claim, "Date of service"),
        )

    def check_pa_status(self, request: models.PaStatusRequest) -> models.PaReading:
        number, box = request.pa_number, self.named("search", name="Authorization search")
        plan = self._open_for_plan("/Authorizations/Inquiry.aspx", request.plan, box)
        self.steps.fill(box.get_by_label("Authorization number", exact=True), number, safe=True)
        region = self.named("region", name="Authorization detail")
        none_found = self.status.filter(has_text="No authorization with this number was found")
        self._search(box, region.or_(none_found), "authorization search")
        self.found_nothing(none_found, f"authorization {number} for {plan}")
        page, field = "authorization page", partial(region.get_by_label, exact=True)
        read_field(self.steps, region, "Authorization number", page=page, equals=number)
        return models.PaReading(
            pa_number=number,
            status_text=read_field(self.steps, region, "Certification status", page=page),
            valid_from=parse_us_date(self.steps.read(field("Effective from"))),
            valid_to=parse_us_date(self.steps.read(field("Effective through"))),
            **readers.PaDetails().read(self.steps, region),  # reason and its code, certification, units
            sensitive=self._patient(region, "Service"),
        )

    def submit_appeal(
        self, request: models.AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> models.SubmissionResult:
        number, box = request.claim_number, self.named("group", name="Claim to reconsider")
        self._open_for_plan("/Reconsideration/Request.aspx", request.plan, box)
        self.steps.fill(box.get_by_label("Claim number", exact=True), number, safe=True)
        self.fill_appeal_form(box, request, FORM_LABELS, LEVEL_LABELS)  # checked, with the deadline, here
        self._search(box, self.request_form, "reconsideration", button="Find claim")  # nothing sent yet
        read_field(self.steps, self.named("region", name="Claim"), "Claim number", page="form", equals=number)
        field = partial(self.request_form.get_by_label, exact=True)
        self.steps.select(field("Reason for reconsideration"), REASON_LABELS[request.reason])
        self.steps.fill(field("Explanation"), request.explanation)
        self.steps.fill(field("Your reference"), reference, safe=True)
        self.steps.upload(field("Reconsideration letter (PDF)"), [files.letter])
        if files.attachments:
            self.steps.upload(field("Supporting documents (optional)"), list(files.attachments))
        self.steps.check(self.label("I certify that this request is accurate and authorized"))
        self.click_submit(self.named("button", name="Submit request"), gate)
        done = self.named("heading", name="Reconsideration request submitted")
        number = self.confirmation(done, self.alert, "confirmation", number=self.label("Request number"))
        return models.SubmissionResult(confirmation_id=number, reference=reference)

    def find_submission(self, reference: str) -> models.SubmissionLookup:
        """Search by our reference (any containing it matches); read pages until one lists it or ends."""
        box = self.named("search", name="Reconsideration search")
        self.open("/Reconsideration/History.aspx", box, "reconsideration history search")
        field, go = box.get_by_label("Your reference", exact=True), self.named("button", name="Search")
        return self.search_history(field, go, self.history, HISTORY, reference, navigates=True, pager=PAGER)

    def sensitive_locators(self) -> list[Locator]:
        """The labelled patient fields, and the cells under the claim results' patient columns."""
        listed = readers.column_cells(self.content_area(), ("Patient name", "Member ID", "Date of service"))
        return [*super().sensitive_locators(), *listed]

    def field_labels(self) -> Locator:
        """Terms and column headers: a renamed column, which sensitive_locators misses, masks the page."""
        return self.content_area().get_by_role("term").or_(self.content_area().get_by_role("columnheader"))
