"""Meridian Health: a classic server-rendered provider portal with a TOTP step and an appeal wizard."""

from __future__ import annotations

import random

from sandbox.data import DataSpec
from sandbox.meridian.app import build_app
from sandbox.meridian.wording import CLAIM_KINDS, PA_KINDS
from sandbox.payers import AccountSpec, SandboxPayer


def claim_number(rng: random.Random) -> str:
    return f"MH{rng.choice((2025, 2026))}{rng.randrange(10**6):06d}"


def pa_number(rng: random.Random) -> str:
    return f"MPA{rng.randrange(10**7):07d}"


def member_id(rng: random.Random) -> str:
    return f"MHM{rng.randrange(10**8):08d}"


def appeal_number(rng: random.Random) -> str:
    return f"MA-{rng.randrange(10**7, 10**8)}"


PAYER = SandboxPayer(
    payer_id="meridian",
    display_name="Meridian Health",
    data=DataSpec(
        claim_kinds=CLAIM_KINDS,
        pa_kinds=PA_KINDS,
        claim_number=claim_number,
        pa_number=pa_number,
        member_id=member_id,
        services=(
            "MRI lumbar spine",
            "Knee arthroscopy",
            "Outpatient physical therapy",
            "Continuous glucose monitor",
            "Sleep study",
            "Home infusion therapy",
        ),
    ),
    accounts=(
        AccountSpec("meridian-billing", "mh.billing", "Meridian-Demo-2026!", "Pat Biller"),
        AccountSpec("meridian-appeals", "mh.appeals", "Appeals-Demo-2026!", "Alex Appealson"),
        AccountSpec("meridian-viewer", "mh.viewer", "Viewer-Demo-2026!", "Robin Viewer"),
    ),
    appeal_number=appeal_number,
    build_app=build_app,
    second_factor="totp",
)
