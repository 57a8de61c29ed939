"""What every portal reads the same way: a table into rows, a reference in a history table, codes.

Each reader takes the run's ``StepRecorder``, so its reads are recorded steps like any other, and
ends in ``PortalChanged`` naming the table when a column it needs is gone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, cast, get_args

from playwright.sync_api import Locator, Page

from bot.errors import PortalChanged
from bot.models import AdjustmentGroup, CodeSystem, PayerCode, SubmissionLookup
from bot.parsing import NO_VALUE, parse_money, parse_units, parse_us_date
from bot.steps import StepRecorder, describe_locator


def table_rows(
    steps: StepRecorder, table: Locator, *, what: str, needs: Iterable[str]
) -> list[dict[str, str]]:
    """The table's rows, read in one step, each keyed by its column headers (the first row).

    ``what`` names the table in the error when a column in ``needs`` is missing or a row lacks it.
    """
    header, *rows = steps.table(table.get_by_role("row")) or [[]]
    missing = [column for column in needs if column not in header]
    if missing:
        raise PortalChanged(f"the {what} has columns {header}", locator=describe_locator(table))
    cells = len(header)
    if any(len(row) < cells for row in rows):
        raise PortalChanged(f"a row of the {what} has fewer cells than its {cells} columns")
    return [dict(zip(header, row, strict=False)) for row in rows]


def column_cells(area: Locator, columns: Iterable[str]) -> list[Locator]:
    """The cells under each of ``columns`` (by header text) of every table in ``area``: what a page
    object masks where a result list shows patient data. No role query selects a column, so XPath
    counts its header's position (no cell in a table without that header)."""
    heads = [f"ancestor::table[1]//th[normalize-space()='{c}']" for c in columns]
    cells = [f"xpath=.//tr/td[position() = count({h}/preceding-sibling::th) + 1][{h}]" for h in heads]
    return [area.locator(c) for c in cells]


def read_details(
    steps: StepRecorder,
    table: Locator,
    *,
    page: str,
    needs: Iterable[str] = (),
    equals: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A detail table (a row header and its value on each row), read in one step. A row in
    ``needs`` or ``equals`` that is missing or empty, or that shows another value than ``equals``
    gives it (the record asked for), is a changed ``page``."""
    details = {row[0]: row[1] for row in steps.table(table.get_by_role("row")) if len(row) == 2}
    for label in (*needs, *(equals or {})):
        if not details.get(label):
            cell = describe_locator(table.get_by_label(label, exact=True))
            raise PortalChanged(f"the {page} shows no '{label}'", locator=cell)
    for label, expected in (equals or {}).items():
        if details[label] != expected:
            raise PortalChanged(f"the {page} shows another {label.lower()} than the one asked for")
    return details


def shown_date(details: Mapping[str, str], label: str, *, page: str) -> date | None:
    """The US date a detail table shows under ``label`` (none for a dash or no row); a date in
    another format is a changed ``page``."""
    try:
        return parse_us_date(details.get(label, ""))
    except ValueError:
        raise PortalChanged(f"the {page} shows '{label}' in another date format") from None


@dataclass(frozen=True)
class HistoryTable:
    """A portal's appeal history: what the portal calls it, its reference and number columns, and
    what it says when a search finds nothing."""

    what: str
    reference_column: str
    number_column: str
    none_found: str  # the words of the status message an empty search shows


def find_in_history(
    steps: StepRecorder, table: Locator, layout: HistoryTable, reference: str, *, none_found: Locator
) -> SubmissionLookup:
    """Look our reference up in an appeal history shown newest first.

    ``none_found`` is the message the portal shows for an empty search. Several rows may carry the
    reference (a submit repeated by hand): the last is the first submission, whose number counts.
    """
    if steps.read_optional(none_found) is not None:
        return SubmissionLookup(reference=reference, found=False)
    needs = (layout.reference_column, layout.number_column)
    rows = table_rows(steps, table, what=layout.what, needs=needs)
    numbers = [row[layout.number_column] for row in rows if row[layout.reference_column] == reference]
    return SubmissionLookup(
        reference=reference, found=bool(numbers), confirmation_id=numbers[-1] if numbers else None
    )


def read_field(
    steps: StepRecorder, region: Locator, label: str, *, page: str, equals: str | None = None
) -> str:
    """The value ``region`` shows under ``label``: empty, or another than ``equals`` (the record asked
    for), it is a changed ``page``."""
    field = region.get_by_label(label, exact=True)
    text = steps.read(field)
    if not text:
        raise PortalChanged(f"the {page} shows no {label.lower()}", locator=describe_locator(field))
    if equals is not None and text != equals:
        raise PortalChanged(f"the {page} shows another {label.lower()} than the one asked for")
    return text


@dataclass(frozen=True)
class ClaimAmounts:
    """The labels under which a claim page shows its amounts (a page without the patient's share
    leaves it unknown)."""

    billed: str = "Billed amount"
    paid: str = "Paid amount"
    patient_responsibility: str = "Patient responsibility"

    def read(self, steps: StepRecorder, region: Locator) -> dict[str, str | None]:
        """The amounts as ``ClaimReading`` fields: digits, or None where the page shows a word."""
        billed, paid, patient = (
            region.get_by_label(label, exact=True)
            for label in (self.billed, self.paid, self.patient_responsibility)
        )
        shown_share = steps.read_optional(patient)
        return {
            "billed_amount": parse_money(steps.read(billed)),
            "paid_amount": parse_money(steps.read(paid)),
            "patient_responsibility": parse_money(shown_share) if shown_share is not None else None,
        }


@dataclass(frozen=True)
class PaDetails:
    """The labels under which an authorization page shows what backs its decision, each where the
    portal shows it: the reason and its code, the certification number, units asked and granted."""

    reason: str = "Decision reason"
    reason_code: str = "Reason code"
    certification: str = "Certification number"
    units_requested: str = "Units requested"
    units_approved: str = "Units approved"

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.reason, self.reason_code, self.certification, self.units_requested, self.units_approved)

    def read(self, steps: StepRecorder, region: Locator) -> dict[str, Any]:
        """Those values as ``PaReading`` fields (None where the page shows none); units that are
        not a number are a changed page."""
        shown = [steps.read_optional(region.get_by_label(label, exact=True)) for label in self.labels]
        reason, code, certification, requested, approved = (
            None if text is None or text.casefold() in NO_VALUE else text for text in shown
        )
        try:
            units = parse_units(requested), parse_units(approved)
        except ValueError:
            raise PortalChanged("the authorization page shows units that are not a number") from None
        return {
            "detail": reason,
            "reason_code": code,
            "certification_number": certification,
            "units_requested": units[0],
            "units_approved": units[1],
        }


@dataclass(frozen=True)
class CodesTable:
    """How a portal's codes table reads: the column that names each code's system and what its
    words mean (``systems``), else the one system of all its codes (``system``, also the fallback)."""

    system_column: str | None = None
    systems: Mapping[str, CodeSystem] = field(default_factory=dict)
    system: CodeSystem = CodeSystem.PAYER
    code_column: str = "Code"
    description_column: str = "Description"
    group_column: str | None = None  # a CARC's group code (CO, PR, OA, PI), where the table shows it
    amount_column: str | None = None  # what each code adjusted

    def system_of(self, row: Mapping[str, str]) -> CodeSystem:
        if self.system_column is None:
            return self.system
        return self.systems.get(row[self.system_column], self.system)


CARC_RARC_TABLE = CodesTable(
    system_column="Code type",
    systems={"CARC": CodeSystem.CARC, "RARC": CodeSystem.RARC},
    group_column="Group",
    amount_column="Amount",
)
"""The most common codes table: a "Code type" column naming CARC or RARC, each CARC's group and
amount in their own columns."""


def read_codes(
    steps: StepRecorder, table: Locator, layout: CodesTable, *, what: str
) -> tuple[PayerCode, ...]:
    """The codes a claim page lists (none when the table has no row)."""
    if steps.read_optional(table.get_by_role("row").first) is None:
        return ()
    optional = (layout.system_column, layout.group_column, layout.amount_column)
    needs = [layout.code_column, layout.description_column, *(c for c in optional if c is not None)]
    return tuple(
        PayerCode(
            system=layout.system_of(row),
            code=row[layout.code_column],
            description=row[layout.description_column] or None,
            group=_group(row[layout.group_column], what) if layout.group_column else None,
            amount=_amount(row[layout.amount_column]) if layout.amount_column else None,
        )
        for row in table_rows(steps, table, what=what, needs=needs)
    )


def _group(shown: str, what: str) -> AdjustmentGroup | None:
    """A CARC's group code as the table shows it; any other word is a changed table."""
    if not shown:
        return None
    for group in get_args(AdjustmentGroup):
        if shown.strip().upper() == group:
            return cast(AdjustmentGroup, group)
    raise PortalChanged(f"the {what} shows a group code that is none of CO, PR, OA, PI, CR")


def _amount(shown: str) -> Decimal | None:
    digits = parse_money(shown)
    return Decimal(digits) if digits else None


@dataclass(frozen=True)
class Pager:
    """A result list shown a page at a time: the words that say which page shows (``position``, its
    ``{page}`` the page's number and its group the count of pages), and the navigation landmark that
    holds the button to the next page."""

    navigation: str
    position: str = r"^Page {page} of (\d+)$"
    next: str = "Next"
    max_pages: int = 40

    def next_button(self, page: Page) -> Locator:
        return page.get_by_role("navigation", name=self.navigation).get_by_role(
            "button", name=self.next, exact=True
        )

    def position_of(self, page: int) -> re.Pattern[str]:
        return re.compile(self.position.format(page=page))

    def pages(self, position: str) -> int:
        """The count of pages, from the words of any page's position."""
        found = re.search(self.position.replace("{page}", r"\d+"), position)
        if found is None:
            raise PortalChanged(f"the result list's position reads otherwise than {self.position!r}")
        return int(found.group(1))
