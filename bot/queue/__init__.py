"""The SQL work queue: intake, leases per (payer, account), fenced transitions, exactly-once records.

``Queue`` (service.py) is the one entry point; ``leases``, ``manager``, ``operations`` and ``reads``
are the only code that touches the queue tables (see sql.py for how transactions run).
"""

from __future__ import annotations

from bot.queue.service import SUBMIT_MARGIN_SECONDS, Queue
from bot.queue.types import (
    Batch,
    Duplicate,
    EnqueueReport,
    EventView,
    Evidence,
    ItemSummary,
    ItemView,
    LeasedItem,
    Rejection,
    SubmissionRecord,
    submission_reference,
)

__all__ = [
    "SUBMIT_MARGIN_SECONDS",
    "Batch",
    "Duplicate",
    "EnqueueReport",
    "EventView",
    "Evidence",
    "ItemSummary",
    "ItemView",
    "LeasedItem",
    "Queue",
    "Rejection",
    "SubmissionRecord",
    "submission_reference",
]
