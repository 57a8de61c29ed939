"""PayerHub: a clearinghouse-style multi-payer portal. One sign-in (password, then TOTP) serves
several health plans; pages post back to themselves with a view state (an older server framework);
an appeal is a reconsideration request with an upload."""

from __future__ import annotations

import random

from sandbox.data import DataSpec
from sandbox.payerhub.app import build_app
from sandbox.payerhub.wording import CLAIM_KINDS, PA_KINDS, PLANS
from sandbox.payers import AccountSpec, SandboxPayer

LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def claim_number(rng: random.Random) -> str:
    """A payer's internal control number: region, two-digit year, day of the year, sequence."""
    day = rng.randrange(1, 366)
    return f"{rng.randrange(10, 40)}{rng.choice((25, 26))}{day:03d}{rng.randrange(10**6):06d}"


def member_id(rng: random.Random) -> str:
    """Three letters (the plan's alpha prefix) and nine digits, as on a member's card."""
    prefix = "".join(rng.choice(LETTERS) for _ in range(3))
    return f"{prefix}{rng.randrange(10**9):09d}"


def authorization_number(rng: random.Random) -> str:
    return f"AU{rng.randrange(10**8):08d}"


def reconsideration_number(rng: random.Random) -> str:
    return f"PHR-{rng.randrange(10**8, 10**9)}"


PAYER = SandboxPayer(
    payer_id="payerhub",
    display_name="PayerHub",
    data=DataSpec(
        claim_kinds=CLAIM_KINDS,
        pa_kinds=PA_KINDS,
        claim_number=claim_number,
        pa_number=authorization_number,
        member_id=member_id,
        services=(
            "MRI brain without contrast",
            "Hip arthroplasty",
            "Cardiac rehabilitation",
            "Home oxygen",
            "Genetic panel",
            "Outpatient infusion",
        ),
        patients=40,
        plans=tuple(p.name for p in PLANS),
        pa_plans=tuple(p.name for p in PLANS if p.authorizations),
        twin_claims=4,
    ),
    accounts=(
        AccountSpec("payerhub-billing", "ph.billing", "PayerHub-Demo-2026!", "Dana Billing"),
        AccountSpec("payerhub-appeals", "ph.appeals", "Reconsider-Demo-2026!", "Lee Reconsider"),
    ),
    appeal_number=reconsideration_number,
    build_app=build_app,
    second_factor="totp",
)
