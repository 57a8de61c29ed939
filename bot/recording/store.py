"""The ``runs`` table: the light record of every portal run, and where its bundle is.

Saving a run also keeps what the last good look of a page means: a run that went as expected
updates its pages' fingerprints (``bot.recording.baselines``), and a failed run keeps, beside its own
fingerprint, the last good one of its failing page as it was when it failed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.db import Run
from bot.logging import get_logger
from bot.recording.baselines import Baselines
from bot.recording.recorder import Bundle, light_record

log = get_logger()
GOOD_OUTCOMES = frozenset({"ok", "dry_run", "stopped"})  # the pages a run walked were as expected


class RunStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.baselines = Baselines(engine)

    def save(self, bundle: Bundle) -> None:
        info = bundle.info
        record = light_record(bundle)
        if bundle.outcome == "failed" and bundle.fingerprint:
            record["last_good"] = self._last_good(bundle)
        values: dict[str, Any] = {
            "item_id": info.item_id,
            "payer": info.payer,
            "account": info.account,
            "action": info.action,
            "attempt": info.attempt,
            "started_at": bundle.started_at,
            "ended_at": bundle.ended_at,
            "outcome": bundle.outcome,
            "error_kind": bundle.error_kind,
            "error": bundle.error,
            "steps": record,
            "bundle_path": bundle.files.get("path"),
            "replay_of": info.replay_of,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(Run).values(id=info.run_id, **values))
        if bundle.outcome in GOOD_OUTCOMES and bundle.pages:
            try:
                self.baselines.remember(info.payer, bundle.pages, run_id=info.run_id, at=bundle.ended_at)
            except SQLAlchemyError as exc:  # a comparison aid: never worth failing a finished run
                log.warning(
                    "page fingerprints not updated", run_id=info.run_id, error_kind=type(exc).__name__
                )

    def _last_good(self, bundle: Bundle) -> list[str] | None:
        try:
            return self.baselines.last_good(bundle.info.payer, bundle.url_path, bundle.fingerprint)
        except SQLAlchemyError:
            return None

    def list(
        self,
        *,
        failed_only: bool = False,
        since: datetime | None = None,
        limit: int = 200,
        item_id: int | None = None,
        replays: bool = True,
    ) -> list[dict[str, Any]]:
        """Newest first. ``failed_only``: runs that failed (not dry runs or planned stops)."""
        query = sa.select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)
        if failed_only:
            query = query.where(Run.outcome == "failed")
        if since is not None:
            query = query.where(Run.started_at >= since)
        if item_id is not None:
            query = query.where(Run.item_id == item_id)
        if not replays:
            query = query.where(Run.replay_of.is_(None))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(Run).where(Run.id == run_id)).mappings().first()
        return dict(row) if row else None
