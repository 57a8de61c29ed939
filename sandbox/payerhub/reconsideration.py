"""PayerHub's reconsideration request (its word for an appeal) and the history of requests.

One page, posting back to itself: choose the plan, find the claim by its number in that plan (only
a finalized claim can be reconsidered), then the request itself: reason, explanation, the
submitter's own reference, the PDF letter and optional attachments, and a certification. The submit
records the request in the ledger first and only then answers, through ``respond_after_recording``.
Its token is used up by that postback, so the same form posted again is refused, never recorded
twice. The history is searched by the submitter's reference and shows every request at once.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.faults import respond_after_recording
from sandbox.payerhub.forms import control, controls, pressed, text
from sandbox.payerhub.viewstate import PageState
from sandbox.payerhub.wording import RECONSIDERATION_REASONS, Plan
from sandbox.sessions import Session

if TYPE_CHECKING:
    from sandbox.payerhub.app import PayerHub

REQUEST = "/Reconsideration/Request.aspx"
HISTORY = "/Reconsideration/History.aspx"
MAX_REFERENCE = 40
PAGE_SIZE = 10
REASON_BY_VALUE = {value: (label, canonical) for value, label, canonical in RECONSIDERATION_REASONS}


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
        values = {"claim_number": "", "reason": "", "explanation": "", "reference": ""}
        return self.portal.render(
            request,
            "reconsideration.html",
            session=session,
            page=page,
            plan=self.portal.plan_of(page),
            claim=self.state.claims.get(page.record) if page.record else None,
            reasons=[(value, label) for value, label, _ in RECONSIDERATION_REASONS],
            values={**values, **context.pop("values", {})},
            multipart=True,
            **context,
        )

    async def request_form(self, request: Request, session: Session) -> Response:
        return self.request_page(request, session, PageState("reconsideration"))

    def find_claim(self, page: PageState, plan: Plan | None, number: str) -> list[str]:
        if plan is None:
            return ["Select a health plan."]
        if not number:
            return ["Enter the claim number."]
        claim = self.state.claim(number, plan.name)
        if claim is None:
            return [f"No claim with this number was found for {plan.name}."]
        if not claim.appealable:
            return ["Only finalized claims can be reconsidered. This claim is not finalized yet."]
        page.record = claim.key
        return []

    async def request_post(self, request: Request, session: Session) -> Response:
        got = await self.portal.postback(request, session, "reconsideration")
        if isinstance(got, Response):
            return got
        form, page = got
        errors: list[str] = []
        number = text(form, "txtClaimNumber").upper()
        if pressed(form, "btnSelectPlan"):
            errors = self.portal.choose_plan(form, page)
        elif pressed(form, "btnChangePlan"):
            page = PageState("reconsideration")
        elif pressed(form, "btnFindClaim"):
            if self.portal.merged_plan:
                errors = self.portal.choose_plan(form, page)
            errors = errors or self.find_claim(page, self.portal.plan_of(page), number)
        elif pressed(form, "btnSubmit"):
            return await self.submit(request, session, form, page)
        return self.request_page(request, session, page, errors=errors, values={"claim_number": number})

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
