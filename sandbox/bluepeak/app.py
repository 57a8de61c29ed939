"""BluePeak Benefits' provider center: one HTML shell, a plain-JS app, and a JSON API.

The server answers every ``/app/*`` path with the same shell; the app (``static/app.js``) routes on
the client with ``history.pushState`` and draws each view from the API (``/api/*``, see ``api`` and
``appeals``). The shell carries the words of the current redesign, so the app draws what the knobs
say; all generic knobs apply to the shell, the script and the API alike.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sandbox.bluepeak.api import BluePeakApi
from sandbox.bluepeak.appeals import Appeals
from sandbox.bluepeak.wording import (
    APPEAL_FIELDS,
    APPEAL_LEVELS,
    APPEAL_REASONS,
    FILING_LIMITS,
    LATE,
    REQUIRED_FIELDS,
    words,
)
from sandbox.control import control_routes
from sandbox.middleware import KnobsMiddleware
from sandbox.state import PortalState

STATIC = Path(__file__).parent / "static"

SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{brand}</title>
<link rel="stylesheet" href="/static/app.css">
<script id="bp-config" type="application/json">{config}</script>
<script>
// defined before the app's script tag: its error event fires before the parser reads on
function bpLoadFailed() {{
  document.querySelector("[data-root]").innerHTML = '<div role="alert" class="app-error">'
    + '<h2>Something went wrong</h2><p>BluePeak could not load. Please try again later.</p></div>';
}}
</script>
</head>
<body class="{body_class}">
<div id="{root_id}" data-root><div class="spinner" role="progressbar" aria-label="Loading"></div></div>
<div class="toasts" aria-live="polite" data-toasts></div>
<script src="/static/app.js" onerror="bpLoadFailed()"></script>
</body>
</html>
"""


class Revalidated(StaticFiles):
    """The app's files, revalidated on every load (they carry no version in their names), so the
    knobs reach the script and style sheet of every page load, not only the first."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def shell(state: PortalState) -> str:
    redesign = state.knobs.redesign
    config = {
        "redesign": redesign,
        "words": words(redesign),
        "reasons": [[value, label] for value, label, _ in APPEAL_REASONS],
        # the appeal dialog's fields, and the filing limit it checks before anything is sent
        "levels": [[value, label, FILING_LIMITS[level]] for value, label, level in APPEAL_LEVELS],
        "fields": [[name, name in REQUIRED_FIELDS] for name in APPEAL_FIELDS],
        "late": LATE,
    }
    cosmetic = redesign == "cosmetic"
    return SHELL.format(
        brand=escape(words(redesign)["brand"]),
        config=json.dumps(config).replace("</", "<\\/"),
        body_class="pk-v2" if cosmetic else "bp",
        root_id="pk-app-root" if cosmetic else "app",
    )


def build_app(state: PortalState) -> Starlette:
    api = BluePeakApi(state)
    appeals = Appeals(api)
    auth, view = api.authenticated, api.viewing

    async def app_shell(request: Request) -> Response:
        return HTMLResponse(shell(state))

    async def root(request: Request) -> Response:
        return RedirectResponse("/app/claims", status_code=303)

    routes = [
        Route("/", root),
        Route("/app", app_shell),
        Route("/app/{path:path}", app_shell),
        Mount("/static", Revalidated(directory=STATIC), name="static"),
        Route("/api/session", api.session_info),
        Route("/api/login", api.login, methods=["POST"]),
        Route("/api/login/answer", api.answer, methods=["POST"]),
        Route("/api/logout", api.logout, methods=["POST"]),
        Route("/api/terms", auth(api.accept_terms), methods=["POST"]),
        Route("/api/claims", view(api.claims)),
        Route("/api/claims/{record}", view(api.claim)),
        Route("/api/pas", view(api.pas)),
        Route("/api/pas/{record}", view(api.pa)),
        Route("/api/appeals", view(appeals.history), methods=["GET"]),
        Route("/api/appeals", auth(appeals.submit), methods=["POST"]),
        control_routes(state),
    ]
    return Starlette(routes=routes, middleware=[Middleware(KnobsMiddleware, state=state)])
