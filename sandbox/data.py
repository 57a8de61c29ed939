"""Synthetic, seeded portal data: patients, claims with their X12 truth, prior authorizations.

Every payer describes its data with a ``DataSpec``: which kinds of claims and PAs it holds, how many
of each, in its own wording, and how its numbers look. ``generate`` turns a spec and a seed into the
same data every time. Denial and adjustment codes are drawn from the shipped CARC/RARC lists, and
pharmacy reject codes from the shipped NCPDP list, so any active code can appear on a sandbox page.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from bot.status import HCR01, PaDecision

# Fixed, so that data does not drift with the day the tests run.
EPOCH = date(2026, 1, 5)

FIRST_NAMES = (
    "Avery", "Blake", "Camila", "Dorian", "Elena", "Farid", "Greta", "Hiro", "Imani", "Jonas",
    "Keira", "Luca", "Mara", "Nikhil", "Odette", "Pavel", "Quinn", "Rosa", "Soren", "Talia",
    "Umar", "Vera", "Wendell", "Ximena", "Yusuf", "Zora",
)  # fmt: skip
LAST_NAMES = (
    "Abernathy", "Brightwater", "Castellano", "Delacroix", "Eriksen", "Fairweather", "Galloway",
    "Hollister", "Ingram", "Jablonski", "Kowalczyk", "Lindqvist", "Montoya", "Nakamura", "Okafor",
    "Pemberton", "Quintero", "Ravensworth", "Sandoval", "Thornbury", "Underhill", "Valdivia",
)  # fmt: skip


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Patient(Frozen):
    first_name: str
    last_name: str
    member_id: str
    date_of_birth: date

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


Payment = Literal["full", "partial", "none", "pending"]


@dataclass(frozen=True)
class ClaimKind:
    """One line of a payer's claim vocabulary: its X12 truth, its wording, how many to seed."""

    category: str
    status_code: str | None
    wording: str
    count: int
    payment: Payment
    carc: tuple[int, int] = (0, 0)  # how many CARC codes, at least and at most
    rarc: tuple[int, int] = (0, 0)
    ncpdp: tuple[int, int] = (0, 0)  # how many NCPDP reject codes (pharmacy claims)
    ncpdp_first: tuple[str, ...] = ()  # when given, the first reject code is one of these
    appealable: bool | None = None  # None: any finalized (F) claim can be appealed


class Claim(Frozen):
    claim_number: str
    patient: Patient
    service_date: date
    billed: Decimal
    paid: Decimal | None
    category: str
    status_code: str | None
    wording: str
    carc: tuple[str, ...] = ()
    rarc: tuple[str, ...] = ()
    ncpdp: tuple[str, ...] = ()  # NCPDP reject codes, the primary reject first
    appeal_allowed: bool | None = None  # the payer's own rule, where it is not "finalized"
    plan: str | None = None  # its health plan, on a portal that serves several

    @property
    def appealable(self) -> bool:
        return self.category.startswith("F") if self.appeal_allowed is None else self.appeal_allowed

    @property
    def key(self) -> str:
        return filed_under(self.claim_number, self.plan)

    def truth(self) -> dict[str, Any]:
        return {
            **({"plan": self.plan} if self.plan is not None else {}),
            "claim_number": self.claim_number,
            "category": self.category,
            "status_code": self.status_code,
            "carc": list(self.carc),
            "rarc": list(self.rarc),
            "ncpdp": list(self.ncpdp),
            "paid": str(self.paid) if self.paid is not None else None,
            "wording": self.wording,
        }


@dataclass(frozen=True)
class PaKind:
    decision: PaDecision
    wording: str
    count: int
    dated: bool = False  # shows valid-from/to dates
    reasons: tuple[str, ...] = ()


class PriorAuth(Frozen):
    pa_number: str
    patient: Patient
    service: str
    decision: PaDecision
    wording: str
    valid_from: date | None = None
    valid_to: date | None = None
    reason: str | None = None
    plan: str | None = None  # its health plan, on a portal that serves several

    @property
    def key(self) -> str:
        return filed_under(self.pa_number, self.plan)

    def truth(self) -> dict[str, Any]:
        return {
            **({"plan": self.plan} if self.plan is not None else {}),
            "pa_number": self.pa_number,
            "decision": self.decision.value,
            "hcr01": HCR01[self.decision][0],
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "reason": self.reason,
            "wording": self.wording,
        }


NumberMaker = Callable[[random.Random], str]


def filed_under(number: str, plan: str | None = None) -> str:
    """The key a portal's state files a claim or PA under: its number, prefixed by its plan on a
    portal that serves several plans (there a number is unique only within its plan)."""
    return number if plan is None else f"{plan}:{number}"


@dataclass(frozen=True)
class DataSpec:
    """How one payer's data looks."""

    claim_kinds: tuple[ClaimKind, ...]
    pa_kinds: tuple[PaKind, ...]
    claim_number: NumberMaker
    pa_number: NumberMaker
    member_id: NumberMaker
    services: tuple[str, ...] = ("Office visit", "MRI lumbar spine", "Physical therapy", "Infusion")
    patients: int = 30
    extra: dict[str, Any] = field(default_factory=dict)
    # A multi-plan portal (a clearinghouse) names its plans; each claim and PA then belongs to one.
    plans: tuple[str, ...] = ()
    pa_plans: tuple[str, ...] | None = None  # the plans that answer PA lookups (None: all)
    twin_claims: int = 0  # claim numbers that a second plan uses too, for another claim

    def plans_for_pas(self) -> tuple[str, ...]:
        return self.plans if self.pa_plans is None else self.pa_plans

    def claim_kind(self, wording: str) -> ClaimKind:
        for kind in self.claim_kinds:
            if kind.wording == wording:
                return kind
        known = ", ".join(k.wording for k in self.claim_kinds)
        raise ValueError(f"no claim kind worded {wording!r} (known: {known})")

    def pa_kind(self, decision: PaDecision | str) -> PaKind:
        for kind in self.pa_kinds:
            if kind.decision == decision:
                return kind
        raise ValueError(f"no PA kind for decision {decision!r}")


class SeededData(Frozen):
    patients: tuple[Patient, ...]
    claims: tuple[Claim, ...]
    pas: tuple[PriorAuth, ...]


@cache
def _active(system: CodeSystem) -> tuple[str, ...]:
    return tuple(c.code for c in shipped_codelists().active_codes(system))


def make_patient(spec: DataSpec, rng: random.Random) -> Patient:
    dob = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 75 * 365))
    return Patient(
        first_name=rng.choice(FIRST_NAMES),
        last_name=rng.choice(LAST_NAMES),
        member_id=spec.member_id(rng),
        date_of_birth=dob,
    )


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def make_claim(
    kind: ClaimKind, patient: Patient, claim_number: str, rng: random.Random, **overrides: Any
) -> Claim:
    billed = _money(rng.uniform(85, 4800))
    paid: Decimal | None = {
        "full": _money(float(billed) * rng.uniform(0.7, 0.95)),
        "partial": _money(float(billed) * rng.uniform(0.2, 0.6)),
        "none": Decimal("0.00"),
        "pending": None,
    }[kind.payment]
    carc = tuple(sorted(rng.sample(_active(CodeSystem.CARC), rng.randint(*kind.carc)), key=_code_key))
    rarc = tuple(sorted(rng.sample(_active(CodeSystem.RARC), rng.randint(*kind.rarc)), key=_code_key))
    values: dict[str, Any] = {
        "claim_number": claim_number,
        "patient": patient,
        "service_date": EPOCH - timedelta(days=rng.randrange(5, 200)),
        "billed": billed,
        "paid": paid,
        "category": kind.category,
        "status_code": kind.status_code,
        "wording": kind.wording,
        "carc": carc,
        "rarc": rarc,
    }
    if kind.ncpdp != (0, 0):  # drawn only for kinds that have them: other payers' data stays the same
        values["ncpdp"] = _ncpdp_codes(kind, rng)
    if kind.appealable is not None:
        values["appeal_allowed"] = kind.appealable
    return Claim.model_validate({**values, **overrides})


def _ncpdp_codes(kind: ClaimKind, rng: random.Random) -> tuple[str, ...]:
    """The primary reject (from ``ncpdp_first`` when given), then others from the whole list."""
    count = rng.randint(*kind.ncpdp)
    if count == 0:
        return ()
    every = _active(CodeSystem.NCPDP_REJECT)
    first = rng.choice(kind.ncpdp_first or every)
    return (first, *rng.sample([c for c in every if c != first], count - 1))


def _code_key(code: str) -> tuple[str, int]:
    digits = "".join(ch for ch in code if ch.isdigit())
    return (code.rstrip("0123456789"), int(digits or 0))


def make_pa(
    kind: PaKind, patient: Patient, pa_number: str, service: str, rng: random.Random, **overrides: Any
) -> PriorAuth:
    valid_from = valid_to = None
    if kind.dated:
        valid_from = EPOCH + timedelta(days=rng.randrange(-90, 30))
        valid_to = valid_from + timedelta(days=rng.choice((30, 90, 180, 365)))
    values: dict[str, Any] = {
        "pa_number": pa_number,
        "patient": patient,
        "service": service,
        "decision": kind.decision,
        "wording": kind.wording,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "reason": rng.choice(kind.reasons) if kind.reasons else None,
    }
    return PriorAuth.model_validate({**values, **overrides})


def unique(maker: NumberMaker, rng: random.Random, taken: set[str]) -> str:
    for _ in range(1000):
        number = maker(rng)
        if number not in taken:
            taken.add(number)
            return number
    raise RuntimeError("could not draw a fresh number in 1000 tries")


def generate(spec: DataSpec, key: str) -> SeededData:
    """The payer's data for one seed (``key`` is e.g. ``"meridian:7"``): the same on every run."""
    rng = random.Random(key)
    patients = tuple(make_patient(spec, rng) for _ in range(spec.patients))
    taken: set[str] = set()
    claim_kinds = [k for k in spec.claim_kinds for _ in range(k.count)]
    rng.shuffle(claim_kinds)
    claims = tuple(
        make_claim(kind, rng.choice(patients), unique(spec.claim_number, rng, taken), rng)
        for kind in claim_kinds
    )
    pa_kinds = [k for k in spec.pa_kinds for _ in range(k.count)]
    rng.shuffle(pa_kinds)
    pas = tuple(
        make_pa(
            kind, rng.choice(patients), unique(spec.pa_number, rng, taken), rng.choice(spec.services), rng
        )
        for kind in pa_kinds
    )
    if spec.plans:  # drawn after everything else: the data of a portal without plans stays the same
        claims, pas = _spread_over_plans(spec, claims, pas, patients, rng)
    return SeededData(patients=patients, claims=claims, pas=pas)


def _spread_over_plans(
    spec: DataSpec,
    claims: tuple[Claim, ...],
    pas: tuple[PriorAuth, ...],
    patients: tuple[Patient, ...],
    rng: random.Random,
) -> tuple[tuple[Claim, ...], tuple[PriorAuth, ...]]:
    """Give every claim and PA a plan, then reuse ``twin_claims`` claim numbers in another plan for
    a claim of another wording: a claim number alone then does not tell which claim is meant."""
    placed = [c.model_copy(update={"plan": rng.choice(spec.plans)}) for c in claims]
    twins = []
    for original in rng.sample(placed, min(spec.twin_claims, len(placed)) if len(spec.plans) > 1 else 0):
        kind = rng.choice([k for k in spec.claim_kinds if k.wording != original.wording])
        plan = rng.choice([p for p in spec.plans if p != original.plan])
        twins.append(make_claim(kind, rng.choice(patients), original.claim_number, rng, plan=plan))
    pa_plans = spec.plans_for_pas()
    placed_pas = tuple(p.model_copy(update={"plan": rng.choice(pa_plans)}) for p in pas)
    return (*placed, *twins), placed_pas
