"""One sandbox portal's in-process state: data and truth, accounts, knobs, ledger and counters.

The app reads and writes it on the server's thread; a test reads and changes it from its own thread
(``SandboxServer.portal(payer)``), so every change goes through a lock. The same operations are
offered over HTTP under ``/__sandbox/`` (see ``sandbox.control``).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from sandbox.data import (
    EPOCH,
    Claim,
    Patient,
    PriorAuth,
    filed_under,
    generate,
    make_claim,
    make_pa,
    make_patient,
    unique,
)
from sandbox.knobs import Knobs
from sandbox.payers import DEFAULT_SEED, AccountSpec, SandboxAccount, SandboxPayer
from sandbox.sessions import CodeInbox, SessionStore, TotpGuard


class LedgerEntry(BaseModel):
    """One appeal the portal recorded, whatever its response said afterwards."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    appeal_number: str
    reference: str
    claim_number: str
    fill_date: date | None = None  # pharmacy claims are keyed by Rx number and fill date
    plan: str | None = None  # the claim's health plan, on a portal that serves several
    reason: str  # the bot.models.AppealReason value the portal's choice stands for
    explanation: str
    letter_filename: str
    letter_sha256: str
    attachments: tuple[str, ...] = ()
    form: dict[str, str] = {}  # the appeal form's other fields as received (AppealRequest.form_fields)
    username: str
    received_at: datetime


class PortalState:
    """Everything one sandbox payer knows and counts."""

    def __init__(self, payer: SandboxPayer, seed: int = DEFAULT_SEED) -> None:
        self.payer = payer
        self.payer_id = payer.payer_id
        self.seed = seed
        self.base_url: str | None = None  # set by the server once it listens
        self._lock = threading.RLock()
        self._knobs = Knobs()
        self._error_rng = random.Random()
        self._reseed_errors()
        self._data_rng = random.Random(f"{payer.payer_id}:{seed}:added")
        self._appeal_rng = random.Random(f"{payer.payer_id}:{seed}:appeals")
        self._taken: set[str] = set()

        data = generate(payer.data, f"{payer.payer_id}:{seed}")
        self.patients: list[Patient] = list(data.patients)
        # filed by number, or by plan and number where the payer has plans (``claim``, ``pa``)
        self.claims: dict[str, Claim] = {c.key: c for c in data.claims}
        self.pas: dict[str, PriorAuth] = {p.key: p for p in data.pas}
        self._taken |= {c.claim_number for c in data.claims} | {p.pa_number for p in data.pas}
        self.accounts: dict[str, SandboxAccount] = {a.username: a for a in payer.demo_accounts(seed)}

        self.ledger: list[LedgerEntry] = []
        self._recorded_at: dict[str, int] = {}  # appeal number -> the request count when recorded
        self.sessions = SessionStore()
        self.totp = TotpGuard()
        self.inbox = CodeInbox()  # codes sent by e-mail or SMS; read at /__sandbox/inbox/{username}
        self.login_posts: Counter[str] = Counter()
        self.second_factor_posts: Counter[str] = Counter()
        self.failed_logins: Counter[str] = Counter()
        self.requests = 0
        self.errors_injected = 0
        self.logins_since_knobs = 0
        self.requests_to_fail_path = 0  # requests to the fail_path knob's path since the knobs were set

    # -- knobs ---------------------------------------------------------------------------------

    @property
    def knobs(self) -> Knobs:
        return self._knobs

    def set_knobs(self, knobs: Knobs | Mapping[str, Any]) -> Knobs:
        """Replace every knob (missing ones take their default); reseeds the error draw and
        restarts the CAPTCHA count."""
        new = knobs if isinstance(knobs, Knobs) else Knobs.model_validate(dict(knobs))
        with self._lock:
            self._knobs = new
            self._reseed_errors()
            self.logins_since_knobs = 0
            self.requests_to_fail_path = 0
        return new

    def update_knobs(self, **changes: Any) -> Knobs:
        return self.set_knobs(self._knobs.with_changes(**changes))

    def _reseed_errors(self) -> None:
        self._error_rng.seed(f"{self.payer_id}:{self.seed}:errors:{self._knobs.error_seed}")

    def draw_error(self, path: str = "") -> int | None:
        """The status to fail the response to ``path`` with, or None: the first of
        ``error_statuses`` for a request to ``fail_path`` past its first ``fail_after`` and within
        its next ``fail_times``, else one drawn from the seeded generator (a request to
        ``fail_path`` draws nothing, so the same seed fails the same other requests)."""
        with self._lock:
            knobs = self._knobs
            if knobs.fail_path is not None and path.startswith(knobs.fail_path):
                self.requests_to_fail_path += 1
                if knobs.fail_after < self.requests_to_fail_path <= knobs.fail_after + knobs.fail_times:
                    self.errors_injected += 1
                    return knobs.error_statuses[0]
                return None
            if knobs.error_rate <= 0 or self._error_rng.random() >= knobs.error_rate:
                return None
            self.errors_injected += 1
            return self._error_rng.choice(knobs.error_statuses)

    def reset(self, *, everything: bool = False) -> None:
        """Knobs back to default; with ``everything`` also the ledger, counters, sessions,
        one-time-code memory and inbox (accounts and claims added since startup stay)."""
        with self._lock:
            self.set_knobs(Knobs())
            if everything:
                self.ledger.clear()
                self._recorded_at.clear()
                self.login_posts.clear()
                self.second_factor_posts.clear()
                self.failed_logins.clear()
                self.requests = 0
                self.errors_injected = 0
                self.sessions.clear()
                self.totp.clear()
                self.inbox.clear()

    # -- counters ------------------------------------------------------------------------------

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def count_login_post(self, username: str) -> None:
        with self._lock:
            self.login_posts[username] += 1
            self.logins_since_knobs += 1

    def count_second_factor_post(self, username: str) -> None:
        with self._lock:
            self.second_factor_posts[username] += 1

    def count_failed_login(self, username: str) -> int:
        with self._lock:
            self.failed_logins[username] += 1
            return self.failed_logins[username]

    def clear_failed_logins(self, username: str) -> None:
        with self._lock:
            self.failed_logins.pop(username, None)

    def captcha_active(self) -> bool:
        limit = self._knobs.captcha_after_logins
        return limit is not None and self.logins_since_knobs >= limit

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "payer": self.payer_id,
                "requests": self.requests,
                "errors_injected": self.errors_injected,
                "login_posts": dict(self.login_posts),
                "second_factor_posts": dict(self.second_factor_posts),
                "failed_logins": dict(self.failed_logins),
                "appeals": len(self.ledger),
                "sessions": len(self.sessions),
            }

    # -- accounts and data ---------------------------------------------------------------------

    def add_account(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        account: str | None = None,
        display_name: str = "Canary User",
        totp_secret: str | None = None,
        security_answers: Mapping[str, str] | None = None,
    ) -> SandboxAccount:
        """Add a login (a canary account in tests). Unnamed parts are made up, uniquely."""
        username = username or f"canary-{uuid.uuid4().hex[:10]}"
        spec = AccountSpec(
            account=account or username,
            username=username,
            password=password or f"Canary-{uuid.uuid4().hex[:12]}!",
            display_name=display_name,
            security_answers=tuple((security_answers or {}).items()),
        )
        made = self.payer.account(spec, self.seed)
        if totp_secret is not None:
            made = made.model_copy(update={"totp_secret": totp_secret})
        with self._lock:
            if username in self.accounts:
                raise ValueError(f"{self.payer_id}: username '{username}' already exists")
            self.accounts[username] = made
        return made

    def add_patient(self, **overrides: Any) -> Patient:
        with self._lock:
            patient = make_patient(self.payer.data, self._data_rng)
            patient = patient.model_copy(update=overrides)
            self.patients.append(patient)
            return patient

    def claim(self, claim_number: str, plan: str | None = None) -> Claim | None:
        """The claim with this number (in this plan, on a payer with plans)."""
        return self.claims.get(filed_under(claim_number, plan))

    def pa(self, pa_number: str, plan: str | None = None) -> PriorAuth | None:
        """The prior authorization with this number (in this plan, on a payer with plans)."""
        return self.pas.get(filed_under(pa_number, plan))

    def _plan(self, overrides: dict[str, Any], plans: tuple[str, ...]) -> None:
        """On a payer with plans, a new claim or PA belongs to the named plan, else the first."""
        if not plans:
            return
        plan = overrides.setdefault("plan", plans[0])
        if plan not in plans:
            raise ValueError(f"{self.payer_id}: no plan {plan!r} (known: {', '.join(plans)})")

    def add_claim(self, wording: str | None = None, *, newest: bool = False, **overrides: Any) -> Claim:
        """Add a claim worded like one of the payer's kinds (default: its first kind). ``newest``
        dates it a day after every other claim, so it heads any newest-first list whatever else the
        sandbox holds: a run then reads the same pages (and a session-expiry knob counts the same
        requests) in any test order. On a payer with plans, ``plan`` names its plan (default: the
        first), and ``claim_number`` may repeat a number of another plan."""
        spec = self.payer.data
        kind = spec.claim_kind(wording) if wording else spec.claim_kinds[0]
        self._plan(overrides, spec.plans)
        with self._lock:
            if newest:
                latest = max((c.service_date for c in self.claims.values()), default=EPOCH)
                overrides["service_date"] = latest + timedelta(days=1)
            patient = overrides.pop("patient", None) or self.add_patient()
            number = overrides.pop("claim_number", None) or unique(
                spec.claim_number, self._data_rng, self._taken
            )
            if filed_under(number, overrides.get("plan")) in self.claims:
                raise ValueError(f"{self.payer_id}: claim {number} already exists")
            claim = make_claim(kind, patient, number, self._data_rng, **overrides)
            self.claims[claim.key] = claim
            self._taken.add(number)
            return claim

    def add_pa(self, decision: str | None = None, **overrides: Any) -> PriorAuth:
        spec = self.payer.data
        kind = spec.pa_kind(decision) if decision else spec.pa_kinds[0]
        self._plan(overrides, spec.plans_for_pas())
        with self._lock:
            patient = overrides.pop("patient", None) or self.add_patient()
            number = overrides.pop("pa_number", None) or unique(spec.pa_number, self._data_rng, self._taken)
            if filed_under(number, overrides.get("plan")) in self.pas:
                raise ValueError(f"{self.payer_id}: PA {number} already exists")
            service = overrides.pop("service", None) or self._data_rng.choice(spec.services)
            pa = make_pa(kind, patient, number, service, self._data_rng, **overrides)
            self.pas[pa.key] = pa
            self._taken.add(number)
            return pa

    def truth(self) -> dict[str, Any]:
        with self._lock:
            plans = {"plans": list(self.payer.data.plans)} if self.payer.data.plans else {}
            return {
                "payer": self.payer_id,
                "seed": self.seed,
                **plans,
                "claims": [c.truth() for c in self.claims.values()],
                "pas": [p.truth() for p in self.pas.values()],
            }

    # -- the ledger ----------------------------------------------------------------------------

    def record_appeal(self, **fields: Any) -> LedgerEntry:
        """Record an appeal and give it the payer's appeal number."""
        with self._lock:
            number = unique(self.payer.appeal_number, self._appeal_rng, self._taken)
            entry = LedgerEntry(appeal_number=number, received_at=datetime.now(UTC), **fields)
            self.ledger.append(entry)
            self._recorded_at[number] = self.requests
            return entry

    def ledger_entries(self, *, reference: str | None = None) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self.ledger if reference is None or e.reference == reference]

    def history_entries(self, *, default_lag: int = 0) -> list[LedgerEntry]:
        """The ledger as a lagging appeal history shows it: an entry appears only once the portal
        has served more than ``history_lag_requests`` requests (the knob, else ``default_lag``)
        since it was recorded. The lag is read now, so turning the knob down shows entries at once."""
        with self._lock:
            lag = self._knobs.history_lag_requests
            lag = default_lag if lag is None else lag
            return [e for e in self.ledger if self.requests - self._recorded_at.get(e.appeal_number, 0) > lag]
