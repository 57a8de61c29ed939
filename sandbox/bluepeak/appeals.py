"""BluePeak's appeals: the dialog's one POST, and the history searchable by the caller's reference.

The POST records the appeal in the ledger first and only then answers, through
``respond_after_recording``, so the record-then-fail knobs can break the answer but never the record.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bluepeak.api import BluePeakApi, problem, record_id
from sandbox.bluepeak.wording import (
    APPEAL_FIELDS,
    APPEAL_LEVELS,
    APPEAL_REASONS,
    FILING_LIMITS,
    LATE,
    REQUIRED_FIELDS,
    words,
)
from sandbox.faults import respond_after_recording
from sandbox.sessions import Session

REASONS = {value: canonical for value, _, canonical in APPEAL_REASONS}
LEVELS = {value: canonical for value, _, canonical in APPEAL_LEVELS}
DATES = ("denial_date", "service_from", "service_to")
MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{2,39}")


def appeal_fields(form: Any, labels: dict[str, str], today: date) -> tuple[dict[str, str], str | None]:
    """The dialog's appeal fields as the ledger keeps them (shared names, ISO dates, "125.50"), or
    BluePeak's refusal of the first one missing or malformed, or of a late appeal."""
    values = {name: str(form.get(name, "")).strip() for name in APPEAL_FIELDS}
    values = {name: value for name, value in values.items() if value}
    for name in APPEAL_FIELDS:
        if name in REQUIRED_FIELDS and name not in values:
            verb = "Choose" if name == "level" else "Enter"
            return values, f"{verb} the {labels[name][0].lower()}{labels[name][1:]}"
    if values["level"] not in LEVELS:
        return values, f"Choose a {labels['level'].lower()} from the list"
    values["level"] = LEVELS[values["level"]]
    dates: dict[str, date] = {}
    for name in set(DATES) & set(values):
        try:
            dates[name] = date.fromisoformat(values[name])
        except ValueError:
            return values, f"{labels[name]} is not a date"
        values[name] = dates[name].isoformat()
    if not MEMBER_ID.fullmatch(values["member_id"]):
        return values, "Enter the member ID as it appears on the member's card"
    if not re.fullmatch(r"\d{10}", values["billing_npi"]):
        return values, "The billing NPI must be 10 digits"
    if "disputed_amount" in values:
        try:
            amount = Decimal(values["disputed_amount"].lstrip("$").replace(",", ""))
            if not amount.is_finite() or amount < 0:
                raise InvalidOperation
        except InvalidOperation:
            return values, "Enter the amount disputed in dollars and cents, like 125.50"
        values["disputed_amount"] = str(amount.quantize(Decimal("0.01")))
    if dates["denial_date"] > today:
        return values, "The date of denial cannot be in the future"
    if dates.get("service_to", date.max) < dates.get("service_from", date.min):
        return values, "The last service date cannot be before the service date"
    days = FILING_LIMITS[values["level"]]
    if (today - dates["denial_date"]).days > days:
        return values, LATE.format(days=days)
    return values, None


MAX_REFERENCE = 40
HISTORY_LIMIT = 50


class Appeals:
    def __init__(self, api: BluePeakApi) -> None:
        self.api = api
        self.state = api.state

    async def submit(self, request: Request, session: Session) -> Response:
        form = await request.form(max_files=20)
        wanted = str(form.get("claim", ""))
        claim = next(
            (c for c in list(self.state.claims.values()) if record_id(c.claim_number) == wanted), None
        )
        if claim is None:
            return problem(404, "not_found", "No claim found")
        if not claim.appealable:
            return problem(422, "invalid", "This claim cannot be appealed until it is finalized")
        reason = str(form.get("reason", ""))
        explanation = str(form.get("explanation", "")).strip()
        reference = str(form.get("reference", "")).strip()
        letter = form.get("letter")
        if reason not in REASONS:
            return problem(422, "invalid", "Choose a reason for the appeal")
        if not explanation:
            return problem(422, "invalid", "Enter an explanation")
        if not reference or len(reference) > MAX_REFERENCE:
            return problem(422, "invalid", f"Enter your reference (at most {MAX_REFERENCE} characters)")
        fields, refused = appeal_fields(form, words(self.state.knobs.redesign), datetime.now(UTC).date())
        if refused is not None:
            return problem(
                422, "filing_limit" if refused.startswith("The filing limit") else "invalid", refused
            )
        if not isinstance(letter, UploadFile) or not letter.filename:
            return problem(422, "invalid", "Attach the appeal letter")
        content = await letter.read()
        if not content.startswith(b"%PDF-"):
            return problem(422, "invalid", "The appeal letter must be a PDF file")
        attachments = [
            f.filename for f in form.getlist("attachments") if isinstance(f, UploadFile) and f.filename
        ]
        entry = self.state.record_appeal(
            reference=reference,
            claim_number=claim.claim_number,
            reason=REASONS[reason],
            explanation=explanation,
            letter_filename=letter.filename,
            letter_sha256=hashlib.sha256(content).hexdigest(),
            attachments=tuple(attachments),
            form=fields,
            username=session.username or "",
        )
        answer = JSONResponse(
            {
                "appeal_number": entry.appeal_number,
                "reference": reference,
                "claim_number": claim.claim_number,
            },
            status_code=201,
        )
        return await respond_after_recording(self.state, answer)

    async def history(self, request: Request, session: Session) -> Response:
        """Every appeal whose reference holds the query, newest first; all of them at once."""
        wanted = request.query_params.get("reference", "").strip().casefold()
        entries = [e for e in self.state.ledger_entries() if wanted and wanted in e.reference.casefold()]
        entries.reverse()
        items = [
            {
                "appeal_number": e.appeal_number,
                "reference": e.reference,
                "claim_number": e.claim_number,
                "received": e.received_at.strftime("%b %d, %Y %H:%M UTC"),
            }
            for e in entries[:HISTORY_LIMIT]
        ]
        return JSONResponse({"items": items, "total": len(entries)})
