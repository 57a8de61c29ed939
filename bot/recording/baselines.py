"""The last good look of each portal page: fingerprints kept from runs that went as expected.

Every recorded run notes the fingerprint of each page it worked on once the page was loaded
(``Bundle.pages``). A run that ended as expected (or at a planned stop) hands them here, per payer
and URL path. A page shows a few states (a search form, then the same path with its results), so a
row keeps the distinct states seen lately, newest first; a failed run's page is compared with the
state closest to what it saw, which names the control that changed. Paths are kept as page kinds:
a segment that names a record (``/app/claims/2d2ae8b6ced6``) is ``:id``, so every claim's page
shares one last good look.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bot.db import PageFingerprint, utcnow
from bot.queue.sql import Database

MAX_STATES = 6  # states kept per page: enough for a form and its outcomes, few enough to stay current
pages = PageFingerprint.__table__
_RECORD = re.compile(r"^(?=.*\d)[A-Za-z0-9_.-]{6,}$")  # a segment with a digit and some length: an id


def page_key(path: str) -> str:
    """The page a URL path shows, without the record it shows: ``/app/claims/:id``."""
    return "/".join(":id" if _RECORD.match(part) else part for part in path.split("/"))


def similarity(a: list[str], b: list[str]) -> float:
    """Shared entries over all entries (Jaccard): 1.0 for the same page state."""
    left, right = set(a), set(b)
    return len(left & right) / len(left | right) if left or right else 1.0


def merge_states(known: list[list[str]], seen: list[list[str]]) -> list[list[str]]:
    """The states seen now first, then the ones known before, without repeats, at most MAX_STATES."""
    out: list[list[str]] = []
    for state in [*seen, *known]:
        if state and state not in out:
            out.append(state)
    return out[:MAX_STATES]


def closest(states: list[list[str]], seen: list[str]) -> list[str] | None:
    """The known state most like ``seen`` (the newest on a tie), or None when nothing is known."""
    best: list[str] | None = None
    best_score = -1.0
    for state in states:
        score = similarity(state, seen)
        if score > best_score:
            best, best_score = state, score
    return best


class Baselines:
    """Reads and updates ``page_fingerprints``."""

    def __init__(self, engine: Engine) -> None:
        self.db = Database(engine)

    def remember(
        self, payer: str, seen: dict[str, list[list[str]]], *, run_id: str, at: datetime | None = None
    ) -> None:
        """Fold one good run's page states into each page's row."""
        when = at or utcnow()
        merged: dict[str, list[list[str]]] = {}
        for path, states in seen.items():
            merged.setdefault(page_key(path), []).extend(states)
        for path, states in merged.items():
            if not states:
                continue
            for attempt in range(2):
                try:
                    self.db.write(
                        partial(self._merge, payer=payer, path=path, seen=states, run_id=run_id, at=when)
                    )
                    break
                except IntegrityError:  # another worker created the row first: merge into it
                    if attempt == 1:
                        raise

    @staticmethod
    def _merge(
        conn: Connection, *, payer: str, path: str, seen: list[list[str]], run_id: str, at: datetime
    ) -> None:
        where = sa.and_(pages.c.payer == payer, pages.c.url_path == path)
        row = conn.execute(sa.select(pages.c.id, pages.c.states).where(where).with_for_update()).first()
        if row is None:
            conn.execute(
                sa.insert(pages).values(
                    payer=payer, url_path=path, states=merge_states([], seen), run_id=run_id, seen_at=at
                )
            )
            return
        states = merge_states(list(row.states or []), seen)
        conn.execute(
            sa.update(pages).where(pages.c.id == row.id).values(states=states, run_id=run_id, seen_at=at)
        )

    def states(self, payer: str, path: str) -> list[list[str]]:
        key = page_key(path)
        row = self.db.read(
            lambda conn: conn.execute(
                sa.select(pages.c.states).where(pages.c.payer == payer, pages.c.url_path == key)
            ).first()
        )
        return list(row.states) if row is not None and row.states else []

    def last_good(self, payer: str, path: str | None, seen: list[str]) -> list[str] | None:
        """The last good state of the page at ``path`` closest to the fingerprint ``seen``."""
        if not path:
            return None
        return closest(self.states(payer, path), seen)

    def all(self, payer: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(pages).order_by(pages.c.payer, pages.c.url_path)
        if payer is not None:
            query = query.where(pages.c.payer == payer)
        return self.db.read(lambda conn: [dict(r) for r in conn.execute(query).mappings()])
