"""PayerHub: a clearinghouse-style multi-payer portal on an older server framework (WebForms style).

One sign-in (password, then a TOTP code) serves several health plans. Every page is one form that
posts back to its own URL with hidden view-state fields (``viewstate``); a postback without the
session's newest view state gets the framework's "Invalid postback or callback argument" page
(HTTP 500). The claim search, authorization inquiry (``lookups``) and reconsideration pages
(``reconsideration``) start by choosing the plan; the "renamed" redesign moves that choice into
each form. Sessions are server-side (``state.sessions``) behind an ``ASP.NET_SessionId`` cookie.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from sandbox.auth import check_password, signed_in, start_session
from sandbox.control import control_routes
from sandbox.middleware import KnobsMiddleware
from sandbox.payerhub import lookups, reconsideration
from sandbox.payerhub.forms import control, money, text, us_date, us_time
from sandbox.payerhub.viewstate import PageState, ViewStates
from sandbox.payerhub.wording import PLAN_BY_ID, PLANS, Plan, words
from sandbox.sessions import Session
from sandbox.state import PortalState

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "ASP.NET_SessionId"
HOME = "/Default.aspx"
LOGIN = "/Account/Login.aspx"
VERIFY = "/Account/Verify.aspx"
MAX_FILES = 20

SignedInHandler = Callable[[Request, Session], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Response]]


class PayerHub:
    """The pages' shared plumbing; one instance per running portal, around its state."""

    def __init__(self, state: PortalState) -> None:
        self.state = state
        self.viewstates = ViewStates()
        self.templates = Jinja2Templates(directory=TEMPLATES)
        self.templates.env.filters["us_date"] = us_date
        self.templates.env.filters["money"] = money
        self.templates.env.filters["us_time"] = us_time

    @property
    def merged_plan(self) -> bool:
        """The renamed layout asks for the plan inside each form, not in a step of its own."""
        return self.state.knobs.redesign == "renamed"

    # -- rendering -------------------------------------------------------------------------------

    def context(self, request: Request) -> dict[str, Any]:
        redesign = self.state.knobs.redesign
        # WebForms names a control after its container, which the cosmetic layout renames
        container = "cphMain" if redesign == "cosmetic" else "MainContent"
        return {
            "w": words(redesign),
            "cosmetic": redesign == "cosmetic",
            "prefix": f"ctl00${container}$",
            "idp": f"{container}_",
            "action": request.url.path,
            "user": None,
            "errors": [],
            "notices": [],
            "merged": self.merged_plan,
            "plan_options": [(p.payer_id, p.name) for p in PLANS],
        }

    def render(
        self,
        request: Request,
        name: str,
        *,
        session: Session | None = None,
        page: PageState | None = None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        """A page; with ``page``, a form page whose new view state replaces the session's."""
        values = self.context(request)
        if session is not None and session.authenticated:
            account = self.state.accounts.get(session.username or "")
            values["user"] = account.display_name if account else "User"
        if session is not None and page is not None:
            issued = self.viewstates.issue(session, page)
            values.update(
                viewstate=issued.viewstate,
                eventvalidation=issued.eventvalidation,
                generator=hashlib.sha256(page.page.encode()).hexdigest()[:8].upper(),
            )
        values.update(context)
        response = self.templates.TemplateResponse(request, name, values, status_code=status)
        response.headers["Cache-Control"] = "private"
        return response

    def postback_error(self, request: Request) -> Response:
        """The framework's error page for a postback it cannot trust: a server error (500)."""
        return self.render(request, "postback_error.html", status=500)

    async def postback(
        self, request: Request, session: Session, page: str
    ) -> tuple[FormData, PageState] | Response:
        """The posted form and the page state its view state stands for, or the error page."""
        form = await request.form(max_files=MAX_FILES)
        state = self.viewstates.take(session, page, form)
        if state is None:
            return self.postback_error(request)
        return form, state

    # -- the plan picker, shared by every page that works for one plan ---------------------------

    @staticmethod
    def plan_of(page: PageState) -> Plan | None:
        return PLAN_BY_ID.get(page.plan or "")

    def offer_plans(self, page: PageState) -> None:
        page.allowed["ddlPlan"] = ("", *PLAN_BY_ID)

    def choose_plan(self, form: FormData, page: PageState, *, authorizations: bool = False) -> list[str]:
        """Take the posted plan (the "Select plan" step, or the plan inside the renamed form)."""
        plan = PLAN_BY_ID.get(text(form, "ddlPlan"))
        if plan is None:
            return [f"Select a {words(self.state.knobs.redesign)['plan'].lower()}."]
        if authorizations and not plan.authorizations:
            return [f"Authorization inquiry is not available for {plan.name}. Contact the plan directly."]
        page.plan = plan.payer_id
        return []

    # -- sign-in ---------------------------------------------------------------------------------

    def authenticated(self, handler: SignedInHandler) -> Handler:
        """A page for a signed-in session; counts the request against the session-expiry knob."""

        async def page(request: Request) -> Response:
            cookie = request.cookies.get(COOKIE)
            unfinished = self.state.sessions.get(cookie)
            if unfinished is not None and not unfinished.authenticated:
                return RedirectResponse(LOGIN, status_code=303)
            session, expired = signed_in(self.state, cookie)
            if session is None:
                return RedirectResponse(f"{LOGIN}?timeout=1" if expired else LOGIN, status_code=303)
            return await handler(request, session)

        return page

    def login_page(self, request: Request, session: Session, **context: Any) -> Response:
        page = PageState("login")  # no menu, even for a signed-in session that comes back here
        return self.render(request, "login.html", session=session, page=page, user=None, **context)

    async def login_form(self, request: Request) -> Response:
        if self.state.captcha_active():
            return self.render(request, "captcha.html")
        session = self.state.sessions.get(request.cookies.get(COOKIE))
        fresh = session is None
        session = session or self.state.sessions.new()
        notices = []
        if request.query_params.get("timeout"):
            notices.append("Your session has timed out. Please sign in again.")
        if request.query_params.get("signedout"):
            notices.append("You have signed out of PayerHub.")
        response = self.login_page(request, session, notices=notices)
        if fresh:
            response.set_cookie(COOKIE, session.id, httponly=True, samesite="lax")
        return response

    async def login_post(self, request: Request) -> Response:
        session = self.state.sessions.get(request.cookies.get(COOKIE))
        if session is None:  # no session, so no view state it could have been given
            return self.postback_error(request)
        got = await self.postback(request, session, "login")
        if isinstance(got, Response):
            return got
        form, _ = got
        username = text(form, "txtUserName")
        verdict = check_password(self.state, username, str(control(form, "txtPassword") or ""))
        if verdict == "captcha":
            return self.render(request, "captcha.html")
        if verdict == "locked":
            locked = "Your account is locked. Contact your PayerHub administrator."
            return self.login_page(request, session, errors=[locked], username=username)
        if verdict == "invalid":
            wrong = "The user name or password is incorrect."
            return self.login_page(request, session, errors=[wrong], username=username)
        if verdict == "password_expired":
            return self.render(request, "password_expired.html")
        new = start_session(self.state, session.id, username, "password_ok")
        response = RedirectResponse(VERIFY, status_code=303)
        response.set_cookie(COOKIE, new.id, httponly=True, samesite="lax")
        return response

    def pending(self, request: Request) -> Session | None:
        """The session between the password and the verification code."""
        session = self.state.sessions.get(request.cookies.get(COOKIE))
        ok = session is not None and session.stage == "password_ok" and session.username
        return session if ok else None

    def verify_page(self, request: Request, session: Session, **context: Any) -> Response:
        return self.render(request, "verify.html", session=session, page=PageState("verify"), **context)

    async def verify_form(self, request: Request) -> Response:
        session = self.pending(request)
        if session is None:
            return RedirectResponse(LOGIN, status_code=303)
        return self.verify_page(request, session)

    async def verify_post(self, request: Request) -> Response:
        session = self.pending(request)
        if session is None or session.username is None:
            return RedirectResponse(LOGIN, status_code=303)
        got = await self.postback(request, session, "verify")
        if isinstance(got, Response):
            return got
        form, _ = got
        self.state.count_second_factor_post(session.username)
        account = self.state.accounts.get(session.username)
        secret = account.totp_secret if account else None
        code = text(form, "txtCode")
        verdict = self.state.totp.check(session.username, secret, code) if secret else "invalid"
        if verdict == "reused":
            used = "That verification code has already been used. Wait for the next code."
            return self.verify_page(request, session, errors=[used])
        if verdict == "invalid":
            return self.verify_page(request, session, errors=["The verification code is incorrect."])
        session.stage, session.requests = "authenticated", 0
        return RedirectResponse(HOME, status_code=303)

    async def password_change(self, request: Request) -> Response:
        """The form a person would use; the bot must never fill it."""
        return self.render(
            request, "password_expired.html", errors=["Passwords cannot be changed in this sandbox."]
        )

    async def sign_out(self, request: Request) -> Response:
        session_id = request.cookies.get(COOKIE)
        if session_id:
            self.state.sessions.drop(session_id)
        response = RedirectResponse(f"{LOGIN}?signedout=1", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # -- home ------------------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return RedirectResponse(HOME, status_code=303)

    async def home(self, request: Request, session: Session) -> Response:
        return self.render(request, "home.html", session=session, page=PageState("home"), plans=PLANS)


def build_app(state: PortalState) -> Starlette:
    portal = PayerHub(state)
    auth = portal.authenticated
    routes = [
        Route("/", portal.root),
        Route(LOGIN, portal.login_form, methods=["GET"]),
        Route(LOGIN, portal.login_post, methods=["POST"]),
        Route(VERIFY, portal.verify_form, methods=["GET"]),
        Route(VERIFY, portal.verify_post, methods=["POST"]),
        Route("/Account/ChangePassword.aspx", portal.password_change, methods=["POST"]),
        Route("/Account/SignOut.aspx", portal.sign_out),
        Route(HOME, auth(portal.home)),
        *lookups.routes(portal),
        *reconsideration.routes(portal),
        control_routes(state),
    ]

    def maintenance(_: PortalState) -> str:
        template = portal.templates.get_template("maintenance.html")
        return template.render(w=words("none"), cosmetic=False, user=None, errors=[], notices=[])

    return Starlette(
        routes=routes, middleware=[Middleware(KnobsMiddleware, state=state, maintenance_page=maintenance)]
    )
