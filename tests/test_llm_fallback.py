"""Wording no table knows: a model (a local OpenAI-compatible server here) or a person."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from openai import OpenAI

from bot.codelists import shipped_codelists
from bot.errors import UnmappedStatus
from bot.llm import LlmClassifier, strip_identifiers
from bot.mapping import StatusMapper
from bot.models import ClaimReading, CodeSystem, PaReading, PayerCode
from bot.portal import Action, Portal
from bot.status import ClaimRule, PaDecision, PaRule, StatusSource
from tests.fakes.llm_server import FakeModel, FakeModelServer

MEMBER_ID = "ZX99887766"
PATIENT = "Quentin Canaryfield"
CLAIM = "MH2026000777"


class TablePortal(Portal):
    payer_id = "tableonly"
    display_name = "Table Only"
    default_url = "http://127.0.0.1:9"
    actions = frozenset({Action.CLAIM_STATUS, Action.PA_STATUS})
    claim_statuses: ClassVar[dict[str, ClaimRule]] = {
        "Paid in full": ClaimRule(category="F1", status_code="65")
    }
    pa_statuses: ClassVar[dict[str, PaRule]] = {"Approved": PaRule(decision=PaDecision.APPROVED)}


@pytest.fixture
def model() -> Iterator[tuple[FakeModel, str]]:
    fake = FakeModel(
        answers={
            "held for clinical review": {"category": "P1", "confidence": 0.92},
            "something murky": {"category": "F2", "confidence": 0.3},
            "awaiting physician notes": {"decision": "more_info_requested", "confidence": 0.88},
        },
        forbidden={MEMBER_ID, PATIENT, CLAIM, "1961-04-12"},
    )
    with FakeModelServer(fake) as server:
        yield fake, server.url


def _mapper(url: str) -> StatusMapper:
    client = OpenAI(base_url=url, api_key="test-key", max_retries=0)
    lists = shipped_codelists()
    return StatusMapper(lists, LlmClassifier(client, "test-model", lists), min_confidence=0.8)


def _reading(text: str) -> ClaimReading:
    return ClaimReading(
        claim_number=CLAIM,
        status_text=text,
        detail=f"Member {MEMBER_ID} ({PATIENT}, born 1961-04-12), claim {CLAIM}",
        codes=(PayerCode(system=CodeSystem.CARC, code="50"),),
        sensitive=(PATIENT, MEMBER_ID, "1961-04-12"),
    )


def test_table_wording_never_asks_the_model(model: tuple[FakeModel, str]) -> None:
    fake, url = model
    status = _mapper(url).claim(TablePortal, _reading("PAID  in full."))
    assert (status.category, status.status_code, status.source) == ("F1", "65", StatusSource.TABLE)
    assert (
        status.payer_codes[0].description and "medical necessity" in status.payer_codes[0].description.lower()
    )
    assert fake.prompts == []


def test_unknown_wording_takes_a_confident_model_answer_marked_llm(model: tuple[FakeModel, str]) -> None:
    fake, url = model
    status = _mapper(url).claim(TablePortal, _reading(f"Claim {CLAIM} held for clinical review"))
    assert (status.category, status.source, status.confidence) == ("P1", StatusSource.LLM, 0.92)
    assert status.category_description.startswith("Pending")
    assert fake.formats[0]["type"] == "json_schema"


def test_a_low_confidence_answer_goes_to_a_person(model: tuple[FakeModel, str]) -> None:
    _, url = model
    with pytest.raises(UnmappedStatus, match=r"confidence 0\.30"):
        _mapper(url).claim(TablePortal, _reading("something murky happened"))


def test_an_answer_outside_the_schema_goes_to_a_person(model: tuple[FakeModel, str]) -> None:
    _, url = model
    with pytest.raises(UnmappedStatus, match="no answer"):
        _mapper(url).claim(TablePortal, _reading("words the model does not know"))


def test_no_identifier_reaches_the_model(model: tuple[FakeModel, str]) -> None:
    fake, url = model
    mapper = _mapper(url)
    mapper.claim(TablePortal, _reading(f"Claim {CLAIM} for {PATIENT} held for clinical review"))
    pa = PaReading(
        pa_number="MPA1234567",
        status_text=f"Awaiting physician notes for {PATIENT}",
        detail=f"member {MEMBER_ID}",
        sensitive=(PATIENT, MEMBER_ID),
    )
    assert mapper.pa(TablePortal, pa).decision == PaDecision.MORE_INFO_REQUESTED
    assert len(fake.prompts) == 2
    assert fake.leaks == []


def test_without_a_model_unknown_wording_goes_to_a_person() -> None:
    mapper = StatusMapper(shipped_codelists(), None)
    with pytest.raises(UnmappedStatus, match="no model is configured"):
        mapper.claim(TablePortal, _reading("held for clinical review"))


def test_identifiers_are_stripped_from_free_text() -> None:
    text = strip_identifiers("Claim MH2026000777 on 04/12/1961 call 555-123-4567 or a@b.org")
    assert "MH2026000777" not in text and "1961" not in text and "555" not in text and "a@b.org" not in text
