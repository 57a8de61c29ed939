"""RFC 6238 one-time codes, each time step used at most once per account across every process.

A code is only handed out after its time step was claimed in the database
(``UPDATE accounts SET totp_last_step = :step WHERE ... AND totp_last_step < :step``), which one
process wins; the loser waits for the next step. A code with under ``min_remaining`` seconds left
is not sent either (it could expire between typing and the portal's check): the wait goes through
the injected clock, so tests drive it with ``ManualClock`` and never sleep.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp

from bot.clock import Clock
from bot.errors import TotpStepBusy, VaultError

DIGESTS: dict[str, Callable[..., object]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = 1_000_000


@dataclass(frozen=True)
class TotpSpec:
    """A TOTP generator's parameters. The secret is base32; it never shows in a repr."""

    secret: str = field(repr=False)
    digits: int = 6
    interval: int = 30
    digest: str = "sha1"

    def to_json(self) -> bytes:
        return json.dumps(
            {"secret": self.secret, "digits": self.digits, "interval": self.interval, "digest": self.digest}
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TotpSpec:
        raw = json.loads(data)
        return cls(raw["secret"], int(raw["digits"]), int(raw["interval"]), str(raw["digest"]))

    def _totp(self) -> pyotp.TOTP:
        return pyotp.TOTP(
            self.secret, digits=self.digits, interval=self.interval, digest=DIGESTS[self.digest]
        )

    def step_at(self, at: datetime) -> int:
        return micros(at) // (self.interval * MICRO)

    def code_for_step(self, step: int) -> str:
        return self._totp().generate_otp(step)

    def code_at(self, at: datetime) -> str:
        return self.code_for_step(self.step_at(at))


def micros(at: datetime) -> int:
    """Microseconds since the epoch, exactly (float seconds would drift at step boundaries)."""
    return (at - EPOCH) // timedelta(microseconds=1)


def parse_totp(text: str, *, where: str = "totp_secret") -> TotpSpec:
    """A base32 secret (spaces and case ignored) or an ``otpauth://totp/...`` URI.

    Errors name ``where`` and what is wrong, never the value.
    """
    text = text.strip()
    if text.lower().startswith("otpauth://"):
        parts = urlsplit(text)
        if parts.netloc.lower() != "totp":
            raise VaultError(f"{where}: only otpauth://totp/ URIs are supported")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        secret = unquote(query.get("secret", ""))
        try:
            digits = int(query.get("digits", "6"))
            interval = int(query.get("period", "30"))
        except ValueError:
            raise VaultError(f"{where}: digits and period must be whole numbers") from None
        digest = query.get("algorithm", "SHA1").lower()
    else:
        secret, digits, interval, digest = text, 6, 30, "sha1"
    secret = "".join(secret.split()).upper().rstrip("=")
    if not secret:
        raise VaultError(f"{where}: the TOTP secret is empty")
    try:
        decoded = base64.b32decode(secret + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError):
        raise VaultError(f"{where}: the TOTP secret is not base32") from None
    if len(decoded) < 10:
        raise VaultError(f"{where}: the TOTP secret is {len(decoded)} bytes; RFC 4226 asks for 16+")
    if digest not in DIGESTS:
        raise VaultError(f"{where}: algorithm must be one of {', '.join(d.upper() for d in DIGESTS)}")
    if not 6 <= digits <= 10:
        raise VaultError(f"{where}: digits must be 6 to 10")
    if not 10 <= interval <= 300:
        raise VaultError(f"{where}: period must be 10 to 300 seconds")
    return TotpSpec(secret, digits, interval, digest)


class TotpCodes:
    """A ``CodeSource``: each call claims a fresh time step for the account and returns its code.

    ``load_spec`` decrypts the secret, and runs only when a code is asked for. ``claim(step)`` is
    the atomic database claim, true when this caller won the step.
    """

    def __init__(
        self,
        name: str,
        load_spec: Callable[[], TotpSpec],
        claim: Callable[[int], bool],
        clock: Clock,
        *,
        min_remaining: float = 5.0,
        max_wait_steps: int = 3,
    ) -> None:
        self.name = name
        self._load_spec = load_spec
        self._claim = claim
        self._clock = clock
        self.min_remaining = min_remaining
        self.max_wait_steps = max_wait_steps

    def __call__(self) -> str:
        spec = self._load_spec()
        step_us = spec.interval * MICRO
        give_up = micros(self._clock.now()) + (self.max_wait_steps + 1) * step_us
        while True:
            now = micros(self._clock.now())
            step, into = divmod(now, step_us)
            left_us = step_us - into
            if left_us < self.min_remaining * MICRO:
                self._clock.sleep(left_us / MICRO)  # too close to the step's end to type it
                continue
            if self._claim(step):
                return spec.code_for_step(step)
            if now + left_us > give_up:
                raise TotpStepBusy(
                    f"{self.name}: no unused TOTP time step within {self.max_wait_steps} steps; "
                    "another process keeps logging in, or its clock runs ahead of this one"
                )
            self._clock.sleep(left_us / MICRO)  # this step's code was used: wait for the next

    def __repr__(self) -> str:
        return f"TotpCodes({self.name})"
