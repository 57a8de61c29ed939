"""BluePeak's appeals: the dialog's one POST, and the history searchable by the caller's reference.

The POST records the appeal in the ledger first and only then answers, through
``respond_after_recording``, so the record-then-fail knobs can break the answer but never the record.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.bluepeak.api import BluePeakApi, problem, record_id
from sandbox.bluepeak.wording import APPEAL_REASONS
from sandbox.faults import respond_after_recording
from sandbox.sessions import Session

REASONS = {value: canonical for value, _, canonical in APPEAL_REASONS}
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
