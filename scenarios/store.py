"""The ``runs`` table: the light record of every portal run, and where its bundle is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import Run
from scenarios.recorder import Bundle, light_record


class RunStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, bundle: Bundle) -> None:
        info = bundle.info
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
            "steps": light_record(bundle),
            "bundle_path": bundle.files.get("path"),
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(Run).values(id=info.run_id, **values))

    def list(
        self, *, failed_only: bool = False, since: datetime | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        query = sa.select(Run).order_by(Run.started_at.desc()).limit(limit)
        if failed_only:
            query = query.where(Run.outcome != "ok")
        if since is not None:
            query = query.where(Run.started_at >= since)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(Run).where(Run.id == run_id)).mappings().first()
        return dict(row) if row else None

    def for_item(self, item_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(Run).where(Run.item_id == item_id).order_by(Run.started_at)
            ).mappings()
            return [dict(r) for r in rows]
