"""Meridian Health's provider portal: a classic server-rendered app.

Sign-in (password, then a TOTP step), claim and prior-authorization lookups, and (in ``wizard``)
the multi-page appeal wizard and appeal history. Sessions are server-side (``state.sessions``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
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
from sandbox.meridian import wizard
from sandbox.meridian.wording import CODE_TYPES, words
from sandbox.middleware import KnobsMiddleware
from sandbox.sessions import Session
from sandbox.state import PortalState

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "mh_session"

Handler = Callable[[Request], Awaitable[Response]]


def us_date(value: date | None) -> str:
    return value.strftime("%m/%d/%Y") if value else "—"


def money(value: Decimal | None) -> str:
    return f"${value:,.2f}" if value is not None else "—"


class Meridian:
    """The pages; one instance per running portal, around its state."""

    def __init__(self, state: PortalState) -> None:
        self.state = state
        self.templates = Jinja2Templates(directory=TEMPLATES)
        self.templates.env.filters["us_date"] = us_date
        self.templates.env.filters["money"] = money

    # -- shared page plumbing --------------------------------------------------------------------

    def render(self, request: Request, name: str, *, status: int = 200, **context: Any) -> Response:
        redesign = self.state.knobs.redesign
        context = {
            "w": words(redesign),
            "cosmetic": redesign == "cosmetic",
            "redesign": redesign,
            "user": None,
            "errors": [],
            "notices": [],
            **context,
        }
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def session_of(self, request: Request) -> Session | None:
        return self.state.sessions.get(request.cookies.get(COOKIE))

    def user_name(self, session: Session) -> str:
        account = self.state.accounts.get(session.username or "")
        return account.display_name if account else "User"

    def authenticated(self, handler: Callable[[Request, Session], Awaitable[Response]]) -> Handler:
        """Run the page for a signed-in session; count the request against the expiry knob."""

        async def page(request: Request) -> Response:
            session, expired = signed_in(self.state, request.cookies.get(COOKIE))
            if session is None:
                return RedirectResponse("/login?expired=1" if expired else "/login", status_code=303)
            return await handler(request, session)

        return page

    def signed_in_page(self, request: Request, session: Session, name: str, **context: Any) -> Response:
        return self.render(request, name, user=self.user_name(session), **context)

    # -- sign-in -------------------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        if self.state.captcha_active():
            return self.render(request, "captcha.html")
        notices = []
        if request.query_params.get("expired"):
            notices.append("Your session has expired. Please sign in again.")
        if request.query_params.get("signed_out"):
            notices.append("You have signed out.")
        return self.render(request, "login.html", notices=notices)

    async def login_post(self, request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        verdict = check_password(self.state, username, password)
        if verdict == "captcha":
            return self.render(request, "captcha.html")
        if verdict == "locked":
            return self.render(
                request, "login.html", errors=["Your account is locked. Contact your administrator."]
            )
        if verdict == "invalid":
            return self.render(
                request, "login.html", errors=["Invalid username or password"], username=username
            )
        if verdict == "password_expired":
            return self.render(request, "password_expired.html")
        old = self.session_of(request)
        session = start_session(self.state, old.id if old else None, username, "password_ok")
        response = RedirectResponse("/login/verify", status_code=303)
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="lax")
        return response

    async def verify_form(self, request: Request) -> Response:
        session = self.session_of(request)
        if session is None or session.stage != "password_ok":
            return RedirectResponse("/login", status_code=303)
        return self.render(request, "verify.html")

    async def verify_post(self, request: Request) -> Response:
        session = self.session_of(request)
        if session is None or session.stage != "password_ok" or session.username is None:
            return RedirectResponse("/login", status_code=303)
        form = await request.form()
        self.state.count_second_factor_post(session.username)
        account = self.state.accounts.get(session.username)
        secret = account.totp_secret if account else None
        verdict = (
            self.state.totp.check(session.username, secret, str(form.get("code", "")))
            if secret
            else "invalid"
        )
        if verdict == "reused":
            return self.render(request, "verify.html", errors=["This code has already been used"])
        if verdict == "invalid":
            return self.render(request, "verify.html", errors=["The one-time code is not valid"])
        session.stage, session.requests = "authenticated", 0
        return RedirectResponse("/dashboard", status_code=303)

    async def password_change(self, request: Request) -> Response:
        """The form a person would use; the bot must never fill it."""
        return self.render(request, "password_expired.html", errors=["Password changes are not available"])

    async def logout(self, request: Request) -> Response:
        session = self.session_of(request)
        if session is not None:
            self.state.sessions.drop(session.id)
        response = RedirectResponse("/login?signed_out=1", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # -- lookups -------------------------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return RedirectResponse("/dashboard", status_code=303)

    async def dashboard(self, request: Request, session: Session) -> Response:
        return self.signed_in_page(request, session, "dashboard.html")

    async def claims(self, request: Request, session: Session) -> Response:
        number = request.query_params.get("claim_number", "").strip().upper()
        claim = self.state.claims.get(number) if number else None
        codes = []
        if claim is not None:
            lists = shipped_codelists()
            codes = [  # each adjustment with its group and amount, then the remarks
                (
                    CODE_TYPES["carc"],
                    a.group,
                    a.code,
                    lists.describe(CodeSystem.CARC, a.code),
                    money(a.amount),
                )
                for a in claim.adjustments
            ]
            codes += [(CODE_TYPES["rarc"], "", c, lists.describe(CodeSystem.RARC, c), "") for c in claim.rarc]
        return self.signed_in_page(
            request, session, "claims.html", query=number, claim=claim, codes=codes, searched=bool(number)
        )

    async def authorizations(self, request: Request, session: Session) -> Response:
        number = request.query_params.get("pa_number", "").strip().upper()
        pa = self.state.pas.get(number) if number else None
        return self.signed_in_page(
            request, session, "authorizations.html", query=number, pa=pa, searched=bool(number)
        )


def build_app(state: PortalState) -> Starlette:
    portal = Meridian(state)
    auth = portal.authenticated
    routes = [
        Route("/", portal.root),
        Route("/login", portal.login_form, methods=["GET"]),
        Route("/login", portal.login_post, methods=["POST"]),
        Route("/login/verify", portal.verify_form, methods=["GET"]),
        Route("/login/verify", portal.verify_post, methods=["POST"]),
        Route("/password", portal.password_change, methods=["POST"]),
        Route("/logout", portal.logout),
        Route("/dashboard", auth(portal.dashboard)),
        Route("/claims", auth(portal.claims)),
        Route("/authorizations", auth(portal.authorizations)),
        *wizard.routes(portal),
        control_routes(state),
    ]

    def maintenance(_: PortalState) -> str:
        template = portal.templates.get_template("maintenance.html")
        return template.render(w=words("none"), cosmetic=False, user=None, errors=[], notices=[])

    return Starlette(
        routes=routes, middleware=[Middleware(KnobsMiddleware, state=state, maintenance_page=maintenance)]
    )
