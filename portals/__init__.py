"""The payer registry: every module in this package that defines a ``Portal`` subclass.

A payer is one module here. The registry walks the package once and maps ``payer_id`` to the class;
a duplicate id fails loudly, and an unknown payer id names the ones that exist.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

from bot.errors import ConfigError, IntakeError, UnsupportedAction
from bot.models import AppealLevel, Payload, WorkKind
from bot.portal import Portal


@cache
def registry() -> dict[str, type[Portal]]:
    found: dict[str, type[Portal]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, Portal) or cls is Portal or cls.__module__ != module.__name__:
                continue
            if not getattr(cls, "payer_id", None):  # a shared base class, not a payer
                continue
            if cls.payer_id in found and found[cls.payer_id] is not cls:
                raise ConfigError(
                    f"payer id '{cls.payer_id}' is defined twice: "
                    f"{found[cls.payer_id].__module__} and {cls.__module__}"
                )
            found[cls.payer_id] = cls
    return found


def get_portal(payer_id: str) -> type[Portal]:
    try:
        return registry()[payer_id]
    except KeyError:
        known = ", ".join(sorted(registry())) or "none"
        raise UnsupportedAction(f"unknown payer '{payer_id}' (known payers: {known})") from None


def payer_ids() -> list[str]:
    return sorted(registry())


def check_request(kind: WorkKind, payer: str, request: Payload) -> None:
    """Intake's payer rules, which ``bot.services`` hands to the queue: the payer exists, supports
    ``kind`` and accepts the request's numbers. Refusals are IntakeErrors naming the field."""
    try:
        portal = get_portal(payer)
    except UnsupportedAction as exc:
        raise IntakeError(f"payer: {exc.message}", field="payer") from None
    try:
        portal.check_request(kind, request)
    except IntakeError:
        raise
    except UnsupportedAction as exc:
        raise IntakeError(f"kind: {exc.message}", field="kind") from None


def filing_deadline_days(payer: str, level: AppealLevel) -> int | None:
    """The payer's own filing deadline for appeals at ``level`` (days from the denial date), which
    ``bot.services`` hands to the queue; None for a payer or level without one."""
    portal = registry().get(payer)
    return None if portal is None else portal.filing_deadline_days.get(level)
