"""Canonical status: one model for every portal's wording, aligned with X12.

Claims carry the X12 277 claim status category code (STC01-1: A acknowledgement, P pending,
F finalized, R request for information, E response not possible) and, where known, a claim status
code (STC01-2), with the payer's own words and codes (CARC/RARC, NCPDP reject codes) beside them.
Prior authorizations carry the X12 278 certification action code (HCR01), or NR (payerbot's own
for "no authorization required"), with the project's word for it.

Each portal module declares a table from its wording to a rule; ``map_claim`` and ``map_pa`` apply
it. Wording no table knows returns ``None`` and the runner decides (a model, or a person).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, StringConstraints, ValidationError

from bot.codelists import CodeLists
from bot.models import ClaimReading, CodeSystem, PaReading, PayerCode, Strict
from bot.pharmacy import PharmacyView, ResponseStatus, pharmacy_view


class StatusSource(StrEnum):
    TABLE = "table"
    LLM = "llm"


CategoryCode = Annotated[
    str, StringConstraints(pattern=r"^(A[0-8]|P[0-5]|F[0-5]|F3[FN]|R[0-9]{1,2}|RQ|E[0-4]|D0)$")
]
StatusCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,4}$")]

# X12 entity identifier codes (element 98) that a claim status code may name in STC01-3.
ENTITY_CODES: dict[str, str] = {
    "PR": "Payer",
    "41": "Submitter",
    "85": "Billing Provider",
    "82": "Rendering Provider",
    "1P": "Provider",
    "QC": "Patient",
    "IL": "Insured or Subscriber",
}
NCPDP_QUALIFIER = "RX"  # STC01-4: STC01-2 holds an NCPDP reject/payment code, not an X12 status code


class ClaimRule(Strict):
    """Where a payer's wording lands in X12 277 terms: the STC01 composite (category, status code,
    entity where the code needs one) and the second status code where the first needs one to say
    what (code 21 "missing or invalid information", 294 "supporting documentation").

    ``code_list`` RX: the status code is the claim's primary NCPDP reject code, read from the page
    (a pharmacy claim's 277 names its reject that way). A model's answer may carry only a category.
    """

    category: CategoryCode
    status_code: StatusCode | None = None
    entity: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2,3}$")] | None = None
    detail_code: StatusCode | None = None
    code_list: Literal["RX"] | None = None
    pharmacy_status: ResponseStatus | None = None  # a pharmacy claim's NCPDP response status


COMPOSITE_FIELDS = ("category", "status_code", "entity", "detail_code", "code_list")


def composite_of(values: Mapping[str, Any]) -> tuple[Any, ...]:
    """The composite's parts from a stored result (or a sandbox's truth), for comparing the two."""
    return tuple(values.get(name) for name in COMPOSITE_FIELDS)


def claim_facts(result: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a claim check must have read right, from a stored result (or a status's dump): the
    composite, the billed, paid and patient amounts, and each CARC with its group and amount."""
    adjustments = tuple(
        (code.get("group"), code["code"], _text(code.get("amount")))
        for code in result.get("payer_codes", ())
        if code.get("system") == CodeSystem.CARC
    )
    amounts = (_text(result.get(name)) for name in ("billed", "paid", "patient_responsibility"))
    return (*composite_of(result), *amounts, adjustments)


def _text(amount: Any) -> str | None:
    return None if amount is None else str(amount)


def composite_problems(rule: ClaimRule, lists: CodeLists) -> list[str]:
    """What keeps ``rule`` from being a complete STC01 composite, by the code list's own notes:
    a status code is required (005010X212), an entity where the code says "requires use of an
    Entity Code", a second code where it says "at least one other status code is required"."""
    if rule.code_list == NCPDP_QUALIFIER:
        return [] if rule.status_code is None else ["an RX composite takes its code from the page"]
    if rule.status_code is None:
        return ["no status code (STC01-2)"]
    problems = []
    listed = lists.get(CodeSystem.X12_STATUS, rule.status_code)
    if listed is None:
        return [f"status code {rule.status_code} is not in the code list"]
    note = listed.description.casefold()
    if not listed.active:
        problems.append(f"status code {rule.status_code} is deactivated in the code list")
    if "entity code" in note and rule.entity is None:
        problems.append(f"status code {rule.status_code} needs an entity (STC01-3)")
    if rule.entity is not None and rule.entity not in ENTITY_CODES:
        problems.append(f"entity {rule.entity} is not a known entity identifier code")
    if "other status code is required" in note and rule.detail_code is None:
        problems.append(f"status code {rule.status_code} needs a second status code saying what")
    if rule.detail_code is not None and lists.get(CodeSystem.X12_STATUS, rule.detail_code) is None:
        problems.append(f"second status code {rule.detail_code} is not in the code list")
    return problems


class Hcr01(StrEnum):
    """A prior authorization's canonical status: its X12 278 certification action code (HCR01),
    and ``NR``, payerbot's own code for "no authorization required" (a 278 answers that with no
    HCR01 code at all, so the project names it; it is not an X12 value)."""

    A1 = "A1"  # certified in total
    A2 = "A2"  # certified - partial: some of what was asked is certified, the rest is not
    A3 = "A3"  # not certified
    A4 = "A4"  # pended (also while the payer waits for information it asked for)
    A6 = "A6"  # modified: certified, but not as asked (other units, dates or site of care)
    C = "C"  # cancelled
    CT = "CT"  # contact payer
    NR = "NR"  # not required (payerbot's own)


# The one mapping from a PA's code to its X12 description and the project's own word for it.
HCR01: dict[Hcr01, tuple[str, str]] = {
    Hcr01.A1: ("Certified in total", "approved"),
    Hcr01.A2: ("Certified - partial", "partially_approved"),
    Hcr01.A3: ("Not Certified", "denied"),
    Hcr01.A4: ("Pended", "pended"),
    Hcr01.A6: ("Modified", "modified"),
    Hcr01.C: ("Cancelled", "cancelled"),
    Hcr01.CT: ("Contact Payer", "contact_payer"),
    Hcr01.NR: ("No authorization required (payerbot's own code, not X12)", "not_required"),
}
CERTIFIED = frozenset({Hcr01.A1, Hcr01.A2, Hcr01.A6})  # an authorization the payer granted


def hcr01_of(value: str) -> Hcr01:
    """The code named by itself (``A6``) or by the project's word for it (``modified``)."""
    for code, (_, word) in HCR01.items():
        if value in (code.value, word):
            return code
    raise ValueError(f"{value!r} is neither an HCR01 code ({', '.join(HCR01)}) nor a word for one")


class PaRule(Strict):
    hcr01: Hcr01


class ClaimStatus(Strict):
    """A claim's status in X12 277 terms, with the payer's own words and codes kept beside it."""

    category: CategoryCode
    category_description: str
    status_code: str | None = None
    status_description: str | None = None
    entity: str | None = None
    entity_description: str | None = None
    code_list: Literal["RX"] | None = None
    detail_code: str | None = None
    detail_description: str | None = None
    billed: Decimal | None = None
    paid: Decimal | None = None
    patient_responsibility: Decimal | None = None
    pharmacy: PharmacyView | None = None
    payer_wording: str
    payer_codes: tuple[PayerCode, ...] = ()
    source: StatusSource = StatusSource.TABLE
    confidence: float = Field(default=1.0, ge=0, le=1)

    @property
    def label(self) -> str:
        return self.category

    @property
    def stc01(self) -> str:
        """The composite as a 277 writes it: ``A1:19:PR``, ``F2:75::RX``, ``P3:294``."""
        parts = [self.category, self.status_code or "", self.entity or "", self.code_list or ""]
        return ":".join(parts).rstrip(":")


class PaStatus(Strict):
    """A prior authorization in X12 278 terms: its HCR01 code (the canonical status), the code's
    description and the project's word for it, and what the portal showed of the decision: the
    certification number (HCR02), the effective dates, units approved against units requested,
    the reason and its code (HCR03 where the payer uses one), and the payer's own words."""

    hcr01: Hcr01
    hcr01_description: str
    decision: str  # the project's word for the code: approved, denied, modified, not_required...
    certification_number: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    expired: bool = False  # granted (A1, A2, A6), and its end date is before the day of the run
    units_requested: int | None = None
    units_approved: int | None = None
    reason: str | None = None
    reason_code: str | None = None
    payer_wording: str
    payer_codes: tuple[PayerCode, ...] = ()
    source: StatusSource = StatusSource.TABLE
    confidence: float = Field(default=1.0, ge=0, le=1)

    @property
    def label(self) -> str:
        return self.hcr01.value


_PUNCT = re.compile(r"[^\w\s]")


def normalize_wording(text: str) -> str:
    """Case, punctuation and spacing never change meaning on a status line."""
    return " ".join(_PUNCT.sub(" ", text).casefold().split())


def describe_codes(codes: tuple[PayerCode, ...], lists: CodeLists) -> tuple[PayerCode, ...]:
    """Give each payer code its official description, where the code list knows it, beside the
    payer's own (a billing system keys on the code; a person reads both)."""
    out = []
    for code in codes:
        listed = lists.get(code.system, code.code) if code.system != CodeSystem.PAYER else None
        if listed is None:
            out.append(code)
            continue
        update = {"official_description": listed.description, "official_deactivated": listed.deactivated}
        out.append(code.model_copy(update=update))
    return tuple(out)


def claim_status_from_rule(
    rule: ClaimRule,
    reading: ClaimReading,
    lists: CodeLists,
    *,
    source: StatusSource = StatusSource.TABLE,
    confidence: float = 1.0,
) -> ClaimStatus:
    code = rule.status_code
    if rule.code_list == NCPDP_QUALIFIER:  # the primary reject the page shows
        code = next((c.code for c in reading.codes if c.system == CodeSystem.NCPDP_REJECT), None)
    code_system = CodeSystem.NCPDP_REJECT if rule.code_list == NCPDP_QUALIFIER else CodeSystem.X12_STATUS
    codes = describe_codes(reading.codes, lists)
    return ClaimStatus(
        category=rule.category,
        category_description=lists.describe(CodeSystem.X12_CATEGORY, rule.category) or rule.category,
        status_code=code,
        status_description=lists.describe(code_system, code) if code else None,
        entity=rule.entity,
        entity_description=ENTITY_CODES.get(rule.entity) if rule.entity else None,
        code_list=rule.code_list,
        detail_code=rule.detail_code,
        detail_description=(
            lists.describe(CodeSystem.X12_STATUS, rule.detail_code) if rule.detail_code else None
        ),
        billed=_decimal(reading.billed_amount),
        paid=_decimal(reading.paid_amount),
        patient_responsibility=_decimal(reading.patient_responsibility),
        pharmacy=pharmacy_view(rule.pharmacy_status, codes) if rule.pharmacy_status else None,
        payer_wording=reading.status_text,
        payer_codes=codes,
        source=source,
        confidence=confidence,
    )


def _decimal(amount: str | None) -> Decimal | None:
    return Decimal(amount) if amount else None


def pa_status_from_rule(
    rule: PaRule,
    reading: PaReading,
    lists: CodeLists,
    *,
    today: date | None = None,
    source: StatusSource = StatusSource.TABLE,
    confidence: float = 1.0,
) -> PaStatus:
    """``today`` is the run's date: a granted authorization that ended before it is ``expired``."""
    description, word = HCR01[rule.hcr01]
    ended = reading.valid_to is not None and today is not None and reading.valid_to < today
    return PaStatus(
        hcr01=rule.hcr01,
        hcr01_description=description,
        decision=word,
        certification_number=reading.certification_number,
        valid_from=reading.valid_from,
        valid_to=reading.valid_to,
        expired=ended and rule.hcr01 in CERTIFIED,
        units_requested=reading.units_requested,
        units_approved=reading.units_approved,
        reason=reading.detail,
        reason_code=reading.reason_code,
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
    """A portal's prior-authorization wording table, written as text (``wording | hcr01``)."""
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
