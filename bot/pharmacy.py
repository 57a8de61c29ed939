"""Pharmacy claims in NCPDP terms: the transaction's response status, and what each reject asks of
the pharmacy.

A pharmacy claim is adjudicated in real time and answered with a transaction response status
(NCPDP field 112-AN: P paid, R rejected, C captured, D duplicate of paid; a reversal is a B2
transaction the plan accepts). A reject is not a denial to appeal: most are fixed by waiting (79
refill too soon), an override (88 DUR), coordination of benefits (41 bill the primary payer) or a
prior authorization (75). Only a reject that refuses coverage itself (70 not covered, 76 plan
limits, MR not on formulary) is what a redetermination asks the plan to reconsider.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.models import CodeSystem, PayerCode, Strict


class ResponseStatus(StrEnum):
    """What the plan answered the pharmacy's transaction (NCPDP 112-AN, and a reversal)."""

    PAID = "paid"  # P
    REJECTED = "rejected"  # R
    CAPTURED = "captured"  # C: taken, adjudicated later
    DUPLICATE = "duplicate"  # D: a duplicate of a paid claim
    REVERSED = "reversed"  # an accepted B2 reversal of a paid claim


NCPDP_LETTER = {
    ResponseStatus.PAID: "P",
    ResponseStatus.REJECTED: "R",
    ResponseStatus.CAPTURED: "C",
    ResponseStatus.DUPLICATE: "D",
    ResponseStatus.REVERSED: "A",  # the reversal's own response: accepted
}


@dataclass(frozen=True)
class Remedy:
    """Whether a reject can be appealed; when not, what fixes it instead."""

    appealable: bool
    instead: str | None = None


# The rejects a plan returns most often, by what fixes them. A reject not listed is taken as
# appealable unless it is an "M/I" (missing or invalid field) reject, which is corrected and resent.
REMEDIES: dict[str, Remedy] = {
    "70": Remedy(appealable=True),  # product/service not covered: a coverage redetermination
    "76": Remedy(appealable=True),  # plan limitations exceeded: an exception request
    "MR": Remedy(appealable=True),  # not on formulary: a formulary exception
    "75": Remedy(False, "request a prior authorization, then resubmit the claim"),
    "PA": Remedy(False, "request a new prior authorization (the last one is used up), then resubmit"),
    "79": Remedy(False, "wait until the plan's next allowed fill date, or ask for an early-refill override"),
    "88": Remedy(False, "review the DUR conflict and resubmit with DUR/professional service codes"),
    "41": Remedy(False, "coordination of benefits: bill the primary payer first, then this plan"),
    "65": Remedy(False, "verify the patient's coverage and resubmit to the right plan"),
    "69": Remedy(False, "coverage ended before the fill date: bill the patient's current coverage"),
    "AF": Remedy(False, "bill the managed care plan the patient is enrolled in"),
    "606": Remedy(False, "resubmit with the brand or labeler the plan requires"),
}
MISSING_OR_INVALID = Remedy(False, "correct the missing or invalid field and resubmit the claim")


def remedy_of(code: str, description: str | None) -> Remedy:
    listed = REMEDIES.get(code.upper())
    if listed is not None:
        return listed
    if (description or "").upper().startswith("M/I"):
        return MISSING_OR_INVALID
    return Remedy(appealable=True)


class Reject(Strict):
    code: str
    description: str | None = None
    appealable: bool
    instead: str | None = None


class PharmacyView(Strict):
    """A pharmacy claim as the pharmacy system knows it: the response status and each reject."""

    response_status: ResponseStatus
    ncpdp_response_code: str
    rejects: tuple[Reject, ...] = ()

    @property
    def appealable(self) -> bool:
        """Whether a redetermination can help: no reject, or the primary one is appealable."""
        return not self.rejects or self.rejects[0].appealable


def pharmacy_view(status: ResponseStatus, codes: tuple[PayerCode, ...]) -> PharmacyView:
    rejects = []
    for code in codes:
        if code.system != CodeSystem.NCPDP_REJECT:
            continue
        words = code.official_description or code.description
        remedy = remedy_of(code.code, words)
        rejects.append(
            Reject(code=code.code, description=words, appealable=remedy.appealable, instead=remedy.instead)
        )
    return PharmacyView(
        response_status=status, ncpdp_response_code=NCPDP_LETTER[status], rejects=tuple(rejects)
    )
