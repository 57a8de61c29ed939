"""RxPress PBM's pharmacy portal: server-rendered, table layouts, and a work area in an iframe.

Log-in is a password, then a 6-digit security code "sent by e-mail" (``state.inbox``, which the
sandbox serves at ``/__sandbox/inbox/{username}``), unless the browser holds a remembered-device
cookie for the user. After log-in, ``/main`` is a menu beside an iframe named ``workarea``; claim
inquiry (Rx number and fill date), PA status and the redetermination pages (``redetermination``)
all load inside it. A session that times out sends the frame, not the window, to the log-in page.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from sandbox.auth import check_password, signed_in, start_session
from sandbox.control import control_routes
from sandbox.middleware import KnobsMiddleware
from sandbox.rxpress import redetermination
from sandbox.rxpress.formats import drug_of, money, parse_fill_date, us_date
from sandbox.rxpress.wording import words
from sandbox.sessions import Session
from sandbox.state import PortalState

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "RXSESSIONID"
DEVICE_COOKIE = "rx_device"
DEVICE_DAYS = 30

SignedInHandler = Callable[[Request, Session], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Response]]

# ?view= on /main opens the work area on one of these pages (a person's bookmark).
VIEWS = {
    "claims": "/app/claims",
    "pa": "/app/pa",
    "redetermination": "/app/redetermination",
    "history": "/app/redeterminations",
}

CODE_ERRORS = {
    "invalid": "The security code you entered is incorrect.",
    "used": "This security code has already been used. Send a new code.",
    "expired": "This security code has expired. Send a new code.",
}


class RxPress:
    """The pages; one instance per running portal, around its state."""

    def __init__(self, state: PortalState) -> None:
        self.state = state
        self.templates = Jinja2Templates(directory=TEMPLATES)
        self.templates.env.filters["us_date"] = us_date
        self.templates.env.filters["money"] = money
        self._devices: dict[str, tuple[str, float]] = {}  # token -> (username, expires at)
        self._devices_lock = threading.Lock()

    # -- page plumbing ---------------------------------------------------------------------------

    def render(self, request: Request, name: str, *, status: int = 200, **context: Any) -> Response:
        redesign = self.state.knobs.redesign
        context = {
            "w": words(redesign),
            "cosmetic": redesign == "cosmetic",
            "renamed": redesign == "renamed",
            "user": None,
            "errors": [],
            "notices": [],
            **context,
        }
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def user_name(self, session: Session) -> str:
        account = self.state.accounts.get(session.username or "")
        return account.display_name if account else "User"

    def signed_in_page(self, request: Request, session: Session, name: str, **context: Any) -> Response:
        return self.render(request, name, user=self.user_name(session), **context)

    def authenticated(self, handler: SignedInHandler) -> Handler:
        """A page for a signed-in session. Inside the work area, a timed-out session loads the log-in
        page into the frame, as old framed portals do."""

        async def page(request: Request) -> Response:
            session, expired = signed_in(self.state, request.cookies.get(COOKIE))
            if session is None:
                return RedirectResponse("/login?timeout=1" if expired else "/login", status_code=303)
            return await handler(request, session)

        return page

    # -- remembered devices ----------------------------------------------------------------------

    def remember(self, username: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._devices_lock:
            self._devices[token] = (username, time.time() + DEVICE_DAYS * 86400)
        return token

    def remembered(self, request: Request, username: str) -> bool:
        token = request.cookies.get(DEVICE_COOKIE)
        with self._devices_lock:
            found = self._devices.get(token or "")
        return found is not None and found[0] == username and found[1] > time.time()

    # -- log-in ----------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        if self.state.captcha_active():
            return self.render(request, "captcha.html")
        notices = []
        if request.query_params.get("timeout"):
            notices.append("Your session has timed out. Please log in again.")
        if request.query_params.get("logged_out"):
            notices.append("You have logged out of the RxPress Pharmacy Portal.")
        return self.render(request, "login.html", notices=notices)

    async def login_post(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username", "")).strip()
        verdict = check_password(self.state, username, str(form.get("password", "")))
        if verdict == "captcha":
            return self.render(request, "captcha.html")
        if verdict == "locked":
            locked = "Your account has been locked. Call the RxPress Pharmacy Help Desk."
            return self.render(request, "login.html", errors=[locked], username=username)
        if verdict == "invalid":
            wrong = "The User ID or password you entered is incorrect."
            return self.render(request, "login.html", errors=[wrong], username=username)
        if verdict == "password_expired":
            return self.render(request, "password_expired.html")
        known_device = self.remembered(request, username)
        session = start_session(
            self.state,
            request.cookies.get(COOKIE),
            username,
            "authenticated" if known_device else "password_ok",
        )
        if not known_device:
            self.state.inbox.send(username)
        response = RedirectResponse("/main" if known_device else "/login/code", status_code=303)
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="lax")
        return response

    def pending(self, request: Request) -> Session | None:
        """The session between the password and the security code."""
        session = self.state.sessions.get(request.cookies.get(COOKIE))
        ok = session is not None and session.stage == "password_ok" and session.username
        return session if ok else None

    async def code_form(self, request: Request) -> Response:
        if self.pending(request) is None:
            return RedirectResponse("/login", status_code=303)
        return self.render(request, "code.html")

    async def code_post(self, request: Request) -> Response:
        session = self.pending(request)
        if session is None or session.username is None:
            return RedirectResponse("/login", status_code=303)
        form = await request.form()
        self.state.count_second_factor_post(session.username)
        verdict = self.state.inbox.check(session.username, str(form.get("code", "")))
        if verdict != "ok":
            return self.render(request, "code.html", errors=[CODE_ERRORS[verdict]])
        session.stage, session.requests = "authenticated", 0
        response = RedirectResponse("/main", status_code=303)
        if form.get("remember") == "yes":
            response.set_cookie(
                DEVICE_COOKIE,
                self.remember(session.username),
                max_age=DEVICE_DAYS * 86400,
                httponly=True,
                samesite="lax",
            )
        return response

    async def code_resend(self, request: Request) -> Response:
        session = self.pending(request)
        if session is None or session.username is None:
            return RedirectResponse("/login", status_code=303)
        self.state.inbox.send(session.username)
        return self.render(request, "code.html", notices=["A new security code has been sent."])

    async def password_change(self, request: Request) -> Response:
        """The form a person would use; the bot must never fill it."""
        return self.render(request, "password_expired.html", errors=["Password changes are not available"])

    async def logout(self, request: Request) -> Response:
        session_id = request.cookies.get(COOKIE)
        if session_id:
            self.state.sessions.drop(session_id)
        response = RedirectResponse("/login?logged_out=1", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # -- the frame set and the lookups -----------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return RedirectResponse("/main", status_code=303)

    async def main(self, request: Request, session: Session) -> Response:
        src = VIEWS.get(request.query_params.get("view", ""), "/app/welcome")
        return self.signed_in_page(request, session, "main.html", src=src)

    async def welcome(self, request: Request, session: Session) -> Response:
        return self.signed_in_page(request, session, "welcome.html")

    async def claims(self, request: Request, session: Session) -> Response:
        if request.method == "GET":
            return self.signed_in_page(request, session, "claims.html", rx="", fill="")
        form = await request.form()
        rx = str(form.get("rx_number", "")).strip()
        fill_text = str(form.get("fill_date", "")).strip()
        fill = parse_fill_date(fill_text)
        errors = []
        if not (rx.isdigit() and len(rx) == 7):
            errors.append("Enter the 7-digit Rx number.")
        if fill is None:
            errors.append("Enter the fill date as MM/DD/YYYY.")
        context: dict[str, Any] = {"rx": rx, "fill": fill_text, "errors": errors, "searched": not errors}
        claim = self.state.claims.get(rx) if not errors else None
        if claim is not None and claim.service_date == fill:
            lists = shipped_codelists()
            context.update(
                claim=claim,
                drug=drug_of(claim),
                rejects=[(c, lists.describe(CodeSystem.NCPDP_REJECT, c) or "") for c in claim.ncpdp],
            )
        return self.signed_in_page(request, session, "claims.html", **context)

    async def pa(self, request: Request, session: Session) -> Response:
        if request.method == "GET":
            return self.signed_in_page(request, session, "pa.html", number="")
        form = await request.form()
        number = str(form.get("pa_number", "")).strip().upper()
        if not number:
            return self.signed_in_page(
                request, session, "pa.html", number="", errors=["Enter the PA number."]
            )
        pa = self.state.pas.get(number)
        return self.signed_in_page(request, session, "pa.html", number=number, pa=pa, searched=True)


def build_app(state: PortalState) -> Starlette:
    portal = RxPress(state)
    auth = portal.authenticated
    routes = [
        Route("/", portal.root),
        Route("/login", portal.login_form, methods=["GET"]),
        Route("/login", portal.login_post, methods=["POST"]),
        Route("/login/code", portal.code_form, methods=["GET"]),
        Route("/login/code", portal.code_post, methods=["POST"]),
        Route("/login/code/resend", portal.code_resend, methods=["POST"]),
        Route("/password", portal.password_change, methods=["POST"]),
        Route("/logout", portal.logout),
        Route("/main", auth(portal.main)),
        Route("/app/welcome", auth(portal.welcome)),
        Route("/app/claims", auth(portal.claims), methods=["GET", "POST"]),
        Route("/app/pa", auth(portal.pa), methods=["GET", "POST"]),
        *redetermination.routes(portal),
        control_routes(state),
    ]

    def maintenance(_: PortalState) -> str:
        template = portal.templates.get_template("maintenance.html")
        return template.render(
            w=words("none"), cosmetic=False, renamed=False, user=None, errors=[], notices=[]
        )

    return Starlette(
        routes=routes, middleware=[Middleware(KnobsMiddleware, state=state, maintenance_page=maintenance)]
    )
