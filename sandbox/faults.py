"""The nastiest case, shared by every app: a submit recorded server-side whose response fails.

An app records the submission first, then hands its real response to ``after_recording``, which
applies ``slow_confirmation_ms`` and ``record_then_fail`` ("502": a gateway error page; "drop": the
status line, headers and part of the page, then the connection closes mid-body).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.middleware import plain_error_page
from sandbox.state import PortalState


class ConnectionDropped(Exception):
    """The sandbox dropped a connection mid-response on purpose."""


class DroppedResponse:
    """Promise the whole page, send its start (never the part that confirms), then drop."""

    def __init__(self, page: bytes) -> None:
        cut = page.find(b"<main")
        self.partial = page[: cut if cut > 0 else len(page) // 3]
        self.promised = len(page)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(self.promised).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})
        # the server closes a connection whose app fails after the response started
        raise ConnectionDropped


async def after_recording(state: PortalState, response: Response) -> ASGIApp:
    """The response to a submit that is already in the ledger, as the knobs want it."""
    knobs = state.knobs
    if knobs.slow_confirmation_ms:
        await asyncio.sleep(knobs.slow_confirmation_ms / 1000)  # the simulated server, not the bot
    if knobs.record_then_fail == "502":
        return HTMLResponse(plain_error_page(state, 502), status_code=502)
    if knobs.record_then_fail == "drop":
        return DroppedResponse(bytes(response.body))
    return response


class AsgiResponse(Response):
    """Lets a route hand back any ASGI app (a dropped connection) where Starlette wants a Response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


async def respond_after_recording(state: PortalState, response: Response) -> Response:
    """``after_recording`` as a route's return value."""
    return AsgiResponse(await after_recording(state, response))


class HideDeliberateDrops(logging.Filter):
    """Keep the server's error log for real errors: a deliberate drop is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # a simulated delay cancelled when the server stops is not an error either
        return not isinstance(exc, ConnectionDropped | asyncio.CancelledError)
