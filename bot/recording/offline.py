"""Serving an offline replay from a kept, scrubbed network log.

Playwright's ``route_from_har`` matches a request by its exact URL, method and body. A kept HAR
was scrubbed: its form bodies lost their values, and its URLs lost every value the run registered
(the claim number in Meridian's ``/claims?claim_number=...``) and the values of patient-data query
keys. So a replayed request could never match its recorded twin. Here each recorded URL becomes a
pattern in which a scrubbed value matches any one value, and a live request is answered by the
first recorded answer of the same method whose pattern matches it, in recorded order (the last one
again once all were served). A request the recording has no answer for is aborted: nothing
reaches the network.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Request, Route

from bot.recording.scrub import mask_query_values
from bot.redact import MASK

# headers that describe the recorded transfer, not the answer: the body is served decoded, whole
_TRANSFER_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "set-cookie"})
# a scrubbed value as it may stand in a URL: as written, or percent-encoded by the recorder
_MASKED = "|".join(re.escape(form) for form in (MASK, "%5Bredacted%5D", "%5bredacted%5d"))
_MASK_IN_URL = re.compile(_MASKED)


def url_pattern(recorded_url: str) -> re.Pattern[str]:
    """The recorded URL, each scrubbed value standing for one value (no URL delimiter in it)."""
    parts = _MASK_IN_URL.split(recorded_url)
    return re.compile(r"[^/?&#=]*".join(re.escape(p) for p in parts))


@dataclass
class _Answer:
    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: bytes
    served: bool = False


def _answer(entry: dict[str, Any]) -> _Answer | None:
    request, response = entry.get("request", {}), entry.get("response", {})
    status = int(response.get("status") or 0)
    if status <= 0 or not request.get("url"):  # a request that failed when recorded: no answer
        return None
    content = response.get("content") or {}
    text = content.get("text") or ""
    body = base64.b64decode(text) if content.get("encoding") == "base64" else str(text).encode()
    headers = {
        str(h["name"]): str(h["value"])
        for h in response.get("headers", [])
        if isinstance(h, dict) and str(h.get("name", "")).lower() not in _TRANSFER_HEADERS
    }
    method = str(request.get("method", "GET")).upper()
    return _Answer(method, url_pattern(request["url"]), status, headers, body)


@dataclass
class HarRouter:
    """A ``context.route`` handler that answers from a HAR file and aborts everything else."""

    answers: list[_Answer] = field(default_factory=list)

    @classmethod
    def load(cls, har: Path) -> HarRouter:
        entries = json.loads(har.read_text(encoding="utf-8")).get("log", {}).get("entries", [])
        return cls([a for a in map(_answer, entries) if a is not None])

    def find(self, method: str, url: str) -> _Answer | None:
        # the live URL masked as the recorder masked patient-data query keys
        live = mask_query_values(url)
        matching = [a for a in self.answers if a.method == method.upper() and a.pattern.fullmatch(live)]
        if not matching:
            return None
        return next((a for a in matching if not a.served), matching[-1])

    def __call__(self, route: Route, request: Request) -> None:
        answer = self.find(request.method, request.url)
        if answer is None:
            route.abort()
            return
        answer.served = True
        route.fulfill(status=answer.status, headers=answer.headers, body=answer.body)
