"""Reading values off portal pages: US dates and money, with the dashes portals show for "none".

Shared by the page objects, so every payer reads "01/31/2026", "N/A" and "$1,234.50" alike.
"""

from __future__ import annotations

import re
from datetime import date, datetime

NO_VALUE = frozenset({"", "—", "-", "n/a", "none"})


def parse_us_date(text: str) -> date | None:
    """'01/31/2026' -> date(2026, 1, 31); a dash or 'N/A' -> None; anything else raises ValueError."""
    return parse_date(text, "%m/%d/%Y")


def parse_date(text: str, pattern: str) -> date | None:
    """A date a portal shows in its own ``pattern`` ('%b %d, %Y': 'Jan 05, 2026'); a dash or 'N/A'
    -> None; anything else raises ValueError."""
    value = text.strip()
    return None if value.casefold() in NO_VALUE else datetime.strptime(value, pattern).date()


def format_us_date(value: date) -> str:
    return value.strftime("%m/%d/%Y")


def parse_units(text: str | None) -> int | None:
    """'12' or '12 visits' -> 12; absent, a dash or 'N/A' -> None; anything else raises ValueError."""
    value = (text or "").strip()
    if value.casefold() in NO_VALUE:
        return None
    number = re.match(r"\d[\d,]*", value)
    if number is None:
        raise ValueError(f"no number of units in {value!r}")
    return int(number.group().replace(",", ""))


def parse_money(text: str) -> str | None:
    """'$1,234.50' -> '1234.50'; a dash or a word (not yet adjudicated) -> None."""
    digits = re.sub(r"[^\d.]", "", text)
    return digits or None
