"""BluePeak Benefits: a single-page app over a JSON API, with a security-question sign-in."""

from __future__ import annotations

import random

from sandbox.bluepeak.app import build_app
from sandbox.bluepeak.wording import CLAIM_KINDS, PA_KINDS, SECURITY_QUESTIONS
from sandbox.data import DataSpec
from sandbox.payers import AccountSpec, SandboxPayer


def claim_number(rng: random.Random) -> str:
    return f"BP-{rng.randrange(10**8, 10**9)}"


def pa_number(rng: random.Random) -> str:
    return f"BPA-{rng.randrange(10**5, 10**6)}"


def member_id(rng: random.Random) -> str:
    return f"BPK{rng.randrange(10**9):09d}"


def appeal_number(rng: random.Random) -> str:
    return f"BPA-APL-{rng.randrange(10**7, 10**8)}"


PAYER = SandboxPayer(
    payer_id="bluepeak",
    display_name="BluePeak Benefits",
    data=DataSpec(
        claim_kinds=CLAIM_KINDS,
        pa_kinds=PA_KINDS,
        claim_number=claim_number,
        pa_number=pa_number,
        member_id=member_id,
        services=(
            "CT abdomen with contrast",
            "Total knee replacement",
            "Occupational therapy",
            "Insulin pump",
            "Polysomnography",
            "Specialty infusion",
        ),
    ),
    accounts=(
        AccountSpec(
            "bluepeak-billing",
            "bp.billing",
            "BluePeak-Demo-2026!",
            "Casey Claims",
            security_answers=(
                ("What was the name of your first pet?", "Juniper"),
                ("In what city were you born?", "Halifax"),
                ("What was the make of your first car?", "Pontiac"),
            ),
        ),
        AccountSpec(
            "bluepeak-appeals",
            "bp.appeals",
            "Appeals-Peak-2026!",
            "Morgan Appeals",
            security_answers=(
                ("What is the name of the street you grew up on?", "Maple Row"),
                ("What was your childhood nickname?", "Sparky"),
            ),
        ),
    ),
    appeal_number=appeal_number,
    build_app=build_app,
    second_factor="security_questions",
    security_questions=SECURITY_QUESTIONS,
)
