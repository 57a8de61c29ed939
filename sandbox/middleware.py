"""The generic knobs, as ASGI middleware every sandbox app wraps itself in.

Order per request: count it, add latency, answer with the maintenance page, or with an injected
error (one aimed at a path by ``fail_path``, or drawn from the seeded generator), else pass on to
the app. ``/__sandbox/`` is never touched, so a test can always read the ledger and turn knobs back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from html import escape
from http import HTTPStatus

from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.state import PortalState

CONTROL_PREFIX = "/__sandbox"

PageMaker = Callable[[PortalState], str]
ErrorPageMaker = Callable[[PortalState, int], str]


def plain_maintenance_page(state: PortalState) -> str:
    name = escape(state.payer.display_name)
    return (
        f"<!doctype html><html lang=en><head><title>{name}: scheduled maintenance</title></head>"
        f"<body><main><h1>Scheduled maintenance</h1><p>{name} is down for scheduled maintenance. "
        "Please try again later.</p></main></body></html>"
    )


def plain_error_page(state: PortalState, status: int) -> str:
    """What a load balancer in front of a portal answers: no portal chrome at all."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return (
        f"<!doctype html><html><head><title>{status} {phrase}</title></head>"
        f"<body><center><h1>{status} {phrase}</h1></center><hr><center>gateway</center></body></html>"
    )


class KnobsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        state: PortalState,
        *,
        maintenance_page: PageMaker = plain_maintenance_page,
        error_page: ErrorPageMaker = plain_error_page,
    ) -> None:
        self.app = app
        self.state = state
        self.maintenance_page = maintenance_page
        self.error_page = error_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        self.state.count_request()
        knobs = self.state.knobs
        if knobs.latency_ms:
            # the simulated server is slow; the bot under test must wait on the page, not a timer
            await asyncio.sleep(knobs.latency_ms / 1000)
        if knobs.maintenance:
            page = self.maintenance_page(self.state)
            await HTMLResponse(page, status_code=503, headers={"Retry-After": "900"})(scope, receive, send)
            return
        status = self.state.draw_error(scope["path"])
        if status is not None:
            await HTMLResponse(self.error_page(self.state, status), status_code=status)(scope, receive, send)
            return
        await self.app(scope, receive, send)
