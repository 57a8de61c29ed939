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
from bot.status import CERTIFIED, HCR01, Hcr01, composite_of, hcr01_of

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
    entity: str | None = None  # STC01-3, where the status code names an entity
    detail: str | None = None  # the second status code saying what (after 21 or 294)
    code_list: str | None = None  # "RX": the status code is the claim's primary NCPDP reject
    closed_rejects: frozenset[str] = frozenset()  # primary rejects the payer takes no appeal of


PATIENT_SHARE_CARC = frozenset({"1", "2", "3"})  # deductible, coinsurance, copay


@dataclass(frozen=True)
class Adjustment:
    """One CARC on a claim with its group code (CO, PR, OA, PI) and amount."""

    group: str
    code: str
    amount: Decimal


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


class Claim(Frozen):
    claim_number: str
    patient: Patient
    service_date: date
    billed: Decimal
    paid: Decimal | None
    category: str
    status_code: str | None
    wording: str
    entity: str | None = None
    detail_code: str | None = None
    code_list: str | None = None
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

    @property
    def adjustments(self) -> tuple[Adjustment, ...]:
        """Each CARC with its group and amount: what was billed and not paid, split over the codes.
        Deductible, coinsurance and copay (CARC 1-3) are the patient's (PR); the others are drawn
        per claim from CO, OA and PI, with a generator of the claim's own, so that no other data
        changes."""
        if not self.carc or self.paid is None:
            return ()
        rng = random.Random(f"{self.claim_number}:{self.plan}:adjustments")
        cents, parts = int((self.billed - self.paid) * 100), len(self.carc)
        cuts = sorted(rng.randint(0, cents) for _ in range(parts - 1))
        shares = [b - a for a, b in zip([0, *cuts], [*cuts, cents], strict=True)]
        return tuple(
            Adjustment(
                "PR" if code in PATIENT_SHARE_CARC else rng.choice(("CO", "CO", "CO", "OA", "PI")),
                code,
                (Decimal(share) / 100).quantize(Decimal("0.01")),
            )
            for code, share in zip(self.carc, shares, strict=True)
        )

    @property
    def patient_responsibility(self) -> Decimal | None:
        """What the patient owes: the PR adjustments (none before the claim is adjudicated)."""
        if self.paid is None:
            return None
        return sum((a.amount for a in self.adjustments if a.group == "PR"), Decimal("0.00"))

    @property
    def facts(self) -> tuple[Any, ...]:
        """What a claim check must read back, as ``bot.status.claim_facts`` gives it of a result."""
        amounts = (str(self.billed), _text(self.paid), _text(self.patient_responsibility))
        adjusted = tuple((a.group, a.code, str(a.amount)) for a in self.adjustments)
        return (*self.composite, *amounts, adjusted)

    @property
    def composite(self) -> tuple[Any, ...]:
        """Its STC01 composite's parts and second code, as ``bot.status.composite_of`` gives them."""
        return composite_of(self.truth())

    def truth(self) -> dict[str, Any]:
        return {
            **({"plan": self.plan} if self.plan is not None else {}),
            "claim_number": self.claim_number,
            "category": self.category,
            "status_code": self.status_code,
            "entity": self.entity,
            "detail_code": self.detail_code,
            "code_list": self.code_list,
            "carc": list(self.carc),
            "rarc": list(self.rarc),
            "ncpdp": list(self.ncpdp),
            "billed": str(self.billed),
            "paid": str(self.paid) if self.paid is not None else None,
            "patient_responsibility": _text(self.patient_responsibility),
            "adjustments": [
                {"group": a.group, "code": a.code, "amount": str(a.amount)} for a in self.adjustments
            ],
            "wording": self.wording,
        }


@dataclass(frozen=True)
class PaKind:
    """One line of a payer's PA vocabulary: its X12 278 HCR01 code (or NR), its wording, how many."""

    hcr01: Hcr01
    wording: str
    count: int
    dated: bool = False  # shows valid-from/to dates
    reasons: tuple[str, ...] = ()
    reason_codes: tuple[str, ...] = ()  # the code the page shows beside each reason (HCR03), if any
    # drawn after all other data with a random stream of its own: a kind added to a payer later
    # leaves the PAs (and everything else) the seed already gave the same
    late: bool = False


class PriorAuth(Frozen):
    pa_number: str
    patient: Patient
    service: str
    hcr01: Hcr01
    wording: str
    valid_from: date | None = None
    valid_to: date | None = None
    reason: str | None = None
    plan: str | None = None  # its health plan, on a portal that serves several
    certification_number: str | None = None  # granted ones (A1, A2, A6)
    units_requested: int | None = None
    units_approved: int | None = None
    reason_code: str | None = None

    @property
    def decision(self) -> str:
        """The project's word for its code (approved, modified, not_required...)."""
        return HCR01[self.hcr01][1]

    @property
    def key(self) -> str:
        return filed_under(self.pa_number, self.plan)

    def truth(self) -> dict[str, Any]:
        return {
            **({"plan": self.plan} if self.plan is not None else {}),
            "pa_number": self.pa_number,
            "hcr01": self.hcr01.value,
            "decision": self.decision,
            "certification_number": self.certification_number,
            "units_requested": self.units_requested,
            "units_approved": self.units_approved,
            "reason_code": self.reason_code,
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

    def pa_kind(self, decision: str) -> PaKind:
        """The first kind with this HCR01 code, named as a code (``A1``) or by its word (``approved``)."""
        code = hcr01_of(decision)
        for kind in self.pa_kinds:
            if kind.hcr01 == code:
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
        "entity": kind.entity,
        "detail_code": kind.detail,
        "code_list": kind.code_list,
        "wording": kind.wording,
        "carc": carc,
        "rarc": rarc,
    }
    if kind.ncpdp != (0, 0):  # drawn only for kinds that have them: other payers' data stays the same
        values["ncpdp"] = _ncpdp_codes(kind, rng)
    if kind.appealable is not None:
        values["appeal_allowed"] = kind.appealable
    merged = {**values, **overrides}
    if kind.code_list == "RX" and merged.get("ncpdp"):  # a pharmacy 277 names its primary reject
        merged["status_code"] = merged["ncpdp"][0]
        if merged["ncpdp"][0] in kind.closed_rejects and "appeal_allowed" not in overrides:
            merged["appeal_allowed"] = False
    return Claim.model_validate(merged)


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
    reason = rng.choice(kind.reasons) if kind.reasons else None
    values: dict[str, Any] = {
        "pa_number": pa_number,
        "patient": patient,
        "service": service,
        "hcr01": kind.hcr01,
        "wording": kind.wording,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "reason": reason,
        **_pa_details(kind, pa_number, reason),
    }
    return PriorAuth.model_validate({**values, **overrides})


def _pa_details(kind: PaKind, pa_number: str, reason: str | None) -> dict[str, Any]:
    """Its certification number and units (granted ones) and its reason's code, from a random
    stream of the PA's own: drawing them leaves every other draw of the seed as it was."""
    code = kind.reason_codes[kind.reasons.index(reason)] if reason and kind.reason_codes else None
    if kind.hcr01 not in CERTIFIED:
        return {"reason_code": code}
    rng = random.Random(f"pa-details:{pa_number}")
    requested = rng.randrange(2, 31)
    approved = requested if kind.hcr01 == Hcr01.A1 else rng.randrange(1, requested)
    return {
        "certification_number": f"C{rng.randrange(10**9, 10**10)}",
        "units_requested": requested,
        "units_approved": approved,
        "reason_code": code,
    }


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
    pa_kinds = [k for k in spec.pa_kinds if not k.late for _ in range(k.count)]
    rng.shuffle(pa_kinds)
    pas = tuple(
        make_pa(
            kind, rng.choice(patients), unique(spec.pa_number, rng, taken), rng.choice(spec.services), rng
        )
        for kind in pa_kinds
    )
    if spec.plans:  # drawn after everything else: the data of a portal without plans stays the same
        claims, pas = _spread_over_plans(spec, claims, pas, patients, rng)
    return SeededData(patients=patients, claims=claims, pas=(*pas, *_late_pas(spec, key, patients, taken)))


def _late_pas(
    spec: DataSpec, key: str, patients: tuple[Patient, ...], taken: set[str]
) -> tuple[PriorAuth, ...]:
    """The PAs of kinds added later (``PaKind.late``), from a random stream of their own."""
    rng = random.Random(f"{key}:late-pas")
    out = []
    for kind in (k for k in spec.pa_kinds if k.late for _ in range(k.count)):
        patient, number = rng.choice(patients), unique(spec.pa_number, rng, taken)
        pa = make_pa(kind, patient, number, rng.choice(spec.services), rng)
        out.append(pa.model_copy(update={"plan": rng.choice(spec.plans_for_pas())}) if spec.plans else pa)
    return tuple(out)


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
