"""Meridian's appeal wizard (claim, reason, documents, review, submit) and its appeal history.

The draft lives in the server-side session. Each step page sends a person back to the first step
not yet done. The submit records the appeal in the ledger first and only then answers, through
``after_recording``, so the record-then-fail knobs can break the answer but never the record.
The "renamed" redesign moves the documents step before the reason step.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.faults import respond_after_recording
from sandbox.meridian.wording import (
    APPEAL_FIELDS,
    APPEAL_LEVELS,
    APPEAL_REASONS,
    FILING_LIMITS,
    REQUIRED_FIELDS,
    words,
)
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
LEVEL_BY_VALUE = {value: (label, canonical) for value, label, canonical in APPEAL_LEVELS}
MAX_REFERENCE = 40
DATES = ("denial_date", "service_from", "service_to")
CODE = re.compile(r"(?:(?:CO|CR|OA|PI|PR)-)?[A-Z]{0,2}\d{1,3}")
MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{2,39}")


def read_appeal_fields(form: Any, labels: dict[str, str], today: date) -> tuple[dict[str, str], list[str]]:
    """The claim step's appeal fields as the ledger keeps them (shared names, ISO dates, "125.50"),
    and Meridian's refusals: a required field missing, a malformed one, a late appeal."""
    named = {name: label[0].lower() + label[1:] for name, label in labels.items()}  # "member ID"
    raw = {name: str(form.get(name, "")).strip() for name in APPEAL_FIELDS}
    verb = {"level": "Choose"}
    errors = [
        f"{verb.get(n, 'Enter')} the {named[n]}" for n in APPEAL_FIELDS if n in REQUIRED_FIELDS and not raw[n]
    ]
    values = {name: value for name, value in raw.items() if value}
    if "level" in values:
        if values["level"] not in LEVEL_BY_VALUE:
            errors.append(f"Choose the {named['level']}")
        else:
            values["level"] = LEVEL_BY_VALUE[values["level"]][1]
    dates: dict[str, date] = {}
    for name in DATES:
        if name in values:
            try:
                dates[name] = datetime.strptime(values[name], "%m/%d/%Y").date()
                values[name] = dates[name].isoformat()
            except ValueError:
                errors.append(f"Enter the {named[name]} as MM/DD/YYYY")
    if "member_id" in values and not MEMBER_ID.fullmatch(values["member_id"]):
        errors.append(f"The {named['member_id']} must be 3 to 40 letters or digits")
    if "billing_npi" in values and not re.fullmatch(r"\d{10}", values["billing_npi"]):
        errors.append(f"The {named['billing_npi']} must be 10 digits")
    if "disputed_codes" in values:
        codes = [c for c in re.split(r"[,\s]+", values["disputed_codes"].upper()) if c]
        if not all(CODE.fullmatch(c) for c in codes):
            errors.append(f"Enter the {named['disputed_codes']} as CARC or RARC codes (CO-50, N115)")
        values["disputed_codes"] = ", ".join(codes)
    if "disputed_amount" in values:
        try:
            amount = Decimal(values["disputed_amount"].lstrip("$").replace(",", ""))
            if not amount.is_finite() or amount < 0:
                raise InvalidOperation
            values["disputed_amount"] = str(amount.quantize(Decimal("0.01")))
        except InvalidOperation:
            errors.append(f"Enter the {named['disputed_amount']} in dollars and cents")
    denied, start, end = (dates.get(name) for name in DATES)
    if denied is not None and denied > today:
        errors.append("The denial date cannot be in the future")
    if start is not None and end is not None and end < start:
        errors.append("The service end date cannot be before the service date")
    level = LEVEL_BY_VALUE.get(raw["level"])
    if not errors and denied is not None and level is not None:
        limit = FILING_LIMITS[level[1]]
        if (today - denied).days > limit:
            errors.append(
                f"The filing limit for this appeal has passed: {level[0]} requests must be received"
                f" within {limit} days of the denial date."
            )
    return values, errors


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
            levels=APPEAL_LEVELS,
            fields=APPEAL_FIELDS,
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
            return self.page(request, session, "claim", errors=[error], entered=number, typed=form)
        labels = words(self.state.knobs.redesign)
        values, errors = read_appeal_fields(form, labels, datetime.now(UTC).date())
        if errors:
            return self.page(request, session, "claim", errors=errors, entered=number, typed=form)
        session.data["draft"] = {"claim_number": number, "form": values}
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
        shown = dict(draft.get("form", {}))
        if "level" in shown:  # the level as its option label, dates as Meridian writes them
            shown["level"] = next(label for _, label, level in APPEAL_LEVELS if level == shown["level"])
        for name in set(DATES) & set(shown):
            shown[name] = date.fromisoformat(shown[name]).strftime("%m/%d/%Y")
        return self.page(request, session, "review", claim=claim, reason_label=reason, shown=shown, **extra)

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
            form=dict(draft.get("form", {})),
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
