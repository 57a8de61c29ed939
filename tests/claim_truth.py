"""What the sandbox must show of a run: a claim check's truth read back (composite, amounts,
adjustments), and an appeal's fields received as approved."""

from __future__ import annotations

from collections.abc import Iterable

from bot.models import AppealRequest
from bot.status import ClaimStatus, claim_facts
from sandbox.data import Claim
from sandbox.state import LedgerEntry


def assert_reads_as_truth(status: ClaimStatus, claim: Claim) -> None:
    """The full STC01 composite and second code, the billed, paid and patient amounts, and each
    CARC with its group and amount, equal to the sandbox's truth for the claim."""
    assert claim_facts(status.model_dump()) == claim.facts, status.payer_wording


def assert_form_received(entry: LedgerEntry, request: AppealRequest, asked: Iterable[str]) -> None:
    """The payer received every field its form ``asked`` exactly as approved, field by field, and
    nothing the form does not ask."""
    fields = set(asked)
    sent = {name: value for name, value in request.form_fields().items() if name in fields}
    assert sent.keys() == fields  # the request fills every field the form asks
    for name in sorted(fields):
        assert (name, entry.form.get(name)) == (name, sent[name])
    assert entry.form == sent
