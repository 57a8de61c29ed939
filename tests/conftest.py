"""Shared fixtures. Each fixture module belongs to the part of the project it serves."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.browser",
    "tests.fixtures.db",
    "tests.fixtures.queue",
    "tests.fixtures.sandbox",
    "tests.fixtures.vault",
]
