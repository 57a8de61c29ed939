"""The sign-in rules every sandbox portal shares: the password step and the signed-in check.

``check_password`` decides what a login POST answers (CAPTCHA, lockout, the ``reject_password`` and
``password_expired`` knobs) and counts it; each app renders the verdict its own way (a page, a JSON
error). ``signed_in`` finds the session behind a request and applies the session-expiry knob.
"""

from __future__ import annotations

import hmac
from typing import Literal

from sandbox.sessions import Session, Stage
from sandbox.state import PortalState

LOCK_AFTER_FAILURES = 5

PasswordVerdict = Literal["captcha", "locked", "invalid", "password_expired", "ok"]


def check_password(state: PortalState, username: str, password: str) -> PasswordVerdict:
    """Count one login POST and judge it. A CAPTCHA shown before the POST refuses it, whatever it holds."""
    captcha = state.captcha_active()
    state.count_login_post(username)
    if captcha:
        return "captcha"
    if state.failed_logins[username] >= LOCK_AFTER_FAILURES:
        return "locked"
    account = state.accounts.get(username)
    known = account is not None and hmac.compare_digest(account.password.encode(), password.encode())
    if not known or state.knobs.reject_password:
        state.count_failed_login(username)
        return "invalid"
    state.clear_failed_logins(username)
    if state.knobs.password_expired:
        return "password_expired"
    return "ok"


def start_session(state: PortalState, old_id: str | None, username: str, stage: Stage) -> Session:
    """A fresh session for ``username`` (never a reused id), ending the one the browser had."""
    if old_id is not None:
        state.sessions.drop(old_id)
    session = state.sessions.new()
    session.username, session.stage = username, stage
    return session


def signed_in(state: PortalState, session_id: str | None) -> tuple[Session | None, bool]:
    """The signed-in session of ``session_id``, counted against the expiry knob, or ``(None,
    expired)``: a session id the portal no longer knows (or never finished) is an expired session,
    no id at all is a first visit."""
    session = state.sessions.get(session_id)
    if session is None or not session.authenticated:
        return None, session_id is not None
    if not state.sessions.count_request(session, state.knobs.session_expiry_requests):
        return None, True
    return session, False
