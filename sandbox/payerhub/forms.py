"""How PayerHub reads a posted form and writes values: WebForms control names, US dates, money."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from starlette.datastructures import FormData


def control(form: Mapping[str, Any], control_id: str) -> Any:
    """A posted value by its control id: WebForms names a control ``ctl00$<container>$<id>``, and
    the container differs between layouts."""
    for name in form:
        if name == control_id or name.endswith(f"${control_id}"):
            return form[name]
    return None


def controls(form: FormData, control_id: str) -> list[Any]:
    """Every posted value of a control that posts several (a multi-file upload)."""
    for name in form:
        if name == control_id or name.endswith(f"${control_id}"):
            return form.getlist(name)
    return []


def pressed(form: FormData, button: str) -> bool:
    return control(form, button) is not None


def text(form: FormData, control_id: str) -> str:
    value = control(form, control_id)
    return value.strip() if isinstance(value, str) else ""


def parse_date(value: str) -> date | None:
    """A date as PayerHub takes it: MM/DD/YYYY (or a date picker's YYYY-MM-DD)."""
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    return None


def us_date(value: date | datetime | None) -> str:
    return value.strftime("%m/%d/%Y") if value else ""


def us_time(value: datetime) -> str:
    return value.strftime("%m/%d/%Y %I:%M %p UTC")


def money(value: Decimal | None) -> str:
    return f"${value:,.2f}" if value is not None else "Pending"
