"""The composition root: builds the engine's parts from settings and hands them around.

Nothing reaches for a global: the worker, the scheduler, the demo and the tests each build a
``Services`` (or are handed one) and pass it down.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from bot.audit import AuditTrail
from bot.clock import Clock, SystemClock
from bot.codelists import load_codelists
from bot.db import make_engine
from bot.mapping import StatusMapper, WordingClassifier
from bot.queue import Queue
from bot.settings import Settings
from scenarios.store import RunStore
from vault import Vault


@dataclass
class Services:
    settings: Settings
    engine: Engine
    queue: Queue
    vault: Vault
    audit: AuditTrail
    runs: RunStore
    mapper: StatusMapper
    clock: Clock


def build_services(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    classifier: WordingClassifier | None = None,
) -> Services:
    engine = engine or make_engine(settings.resolved_database_url)
    clock = clock or SystemClock()
    if classifier is None and settings.llm_model:
        from bot.llm import classifier_from_settings

        classifier = classifier_from_settings(settings)
    return Services(
        settings=settings,
        engine=engine,
        queue=Queue(engine, settings, clock=clock),
        vault=Vault.from_settings(engine, settings, clock=clock),
        audit=AuditTrail(engine, actor=settings.service_identity, clock=clock),
        runs=RunStore(engine),
        mapper=StatusMapper(
            load_codelists(settings.codelists_dir), classifier, min_confidence=settings.llm_min_confidence
        ),
        clock=clock,
    )
