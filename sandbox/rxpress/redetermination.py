"""RxPress's redetermination request (the PBM's word for a pharmacy appeal) and its history.

A form (Rx number and fill date, reason, review level and the date of the rejection notice,
cardholder ID, an optional pharmacy contact, explanation, reference, the PDF letter), a review page,
and the submit, which records the request in the ledger first and only then answers, through
``respond_after_recording``; the ledger keeps the level, date, cardholder and contact in its
``form`` under the names ``AppealRequest.form_fields`` gives them. A request whose rejection notice
is older than the level's filing limit (``REVIEW_LEVELS``) is refused, on the form and again at the
submit. The "renamed" redesign moves the letter upload from the form to the review page. The
history is searched by reference and lags: a request shows there only after the portal has served a
number of further requests (``history_lag_requests``, default ``HISTORY_LAG``).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.faults import respond_after_recording
from sandbox.rxpress.formats import parse_fill_date
from sandbox.rxpress.wording import REDETERMINATION_REASONS, REVIEW_LEVELS
from sandbox.sessions import Session

if TYPE_CHECKING:
    from sandbox.rxpress.app import RxPress

HISTORY_LAG = 8  # requests; RxPress posts new requests to its history in batches
MAX_REFERENCE = 40
REASON_BY_VALUE = {value: (label, canonical) for value, label, canonical in REDETERMINATION_REASONS}
LEVEL_BY_VALUE = {value: (label, canonical, days) for value, label, canonical, days in REVIEW_LEVELS}
DRAFT = "redetermination"
FORM_FIELDS = ("level", "denial_date", "member_id", "contact_name", "contact_phone", "contact_email")

NOT_FOUND = "No claim found for this Rx number and fill date."
NOT_REJECTED = "A redetermination can be requested only for a rejected claim."
CLOSED = "Reject {code} is not eligible for redetermination. Resolve the reject and resubmit the claim."
RESUBMIT = (
    "This claim was rejected for missing or invalid data. Correct the claim and resubmit it "
    "instead of requesting a redetermination."
)
NOT_PDF = "The redetermination letter must be a PDF file."
LATE = "The filing limit for this request has passed ({days} days from the rejection notice)."


def request_form_errors(values: dict[str, str]) -> list[str]:
    """The review level, rejection notice date, cardholder and contact as RxPress checks them."""
    errors = []
    level = LEVEL_BY_VALUE.get(values["level"])
    notice = parse_fill_date(values["denial_date"])
    today = datetime.now(UTC).date()
    if level is None:
        errors.append("Choose a review level.")
    if notice is None:
        errors.append("Enter the date of the rejection notice as MM/DD/YYYY.")
    elif notice > today:
        errors.append("The date of the rejection notice cannot be in the future.")
    elif level is not None and today > notice + timedelta(days=level[2]):
        errors.append(LATE.format(days=level[2]))
    if not re.fullmatch(r"[A-Za-z0-9-]{3,20}", values["member_id"]):
        errors.append("Enter the cardholder ID (3 to 20 letters or digits).")
    phone = re.sub(r"[ ().+-]", "", values["contact_phone"])
    if values["contact_phone"] and not re.fullmatch(r"1?\d{10}", phone):
        errors.append("Enter the contact phone as a 10-digit number.")
    if values["contact_email"] and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", values["contact_email"]):
        errors.append("Enter a valid contact e-mail address.")
    return errors


def received_form(values: dict[str, str]) -> dict[str, str]:
    """The form's fields as the ledger keeps them: shared names, the level's canonical value, an
    ISO date, and only the optional ones given."""
    notice = parse_fill_date(values["denial_date"])
    assert notice is not None  # request_form_errors refused it otherwise
    received = {name: values[name] for name in FORM_FIELDS if values[name]}
    return {**received, "level": LEVEL_BY_VALUE[values["level"]][1], "denial_date": notice.isoformat()}


async def read_letter(form: FormData) -> tuple[dict[str, Any], str | None]:
    """The letter and attachments of a form as draft fields, or the error to show."""
    letter = form.get("letter")
    if not isinstance(letter, UploadFile) or not letter.filename:
        return {}, "Attach the redetermination letter."
    content = await letter.read()
    if not content.startswith(b"%PDF-"):
        return {}, NOT_PDF
    attachments = [
        f.filename for f in form.getlist("attachments") if isinstance(f, UploadFile) and f.filename
    ]
    return {
        "letter_filename": letter.filename,
        "letter_sha256": hashlib.sha256(content).hexdigest(),
        "attachments": attachments,
    }, None


class Redeterminations:
    def __init__(self, portal: RxPress) -> None:
        self.portal = portal
        self.state = portal.state

    def upload_on_review(self) -> bool:
        return self.state.knobs.redesign == "renamed"

    def form_page(self, request: Request, session: Session, **context: Any) -> Response:
        values = {"rx": "", "fill": "", "reason": "", "explanation": "", "reference": ""}
        values |= dict.fromkeys(FORM_FIELDS, "")
        return self.portal.signed_in_page(
            request,
            session,
            "rd_form.html",
            reasons=REDETERMINATION_REASONS,
            levels=REVIEW_LEVELS,
            upload_here=not self.upload_on_review(),
            values={**values, **context.pop("values", {})},
            **context,
        )

    async def form(self, request: Request, session: Session) -> Response:
        session.data.pop(DRAFT, None)
        return self.form_page(request, session)

    def claim_errors(self, rx: str, fill: date | None) -> list[str]:
        claim = self.state.claims.get(rx)
        if claim is None or claim.service_date != fill:
            return [NOT_FOUND]
        if claim.category == "A3":
            return [RESUBMIT]
        if claim.category == "F2" and not claim.appealable:
            return [CLOSED.format(code=claim.ncpdp[0])]
        if not claim.appealable:
            return [NOT_REJECTED]
        return []

    async def form_post(self, request: Request, session: Session) -> Response:
        form = await request.form(max_files=20)
        values = {
            key: str(form.get(key, "")).strip()
            for key in ("rx", "fill", "reason", "explanation", "reference", *FORM_FIELDS)
        }
        errors = []
        fill = parse_fill_date(values["fill"])
        if not (values["rx"].isdigit() and len(values["rx"]) == 7):
            errors.append("Enter the 7-digit Rx number.")
        elif fill is None:
            errors.append("Enter the fill date as MM/DD/YYYY.")
        else:
            errors += self.claim_errors(values["rx"], fill)
        if values["reason"] not in REASON_BY_VALUE:
            errors.append("Choose a reason for the redetermination.")
        errors += request_form_errors(values)
        if not values["explanation"]:
            errors.append("Enter an explanation.")
        if not values["reference"]:
            errors.append("Enter your reference.")
        elif len(values["reference"]) > MAX_REFERENCE:
            errors.append(f"Your reference can be at most {MAX_REFERENCE} characters.")
        files: dict[str, Any] = {}
        if not errors and not self.upload_on_review():
            files, letter_error = await read_letter(form)
            errors += [letter_error] if letter_error else []
        if errors:
            return self.form_page(request, session, values=values, errors=errors)
        session.data[DRAFT] = {**values, "fill_date": fill, **files}
        return RedirectResponse("/app/redetermination/review", status_code=303)

    def review_page(self, request: Request, session: Session, **extra: Any) -> Response:
        draft = session.data[DRAFT]
        claim = self.state.claims[draft["rx"]]
        return self.portal.signed_in_page(
            request,
            session,
            "rd_review.html",
            draft=draft,
            claim=claim,
            reason_label=REASON_BY_VALUE[draft["reason"]][0],
            level_label=LEVEL_BY_VALUE[draft["level"]][0],
            notice=parse_fill_date(draft["denial_date"]),
            upload_here="letter_sha256" not in draft,
            **extra,
        )

    async def review(self, request: Request, session: Session) -> Response:
        if DRAFT not in session.data:
            return RedirectResponse("/app/redetermination", status_code=303)
        return self.review_page(request, session)

    async def submit(self, request: Request, session: Session) -> Response:
        draft = session.data.get(DRAFT)
        if draft is None:
            expired = ["Your request has expired. Start again."]
            return self.form_page(request, session, errors=expired)
        if "letter_sha256" not in draft:  # the renamed layout uploads the letter here
            files, letter_error = await read_letter(await request.form(max_files=20))
            if letter_error:
                return self.review_page(request, session, errors=[letter_error])
            draft.update(files)
        late = request_form_errors(draft)  # the filing limit, on the day the request is submitted
        if late:
            return self.review_page(request, session, errors=late)
        entry = self.state.record_appeal(
            reference=draft["reference"],
            claim_number=draft["rx"],
            fill_date=draft["fill_date"],
            reason=REASON_BY_VALUE[draft["reason"]][1],
            explanation=draft["explanation"],
            letter_filename=draft["letter_filename"],
            letter_sha256=draft["letter_sha256"],
            attachments=tuple(draft.get("attachments", ())),
            form=received_form(draft),
            username=session.username or "",
        )
        session.data.pop(DRAFT, None)
        page = self.portal.signed_in_page(request, session, "rd_confirmation.html", entry=entry)
        return await respond_after_recording(self.state, page)

    async def history(self, request: Request, session: Session) -> Response:
        wanted = request.query_params.get("reference", "").strip()
        shown = self.state.history_entries(default_lag=HISTORY_LAG)
        entries = [e for e in shown if wanted.casefold() in e.reference.casefold()]
        entries.reverse()  # newest first
        return self.portal.signed_in_page(
            request,
            session,
            "rd_history.html",
            query=wanted,
            entries=entries[:50],
            searched="reference" in request.query_params,
        )


def routes(portal: RxPress) -> list[Route]:
    pages = Redeterminations(portal)
    auth = portal.authenticated
    return [
        Route("/app/redetermination", auth(pages.form), methods=["GET"]),
        Route("/app/redetermination", auth(pages.form_post), methods=["POST"]),
        Route("/app/redetermination/review", auth(pages.review), methods=["GET"]),
        Route("/app/redetermination/submit", auth(pages.submit), methods=["POST"]),
        Route("/app/redeterminations", auth(pages.history)),
    ]
