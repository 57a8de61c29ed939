"""The composition root: builds the engine's parts from settings and hands them around.

Nothing reaches for a global: the worker, the scheduler, the demo and the tests each build a
``Services`` (or are handed one) and pass it down. It sits below the engine (the runner and replay
take the ``Services`` it builds) and builds only lower layers' parts; the payer's intake rules
reach the queue from here (``portals.check_request``), so the queue imports no portal.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

import portals
from bot.audit import AuditTrail
from bot.clock import Clock, SystemClock
from bot.codelists import load_codelists
from bot.db import make_engine
from bot.mapping import StatusMapper, WordingClassifier
from bot.queue import Queue
from bot.recording.store import RunStore
from bot.settings import Settings
from vault import Keyring, Vault
from vault.chainkey import VaultChainKeyStore


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
    vault = Vault.from_settings(engine, settings, clock=clock)
    audit = audit_trail(engine, settings, vault=vault, clock=clock)
    return Services(
        settings=settings,
        engine=engine,
        queue=Queue(
            engine,
            settings,
            clock=clock,
            audit=audit,
            check=portals.check_request,
            deadlines=portals.filing_deadline_days,
        ),
        vault=vault,
        audit=audit,
        runs=RunStore(engine),
        mapper=StatusMapper(
            load_codelists(settings.codelists_dir), classifier, min_confidence=settings.llm_min_confidence
        ),
        clock=clock,
    )


def audit_trail(
    engine: Engine, settings: Settings, *, vault: Vault | None = None, clock: Clock | None = None
) -> AuditTrail:
    """The audit trail, its chain key sealed in ``vault`` (default: one keyed from the settings).

    Without a vault key configured the trail is still built: its first append or verify of a keyed
    row says the key is needed, so a command that writes no audit record needs no key.
    """
    if vault is None:
        has_key = settings.vault_key is not None or settings.vault_key_file is not None
        vault = Vault(engine, Keyring.from_settings(settings) if has_key else None, clock=clock)
    return AuditTrail(engine, actor=settings.service_identity, clock=clock, key=VaultChainKeyStore(vault))
