"""RxPress PBM: an old-style pharmacy benefit manager portal with frames, a code sent by e-mail,
NCPDP reject codes and a redetermination history that lags."""

from __future__ import annotations

import random

from sandbox.data import DataSpec
from sandbox.payers import AccountSpec, SandboxPayer
from sandbox.rxpress.app import build_app
from sandbox.rxpress.wording import CLAIM_KINDS, DRUGS, PA_KINDS


def rx_number(rng: random.Random) -> str:
    return f"{rng.randrange(10**6, 10**7)}"


def pa_number(rng: random.Random) -> str:
    return f"RXPA{rng.randrange(10**6):06d}"


def cardholder_id(rng: random.Random) -> str:
    return f"RXC{rng.randrange(10**9):09d}"


def redetermination_number(rng: random.Random) -> str:
    return f"RD-{rng.randrange(10**7, 10**8)}"


PAYER = SandboxPayer(
    payer_id="rxpress",
    display_name="RxPress PBM",
    data=DataSpec(
        claim_kinds=CLAIM_KINDS,
        pa_kinds=PA_KINDS,
        claim_number=rx_number,
        pa_number=pa_number,
        member_id=cardholder_id,
        services=DRUGS,
    ),
    accounts=(
        AccountSpec("rxpress-pharmacy", "rx.pharmacy", "RxPress-Demo-2026!", "Sam Pharmacist"),
        AccountSpec("rxpress-technician", "rx.tech", "RxTech-Demo-2026!", "Jordan Technician"),
    ),
    appeal_number=redetermination_number,
    build_app=build_app,
    second_factor="out_of_band",
)
