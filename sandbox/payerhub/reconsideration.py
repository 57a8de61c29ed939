"""PayerHub's reconsideration request (its word for an appeal) and the history of requests.

One page, posting back to itself: choose the plan, find the claim by its number in that plan (only
a finalized claim can be reconsidered) with what the plans ask of every request (the appeal level,
the denial date, the member ID and billing provider NPI, optionally the dates of service and the
amount in dispute; a request past the level's filing limit, ``APPEAL_LEVELS``, is refused here and
again at the submit), then the request itself: reason, explanation, the submitter's own reference,
the PDF letter and optional attachments, and a certification. The submit records the request in the
ledger first (the claim step's fields in its ``form``, under the names ``AppealRequest.form_fields``
gives them: ISO dates, amounts as "125.50") and only then answers, through
``respond_after_recording``. Its token is used up by that postback, so the same form posted again is
refused, never recorded twice. The history is searched by the submitter's reference and shows every
request at once.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.faults import respond_after_recording
from sandbox.payerhub.forms import control, controls, parse_date, pressed, text
from sandbox.payerhub.viewstate import PageState
from sandbox.payerhub.wording import APPEAL_LEVELS, RECONSIDERATION_REASONS, Plan
from sandbox.sessions import Session

if TYPE_CHECKING:
    from sandbox.payerhub.app import PayerHub

REQUEST = "/Reconsideration/Request.aspx"
HISTORY = "/Reconsideration/History.aspx"
MAX_REFERENCE = 40
PAGE_SIZE = 10
REASON_BY_VALUE = {value: (label, canonical) for value, label, canonical in RECONSIDERATION_REASONS}
LEVEL_BY_VALUE = {value: (label, canonical, days) for value, label, canonical, days in APPEAL_LEVELS}
# the claim step's fields: their shared names (AppealRequest.form_fields) and control ids
CLAIM_STEP = {
    "level": "ddlLevel",
    "denial_date": "txtDenialDate",
    "member_id": "txtMemberId",
    "billing_npi": "txtBillingNpi",
    "service_from": "txtServiceFrom",
    "service_to": "txtServiceTo",
    "disputed_amount": "txtDisputedAmount",
}
LATE = "The filing limit for this request has passed ({days} days from the denial)."


def amount(value: str) -> Decimal | None:
    """An amount as PayerHub takes it: 125.50, $1,125.50; None when it is no amount."""
    try:
        parsed = Decimal(value.replace("$", "").replace(",", ""))
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() and parsed >= 0 and parsed == round(parsed, 2) else None


def claim_step_errors(values: dict[str, str]) -> list[str]:
    """What the plans ask of every request, checked as PayerHub checks it (the level's filing limit
    counted from the denial date to today)."""
    errors = []
    level, denied = LEVEL_BY_VALUE.get(values["level"]), parse_date(values["denial_date"])
    today = datetime.now(UTC).date()
    if level is None:
        errors.append("Select an appeal level.")
    if denied is None:
        errors.append("Enter the denial date as MM/DD/YYYY.")
    elif denied > today:
        errors.append("The denial date cannot be in the future.")
    elif level is not None and today > denied + timedelta(days=level[2]):
        errors.append(LATE.format(days=level[2]))
    if not re.fullmatch(r"[A-Za-z0-9-]{3,40}", values["member_id"]):
        errors.append("Enter the member ID.")
    if not re.fullmatch(r"\d{10}", values["billing_npi"]):
        errors.append("The billing provider NPI must be 10 digits.")
    first, last = (parse_date(values[name]) for name in ("service_from", "service_to"))
    if (values["service_from"] and first is None) or (values["service_to"] and last is None):
        errors.append("Enter the dates of service as MM/DD/YYYY.")
    elif last is not None and first is None:
        errors.append("Enter the first date of service.")
    elif first is not None and last is not None and last < first:
        errors.append("The last date of service cannot be before the first.")
    if values["disputed_amount"] and amount(values["disputed_amount"]) is None:
        errors.append("Enter the amount in dispute in dollars and cents.")
    return errors


def received_form(values: dict[str, str]) -> dict[str, str]:
    """The claim step's fields as the ledger keeps them: shared names, the level's canonical value,
    ISO dates, the amount as "125.50", and only the optional ones given."""
    received = {name: value for name, value in values.items() if value}
    received["level"] = LEVEL_BY_VALUE[values["level"]][1]
    for name in ("denial_date", "service_from", "service_to"):
        if name in received:
            received[name] = str(parse_date(received[name]))
    if "disputed_amount" in received:
        received["disputed_amount"] = f"{amount(received['disputed_amount']):.2f}"
    return received


async def read_letter(form: FormData) -> tuple[dict[str, Any], str | None]:
    """The letter and attachments of a form as ledger fields, or the error to show."""
    letter = control(form, "fuLetter")
    if not isinstance(letter, UploadFile) or not letter.filename:
        return {}, "Attach the reconsideration letter."
    content = await letter.read()
    if not content.startswith(b"%PDF-"):
        return {}, "The reconsideration letter must be a PDF file."
    attachments = tuple(
        f.filename for f in controls(form, "fuAttachments") if isinstance(f, UploadFile) and f.filename
    )
    return {
        "letter_filename": letter.filename,
        "letter_sha256": hashlib.sha256(content).hexdigest(),
        "attachments": attachments,
    }, None


def request_errors(values: dict[str, str], certified: bool) -> list[str]:
    errors = []
    if values["reason"] not in REASON_BY_VALUE:
        errors.append("Choose a reason for reconsideration.")
    if not values["explanation"]:
        errors.append("Enter an explanation.")
    if not values["reference"]:
        errors.append("Enter your reference.")
    elif len(values["reference"]) > MAX_REFERENCE:
        errors.append(f"Your reference can be at most {MAX_REFERENCE} characters.")
    if not certified:
        errors.append("Certify that this request is accurate and authorized.")
    return errors


class Reconsiderations:
    def __init__(self, portal: PayerHub) -> None:
        self.portal = portal
        self.state = portal.state

    # -- the request -----------------------------------------------------------------------------

    def request_page(self, request: Request, session: Session, page: PageState, **context: Any) -> Response:
        self.portal.offer_plans(page)
        page.allowed["ddlReason"] = ("", *REASON_BY_VALUE)
        page.allowed["ddlLevel"] = ("", *LEVEL_BY_VALUE)
        values = {"claim_number": "", "reason": "", "explanation": "", "reference": ""}
        values |= dict.fromkeys(CLAIM_STEP, "")
        return self.portal.render(
            request,
            "reconsideration.html",
            session=session,
            page=page,
            plan=self.portal.plan_of(page),
            claim=self.state.claims.get(page.record) if page.record else None,
            reasons=[(value, label) for value, label, _ in RECONSIDERATION_REASONS],
            levels=[(value, label) for value, label, _, _ in APPEAL_LEVELS],
            level_label=LEVEL_BY_VALUE[page.criteria["level"]][0] if page.record else "",
            denial_shown=page.criteria.get("denial_date", "") if page.record else "",
            values={**values, **context.pop("values", {})},
            multipart=True,
            **context,
        )

    async def request_form(self, request: Request, session: Session) -> Response:
        return self.request_page(request, session, PageState("reconsideration"))

    def find_claim(
        self, page: PageState, plan: Plan | None, number: str, fields: dict[str, str]
    ) -> list[str]:
        if plan is None:
            return ["Select a health plan."]
        if not number:
            return ["Enter the claim number."]
        claim = self.state.claim(number, plan.name)
        if claim is None:
            return [f"No claim with this number was found for {plan.name}."]
        if not claim.appealable:
            return ["Only finalized claims can be reconsidered. This claim is not finalized yet."]
        errors = claim_step_errors(fields)
        if not errors:
            page.record, page.criteria = claim.key, fields
        return errors

    async def request_post(self, request: Request, session: Session) -> Response:
        got = await self.portal.postback(request, session, "reconsideration")
        if isinstance(got, Response):
            return got
        form, page = got
        errors: list[str] = []
        number = text(form, "txtClaimNumber").upper()
        fields = {name: text(form, control_id) for name, control_id in CLAIM_STEP.items()}
        if pressed(form, "btnSelectPlan"):
            errors = self.portal.choose_plan(form, page)
        elif pressed(form, "btnChangePlan"):
            page = PageState("reconsideration")
        elif pressed(form, "btnFindClaim"):
            if self.portal.merged_plan:
                errors = self.portal.choose_plan(form, page)
            errors = errors or self.find_claim(page, self.portal.plan_of(page), number, fields)
        elif pressed(form, "btnSubmit"):
            return await self.submit(request, session, form, page)
        values = {"claim_number": number, **fields}
        return self.request_page(request, session, page, errors=errors, values=values)

    async def submit(self, request: Request, session: Session, form: FormData, page: PageState) -> Response:
        claim = self.state.claims.get(page.record) if page.record else None
        plan = self.portal.plan_of(page)
        if claim is None or plan is None:
            return self.request_page(request, session, page, errors=["Find the claim first."])
        values = {
            "reason": text(form, "ddlReason"),
            "explanation": text(form, "txtExplanation"),
            "reference": text(form, "txtReference"),
        }
        errors = request_errors(values, control(form, "chkCertify") is not None)
        errors += claim_step_errors(page.criteria)  # the filing limit, on the day of the submit
        files, letter_error = await read_letter(form)
        if letter_error:
            errors.append(letter_error)
        if errors:
            return self.request_page(request, session, page, errors=errors, values=values)
        entry = self.state.record_appeal(
            reference=values["reference"],
            claim_number=claim.claim_number,
            plan=plan.name,
            reason=REASON_BY_VALUE[values["reason"]][1],
            explanation=values["explanation"],
            form=received_form(page.criteria),
            username=session.username or "",
            **files,
        )
        done = self.portal.render(
            request,
            "reconsideration_done.html",
            session=session,
            page=PageState("reconsideration"),
            entry=entry,
        )
        return await respond_after_recording(self.state, done)

    # -- the history -----------------------------------------------------------------------------

    def history_page(self, request: Request, session: Session, page: PageState) -> Response:
        shown: dict[str, Any] = {"entries": None}
        if "reference" in page.criteria:
            wanted = page.criteria["reference"].casefold()
            found = [e for e in reversed(self.state.ledger_entries()) if wanted in e.reference.casefold()]
            pages = max(1, -(-len(found) // PAGE_SIZE))
            page.index = min(max(page.index, 0), pages - 1)
            entries = found[page.index * PAGE_SIZE : (page.index + 1) * PAGE_SIZE]
            shown.update(entries=entries, total=len(found), pages=pages)
        return self.portal.render(
            request,
            "history.html",
            session=session,
            page=page,
            values={"reference": page.criteria.get("reference", "")},
            index=page.index,
            **shown,
        )

    async def history_form(self, request: Request, session: Session) -> Response:
        return self.history_page(request, session, PageState("history"))

    async def history_post(self, request: Request, session: Session) -> Response:
        got = await self.portal.postback(request, session, "history")
        if isinstance(got, Response):
            return got
        form, page = got
        if pressed(form, "btnSearch"):
            page.criteria, page.index = {"reference": text(form, "txtReference")}, 0
        elif pressed(form, "btnNext"):
            page.index += 1
        elif pressed(form, "btnPrev"):
            page.index -= 1
        return self.history_page(request, session, page)


def routes(portal: PayerHub) -> list[Route]:
    pages = Reconsiderations(portal)
    auth = portal.authenticated
    return [
        Route(REQUEST, auth(pages.request_form), methods=["GET"]),
        Route(REQUEST, auth(pages.request_post), methods=["POST"]),
        Route(HISTORY, auth(pages.history_form), methods=["GET"]),
        Route(HISTORY, auth(pages.history_post), methods=["POST"]),
    ]
