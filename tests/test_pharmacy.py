"""Pharmacy claims keep the NCPDP view: the response status, each reject with its words, and
whether a redetermination can help (expectations written here by hand)."""

from __future__ import annotations

import pytest

from bot.codelists import shipped_codelists
from bot.mapping import StatusMapper
from bot.models import ClaimReading, CodeSystem, PayerCode
from bot.pharmacy import ResponseStatus, remedy_of
from portals.meridian import MeridianPortal
from portals.rxpress import RxPressPortal

# reject -> can a redetermination take it; if not, a word the remedy must name
REJECTS: dict[str, tuple[bool, str]] = {
    "70": (True, ""),  # not covered
    "76": (True, ""),  # plan limitations exceeded
    "MR": (True, ""),  # not on formulary
    "75": (False, "prior authorization"),
    "PA": (False, "prior authorization"),
    "79": (False, "fill date"),
    "88": (False, "DUR"),
    "41": (False, "primary payer"),
    "65": (False, "coverage"),
    "69": (False, "coverage"),
    "AF": (False, "managed care"),
    "606": (False, "brand"),
}
# RxPress wording -> NCPDP response status (and its 112-AN letter)
RESPONSES = {
    "PAID": (ResponseStatus.PAID, "P"),
    "REJECTED": (ResponseStatus.REJECTED, "R"),
    "REJECTED - INVALID CLAIM DATA": (ResponseStatus.REJECTED, "R"),
    "REVERSED": (ResponseStatus.REVERSED, "A"),
    "IN PROCESS": (ResponseStatus.CAPTURED, "C"),
    "CAPTURED - PENDING ADJUDICATION": (ResponseStatus.CAPTURED, "C"),
}
LISTS = shipped_codelists()


@pytest.mark.parametrize(("code", "expected"), REJECTS.items())
def test_each_common_reject_says_whether_an_appeal_can_help(code: str, expected: tuple[bool, str]) -> None:
    appealable, names = expected
    remedy = remedy_of(code, LISTS.describe(CodeSystem.NCPDP_REJECT, code))
    assert remedy.appealable is appealable
    assert (remedy.instead is None) if appealable else names in (remedy.instead or "")


def test_a_missing_or_invalid_field_is_corrected_not_appealed_and_an_unknown_reject_may_be_appealed() -> None:
    m_i = next(c for c in LISTS.active_codes(CodeSystem.NCPDP_REJECT) if c.description.startswith("M/I"))
    remedy = remedy_of(m_i.code, m_i.description)
    assert not remedy.appealable and "correct" in (remedy.instead or "")
    assert remedy_of("ZZ9", "Something new").appealable


@pytest.mark.parametrize(("wording", "expected"), RESPONSES.items())
def test_every_rxpress_wording_keeps_its_response_status(
    wording: str, expected: tuple[ResponseStatus, str]
) -> None:
    codes = (
        PayerCode(system=CodeSystem.NCPDP_REJECT, code="79"),
        PayerCode(system=CodeSystem.NCPDP_REJECT, code="70"),
    )
    reading = ClaimReading(
        claim_number="1234567", status_text=wording, codes=codes if "REJECTED" in wording else ()
    )
    status = StatusMapper(LISTS).claim(RxPressPortal, reading)
    assert status.pharmacy is not None
    assert (status.pharmacy.response_status, status.pharmacy.ncpdp_response_code) == expected
    if "REJECTED" in wording:  # each reject with its words and remedy; the primary decides
        primary, other = status.pharmacy.rejects
        assert (primary.code, primary.description, primary.appealable) == ("79", "Refill Too Soon", False)
        assert (other.code, other.appealable) == ("70", True)
        assert status.pharmacy.appealable is False


def test_a_medical_claim_has_no_pharmacy_view() -> None:
    status = StatusMapper(LISTS).claim(MeridianPortal, ClaimReading(claim_number="MH1", status_text="Paid"))
    assert status.pharmacy is None
