"""The queue as the runner, the scheduler and the CLI see it: policy over the SQL in manager/leases.

Every call opens its own connection from the engine's pool, so a worker may call ``heartbeat`` from
a background thread while its main thread completes items.
"""

from __future__ import annotations

import builtins
import itertools
import json
import random
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.engine import Connection, Engine

from bot.audit import AuditEntry, AuditTrail
from bot.clock import Clock, SystemClock
from bot.errors import ConfigError, Disposition, IntakeError, PayerbotError
from bot.models import AppealRequest, ItemState, NewItem
from bot.queue import intake
from bot.queue.leases import AccountLease, Leases, Validator
from bot.queue.manager import AuditWrite, ExistingKey, Fence, Manager
from bot.queue.operations import Appender, Operations
from bot.queue.reads import Reads
from bot.queue.retry import RetryPolicy
from bot.queue.sql import Database
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
from bot.settings import Settings

SUBMIT_MARGIN_SECONDS = 10.0
ENQUEUE_CHUNK = 500
VIA = ("click", "history", "operator")


class Queue:
    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        check: intake.RequestCheck,
        submit_margin_seconds: float = SUBMIT_MARGIN_SECONDS,
        audit: AuditTrail | None = None,
        deadlines: intake.DeadlineDays | None = None,
    ) -> None:
        """``check`` holds the payer's own rules for a request (``portals.check_request``, handed in
        by ``bot.services``): enqueued items and rows written upstream are checked against it.
        ``audit`` records operators' retries and cancels, and appends the audit records that must
        commit with a submission's intent or confirmation (without it, handing one in is an error).
        ``deadlines`` gives each payer's own filing deadline per appeal level
        (``portals.filing_deadline_days``); ``PAYERBOT_FILING_DEADLINES`` overrides it."""
        self.settings = settings or Settings()
        self.audit = audit
        self.clock: Clock = clock or SystemClock()
        self.retry_policy = RetryPolicy(
            self.settings.retry_base_seconds, self.settings.retry_max_seconds, rng or random.Random()
        )
        self.submit_margin_seconds = submit_margin_seconds
        self._check = check
        self._deadlines = deadlines
        self._validate: Validator = partial(intake.validate_stored, check=check)
        db = Database(engine)
        self._leases = Leases(db, self.settings.max_attempts)
        self._manager = Manager(db)
        self._operations = Operations(db)
        self._reads = Reads(db)

    # -- intake -----------------------------------------------------------------------------------

    def enqueue(self, new_items: Iterable[NewItem]) -> EnqueueReport:
        """Queue valid rows; refuse bad ones (field named). Nothing already queued changes."""
        report = EnqueueReport()
        numbered = enumerate(new_items)
        while chunk := list(itertools.islice(numbered, ENQUEUE_CHUNK)):
            self._enqueue_chunk(chunk, report)
        return report

    def _enqueue_chunk(self, chunk: list[tuple[int, NewItem]], report: EnqueueReport) -> None:
        checked: list[tuple[int, NewItem]] = []
        deadlines: dict[int, date] = {}  # index -> an appeal's filing deadline
        now = self.clock.now()
        for index, item in chunk:
            try:
                intake.check_new_item(item, self.settings.documents_dir, self._check)
                request = item.request
                if isinstance(request, AppealRequest):
                    deadline = intake.filing_deadline(item.payer, request, self.settings, self._deadlines)
                    intake.check_appeal_dates(request, deadline, now)
                    if deadline is not None:
                        deadlines[index] = deadline
            except IntakeError as exc:
                report.rejected.append(Rejection(index, exc.field, exc.message))
            else:
                checked.append((index, item))
        known = self._manager.known_accounts({(i.payer, i.account) for _, i in checked})
        candidates = []
        for index, item in checked:
            if (item.payer, item.account) in known:
                candidates.append((index, item, item.key, item.digest))
            else:
                report.rejected.append(
                    Rejection(
                        index, "account", f"account: payer '{item.payer}' has no account '{item.account}'"
                    )
                )
        if not candidates:
            return

        def work(conn: Connection) -> tuple[list[int], list[Duplicate], list[Rejection]]:
            duplicates: list[Duplicate] = []
            rejected: list[Rejection] = []
            first_seen: dict[str, tuple[int, str]] = {}  # key -> (index, digest), in input order
            repeats: list[tuple[int, str]] = []  # rows repeating a key first seen in this chunk
            rows = []
            refused = self._appeal_conflicts(conn, candidates)
            rejected.extend(refused.values())
            for index, item, key, digest in candidates:
                if index in refused:
                    continue
                if key not in first_seen:
                    first_seen[key] = (index, digest)
                    rows.append(_row(item, key, digest, now, deadlines.get(index)))
                elif first_seen[key][1] == digest:
                    repeats.append((index, key))
                else:
                    rejected.append(Rejection(index, "idempotency_key", _conflict_text(None)))
            # Insert first and look up only the keys the unique index turned away: a lookup of
            # every key would be an IN list the planner may scan for while its statistics are cold.
            inserted = self._manager.insert_items(conn, rows, now)
            taken = [key for key in first_seen if key not in inserted]
            existing = self._manager.existing_keys(conn, taken) if taken else {}
            ids = dict(inserted)
            for key in taken:
                index, digest = first_seen[key]
                found = existing[key]
                if _existing_digest(found) == digest:
                    duplicates.append(Duplicate(index, found.id))
                    ids[key] = found.id
                else:
                    rejected.append(_conflict(index, found.id))
            for index, key in repeats:
                if key in ids:
                    duplicates.append(Duplicate(index, ids[key]))
                else:
                    rejected.append(_conflict(index, existing[key].id))
            return [inserted[key] for key in first_seen if key in inserted], duplicates, rejected

        queued, duplicates, rejected = self._manager.db.write(work)
        report.queued.extend(queued)
        report.duplicates.extend(duplicates)
        report.rejected.extend(rejected)
        report.rejected.sort(key=lambda r: r.index)
        report.duplicates.sort(key=lambda d: d.index)

    def _appeal_conflicts(
        self, conn: Connection, candidates: builtins.list[tuple[int, NewItem, str, str]]
    ) -> dict[int, Rejection]:
        """One appeal per claim and level (``intake.appeal_conflict``): the rows refused, by index.
        Earlier rows of this input count as queued appeals before the later ones."""
        appeals = [
            (index, item, key, request)
            for index, item, key, _ in candidates
            if isinstance(request := item.request, AppealRequest)
        ]
        if not appeals:
            return {}
        stored: dict[tuple[str, str], builtins.list[intake.StoredAppeal]] = {}
        pairs = {(item.payer, request.claim_number) for _, item, _, request in appeals}
        for row_payer, row in self._manager.appeals_of(conn, pairs):
            stored.setdefault(row_payer, []).append(row)
        latest: dict[tuple[Any, ...], Any] = {}  # each claim's latest status result, oldest replaced
        for payer, payload, result in self._manager.checked_claims(conn, pairs):
            latest[intake.checked_claim_of(payer, payload)] = result
        refused: dict[int, Rejection] = {}
        for index, item, key, request in appeals:
            claim = (item.payer, request.claim_number)
            conflict = intake.appeal_conflict(item.payer, request, key, stored.get(claim, []))
            conflict = conflict or intake.not_appealable(
                request, latest.get(intake.claim_of(item.payer, request))
            )
            if conflict is not None:
                refused[index] = Rejection(index, conflict.field, conflict.message)
                continue
            queued = ItemState.QUEUED.value
            stored.setdefault(claim, []).append(intake.StoredAppeal(0, key, queued, item.payload))
        return refused

    # -- leases -------------------------------------------------------------------------------------

    def lease_batch(self, owner: str, *, limit: int | None = None) -> Batch | None:
        """Lease up to ``limit`` due items of ONE free account, or None when nothing is due."""
        now = self.clock.now()
        expires_at = now + timedelta(seconds=self.settings.lease_seconds)
        got = self._leases.lease(
            owner,
            limit=limit or self.settings.batch_size,
            now=now,
            expires_at=expires_at,
            validate=self._validate,
        )
        if got is None:
            return None
        return self._batch(owner, got)

    def lease_item(self, owner: str, item_id: int) -> Batch | None:
        """Lease one named queued item and its account, or None when either is not free.

        For an operator's replay that submits: the item then runs the worker's own fenced,
        exactly-once path. ``release`` gives it back like any batch.
        """
        now = self.clock.now()
        expires_at = now + timedelta(seconds=self.settings.lease_seconds)
        got = self._leases.lease_item(owner, item_id, now=now, expires_at=expires_at, validate=self._validate)
        if got is None:
            return None
        return self._batch(owner, got)

    def _batch(self, owner: str, got: AccountLease) -> Batch:
        """The worker's view of an account lease: each item with the token and its reference."""
        leased = [
            LeasedItem(
                id=row.id,
                kind=row.kind,
                payer=row.payer,
                account=row.account,
                request=row.request,
                attempt=row.attempt,
                token=got.token,
                idempotency_key=row.idempotency_key,
                reference=submission_reference(row.id, row.idempotency_key),
                max_attempts=self.settings.max_attempts(row.kind),
            )
            for row in got.items
        ]
        return Batch(got.payer, got.account, owner, got.token, got.expires_at, leased)

    def heartbeat(self, batch: Batch) -> bool:
        """Extend the lease by ``lease_seconds`` from now; False when it was lost (stop working)."""
        expires_at = self.clock.now() + timedelta(seconds=self.settings.lease_seconds)
        held = self._leases.heartbeat(batch.payer, batch.account, batch.token, expires_at)
        if held:
            batch.expires_at = expires_at
        return held

    def release(self, batch: Batch) -> None:
        """Give the account back; unstarted items of the batch go back to queued."""
        self._leases.release(batch.payer, batch.account, batch.token, batch.owner, self.clock.now())

    def reap(self) -> int:
        """Take back expired leases, requeue due retries, reject rows naming no account."""
        now = self.clock.now()
        taken = self._leases.reap(now)
        self._leases.reject_orphans(now)
        return taken

    # -- fenced transitions ---------------------------------------------------------------------------

    @staticmethod
    def _fence(item: LeasedItem, owner: str | None = None) -> Fence:
        return Fence(item.id, item.token, item.attempt, owner)

    def mark_running(self, item: LeasedItem) -> None:
        self._manager.mark_running(self._fence(item), self.clock.now())

    def complete(self, item: LeasedItem, *, canonical_status: str | None, result: dict[str, Any]) -> None:
        self._manager.finish(
            self._fence(item),
            self.clock.now(),
            to_state=ItemState.DONE,
            values={
                "canonical_status": canonical_status,
                "result": result,
                "last_error": None,
                "last_error_kind": None,
            },
            detail=canonical_status,
        )

    def fail(self, item: LeasedItem, error: BaseException) -> ItemState:
        """retry_wait (with backoff), failed or needs_human, by the error's disposition.

        A foreign exception is kept by its type name only: its text may carry what it was given.
        """
        if isinstance(error, PayerbotError):
            disposition, message = error.disposition, error.message
        else:
            disposition, message = Disposition.RETRY, f"{type(error).__name__} (message withheld)"
        kind = type(error).__name__
        now = self.clock.now()
        values: dict[str, Any] = {"last_error": message, "last_error_kind": kind}
        limit = self.settings.max_attempts(item.kind)
        if disposition is Disposition.RETRY and not self.retry_policy.exhausted(item.attempt, limit):
            delay = self.retry_policy.delay(item.attempt)
            values["not_before"] = now + timedelta(seconds=delay)
            to_state, detail = ItemState.RETRY_WAIT, f"{kind}: retry in {delay:.1f} s"
        elif disposition is Disposition.RETRY:
            to_state, detail = ItemState.FAILED, f"{kind}: out of attempts ({item.attempt}/{limit})"
            values["last_error"] = f"{message} (out of attempts: {item.attempt}/{limit})"
        elif disposition is Disposition.HUMAN:
            to_state, detail = ItemState.NEEDS_HUMAN, kind
        else:
            to_state, detail = ItemState.FAILED, kind
        self._manager.finish(self._fence(item), now, to_state=to_state, values=values, detail=detail)
        return to_state

    def defer(self, item: LeasedItem, *, until: datetime, reason: str) -> None:
        """Back to retry_wait until ``until`` without spending this attempt (its event says
        ``reason``): for a wait the portal needs, such as a history that may still lag."""
        self._manager.finish(
            self._fence(item),
            self.clock.now(),
            to_state=ItemState.RETRY_WAIT,
            values={"attempts": item.attempt - 1, "not_before": until},
            detail=f"{reason} (no attempt spent)",
        )

    # -- exactly once ---------------------------------------------------------------------------------

    def _audit_write(self, entry: AuditEntry | None) -> AuditWrite | None:
        if entry is None:
            return None
        trail = self.audit
        if trail is None:  # a record handed in must never be dropped
            raise ConfigError(f"this queue has no audit trail to record '{entry.action}' in")
        return lambda conn: trail.append_in(conn, entry)

    def begin_submission(self, item: LeasedItem, reference: str, *, audit: AuditEntry | None = None) -> int:
        """Commit the intent to submit (with its audit record, when given), or raise StaleLease
        (token stale or lease about to end)."""
        return self._manager.begin_submission(
            self._fence(item),
            reference,
            self.clock.now(),
            self.submit_margin_seconds,
            self._audit_write(audit),
        )

    def confirm_submission(
        self,
        item: LeasedItem,
        *,
        submission_id: int,
        confirmation_id: str,
        via: str,
        evidence: Evidence | None,
        audit: AuditEntry | None = None,
    ) -> None:
        """Commit the confirmation, and its audit record when given, in one transaction."""
        if via not in VIA:
            raise ValueError(f"via must be one of {', '.join(VIA)}")
        self._manager.confirm_submission(
            self._fence(item),
            self.clock.now(),
            submission_id=submission_id,
            confirmation_id=confirmation_id,
            via=via,
            evidence=evidence,
            audit=self._audit_write(audit),
        )

    def pending_submission(self, item_id: int) -> SubmissionRecord | None:
        return self._reads.pending_submission(item_id)

    def mark_submission_not_found(self, item: LeasedItem, submission_id: int) -> None:
        self._manager.mark_submission_not_found(self._fence(item), submission_id, self.clock.now())

    # -- people ----------------------------------------------------------------------------------------

    def hand_account_to_human(self, payer: str, account: str, reason: str) -> int:
        """A locked-out account's waiting items go to needs_human; returns how many."""
        return self._operations.hand_account_to_human(payer, account, reason, self.clock.now())

    def _appender(self) -> Appender | None:
        return self.audit.append_in if self.audit is not None else None

    def retry(
        self,
        item_id: int,
        *,
        actor: str = "operator",
        not_submitted: bool = False,
        reason: str | None = None,
    ) -> None:
        """An operator's retry, audited (with ``reason``) when the queue has an audit trail."""
        self._operations.retry(
            item_id,
            actor,
            self.clock.now(),
            not_submitted=not_submitted,
            reason=reason,
            audit=self._appender(),
        )

    def cancel(self, item_id: int, *, actor: str = "operator", reason: str | None = None) -> None:
        self._operations.cancel(item_id, actor, self.clock.now(), reason=reason, audit=self._appender())

    # -- reads -------------------------------------------------------------------------------------------

    def counts(self) -> dict[str, Any]:
        """Items by state, payer and kind; ``appeals_due_7d``: open appeals whose filing deadline
        falls within 7 days (or has passed), those with a person included."""
        counts = self._reads.counts()
        counts["appeals_due_7d"] = self.appeals_due(timedelta(days=7))
        return counts

    def appeals_due(self, within: timedelta) -> int:
        return self._reads.appeals_due(self.clock.now().date() + within)

    def next_due_at(self) -> datetime | None:
        return self._reads.next_due_at()

    def get(self, item_id: int) -> ItemView:
        return self._reads.get(item_id)

    def list(
        self,
        *,
        state: str | None = None,
        payer: str | None = None,
        kind: str | None = None,
        due_within: timedelta | None = None,
        limit: int = 100,
    ) -> list[ItemSummary]:
        """Items oldest first; with ``due_within``, the open appeals (with a person too) whose
        filing deadline falls within that span from today (or has passed), nearest first."""
        due_by = self.clock.now().date() + due_within if due_within is not None else None
        return self._reads.list(state=state, payer=payer, kind=kind, due_by=due_by, limit=limit)

    def history(self, item_id: int) -> builtins.list[EventView]:  # `list` is a method here
        return self._reads.history(item_id)


def _row(item: NewItem, key: str, digest: str, now: Any, deadline: date | None) -> dict[str, Any]:
    return {
        "deadline": deadline,
        "idempotency_key": key,
        "kind": item.kind.value,
        "payer": item.payer,
        "account": item.account,
        "payload": item.request.model_dump(mode="json"),
        "priority": item.priority,
        "not_before": now,
        "created_at": now,
        "updated_at": now,
        "payload_digest": digest,
        "state": ItemState.QUEUED.value,
        "attempts": 0,
    }


def _existing_digest(found: ExistingKey) -> str | None:
    """The stored digest, or one computed from a row upstream wrote without it."""
    if found.digest:
        return str(found.digest)
    try:
        payload = json.loads(found.payload) if isinstance(found.payload, str) else found.payload
        row = {"kind": found.kind, "payer": found.payer, "account": found.account, "payload": payload}
        return NewItem.model_validate(row).digest
    except (ValueError, TypeError):
        return None


def _conflict_text(item_id: int | None) -> str:
    where = f"item {item_id}" if item_id is not None else "an earlier row of this input"
    return f"idempotency_key: already used by {where} with a different payload"


def _conflict(index: int, item_id: int) -> Rejection:
    return Rejection(index, "idempotency_key", _conflict_text(item_id))
