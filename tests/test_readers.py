"""The shared readers in real Chromium: tables into rows, a reference in a history, codes, details."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from bot.errors import PortalChanged
from bot.models import CodeSystem
from bot.readers import (
    CodesTable,
    HistoryTable,
    Pager,
    find_in_history,
    read_codes,
    read_details,
    table_rows,
)
from bot.steps import StepKind, StepRecorder

HISTORY_PAGE = """
<table aria-label="Submitted appeals">
  <tr><th>Received</th><th>Your reference</th><th>Appeal number</th></tr>
  <tr><td>12/02/2026</td><td>REF-7</td><td>APL-0003</td></tr>
  <tr><td>12/01/2026</td><td>REF-9</td><td>APL-0002</td></tr>
  <tr><td>11/30/2026</td><td>REF-7</td><td>APL-0001</td></tr>
</table>
<p role="status" hidden>No appeals found</p>
"""
HISTORY = HistoryTable("appeal history", "Your reference", "Appeal number", none_found="No appeals found")


@pytest.fixture
def steps(page: Page) -> StepRecorder:
    page.set_default_timeout(2_000)
    return StepRecorder(page)


def test_a_table_reads_in_one_step_into_rows_keyed_by_header(page: Page, steps: StepRecorder) -> None:
    page.set_content(HISTORY_PAGE)
    table = page.get_by_role("table")
    rows = table_rows(steps, table, what="appeal history", needs=("Your reference",))
    assert rows[0] == {"Received": "12/02/2026", "Your reference": "REF-7", "Appeal number": "APL-0003"}
    assert [s.kind for s in steps.steps] == [StepKind.READ]


def test_a_missing_column_names_the_table_and_the_columns_it_has(page: Page, steps: StepRecorder) -> None:
    page.set_content(HISTORY_PAGE.replace("Appeal number", "Request ID"))
    with pytest.raises(PortalChanged, match=r"the appeal history has columns \['Received', 'Your reference'"):
        table_rows(steps, page.get_by_role("table"), what="appeal history", needs=("Appeal number",))


def test_a_history_lookup_takes_the_first_submission_newest_first(page: Page, steps: StepRecorder) -> None:
    page.set_content(HISTORY_PAGE)
    table, empty = page.get_by_role("table"), page.get_by_role("status")
    found = find_in_history(steps, table, HISTORY, "REF-7", none_found=empty)
    assert (found.found, found.confirmation_id) == (True, "APL-0001")  # the last row is the oldest
    missing = find_in_history(steps, table, HISTORY, "REF-1", none_found=empty)
    assert (missing.found, missing.confirmation_id) == (False, None)


def test_a_history_that_says_it_found_nothing_holds_nothing(page: Page, steps: StepRecorder) -> None:
    page.set_content('<p role="status">No appeals found</p>')
    found = find_in_history(
        steps, page.get_by_role("table"), HISTORY, "REF-7", none_found=page.get_by_role("status")
    )
    assert not found.found


CODES_PAGE = """
<table aria-label="Adjustment codes">
  <tr><th>Type</th><th>Code</th><th>Description</th></tr>
  <tr><td>Adjustment reason</td><td>16</td><td>Missing information</td></tr>
  <tr><td>Remark</td><td>M51</td><td></td></tr>
  <tr><td>Plan note</td><td>Z9</td><td>Ask the plan</td></tr>
</table>
"""


def test_codes_read_into_their_systems_by_the_declared_column(page: Page, steps: StepRecorder) -> None:
    page.set_content(CODES_PAGE)
    layout = CodesTable(
        system_column="Type", systems={"Adjustment reason": CodeSystem.CARC, "Remark": CodeSystem.RARC}
    )
    codes = read_codes(steps, page.get_by_role("table"), layout, what="codes table")
    assert [(c.system, c.code, c.description) for c in codes] == [
        (CodeSystem.CARC, "16", "Missing information"),
        (CodeSystem.RARC, "M51", None),
        (CodeSystem.PAYER, "Z9", "Ask the plan"),  # a word the map lacks: the payer's own code
    ]
    one_system = CodesTable(system=CodeSystem.NCPDP_REJECT)
    assert {
        c.system for c in read_codes(steps, page.get_by_role("table"), one_system, what="reject codes")
    } == {CodeSystem.NCPDP_REJECT}
    page.set_content("<p>No codes</p>")
    assert read_codes(steps, page.get_by_role("table"), layout, what="codes table") == ()


DETAILS_PAGE = """
<table aria-label="Claim detail">
  <tr><th scope="row">Rx number</th><td>1234567</td></tr>
  <tr><th scope="row">Claim status</th><td>PAID</td></tr>
  <tr><th scope="row">Plan paid</th><td></td></tr>
</table>
"""


def test_details_must_show_what_is_needed_and_what_was_asked_for(page: Page, steps: StepRecorder) -> None:
    page.set_content(DETAILS_PAGE)
    table = page.get_by_role("table")
    shown = read_details(
        steps, table, page="claim page", needs=("Claim status",), equals={"Rx number": "1234567"}
    )
    assert shown["Claim status"] == "PAID"
    with pytest.raises(PortalChanged, match="shows another rx number than the one asked for"):
        read_details(steps, table, page="claim page", equals={"Rx number": "7654321"})
    with pytest.raises(PortalChanged, match="the claim page shows no 'Plan paid'"):
        read_details(steps, table, page="claim page", needs=("Plan paid",))


def test_a_pager_reads_its_position_words() -> None:
    pager = Pager(navigation="Result pages", position=r"^Page {page} of (\d+)")
    assert pager.position_of(2).search("Page 2 of 5 (47 claims)")
    assert not pager.position_of(2).search("Page 1 of 5 (47 claims)")
    assert pager.pages("Page 2 of 5 (47 claims)") == 5
    with pytest.raises(PortalChanged, match="position reads otherwise"):
        pager.pages("Showing 11-20 of 47")
