"""Server-side sessions and one-time-code checks (TOTP, codes sent out of band), shared by the
sandbox apps.

Sessions live in the portal's state (not in signed cookies) so that a test can see and end them,
and so that the session-expiry knob can count a session's authenticated requests.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pyotp

Stage = Literal["anonymous", "password_ok", "authenticated"]


@dataclass
class Session:
    id: str
    username: str | None = None
    stage: Stage = "anonymous"
    requests: int = 0
    data: dict[str, Any] = field(default_factory=dict)  # the app's own: wizard drafts, ...

    @property
    def authenticated(self) -> bool:
        return self.stage == "authenticated"


class SessionStore:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def new(self) -> Session:
        session = Session(id=secrets.token_urlsafe(24))
        with self._lock:
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(session_id)

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def count_request(self, session: Session, limit: int | None) -> bool:
        """Count one authenticated request; False (and the session is gone) once past ``limit``."""
        with self._lock:
            session.requests += 1
            if limit is not None and session.requests > limit:
                self._sessions.pop(session.id, None)
                return False
            return True

    def for_user(self, username: str) -> list[Session]:
        with self._lock:
            return [s for s in self._sessions.values() if s.username == username]

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


TotpVerdict = Literal["ok", "reused", "invalid"]


class TotpGuard:
    """RFC 6238 checks with replay protection (section 5.2): a code at or before the last accepted
    time step of the same user is refused, even inside the clock-skew window."""

    def __init__(self, *, skew_steps: int = 1) -> None:
        self.skew_steps = skew_steps
        self._last_step: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, username: str, secret: str, code: str, *, at: float | None = None) -> TotpVerdict:
        totp = pyotp.TOTP(secret)
        now_step = int((time.time() if at is None else at) // totp.interval)
        code = code.strip()
        matched = None
        for step in range(now_step - self.skew_steps, now_step + self.skew_steps + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                matched = step
                break
        if matched is None:
            return "invalid"
        with self._lock:
            if matched <= self._last_step.get(username, -1):
                return "reused"
            self._last_step[username] = matched
        return "ok"

    def clear(self) -> None:
        with self._lock:
            self._last_step.clear()


CodeVerdict = Literal["ok", "used", "expired", "invalid"]


@dataclass
class SentCode:
    code: str
    sent_at: float
    used: bool = False


class CodeInbox:
    """One-time codes a portal "sends" by e-mail or SMS, and the inbox they land in.

    Only a user's newest code is valid; it works once and expires ``ttl`` seconds after it was sent.
    The inbox keeps showing the newest code after it was used, as a mailbox would (the bot's poll
    skips a code that was already there before its login). ``now`` is handed in so that a test can
    age a code without waiting.
    """

    def __init__(self, *, ttl: float = 300.0, now: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.now = now
        self._codes: dict[str, SentCode] = {}
        self._lock = threading.Lock()

    def send(self, username: str) -> SentCode:
        with self._lock:
            previous = self._codes.get(username)
            code = f"{secrets.randbelow(10**6):06d}"
            while previous is not None and code == previous.code:  # a new code must look new
                code = f"{secrets.randbelow(10**6):06d}"
            sent = SentCode(code=code, sent_at=self.now())
            self._codes[username] = sent
            return sent

    def latest(self, username: str) -> SentCode | None:
        with self._lock:
            return self._codes.get(username)

    def check(self, username: str, code: str) -> CodeVerdict:
        with self._lock:
            sent = self._codes.get(username)
            if sent is None or not hmac.compare_digest(sent.code, code.strip()):
                return "invalid"
            if sent.used:
                return "used"
            if self.now() - sent.sent_at > self.ttl:
                return "expired"
            sent.used = True
            return "ok"

    def clear(self) -> None:
        with self._lock:
            self._codes.clear()
