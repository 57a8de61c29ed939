"""A leased item's run: what the worker writes to the queue and the audit trail as it goes.

The pipeline (``bot.pipeline``) walks the portal; this mode commits a status read, and holds an
appeal to exactly once: the ``submitting`` intent before the click, checked against the lease, the
heartbeat and a 5-second window; the confirmation and its evidence after it; and, first of all,
the reconciliation of an earlier submit that may have gone through. That one is looked up in the
portal's history. Found: recorded from there. Not found on a history that shows a submission at
once: submitted again. Not found while the history may still lag (``Portal.history_lag``, counted
from the intent): the item waits until the lag has passed, spending no attempt, and is looked up
again; not found then, or no history at all: a person decides, never a blind second submit.

A dry run (``DryRun``) walks the same way and writes nothing: it stops after a read and before
the submit click.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from playwright.sync_api import BrowserContext

from bot import faults
from bot.audit import AuditAction, AuditEntry
from bot.errors import (
    AmbiguousSubmission,
    CaptchaShown,
    CodeInboxMissing,
    DryRunStop,
    LoginRejected,
    PortalError,
    StaleLease,
)
from bot.evidence import capture_evidence
from bot.heartbeat import Heartbeat
from bot.logging import get_logger
from bot.models import AppealRequest, ItemState, SubmissionResult, SubmissionState
from bot.pipeline import PortalRun, RunMode, Subject
from bot.portal import Action, SubmitGate
from bot.queue.types import Evidence, LeasedItem, SubmissionRecord
from bot.recording.recorder import RecordMode
from bot.services import Services
from bot.session import AccountSession
from bot.status import ClaimStatus, PaStatus

log = get_logger()

SUBMIT_WINDOW_SECONDS = 5.0
"""The most time allowed between committing the submit intent and the click. A worker paused
longer than this (a stopped process, a frozen VM) refuses to click when it wakes: by then its lease
may be someone else's, and that worker will reconcile through the portal's history instead."""


@dataclass
class ItemOutcome:
    item_id: int
    state: ItemState | Literal["dry_run"]  # a dry run leaves the item as it was
    canonical_status: str | None = None
    confirmation_id: str | None = None
    error: str | None = None
    run_id: str | None = None


class LoginTrouble(Exception):
    """The login failed for a transient reason: the item fails with ``error`` and the batch ends."""

    def __init__(self, error: PortalError) -> None:
        super().__init__(error.message)
        self.error = error


def subject_of(item: LeasedItem) -> Subject:
    return Subject(item.id, item.kind, item.payer, item.account, item.request, item.attempt, item.reference)


class LeasedRun(RunMode[ItemOutcome]):
    """A leased item's run, which writes how it ended to the queue and the audit trail."""

    def __init__(
        self,
        services: Services,
        item: LeasedItem,
        heartbeat: Heartbeat,
        session: AccountSession,
        record: RecordMode,
    ) -> None:
        self.s = services
        self.item = item
        self.heartbeat = heartbeat
        self.session = session
        self.record = record
        self.run_id = ""  # the run under way, which an item failed at login names too
        self._submission_id: int | None = None

    def login(self, session: AccountSession, run_id: str) -> None:
        self.run_id = run_id
        try:
            session.ensure()
        except (LoginRejected, CaptchaShown, CodeInboxMissing):
            raise  # the account's, not this item's: the batch hands them all to a person
        except PortalError as exc:
            raise LoginTrouble(exc) from exc

    def succeeded(self, run: PortalRun, context: BrowserContext) -> None:
        self.session.keep(context)

    # -- a status ---------------------------------------------------------------------------------

    def read(self, run: PortalRun, status: ClaimStatus | PaStatus) -> ItemOutcome:
        item = self.item
        self.heartbeat.check()
        self.s.queue.complete(item, canonical_status=status.label, result=status.model_dump(mode="json"))
        self.s.audit.record(
            AuditAction.STATUS_READ,
            status.label,
            payer=item.payer,
            account=item.account,
            item_id=item.id,
            correlation_id=run.run_id,
            detail={"source": str(status.source), "confidence": status.confidence},
        )
        return ItemOutcome(item.id, ItemState.DONE, canonical_status=status.label, run_id=run.run_id)

    # -- an appeal, exactly once ------------------------------------------------------------------

    def gate(self, run: PortalRun, request: AppealRequest) -> SubmitGate:
        item, hb = self.item, self.heartbeat

        def commit_intent() -> None:
            faults.point("before_intent")
            # a fresh beat first: the queue refuses an intent whose lease ends within its margin,
            # and the click should have a whole lease ahead of it, not what is left of the last beat
            hb.renew()
            # the audit record commits with the intent: a refused intent leaves neither
            intent = _appeal_audit(
                AuditAction.SUBMISSION_INTENT, SubmissionState.SUBMITTING, item, request, run.run_id
            )
            self._submission_id = self.s.queue.begin_submission(item, item.reference, audit=intent)
            committed = time.monotonic()
            faults.point("after_intent")
            if time.monotonic() - committed > SUBMIT_WINDOW_SECONDS:
                raise StaleLease("paused between the submit intent and the click; not clicking")
            hb.check()

        return commit_intent

    def submitted(self, run: PortalRun, request: AppealRequest, result: SubmissionResult) -> ItemOutcome:
        faults.point("after_click")
        assert self._submission_id is not None  # the gate let the click through
        self._confirm(run, request, self._submission_id, result.confirmation_id, "click")
        faults.point("after_confirm")
        return ItemOutcome(
            self.item.id, ItemState.DONE, confirmation_id=result.confirmation_id, run_id=run.run_id
        )

    def _confirm(
        self, run: PortalRun, request: AppealRequest, submission_id: int, confirmation_id: str, via: str
    ) -> None:
        """The confirmation, its evidence (the page as it shows it now) and its audit record."""
        item = self.item
        evidence = capture_evidence(
            run.page,
            folder=self.s.settings.resolved_artifacts_dir / "evidence" / str(item.id),
            stem=f"attempt{item.attempt}-{'confirmation' if via == 'click' else via}",
            redactor=run.recorder.redactor,
            portal=run.portal,
        )
        self.s.queue.confirm_submission(
            item,
            submission_id=submission_id,
            confirmation_id=confirmation_id,
            via=via,
            evidence=evidence,
            audit=_confirmed(item, request, run.run_id, confirmation_id, via, evidence),
        )

    def earlier_submit(self, run: PortalRun, request: AppealRequest) -> ItemOutcome | None:
        """An earlier attempt committed its intent but no confirmation: ask the portal first."""
        pending = self.s.queue.pending_submission(self.item.id)
        if pending is None:
            return None
        item, portal_cls = self.item, type(run.portal)
        lag = portal_cls.history_lag
        if lag is None or not portal_cls.supports(Action.FIND_SUBMISSION):
            raise AmbiguousSubmission(
                f"{portal_cls.display_name} has no appeal history to check a possible submit"
            )
        lookup = run.portal.find_submission(item.reference)
        self.s.audit.record(
            AuditAction.RECONCILE,
            "found" if lookup.found else "not_found",
            payer=item.payer,
            account=item.account,
            approver=request.approved_by,
            item_id=item.id,
            correlation_id=run.run_id,
            submission_id=lookup.confirmation_id,
        )
        if lookup.found and lookup.confirmation_id:
            self._confirm(run, request, pending.id, lookup.confirmation_id, "history")
            log.info(
                "reconciled from the portal's history",
                item_id=item.id,
                confirmation_id=lookup.confirmation_id,
            )
            return ItemOutcome(
                item.id, ItemState.DONE, confirmation_id=lookup.confirmation_id, run_id=run.run_id
            )
        if lag == timedelta(0):  # the history shows every submission at once: not found, not sent
            self.s.queue.mark_submission_not_found(item, pending.id)
            return None
        if self.s.clock.now() < pending.started_at + lag:
            return self._wait_for_history(run, pending, lag)
        raise AmbiguousSubmission(
            f"{portal_cls.display_name}'s history still lacks the reference {_span(lag)} after the "
            "submit: not resubmitting"
        )

    def _wait_for_history(self, run: PortalRun, pending: SubmissionRecord, lag: timedelta) -> ItemOutcome:
        """Look again once the lag has passed since the intent; this look-up spends no attempt."""
        due = pending.started_at + lag
        reason = (
            f"submission {pending.id} is not yet in {type(run.portal).display_name}'s history, which may "
            f"lag {_span(lag)}: looked up again from {due:%Y-%m-%d %H:%M:%S} UTC"
        )
        self.s.queue.defer(self.item, until=due, reason=reason)
        log.info(
            "the portal's history may lag; looking again later",
            item_id=self.item.id,
            retry_at=due.isoformat(),
        )
        return ItemOutcome(self.item.id, ItemState.RETRY_WAIT, error=reason, run_id=run.run_id)


class DryRun(LeasedRun):
    """Walks as far as a worker would and writes nothing: no status, no intent, no submit."""

    dry_run = True

    def read(self, run: PortalRun, status: ClaimStatus | PaStatus) -> ItemOutcome:
        raise DryRunStop(f"dry run: read {status.label}, nothing written")

    def earlier_submit(self, run: PortalRun, request: AppealRequest) -> ItemOutcome | None:
        return None  # a dry run never settles anything

    def gate(self, run: PortalRun, request: AppealRequest) -> SubmitGate:
        def stop() -> None:
            raise DryRunStop("dry run: stopped at the final review page, before the submit click")

        return stop


def _span(lag: timedelta) -> str:
    seconds = int(lag.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _appeal_audit(
    action: AuditAction,
    outcome: str,
    item: LeasedItem,
    request: AppealRequest,
    run_id: str,
    submission_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """An audit record of an appeal's submission, committed with the queue write it records."""
    return AuditEntry(
        action,
        outcome,
        payer=item.payer,
        account=item.account,
        approver=request.approved_by,
        item_id=item.id,
        correlation_id=run_id,
        submission_id=submission_id or item.reference,
        detail=detail,
    )


def _confirmed(
    item: LeasedItem,
    request: AppealRequest,
    run_id: str,
    confirmation_id: str,
    via: str,
    evidence: Evidence,
) -> AuditEntry:
    """The submission record, committed with its confirmation (by click or from history)."""
    detail = {"reference": item.reference, "via": via, "evidence_png_sha256": evidence.png_sha256}
    return _appeal_audit(
        AuditAction.SUBMISSION, SubmissionState.CONFIRMED, item, request, run_id, confirmation_id, detail
    )
