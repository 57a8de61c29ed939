"""Every payerbot error class lives in bot.errors, and a recorded error kind finds its class.

Runs, items and bundles keep an error by its class name (``error_kind``, ``last_error_kind``);
``promote`` and ``replay`` read its family back through ``bot.errors.error_class``.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bot
import portals
import scenarios
import vault
from bot.errors import Disposition, PayerbotError, error_class
from bot.models import ItemState
from scenarios.catalog.promote import expected_state
from scenarios.runs import RunView

# importing these would run them: the Alembic environment and ``python -m bot.cli``
NOT_IMPORTED = ("bot.migrations", "bot.cli.__main__")


def _all_error_classes() -> set[type[PayerbotError]]:
    for package in (bot, portals, vault, scenarios):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.startswith(NOT_IMPORTED):
                importlib.import_module(info.name)
    importlib.import_module("scheduler")
    found: set[type[PayerbotError]] = set()
    todo: list[type[PayerbotError]] = [PayerbotError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(c for c in cls.__subclasses__() if c not in found)
    return found


def test_every_error_class_is_defined_in_bot_errors_and_found_by_its_kind() -> None:
    classes = _all_error_classes()
    elsewhere = sorted(f"{c.__module__}.{c.__name__}" for c in classes if c.__module__ != "bot.errors")
    assert not elsewhere, f"error classes outside bot/errors.py: {elsewhere}"
    assert all(error_class(c.__name__) is c for c in classes)
    assert error_class("KeyError") is None and error_class("TimeoutError") is None


def test_the_kinds_the_reaper_writes_are_error_classes() -> None:
    """The reaper fails an item out of attempts as LeaseExpired (a plain failure, not retried)."""
    expired, ambiguous = error_class("LeaseExpired"), error_class("AmbiguousSubmission")
    assert expired is not None and expired.disposition == Disposition.FAIL
    assert ambiguous is not None and ambiguous.disposition == Disposition.HUMAN


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        ("DocumentProblem", ItemState.FAILED),
        ("TotpStepBusy", ItemState.RETRY_WAIT),
        ("LeaseExpired", ItemState.FAILED),
        ("PortalTimeout", ItemState.RETRY_WAIT),
        ("PortalChanged", ItemState.NEEDS_HUMAN),
        ("KeyError", ItemState.NEEDS_HUMAN),  # a bug's error goes to a person
    ],
)
def test_a_promoted_run_expects_the_state_its_error_family_leads_to(kind: str, state: ItemState) -> None:
    run = RunView(row={"id": "20261129T161136-2-a29258", "outcome": "failed", "error_kind": kind})
    assert expected_state(run) == state
