"""Meridian's appeal wizard (claim, reason, documents, review, submit) and its appeal history.

The draft lives in the server-side session. Each step page sends a person back to the first step
not yet done. The submit records the appeal in the ledger first and only then answers, through
``after_recording``, so the record-then-fail knobs can break the answer but never the record.
The "renamed" redesign moves the documents step before the reason step.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.faults import respond_after_recording
from sandbox.meridian.wording import APPEAL_REASONS
from sandbox.sessions import Session

if TYPE_CHECKING:
    from sandbox.meridian.app import Meridian

ORDER = ("claim", "reason", "documents", "review")
ORDER_RENAMED = ("claim", "documents", "reason", "review")
URLS = {
    "claim": "/appeals/new",
    "reason": "/appeals/new/reason",
    "documents": "/appeals/new/documents",
    "review": "/appeals/new/review",
}
DONE_WHEN = {"claim": "claim_number", "reason": "reason", "documents": "letter_sha256"}
REASON_BY_VALUE = {value: (label, canonical) for value, label, canonical in APPEAL_REASONS}
MAX_REFERENCE = 40


class Wizard:
    def __init__(self, portal: Meridian) -> None:
        self.portal = portal
        self.state = portal.state

    # -- step bookkeeping ----------------------------------------------------------------------

    def order(self) -> tuple[str, ...]:
        return ORDER_RENAMED if self.state.knobs.redesign == "renamed" else ORDER

    @staticmethod
    def draft(session: Session) -> dict[str, Any]:
        return session.data.setdefault("draft", {})

    def first_missing(self, draft: dict[str, Any], upto: str) -> str | None:
        for step in self.order():
            if step == upto:
                return None
            if DONE_WHEN[step] not in draft:
                return step
        return None

    def after(self, step: str) -> RedirectResponse:
        order = self.order()
        return RedirectResponse(URLS[order[order.index(step) + 1]], status_code=303)

    def page(self, request: Request, session: Session, step: str, **context: Any) -> Response:
        missing = self.first_missing(self.draft(session), step)
        if missing is not None:
            return RedirectResponse(URLS[missing], status_code=303)
        number = self.order().index(step) + 1
        return self.portal.signed_in_page(
            request,
            session,
            f"appeal_{step}.html",
            step_number=number,
            step_count=len(ORDER),
            draft=self.draft(session),
            reasons=APPEAL_REASONS,
            **context,
        )

    # -- steps ---------------------------------------------------------------------------------

    async def claim_form(self, request: Request, session: Session) -> Response:
        if request.query_params.get("restart"):
            session.data.pop("draft", None)
        return self.page(request, session, "claim")

    async def claim_post(self, request: Request, session: Session) -> Response:
        form = await request.form()
        number = str(form.get("claim_number", "")).strip().upper()
        claim = self.state.claims.get(number)
        error = None
        if not number:
            error = "Enter a claim number"
        elif claim is None:
            error = "No claim found"
        elif not claim.appealable:
            error = "This claim cannot be appealed until it is finalized"
        if error:
            return self.page(request, session, "claim", errors=[error], entered=number)
        session.data["draft"] = {"claim_number": number}
        return self.after("claim")

    async def reason_form(self, request: Request, session: Session) -> Response:
        return self.page(request, session, "reason")

    async def reason_post(self, request: Request, session: Session) -> Response:
        form = await request.form()
        value = str(form.get("reason", ""))
        explanation = str(form.get("explanation", "")).strip()
        reference = str(form.get("reference", "")).strip()
        errors = []
        if value not in REASON_BY_VALUE:
            errors.append("Choose a reason for the appeal")
        if not explanation:
            errors.append("Enter an explanation")
        if not reference:
            errors.append("Enter your reference")
        elif len(reference) > MAX_REFERENCE:
            errors.append(f"Your reference can be at most {MAX_REFERENCE} characters")
        if errors:
            return self.page(request, session, "reason", errors=errors)
        self.draft(session).update(reason=value, explanation=explanation, reference=reference)
        return self.after("reason")

    async def documents_form(self, request: Request, session: Session) -> Response:
        return self.page(request, session, "documents")

    async def documents_post(self, request: Request, session: Session) -> Response:
        form = await request.form(max_files=20)
        letter = form.get("letter")
        if not isinstance(letter, UploadFile) or not letter.filename:
            return self.page(request, session, "documents", errors=["Choose the appeal letter"])
        content = await letter.read()
        if not content.startswith(b"%PDF-"):
            return self.page(request, session, "documents", errors=["The appeal letter must be a PDF file"])
        attachments = [
            f.filename for f in form.getlist("attachments") if isinstance(f, UploadFile) and f.filename
        ]
        self.draft(session).update(
            letter_filename=letter.filename,
            letter_sha256=hashlib.sha256(content).hexdigest(),
            attachments=attachments,
        )
        return self.after("documents")

    def review_page(self, request: Request, session: Session, **extra: Any) -> Response:
        draft = self.draft(session)
        claim = self.state.claims.get(draft.get("claim_number", ""))
        reason = REASON_BY_VALUE.get(draft.get("reason", ""), ("", ""))[0]
        return self.page(request, session, "review", claim=claim, reason_label=reason, **extra)

    async def review(self, request: Request, session: Session) -> Response:
        return self.review_page(request, session)

    async def submit(self, request: Request, session: Session) -> Response:
        draft = self.draft(session)
        if self.first_missing(draft, "review") is not None:
            return self.page(
                request, session, "claim", errors=["Your appeal draft has expired. Start again."]
            )
        form = await request.form()
        if form.get("confirm") != "yes":
            return self.review_page(
                request, session, errors=["Confirm that this appeal is accurate and authorized"]
            )
        entry = self.state.record_appeal(
            reference=draft["reference"],
            claim_number=draft["claim_number"],
            reason=REASON_BY_VALUE[draft["reason"]][1],
            explanation=draft["explanation"],
            letter_filename=draft["letter_filename"],
            letter_sha256=draft["letter_sha256"],
            attachments=tuple(draft.get("attachments", ())),
            username=session.username or "",
        )
        session.data.pop("draft", None)
        page = self.portal.signed_in_page(request, session, "appeal_confirmation.html", entry=entry)
        return await respond_after_recording(self.state, page)

    # -- history -------------------------------------------------------------------------------

    async def history(self, request: Request, session: Session) -> Response:
        wanted = request.query_params.get("reference", "").strip()
        entries = [e for e in self.state.ledger_entries() if wanted.casefold() in e.reference.casefold()]
        entries.reverse()  # newest first
        return self.portal.signed_in_page(
            request, session, "appeal_history.html", query=wanted, entries=entries[:50], searched=bool(wanted)
        )


def routes(portal: Meridian) -> list[Route]:
    wizard = Wizard(portal)
    auth = portal.authenticated
    return [
        Route("/appeals", auth(wizard.history)),
        Route(URLS["claim"], auth(wizard.claim_form), methods=["GET"]),
        Route(URLS["claim"], auth(wizard.claim_post), methods=["POST"]),
        Route(URLS["reason"], auth(wizard.reason_form), methods=["GET"]),
        Route(URLS["reason"], auth(wizard.reason_post), methods=["POST"]),
        Route(URLS["documents"], auth(wizard.documents_form), methods=["GET"]),
        Route(URLS["documents"], auth(wizard.documents_post), methods=["POST"]),
        Route(URLS["review"], auth(wizard.review)),
        Route("/appeals/new/submit", auth(wizard.submit), methods=["POST"]),
    ]
