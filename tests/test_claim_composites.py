"""Every claim wording of every sandbox payer, against an expectation table written here by hand.

Each row is the full X12 277 STC01 composite a billing worklist keys on (category, status code,
entity where the code needs one, RX where the code is an NCPDP reject) and the second status code
where the first needs one to say what. The sandbox's truth, the portal's table and the mapped
status must all agree with it; and every table rule must be complete by the code list's own notes.
"""

from __future__ import annotations

import pytest

from bot.codelists import shipped_codelists
from bot.models import ClaimReading, CodeSystem, PayerCode
from bot.status import (
    ClaimRule,
    claim_status_from_rule,
    composite_problems,
    describe_codes,
    normalize_wording,
    normalized,
)
from portals import get_portal
from sandbox.payers import get_payer, payer_ids

# payer -> wording -> (STC01 as a 277 writes it, second status code or "")
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "meridian": {
        "Received": ("A1:19:PR", ""),
        "Accepted for processing": ("A2:20", ""),
        "Returned - missing or invalid diagnosis code": ("A3:21", "255"),
        "Returned - missing or invalid date of service": ("A3:21", "187"),
        "In process": ("P1:20", ""),
        "Under review": ("P2:46", ""),
        "Pending - awaiting medical records from provider": ("P3:294", "297"),
        "Additional information requested - other payer's EOB": ("P3:294", "286"),
        "Paid": ("F1:65", ""),
        "Partially paid": ("F1:1", ""),
        "Denied": ("F2:1", ""),
        "Adjusted": ("F3:101", ""),
        "Processed - no payment due": ("F4:107", ""),
    },
    "bluepeak": {
        "Received": ("A1:19:PR", ""),
        "Accepted - in queue": ("A2:20", ""),
        "Returned - correct the diagnosis code and resubmit": ("A3:21", "255"),
        "Returned - correct the procedure code and resubmit": ("A3:21", "454"),
        "Processing": ("P1:20", ""),
        "Under review": ("P2:46", ""),
        "Awaiting documents - medical records": ("P3:294", "297"),
        "Approved - payment issued": ("F1:65", ""),
        "Partially approved": ("F1:1", ""),
        "Not covered": ("F2:1", ""),
        "Denied - duplicate claim": ("F2:54", ""),
        "Reprocessed": ("F3:101", ""),
        "Closed - no payment due": ("F4:107", ""),
    },
    "rxpress": {  # {reject}: the claim's primary NCPDP reject code
        "PAID": ("F1:65", ""),
        "REJECTED": ("F2:{reject}::RX", ""),
        "REJECTED - INVALID CLAIM DATA": ("A3:{reject}::RX", ""),
        "REVERSED": ("F3:686", ""),
        "IN PROCESS": ("P1:20", ""),
        "CAPTURED - PENDING ADJUDICATION": ("A2:20", ""),
    },
    "payerhub": {
        "Forwarded to payer": ("A0:16:PR", ""),
        "Acknowledged - received by payer": ("A1:19:PR", ""),
        "Acknowledged - accepted for adjudication": ("A2:20", ""),
        "Rejected - missing or invalid diagnosis code": ("A3:21", "255"),
        "Rejected - missing or invalid date of service": ("A3:21", "187"),
        "Pended - in adjudication": ("P1:20", ""),
        "Pended - payer review": ("P2:46", ""),
        "Pended - administrative hold": ("P5:38", ""),
        "Pended - medical records requested": ("P3:294", "297"),
        "Finalized - paid": ("F1:65", ""),
        "Finalized - paid, see remittance": ("F1:1", ""),
        "Finalized - denied": ("F2:1", ""),
        "Finalized - denied as duplicate": ("F2:54", ""),
        "Finalized - adjusted": ("F3:101", ""),
        "Finalized - no payment forthcoming": ("F4:107", ""),
    },
}
LISTS = shipped_codelists()


def test_the_expectations_cover_every_payer() -> None:
    assert set(EXPECTED) == set(payer_ids())


@pytest.mark.parametrize("payer", sorted(EXPECTED))
def test_the_sandbox_truth_is_the_expected_composite(payer: str) -> None:
    spec = get_payer(payer).data
    assert {k.wording for k in spec.claim_kinds} == set(EXPECTED[payer])
    for kind in spec.claim_kinds:
        parts = [kind.category, kind.status_code or "{reject}", kind.entity or "", kind.code_list or ""]
        assert (":".join(parts).rstrip(":"), kind.detail or "") == EXPECTED[payer][kind.wording]


@pytest.mark.parametrize("payer", sorted(EXPECTED))
def test_the_portal_maps_every_wording_to_the_expected_composite(payer: str) -> None:
    portal = get_portal(payer)
    table = normalized(portal.claim_statuses)
    assert set(table) == {normalize_wording(w) for w in EXPECTED[payer]}, "a wording the portal lacks or adds"
    reject = PayerCode(system=CodeSystem.NCPDP_REJECT, code="75")
    for wording, (stc01, detail) in EXPECTED[payer].items():
        rule = table[normalize_wording(wording)]
        assert isinstance(rule, ClaimRule)
        reading = ClaimReading(claim_number="X1234", status_text=wording, codes=(reject,))
        status = claim_status_from_rule(rule, reading, LISTS)
        assert (status.stc01, status.detail_code or "") == (stc01.format(reject="75"), detail), wording
        assert status.status_description, f"{wording}: the code list describes its status code"
        assert status.payer_wording == wording  # the payer's words kept beside the codes


@pytest.mark.parametrize("payer", sorted(EXPECTED))
def test_every_table_rule_is_a_complete_composite(payer: str) -> None:
    for wording, rule in get_portal(payer).claim_statuses.items():
        assert composite_problems(rule, LISTS) == [], wording


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (ClaimRule(category="P1"), "no status code"),
        (ClaimRule(category="A1", status_code="19"), "needs an entity"),
        (ClaimRule(category="A3", status_code="21"), "needs a second status code"),
        (ClaimRule(category="P3", status_code="294"), "needs a second status code"),
        (ClaimRule(category="A1", status_code="19", entity="ZZ"), "not a known entity"),
        (ClaimRule(category="F2", status_code="9"), "deactivated"),
        (ClaimRule(category="F2", status_code="9999"), "not in the code list"),
        (ClaimRule(category="A3", status_code="21", detail_code="9998"), "second status code 9998"),
    ],
)
def test_an_incomplete_composite_is_named(rule: ClaimRule, problem: str) -> None:
    assert any(problem in p for p in composite_problems(rule, LISTS)), composite_problems(rule, LISTS)


def test_a_category_once_refused_is_accepted() -> None:
    # F3F and F3N are claim status categories (forwarded or not, after finalizing)
    assert ClaimRule(category="F3F", status_code="101").category == "F3F"


def test_a_payer_code_keeps_the_payers_words_beside_the_lists_and_its_retirement() -> None:
    retired = next(c for c in LISTS.codes[CodeSystem.CARC].values() if c.deactivated is not None)
    shown = (
        PayerCode(system=CodeSystem.CARC, code=retired.code, description="Our own words"),
        PayerCode(system=CodeSystem.PAYER, code="X9", description="A payer-only code"),
    )
    carc, own = describe_codes(shown, LISTS)
    assert (carc.description, carc.official_description) == ("Our own words", retired.description)
    assert carc.official_deactivated == retired.deactivated
    assert own == shown[1]  # no list describes a payer's own code
