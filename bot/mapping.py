"""From what a portal showed to the canonical status: the portal's table first, then (optionally)
a language model for wording no table knows, then a person.

The table is the portal module's; the codes' descriptions come from the code lists; a model's
answer is kept with ``source=llm`` and its confidence, and below the configured confidence the
item goes to a person instead.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from bot.codelists import CodeLists
from bot.errors import UnmappedStatus
from bot.models import ClaimReading, PaReading
from bot.portal import Portal
from bot.status import (
    ClaimRule,
    ClaimStatus,
    PaRule,
    PaStatus,
    StatusSource,
    claim_status_from_rule,
    normalize_wording,
    normalized,
    pa_status_from_rule,
)


class WordingClassifier(Protocol):
    """Classifies wording no table knows; returns the rule and a confidence in [0, 1], or None."""

    def classify_claim(self, payer: str, reading: ClaimReading) -> tuple[ClaimRule, float] | None: ...

    def classify_pa(self, payer: str, reading: PaReading) -> tuple[PaRule, float] | None: ...


NOT_FOUND = ClaimRule(category="A4", status_code="35")  # Not Found: claim/encounter not found

# each portal's tables, normalized once (a class is not ``Hashable`` to a type checker, so no @cache)
_CLAIM_TABLES: dict[type[Portal], dict[str, ClaimRule | PaRule]] = {}
_PA_TABLES: dict[type[Portal], dict[str, ClaimRule | PaRule]] = {}


def _claim_table(portal: type[Portal]) -> dict[str, ClaimRule | PaRule]:
    if portal not in _CLAIM_TABLES:
        _CLAIM_TABLES[portal] = normalized(portal.claim_statuses)
    return _CLAIM_TABLES[portal]


def _pa_table(portal: type[Portal]) -> dict[str, ClaimRule | PaRule]:
    if portal not in _PA_TABLES:
        _PA_TABLES[portal] = normalized(portal.pa_statuses)
    return _PA_TABLES[portal]


class StatusMapper:
    def __init__(
        self,
        codelists: CodeLists,
        classifier: WordingClassifier | None = None,
        *,
        min_confidence: float = 0.8,
    ) -> None:
        self.codelists = codelists
        self.classifier = classifier
        self.min_confidence = min_confidence

    def _unmapped(self, portal: type[Portal], what: str, confidence: float | None) -> UnmappedStatus:
        if confidence is None:
            how = "no model is configured" if self.classifier is None else "the model gave no answer"
        else:
            how = f"the model's confidence {confidence:.2f} is under {self.min_confidence:.2f}"
        return UnmappedStatus(f"{portal.display_name} {what} wording is not in its table and {how}")

    def claim(self, portal: type[Portal], reading: ClaimReading) -> ClaimStatus:
        rule = _claim_table(portal).get(normalize_wording(reading.status_text))
        if isinstance(rule, ClaimRule):
            return claim_status_from_rule(rule, reading, self.codelists)
        answer = self.classifier.classify_claim(portal.payer_id, reading) if self.classifier else None
        if answer is None or answer[1] < self.min_confidence:
            raise self._unmapped(portal, "claim status", answer[1] if answer else None)
        return claim_status_from_rule(
            answer[0], reading, self.codelists, source=StatusSource.LLM, confidence=answer[1]
        )

    def claim_not_found(self, portal: type[Portal], words: str) -> ClaimStatus:
        """A claim the portal searched for and has no record of: A4:35, with the portal's words."""
        reading = ClaimReading(claim_number="unknown", status_text=words[:200] or "not found")
        return claim_status_from_rule(NOT_FOUND, reading, self.codelists)

    def pa(self, portal: type[Portal], reading: PaReading, *, today: date | None = None) -> PaStatus:
        """``today``: the run's date, against which a granted authorization's end date is checked."""
        rule = _pa_table(portal).get(normalize_wording(reading.status_text))
        if isinstance(rule, PaRule):
            return pa_status_from_rule(rule, reading, self.codelists, today=today)
        answer = self.classifier.classify_pa(portal.payer_id, reading) if self.classifier else None
        if answer is None or answer[1] < self.min_confidence:
            raise self._unmapped(portal, "authorization status", answer[1] if answer else None)
        return pa_status_from_rule(
            answer[0], reading, self.codelists, today=today, source=StatusSource.LLM, confidence=answer[1]
        )
