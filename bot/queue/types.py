"""What the queue hands out and reports: frozen records, no behaviour."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.models import ItemState, Payload, SubmissionState, WorkKind


def submission_reference(item_id: int, idempotency_key: str) -> str:
    """The reference typed into a portal's appeal form and searched for in its history.

    Stable for the item (the same on every attempt), short enough for any form field, and the
    hex part ties it to the idempotency key, so a reused id in another database cannot collide.
    """
    tag = hashlib.sha256(f"{item_id}:{idempotency_key}".encode()).hexdigest()[:6]
    return f"PB-{item_id}-{tag}"


@dataclass(frozen=True)
class LeasedItem:
    """One item of a batch. ``token`` is the fencing token every write presents."""

    id: int
    kind: WorkKind
    payer: str
    account: str
    request: Payload
    attempt: int  # the attempt this lease runs (attempts so far + 1)
    token: int
    idempotency_key: str
    reference: str
    max_attempts: int = 0


@dataclass
class Batch:
    """Up to K due items of one (payer, account), leased together for one browser session."""

    payer: str
    account: str
    owner: str
    token: int
    expires_at: datetime
    items: list[LeasedItem] = field(default_factory=list)


@dataclass(frozen=True)
class Evidence:
    """Files proving a submission: a screenshot and the page's HTML, with their SHA-256."""

    png_path: str | None
    png_sha256: str | None
    html_path: str | None
    html_sha256: str | None


@dataclass(frozen=True)
class SubmissionRecord:
    id: int
    item_id: int
    attempt: int
    lease_token: int
    reference: str
    state: SubmissionState
    started_at: datetime
    confirmed_at: datetime | None = None
    confirmation_id: str | None = None
    via: str | None = None
    evidence: Evidence | None = None


@dataclass(frozen=True)
class EventView:
    at: datetime
    from_state: str | None
    to_state: str
    attempt: int
    worker: str | None
    detail: str | None


@dataclass(frozen=True)
class ItemSummary:
    """One line of ``payerbot queue list``."""

    id: int
    kind: str
    payer: str
    account: str
    state: str
    attempts: int
    priority: int
    not_before: datetime
    updated_at: datetime
    last_error: str | None
    deadline: date | None = None  # an appeal's filing deadline


@dataclass(frozen=True)
class ItemView:
    """Everything ``payerbot queue show`` prints about one item."""

    id: int
    idempotency_key: str
    kind: str
    payer: str
    account: str
    state: ItemState
    attempts: int
    priority: int
    not_before: datetime
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None
    last_error_kind: str | None
    canonical_status: str | None
    result: dict[str, Any] | None
    confirmation_id: str | None
    submission_reference: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    submissions: list[SubmissionRecord] = field(default_factory=list)
    history: list[EventView] = field(default_factory=list)


@dataclass(frozen=True)
class Rejection:
    """A row refused at intake: its position in the input, the field, and why."""

    index: int
    field: str | None
    message: str


@dataclass(frozen=True)
class Duplicate:
    """A row whose idempotency key and payload match an item already queued: accepted once."""

    index: int
    item_id: int


@dataclass
class EnqueueReport:
    queued: list[int] = field(default_factory=list)  # ids of new items, in input order
    duplicates: list[Duplicate] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def summary(self) -> str:
        return f"queued {len(self.queued)}, duplicates {len(self.duplicates)}, rejected {len(self.rejected)}"
