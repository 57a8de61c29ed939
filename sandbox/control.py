"""Out-of-band control of a sandbox portal under ``/__sandbox/``, never linked from its pages.

``GET ledger | truth | stats | accounts``, ``GET/POST knobs`` (POST replaces every knob),
``POST reset`` (knobs back to default; ``?all=1`` also clears ledger, counters and sessions),
``POST accounts`` and ``POST claims`` (add a canary account or claim to the running portal),
``GET inbox/{username}`` (the newest one-time code the portal sent by e-mail or SMS:
``{"code", "sent_at", "expires_at"}``, or nulls when none was sent).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from sandbox.middleware import CONTROL_PREFIX
from sandbox.state import PortalState


def _bad(message: str, details: Any = None) -> JSONResponse:
    return JSONResponse({"error": message, "details": details}, status_code=422)


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return _bad("the body must be a JSON object")
    if not isinstance(body, dict):
        return _bad("the body must be a JSON object")
    return body


def control_routes(state: PortalState) -> Mount:
    async def ledger(request: Request) -> JSONResponse:
        reference = request.query_params.get("reference")
        return JSONResponse([e.model_dump(mode="json") for e in state.ledger_entries(reference=reference)])

    async def truth(request: Request) -> JSONResponse:
        return JSONResponse(state.truth())

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(state.stats())

    async def knobs(request: Request) -> JSONResponse:
        if request.method == "POST":
            body = await _json_body(request)
            if isinstance(body, JSONResponse):
                return body
            try:
                state.set_knobs(body)
            except ValidationError as exc:
                return _bad("invalid knobs", exc.errors(include_input=False, include_url=False))
        return JSONResponse(state.knobs.model_dump(mode="json"))

    async def reset(request: Request) -> JSONResponse:
        state.reset(everything=request.query_params.get("all") in {"1", "true", "yes"})
        return JSONResponse({"knobs": state.knobs.model_dump(mode="json"), "stats": state.stats()})

    async def accounts(request: Request) -> JSONResponse:
        if request.method == "POST":
            body = await _json_body(request)
            if isinstance(body, JSONResponse):
                return body
            try:
                made = state.add_account(**body)
            except (TypeError, ValueError) as exc:
                return _bad(str(exc))
            return JSONResponse(made.model_dump(mode="json"), status_code=201)
        return JSONResponse([a.model_dump(mode="json") for a in state.accounts.values()])

    async def claims(request: Request) -> JSONResponse:
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        try:
            claim = state.add_claim(**body)
        except (TypeError, ValueError) as exc:
            return _bad(str(exc))
        return JSONResponse(claim.truth(), status_code=201)

    async def inbox(request: Request) -> JSONResponse:
        sent = state.inbox.latest(request.path_params["username"])
        if sent is None:
            return JSONResponse({"code": None, "sent_at": None, "expires_at": None})

        def iso(at: float) -> str:
            return datetime.fromtimestamp(at, UTC).isoformat()

        expires = iso(sent.sent_at + state.inbox.ttl)
        return JSONResponse({"code": sent.code, "sent_at": iso(sent.sent_at), "expires_at": expires})

    return Mount(
        CONTROL_PREFIX,
        routes=[
            Route("/ledger", ledger),
            Route("/truth", truth),
            Route("/stats", stats),
            Route("/knobs", knobs, methods=["GET", "POST"]),
            Route("/reset", reset, methods=["POST"]),
            Route("/accounts", accounts, methods=["GET", "POST"]),
            Route("/claims", claims, methods=["POST"]),
            Route("/inbox/{username}", inbox),
        ],
    )
