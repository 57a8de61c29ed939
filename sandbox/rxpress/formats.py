"""How RxPress writes and reads values: US dates, money, fill dates, the drug on a claim."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sandbox.data import Claim
from sandbox.rxpress.wording import DRUGS


def us_date(value: date | datetime | None) -> str:
    return value.strftime("%m/%d/%Y") if value else "N/A"


def money(value: Decimal | None) -> str:
    return f"${value:,.2f}" if value is not None else "PENDING"


def parse_fill_date(text: str) -> date | None:
    """RxPress takes the fill date as MM/DD/YYYY (or a date input's YYYY-MM-DD)."""
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def drug_of(claim: Claim) -> str:
    """The drug on a claim, fixed by its Rx number (the shared claim model has no drug field)."""
    return DRUGS[int(claim.claim_number) % len(DRUGS)]
