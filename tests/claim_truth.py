"""What a claim check must read back: the sandbox's truth, composite, amounts and adjustments."""

from __future__ import annotations

from bot.status import ClaimStatus, claim_facts
from sandbox.data import Claim


def assert_reads_as_truth(status: ClaimStatus, claim: Claim) -> None:
    """The full STC01 composite and second code, the billed, paid and patient amounts, and each
    CARC with its group and amount, equal to the sandbox's truth for the claim."""
    assert claim_facts(status.model_dump()) == claim.facts, status.payer_wording
