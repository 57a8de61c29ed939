"""A portal's status wording tables, written as text and checked when its module loads."""

from __future__ import annotations

import pytest

from bot.status import ClaimRule, Hcr01, PaRule, claim_rules, pa_rules


def test_a_claim_table_reads_into_rules_with_empty_cells_as_no_code() -> None:
    rules = claim_rules("""
        wording                  | category | status code
        Received                 | A1       | 19
        In process               | P1       |
        Finalized - paid, see ERA | F1      | 1
    """)
    assert rules == {
        "Received": ClaimRule(category="A1", status_code="19"),
        "In process": ClaimRule(category="P1"),
        "Finalized - paid, see ERA": ClaimRule(category="F1", status_code="1"),
    }


def test_a_pa_table_reads_into_hcr01_codes() -> None:
    assert pa_rules("wording | hcr01\nApproved | A1\n") == {"Approved": PaRule(hcr01=Hcr01.A1)}


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ("category | wording\nA1 | Received", "header row must start with 'wording'"),
        ("", "header row must start with 'wording'"),
        ("wording | category | status code\nReceived | A1", "line 2: expected 3 cells"),
        ("wording | category | status code\n | A1 | 19", "line 2: expected 3 cells, the wording first"),
        (
            "wording | category | status code\n\nPaid | Q1 | 65",
            "line 3, column category: String should match",
        ),
        ("wording | category\nPaid | F1\nPaid | F2", "line 3: 'Paid' is in the table twice"),
        ("wording | category | colour\nPaid | F1 | red", "line 2, column colour: Extra inputs"),
    ],
)
def test_a_malformed_table_names_the_line_and_column(table: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        claim_rules(table)


def test_a_pa_table_refuses_an_unknown_hcr01_code() -> None:
    with pytest.raises(ValueError, match="authorization status table, line 2, column hcr01"):
        pa_rules("wording | hcr01\nApproved | approved")
