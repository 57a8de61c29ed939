"""PayerHub's view state: the hidden fields of an older server framework (ASP.NET WebForms style).

Every page PayerHub renders carries ``__VIEWSTATE`` and ``__EVENTVALIDATION``: server-signed
tokens, new on every page. The page's own state (the chosen plan, the search, the page of results,
the rows shown) stays on the server beside the newest token of the session, so the hidden fields
carry no patient data. A postback must bring back the newest pair the session was given, for the
page it posts to, and choose only values that page offered (event validation); anything else is
refused, and the app answers with the framework's "Invalid postback or callback argument" page.
A token is used up by the postback that brings it, so a form posted twice is refused the second time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.payerhub.forms import control
from sandbox.sessions import Session

VIEWSTATE = "__VIEWSTATE"
EVENTVALIDATION = "__EVENTVALIDATION"
_ISSUED = "__viewstate"  # where the newest token and its page state live in the session


@dataclass
class PageState:
    """What a WebForms page keeps between its postbacks."""

    page: str
    plan: str | None = None  # the chosen plan's payer id
    criteria: dict[str, str] = field(default_factory=dict)  # the search that was run
    index: int = 0  # the page of results shown
    rows: tuple[str, ...] = ()  # the record keys of the rows shown (a grid's data keys)
    record: str | None = None  # the claim or authorization opened, by its key
    # event validation: the values each control was rendered with, by control id
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Issued:
    viewstate: str
    eventvalidation: str
    state: PageState


class ViewStates:
    """Issues and checks the hidden fields of one portal's pages."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)
        self._lock = threading.Lock()

    def _sign(self, session: Session, page: str, nonce: bytes, kind: str) -> str:
        message = f"{kind}|{session.id}|{page}|".encode() + nonce
        mac = hmac.new(self._key, message, hashlib.sha256).digest()[:20]
        return base64.b64encode(nonce + mac).decode()

    def issue(self, session: Session, state: PageState) -> Issued:
        """New hidden fields for a page about to be rendered; they replace the session's older ones."""
        nonce = secrets.token_bytes(16)
        issued = Issued(
            viewstate="/wEPDw" + self._sign(session, state.page, nonce, "vs"),
            eventvalidation="/wEdA" + self._sign(session, state.page, nonce, "ev"),
            state=state,
        )
        with self._lock:
            session.data[_ISSUED] = issued
        return issued

    def take(self, session: Session, page: str, form: Mapping[str, Any]) -> PageState | None:
        """The page state a postback stands for, using its token up; None when the postback is
        invalid (missing, forged or stale view state, another page's, or a value not offered)."""
        with self._lock:
            issued = session.data.get(_ISSUED)
            if not isinstance(issued, Issued) or issued.state.page != page:
                return None
            sent_vs, sent_ev = str(form.get(VIEWSTATE, "")), str(form.get(EVENTVALIDATION, ""))
            if not (
                hmac.compare_digest(sent_vs, issued.viewstate)
                and hmac.compare_digest(sent_ev, issued.eventvalidation)
            ):
                return None
            for control_id, offered in issued.state.allowed.items():
                value = control(form, control_id)
                if value is not None and str(value) not in offered:
                    return None
            del session.data[_ISSUED]
            return issued.state
