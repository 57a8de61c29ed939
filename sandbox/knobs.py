"""The failure knobs of a sandbox portal, set per test (in process) or per run (over HTTP).

Generic knobs (latency, error rate, maintenance) are applied by ``sandbox.middleware`` to every app;
the others are hooks each app reads where its pages would show them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Redesign = Literal["none", "cosmetic", "renamed"]
RecordThenFail = Literal["none", "502", "drop"]
ErrorStatus = Annotated[int, Field(ge=400, le=599)]


class Knobs(BaseModel):
    """How a sandbox portal misbehaves. Defaults: a healthy, fast portal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(default=0, ge=0, le=120_000, description="added to every response")
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="share of responses that fail")
    error_statuses: tuple[ErrorStatus, ...] = Field(default=(500, 502, 503), min_length=1)
    error_seed: int = Field(default=0, description="seeds the error draw; replacing the knobs reseeds it")
    fail_path: str | None = Field(
        default=None,
        pattern=r"^/",
        description="requests whose path starts with this: after the first fail_after of them, the next "
        "fail_times fail with the first of error_statuses, whatever error_rate draws (counted since "
        "the knobs were set)",
    )
    fail_after: int = Field(default=0, ge=0, le=100_000)
    fail_times: int = Field(default=1, ge=0, le=100_000)
    maintenance: bool = Field(default=False, description="every page is a 503 maintenance page")
    session_expiry_requests: int | None = Field(
        default=None, ge=1, description="a session dies after this many authenticated requests"
    )
    captcha_after_logins: int | None = Field(
        default=None, ge=0, description="after this many login POSTs (since the knobs were set), a CAPTCHA"
    )
    redesign: Redesign = "none"
    slow_confirmation_ms: int = Field(default=0, ge=0, le=120_000, description="delay after recording")
    record_then_fail: RecordThenFail = "none"
    reject_password: bool = Field(default=False, description="refuse correct credentials")
    password_expired: bool = Field(default=False, description="demand a password change after login")
    history_lag_requests: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="a recorded appeal shows in the portal's history only after this many more requests "
        "(None: the portal's own lag; portals without a lagging history ignore it)",
    )

    def with_changes(self, **changes: object) -> Knobs:
        """A copy with some knobs changed, validated like a fresh model."""
        return Knobs.model_validate({**self.model_dump(), **changes})
