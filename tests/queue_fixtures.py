"""Fixtures of the queue tests; a test module loads them with
``pytest_plugins = ["tests.queue_fixtures"]``. None is autouse: loading them changes nothing for
other tests.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy.engine import Engine

import portals
from bot.clock import ManualClock
from bot.portal import Portal
from bot.queue import Queue
from bot.settings import Settings
from tests.queue_support import PAYER


@pytest.fixture
def meridian() -> type[Portal]:
    """The payer the queue tests use (portals/meridian.py: claims MH + 10 digits)."""
    return portals.get_portal(PAYER)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        lease_seconds=60,
        batch_size=5,
        retry_base_seconds=30,
        retry_max_seconds=600,
        max_attempts_status=3,
        max_attempts_appeal=2,
    )


@pytest.fixture
def queue(engine: Engine, settings: Settings, clock: ManualClock, meridian: type[Portal]) -> Queue:
    return Queue(engine, settings, clock=clock, rng=random.Random(7))
