"""BluePeak's JSON API: sign-in with a security question, paginated claim and PA lists, details,
the terms-of-use gate, and the appeal history. Appeals themselves are in ``appeals``.

Every answer is JSON. A request without a signed-in session gets 401 (``session_expired`` when the
browser still holds a session id the portal no longer knows); a data request while the terms of use
wait to be accepted gets 409 ``terms_required``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from sandbox.auth import check_password, signed_in, start_session
from sandbox.data import Claim, Patient, PriorAuth
from sandbox.sessions import Session
from sandbox.state import PortalState

COOKIE = "bp_sid"
PAGE_SIZE = 10
TERMS_EVERY = 12  # the terms of use come back after this many data views in one session

SessionHandler = Callable[[Request, Session], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


def problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def bp_date(value: date | None) -> str | None:
    return value.strftime("%b %d, %Y") if value else None


def money(value: Decimal | None) -> str:
    return f"${value:,.2f}" if value is not None else "Pending"


def record_id(number: str) -> str:
    """The opaque id a detail route uses: a person finds a record through the lists, not its number."""
    return hashlib.sha256(f"bluepeak:{number}".encode()).hexdigest()[:12]


def patient_json(patient: Patient) -> dict[str, str | None]:
    return {
        "name": patient.name,
        "member_id": patient.member_id,
        "date_of_birth": bp_date(patient.date_of_birth),
    }


def recent_claims(claims: Sequence[Claim]) -> list[Claim]:
    """The claims list's order: newest service date first."""
    return sorted(claims, key=lambda c: (c.service_date, c.claim_number), reverse=True)


def recent_pas(pas: Sequence[PriorAuth]) -> list[PriorAuth]:
    return sorted(pas, key=lambda p: p.pa_number, reverse=True)


class BluePeakApi:
    def __init__(self, state: PortalState) -> None:
        self.state = state

    # -- plumbing --------------------------------------------------------------------------------

    @staticmethod
    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def authenticated(self, handler: SessionHandler) -> Handler:
        async def endpoint(request: Request) -> Response:
            session, expired = signed_in(self.state, request.cookies.get(COOKIE))
            if session is None:
                if expired:
                    return problem(401, "session_expired", "Your session has expired. Please sign in again.")
                return problem(401, "unauthenticated", "Sign in to continue.")
            return await handler(request, session)

        return endpoint

    def viewing(self, handler: SessionHandler) -> Handler:
        """A data view: signed in, and the terms of use accepted."""

        async def view(request: Request, session: Session) -> Response:
            if self.terms_due(session):
                return problem(409, "terms_required", "Accept the terms of use to continue.")
            return await handler(request, session)

        return self.authenticated(view)

    @staticmethod
    def terms_due(session: Session) -> bool:
        if session.data.get("terms_due"):
            return True
        views = session.data.get("views", 0) + 1
        session.data["views"] = views
        if views % TERMS_EVERY == 0:
            session.data["terms_due"] = True
        return bool(session.data.get("terms_due"))

    def login_rng(self, purpose: str, username: str) -> random.Random:
        """Seeded per login: the same run of logins asks the same questions on every run."""
        n = self.state.login_posts[username]
        return random.Random(f"{self.state.payer_id}:{self.state.seed}:{purpose}:{username}:{n}")

    # -- sign-in ---------------------------------------------------------------------------------

    async def session_info(self, request: Request) -> Response:
        """What the app needs before it draws anything: signed in, expired, CAPTCHA. Not counted
        against the session-expiry knob (a probe, not a page)."""
        session_id = request.cookies.get(COOKIE)
        session = self.state.sessions.get(session_id)
        signed = session is not None and session.authenticated
        account = self.state.accounts.get(session.username or "") if session and signed else None
        return JSONResponse(
            {
                "signed_in": signed,
                "user": account.display_name if account else None,
                "expired": session_id is not None and session is None,
                "captcha": self.state.captcha_active(),
            }
        )

    async def login(self, request: Request) -> Response:
        body = await self.body(request)
        username = str(body.get("username", "")).strip()
        verdict = check_password(self.state, username, str(body.get("password", "")))
        if verdict == "captcha":
            return problem(403, "captcha", "Verify you are human")
        if verdict == "locked":
            return problem(423, "locked", "Your account is locked. Contact your administrator.")
        if verdict == "invalid":
            return problem(401, "invalid_credentials", "Invalid username or password")
        if verdict == "password_expired":
            return problem(403, "password_expired", "Your password has expired and must be changed")
        questions = sorted(self.state.accounts[username].security_answers)
        if not questions:
            return problem(403, "no_questions", "This account has no security questions. Contact support.")
        question = self.login_rng("question", username).choice(questions)
        session = start_session(self.state, request.cookies.get(COOKIE), username, "password_ok")
        session.data["question"] = question
        response = JSONResponse({"question": question})
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="lax", path="/")
        return response

    async def answer(self, request: Request) -> Response:
        session = self.state.sessions.get(request.cookies.get(COOKIE))
        if session is None or session.stage != "password_ok" or session.username is None:
            return problem(401, "unauthenticated", "Start again: sign in with your username and password.")
        body = await self.body(request)
        self.state.count_second_factor_post(session.username)
        account = self.state.accounts.get(session.username)
        expected = account.security_answers.get(session.data.get("question", "")) if account else None
        given = str(body.get("answer", "")).strip().casefold()
        if expected is None or not hmac.compare_digest(given.encode(), expected.strip().casefold().encode()):
            return problem(401, "wrong_answer", "That answer does not match our records")
        session.stage, session.requests = "authenticated", 0
        session.data.pop("question", None)
        # some sessions must accept the terms of use before their first page (seeded per login)
        session.data["terms_due"] = self.login_rng("terms", session.username).random() < 0.5
        return JSONResponse({"user": account.display_name if account else "User"})

    async def logout(self, request: Request) -> Response:
        session_id = request.cookies.get(COOKIE)
        if session_id:
            self.state.sessions.drop(session_id)
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def accept_terms(self, request: Request, session: Session) -> Response:
        session.data["terms_due"] = False
        return JSONResponse({"accepted": True})

    # -- lists and details -----------------------------------------------------------------------

    @staticmethod
    def paginate(request: Request, rows: list[T]) -> tuple[list[T], dict[str, int]]:
        pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            page = 1
        page = min(max(page, 1), pages)
        start = (page - 1) * PAGE_SIZE
        return rows[start : start + PAGE_SIZE], {"page": page, "pages": pages, "total": len(rows)}

    @staticmethod
    def member_filter(request: Request) -> str:
        return request.query_params.get("member", "").strip().casefold()

    async def claims(self, request: Request, session: Session) -> Response:
        member = self.member_filter(request)
        rows = recent_claims(
            [
                c
                for c in list(self.state.claims.values())
                if not member or c.patient.member_id.casefold() == member
            ]
        )
        shown, paging = self.paginate(request, rows)
        items = [
            {
                "id": record_id(c.claim_number),
                "claim_number": c.claim_number,
                "service_date": bp_date(c.service_date),
                "billed": money(c.billed),
                "status": c.wording,
            }
            for c in shown
        ]
        return JSONResponse({"items": items, **paging})

    async def claim(self, request: Request, session: Session) -> Response:
        wanted = request.path_params["record"]
        claim = next(
            (c for c in list(self.state.claims.values()) if record_id(c.claim_number) == wanted), None
        )
        if claim is None:
            return problem(404, "not_found", "No claim found")
        lists = shipped_codelists()
        codes = [
            {
                "type": "CARC",
                "group": a.group,
                "code": a.code,
                "description": lists.describe(CodeSystem.CARC, a.code),
                "amount": money(a.amount),
            }
            for a in claim.adjustments
        ]
        codes += [
            {
                "type": "RARC",
                "group": "",
                "code": c,
                "description": lists.describe(CodeSystem.RARC, c),
                "amount": "",
            }
            for c in claim.rarc
        ]
        return JSONResponse(
            {
                "id": wanted,
                "claim_number": claim.claim_number,
                "service_date": bp_date(claim.service_date),
                "billed": money(claim.billed),
                "paid": money(claim.paid),
                "patient_responsibility": money(claim.patient_responsibility),
                "status": claim.wording,
                "patient": patient_json(claim.patient),
                "codes": codes,
                "appealable": claim.appealable,
            }
        )

    async def pas(self, request: Request, session: Session) -> Response:
        member = self.member_filter(request)
        rows = recent_pas(
            [
                p
                for p in list(self.state.pas.values())
                if not member or p.patient.member_id.casefold() == member
            ]
        )
        shown, paging = self.paginate(request, rows)
        items = [
            {
                "id": record_id(p.pa_number),
                "pa_number": p.pa_number,
                "service": p.service,
                "status": p.wording,
            }
            for p in shown
        ]
        return JSONResponse({"items": items, **paging})

    async def pa(self, request: Request, session: Session) -> Response:
        wanted = request.path_params["record"]
        pa = next((p for p in list(self.state.pas.values()) if record_id(p.pa_number) == wanted), None)
        if pa is None:
            return problem(404, "not_found", "No authorization found")
        return JSONResponse(
            {
                "id": wanted,
                "pa_number": pa.pa_number,
                "service": pa.service,
                "status": pa.wording,
                "valid_from": bp_date(pa.valid_from),
                "valid_to": bp_date(pa.valid_to),
                "reason": pa.reason,
                "patient": patient_json(pa.patient),
            }
        )
