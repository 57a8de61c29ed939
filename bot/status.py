"""Canonical status: one model for every portal's wording, aligned with X12.

Claims carry the X12 277 claim status category code (STC01-1: A acknowledgement, P pending,
F finalized, R request for information, E response not possible) and, where known, a claim status
code (STC01-2), with the payer's own words and codes (CARC/RARC, NCPDP reject codes) beside them.
Prior authorizations carry a decision and the X12 278 certification action code (HCR01).

Each portal module declares a table from its wording to a rule; ``map_claim`` and ``map_pa`` apply
it. Wording no table knows returns ``None`` and the runner decides (a model, or a person).
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import Field, StringConstraints, ValidationError

from bot.codelists import CodeLists
from bot.models import ClaimReading, CodeSystem, PaReading, PayerCode, Strict


class StatusSource(StrEnum):
    TABLE = "table"
    LLM = "llm"


CategoryCode = Annotated[str, StringConstraints(pattern=r"^(A[0-8]|P[0-5]|F[0-5]|R[0-9]{1,2}|RQ|E[0-4]|D0)$")]


class ClaimRule(Strict):
    """Where a payer's wording lands in X12 277 terms."""

    category: CategoryCode
    status_code: str | None = None


class PaDecision(StrEnum):
    APPROVED = "approved"
    PARTIALLY_APPROVED = "partially_approved"
    DENIED = "denied"
    PENDED = "pended"
    MORE_INFO_REQUESTED = "more_info_requested"
    CANCELLED = "cancelled"


# X12 278 HCR01 certification action codes for each decision.
HCR01: dict[PaDecision, tuple[str, str]] = {
    PaDecision.APPROVED: ("A1", "Certified in total"),
    PaDecision.PARTIALLY_APPROVED: ("A2", "Certified - partial"),
    PaDecision.DENIED: ("A3", "Not Certified"),
    PaDecision.PENDED: ("A4", "Pended"),
    PaDecision.MORE_INFO_REQUESTED: ("A4", "Pended"),
    PaDecision.CANCELLED: ("C", "Cancelled"),
}


class PaRule(Strict):
    decision: PaDecision


class ClaimStatus(Strict):
    """A claim's status in X12 277 terms, with the payer's own words and codes kept beside it."""

    category: CategoryCode
    category_description: str
    status_code: str | None = None
    status_description: str | None = None
    payer_wording: str
    payer_codes: tuple[PayerCode, ...] = ()
    source: StatusSource = StatusSource.TABLE
    confidence: float = Field(default=1.0, ge=0, le=1)

    @property
    def label(self) -> str:
        return self.category


class PaStatus(Strict):
    """A prior authorization's decision, with its X12 278 HCR01 code and the payer's words."""

    decision: PaDecision
    hcr01: str
    hcr01_description: str
    valid_from: date | None = None
    valid_to: date | None = None
    reason: str | None = None
    payer_wording: str
    payer_codes: tuple[PayerCode, ...] = ()
    source: StatusSource = StatusSource.TABLE
    confidence: float = Field(default=1.0, ge=0, le=1)

    @property
    def label(self) -> str:
        return self.decision.value


_PUNCT = re.compile(r"[^\w\s]")


def normalize_wording(text: str) -> str:
    """Case, punctuation and spacing never change meaning on a status line."""
    return " ".join(_PUNCT.sub(" ", text).casefold().split())


def describe_codes(codes: tuple[PayerCode, ...], lists: CodeLists) -> tuple[PayerCode, ...]:
    """Give each payer code its official description, where the code list knows it."""
    out = []
    for code in codes:
        official = lists.describe(code.system, code.code) if code.system != CodeSystem.PAYER else None
        out.append(code.model_copy(update={"description": official or code.description}))
    return tuple(out)


def claim_status_from_rule(
    rule: ClaimRule,
    reading: ClaimReading,
    lists: CodeLists,
    *,
    source: StatusSource = StatusSource.TABLE,
    confidence: float = 1.0,
) -> ClaimStatus:
    return ClaimStatus(
        category=rule.category,
        category_description=lists.describe(CodeSystem.X12_CATEGORY, rule.category) or rule.category,
        status_code=rule.status_code,
        status_description=(
            lists.describe(CodeSystem.X12_STATUS, rule.status_code) if rule.status_code else None
        ),
        payer_wording=reading.status_text,
        payer_codes=describe_codes(reading.codes, lists),
        source=source,
        confidence=confidence,
    )


def pa_status_from_rule(
    rule: PaRule,
    reading: PaReading,
    lists: CodeLists,
    *,
    source: StatusSource = StatusSource.TABLE,
    confidence: float = 1.0,
) -> PaStatus:
    code, desc = HCR01[rule.decision]
    return PaStatus(
        decision=rule.decision,
        hcr01=code,
        hcr01_description=desc,
        valid_from=reading.valid_from,
        valid_to=reading.valid_to,
        reason=reading.detail,
        payer_wording=reading.status_text,
        payer_codes=describe_codes(reading.codes, lists),
        source=source,
        confidence=confidence,
    )


R = TypeVar("R", ClaimRule, PaRule)


def claim_rules(table: str) -> dict[str, ClaimRule]:
    """A portal's claim wording table, written as text: a header row (``wording | category |
    status code``), then one row a wording (an empty cell is a code the payer does not give)."""
    return _rule_table(table, ClaimRule, "claim status")


def pa_rules(table: str) -> dict[str, PaRule]:
    """A portal's prior-authorization wording table, written as text (``wording | decision``)."""
    return _rule_table(table, PaRule, "authorization status")


def _rule_table(table: str, rule: type[R], what: str) -> dict[str, R]:
    """The rows of a ``|``-separated table under its header row, each cell keyed by its column
    (spaces in a header become ``_``); a malformed row is a ValueError naming its line."""
    lines = [(n, line) for n, line in enumerate(table.splitlines(), 1) if line.strip()]
    header = [cell.strip().replace(" ", "_") for cell in lines[0][1].split("|")] if lines else []
    if not header or header[0] != "wording":
        raise ValueError(f"{what} table: the header row must start with 'wording'")
    rules: dict[str, R] = {}
    for n, line in lines[1:]:
        cells = [cell.strip() for cell in line.split("|")]
        where = f"{what} table, line {n}"
        if len(cells) != len(header) or not cells[0]:
            raise ValueError(f"{where}: expected {len(header)} cells, the wording first")
        if cells[0] in rules:
            raise ValueError(f"{where}: '{cells[0]}' is in the table twice")
        try:
            values = zip(header[1:], (cell or None for cell in cells[1:]), strict=True)
            rules[cells[0]] = rule.model_validate(dict(values))
        except ValidationError as error:
            problem = error.errors()[0]
            raise ValueError(f"{where}, column {problem['loc'][0]}: {problem['msg']}") from None
    return rules


def normalized(table: dict[str, ClaimRule] | dict[str, PaRule]) -> dict[str, ClaimRule | PaRule]:
    """A wording table keyed by normalized wording; tables are written in any case and spacing."""
    out: dict[str, ClaimRule | PaRule] = {}
    for key, rule in table.items():
        norm = normalize_wording(key)
        if norm in out and out[norm] != rule:
            raise ValueError(f"wording table maps '{key}' twice, to different rules")
        out[norm] = rule
    return out
