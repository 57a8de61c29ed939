"""The one place where the queue, the vault, the browser and a payer's portal meet.

For a leased batch (items of one payer account) the runner opens the account's session, then runs
each item in a fresh browser context: the portal action, the canonical status or the confirmation,
the evidence, the audit record, and the run's record (a scrubbed bundle when it failed). Errors are
sorted by their family: transient ones wait and retry, terminal ones fail, the rest go to a person.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from playwright.sync_api import Browser, Page

from bot import faults
from bot.audit import AuditAction, AuditEntry
from bot.documents import appeal_files
from bot.errors import (
    AccountDisabled,
    AmbiguousSubmission,
    CaptchaShown,
    CodeInboxMissing,
    DryRunStop,
    InternalError,
    LoginRejected,
    PayerbotError,
    PortalError,
    SessionExpired,
    StaleLease,
    Transient,
    UntrustedPortalUrl,
    VaultError,
)
from bot.evidence import capture_evidence
from bot.heartbeat import Heartbeat
from bot.logging import get_logger
from bot.models import (
    AppealRequest,
    ClaimStatusRequest,
    ItemState,
    PaStatusRequest,
    SubmissionState,
    WorkKind,
    payload_digest,
)
from bot.portal import ACTION_FOR_KIND, Action, Portal, submit_through_gate
from bot.queue.types import Batch, Evidence, LeasedItem, SubmissionRecord
from bot.recording.recorder import RecordMode, RunInfo, RunRecorder, new_run_id
from bot.redact import PROCESS_SECRETS, Redactor
from bot.services import Services
from bot.session import AccountSession, lock_out, trusted_portal_url
from bot.status import ClaimStatus, PaStatus
from bot.steps import StepRecorder
from portals import get_portal

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


@dataclass
class BatchReport:
    payer: str
    account: str
    outcomes: list[ItemOutcome] = field(default_factory=list)
    logins: int = 0


class Runner:
    def __init__(
        self,
        services: Services,
        browser: Browser,
        *,
        record: RecordMode | None = None,
        dry_run: bool = False,
    ) -> None:
        self.s = services
        self.browser = browser
        self.record = record or RecordMode(services.settings.record)
        self.dry_run = dry_run

    # -- a batch ---------------------------------------------------------------------------------

    def run_batch(self, batch: Batch, heartbeat: Heartbeat) -> BatchReport:
        report = BatchReport(batch.payer, batch.account)
        portal_cls = get_portal(batch.payer)
        account = self.s.vault.account(batch.payer, batch.account)
        if not account.enabled:
            self._hand_all(
                batch.items, AccountDisabled(f"account disabled: {account.disabled_reason}"), report
            )
            return report
        try:
            # the sealed URL, never the column alone: one a database writer changed gets no request
            portal_url = trusted_portal_url(
                self.s.vault, portal_cls, batch.payer, batch.account, account.portal_url
            )
        except UntrustedPortalUrl as exc:
            lock_out(self.s.vault, self.s.audit, batch.payer, batch.account, exc)
            self._hand_account(batch, list(batch.items), exc, report)
            return report
        except VaultError as exc:  # no key, or not the key that sealed it: each item fails, as at login
            self._hand_all(batch.items, exc, report)
            return report
        session = AccountSession(
            browser=self.browser,
            portal_cls=portal_cls,
            portal_url=portal_url,
            payer=batch.payer,
            account=batch.account,
            vault=self.s.vault,
            audit=self.s.audit,
            settings=self.s.settings,
        )
        remaining = list(batch.items)
        while remaining:
            item = remaining.pop(0)
            if heartbeat.lost:
                break
            try:
                report.outcomes.append(self._run_item(session, portal_cls, item, heartbeat))
            except StaleLease as exc:
                log.warning("lease lost; stopping the batch", item_id=item.id, error=exc.message)
                break
            except (LoginRejected, CaptchaShown, AccountDisabled, CodeInboxMissing) as exc:
                # this item is already running, so the sweep of queued items misses it
                self._hand_account(batch, [item, *remaining], exc, report)
                remaining = []
            except _LoginTrouble:
                break  # the portal is unwell at login: leave the rest for a later lease
        report.logins = session.logins
        return report

    def _hand_account(
        self, batch: Batch, items: list[LeasedItem], error: PayerbotError, report: BatchReport
    ) -> None:
        """The account cannot log in: these items and every item waiting for it go to a person, at once."""
        self._hand_all(items, error, report)
        if not self.dry_run:
            self.s.queue.hand_account_to_human(batch.payer, batch.account, error.message)

    def _hand_all(self, items: list[LeasedItem], error: PayerbotError, report: BatchReport) -> None:
        for item in items:
            if self.dry_run:  # a dry run writes nothing to the queue, whatever happens
                report.outcomes.append(ItemOutcome(item.id, "dry_run", error=error.message))
                continue
            try:
                self.s.queue.mark_running(item)
                state = self.s.queue.fail(item, error)
            except StaleLease:
                continue  # already settled, or no longer this worker's
            self._audit_failure(item, error, state)
            report.outcomes.append(ItemOutcome(item.id, state, error=error.message))

    # -- an item ---------------------------------------------------------------------------------

    def _run_item(
        self, session: AccountSession, portal_cls: type[Portal], item: LeasedItem, hb: Heartbeat
    ) -> ItemOutcome:
        portal_cls.require(ACTION_FOR_KIND[item.kind])
        if not self.dry_run:
            self.s.queue.mark_running(item)
        run_id = new_run_id(item.id)
        try:
            for attempt_in_run in (1, 2):
                try:
                    session.ensure()
                except (LoginRejected, CaptchaShown, CodeInboxMissing):
                    raise
                except PortalError as exc:
                    self._fail(item, exc, run_id)
                    raise _LoginTrouble from exc
                try:
                    return self._attempt(session, portal_cls, item, hb, run_id)
                except SessionExpired:
                    if attempt_in_run == 2:
                        raise
                    log.info("session expired mid-batch; logging in again", item_id=item.id)
                    run_id = new_run_id(item.id)  # the expired attempt kept its own run record
                    session.renew()
            raise AssertionError("unreachable")
        except (StaleLease, LoginRejected, CaptchaShown, CodeInboxMissing, _LoginTrouble):
            raise  # the batch decides: these concern the account or the lease, not this item
        except DryRunStop as exc:
            return ItemOutcome(item.id, "dry_run", error=exc.message, run_id=run_id)
        except PayerbotError as exc:
            return self._fail(item, exc, run_id)
        except Exception as exc:  # a bug must not lose the item or stop the worker
            log.exception("unexpected error in a portal run", item_id=item.id, error_kind=type(exc).__name__)
            return self._fail(
                item, InternalError(f"unexpected {type(exc).__name__}; see run {run_id}"), run_id
            )

    def _fail(self, item: LeasedItem, error: PayerbotError, run_id: str) -> ItemOutcome:
        if self.dry_run:
            return ItemOutcome(item.id, "dry_run", error=error.message, run_id=run_id)
        if isinstance(error, Transient) and item.kind == WorkKind.APPEAL_SUBMISSION:
            error = self._no_blind_retry(item, error)
        state = self.s.queue.fail(item, error)
        self._audit_failure(item, error, state)
        log.warning(
            "item did not complete",
            item_id=item.id,
            state=str(state),
            error_kind=type(error).__name__,
            error=error.message,
            run_id=run_id,
        )
        return ItemOutcome(item.id, state, error=error.message, run_id=run_id)

    def _no_blind_retry(self, item: LeasedItem, error: Transient) -> PayerbotError:
        """An appeal out of attempts with a submit that may have gone through goes to a person."""
        out_of_attempts = item.attempt >= self.s.settings.max_attempts(item.kind)
        if out_of_attempts and self.s.queue.pending_submission(item.id) is not None:
            return AmbiguousSubmission(f"an earlier submit may have reached the portal ({error.message})")
        return error

    def _audit_failure(self, item: LeasedItem, error: PayerbotError, state: ItemState) -> None:
        action = AuditAction.HUMAN_HANDOFF if state == ItemState.NEEDS_HUMAN else AuditAction.ITEM_FAILED
        self.s.audit.record(
            action,
            str(state),
            payer=item.payer,
            account=item.account,
            item_id=item.id,
            approver=getattr(item.request, "approved_by", None),
            detail={"error_kind": type(error).__name__, "reason": error.message},
        )

    def _attempt(
        self, session: AccountSession, portal_cls: type[Portal], item: LeasedItem, hb: Heartbeat, run_id: str
    ) -> ItemOutcome:
        info = RunInfo(
            run_id=run_id,
            item_id=item.id,
            kind=str(item.kind),
            payer=item.payer,
            account=item.account,
            action=str(ACTION_FOR_KIND[item.kind]),
            attempt=item.attempt,
            payload_digest=payload_digest(
                item.kind, item.payer, item.account, item.request.model_dump(mode="json")
            ),
            portal_url=session.portal_url,
            dry_run=self.dry_run,
        )
        mode = RecordMode.ALWAYS if self.dry_run else self.record
        recorder = RunRecorder(
            info,
            artifacts_dir=self.s.settings.resolved_artifacts_dir,
            mode=mode,
            redactor=Redactor(parent=PROCESS_SECRETS),
        )
        recorder.learn_request(item.request)  # before the first page: it may show them at once
        context = session.new_context(**recorder.context_options())
        page = context.new_page()
        # every value typed that is not marked safe is the patient's (an explanation, a fill date)
        steps = StepRecorder(page, on_step=recorder.on_step, on_typed=recorder.learn)
        portal = portal_cls(page, session.portal_url, steps)
        recorder.attach(context, portal)
        error: BaseException | None = None
        try:
            outcome = self._act(portal, item, hb, page, recorder, run_id)
            session.keep(context)
            return outcome
        except BaseException as exc:
            error = exc
            if isinstance(exc, PayerbotError):
                # a portal's refusal may repeat what was searched for; the queue, the audit trail
                # and the logs keep the message without any value this run registered
                exc.args = (recorder.redactor.scrub(exc.message), *exc.args[1:])
            raise
        finally:
            bundle = recorder.finish(context, page, error, steps.steps)
            self.s.runs.save(bundle)

    def _act(
        self, portal: Portal, item: LeasedItem, hb: Heartbeat, page: Page, recorder: RunRecorder, run_id: str
    ) -> ItemOutcome:
        request = item.request
        if isinstance(request, ClaimStatusRequest):
            reading = portal.check_claim_status(request)
            recorder.learn(*reading.sensitive)
            status: ClaimStatus | PaStatus = self.s.mapper.claim(type(portal), reading)
        elif isinstance(request, PaStatusRequest):
            pa_reading = portal.check_pa_status(request)
            recorder.learn(*pa_reading.sensitive)
            status = self.s.mapper.pa(type(portal), pa_reading)
        elif isinstance(request, AppealRequest):
            return self._appeal(portal, item, request, hb, page, recorder, run_id)
        else:  # pragma: no cover - the payload models are a closed set
            raise TypeError(type(request).__name__)
        if self.dry_run:
            raise DryRunStop(f"dry run: read {status.label}, nothing written")
        hb.check()
        self.s.queue.complete(item, canonical_status=status.label, result=status.model_dump(mode="json"))
        self.s.audit.record(
            AuditAction.STATUS_READ,
            status.label,
            payer=item.payer,
            account=item.account,
            item_id=item.id,
            correlation_id=run_id,
            detail={"source": str(status.source), "confidence": status.confidence},
        )
        return ItemOutcome(item.id, ItemState.DONE, canonical_status=status.label, run_id=run_id)

    # -- appeals: exactly once -------------------------------------------------------------------

    def _appeal(
        self,
        portal: Portal,
        item: LeasedItem,
        request: AppealRequest,
        hb: Heartbeat,
        page: Page,
        recorder: RunRecorder,
        run_id: str,
    ) -> ItemOutcome:
        pending = None if self.dry_run else self.s.queue.pending_submission(item.id)
        if pending is not None:
            found = self._reconcile(portal, item, request, pending, page, recorder, run_id)
            if found is not None:
                return found
        submission: dict[str, int] = {}

        def gate() -> None:
            if self.dry_run:
                raise DryRunStop("dry run: stopped at the final review page, before the submit click")
            faults.point("before_intent")
            # a fresh beat first: the queue refuses an intent whose lease ends within its margin,
            # and the click should have a whole lease ahead of it, not what is left of the last beat
            hb.renew()
            # the audit record commits with the intent: a refused intent leaves neither
            intent = _appeal_audit(
                AuditAction.SUBMISSION_INTENT,
                SubmissionState.SUBMITTING,
                item,
                request,
                run_id,
                item.reference,
            )
            submission["id"] = self.s.queue.begin_submission(item, item.reference, audit=intent)
            committed = time.monotonic()
            faults.point("after_intent")
            if time.monotonic() - committed > SUBMIT_WINDOW_SECONDS:
                raise StaleLease("paused between the submit intent and the click; not clicking")
            hb.check()

        # private copies of the approved bytes, checked here and removed once the submit is over
        with appeal_files(request, self.s.settings.documents_dir, portal.max_upload_bytes) as files:
            result = submit_through_gate(portal, request, files, item.reference, gate)
        faults.point("after_click")
        evidence = capture_evidence(
            page,
            folder=self.s.settings.resolved_artifacts_dir / "evidence" / str(item.id),
            stem=f"attempt{item.attempt}-confirmation",
            redactor=recorder.redactor,
            portal=portal,
        )
        self.s.queue.confirm_submission(
            item,
            submission_id=submission["id"],
            confirmation_id=result.confirmation_id,
            via="click",
            evidence=evidence,
            audit=_confirmed(item, request, run_id, result.confirmation_id, "click", evidence),
        )
        faults.point("after_confirm")
        return ItemOutcome(item.id, ItemState.DONE, confirmation_id=result.confirmation_id, run_id=run_id)

    def _reconcile(
        self,
        portal: Portal,
        item: LeasedItem,
        request: AppealRequest,
        pending: SubmissionRecord,
        page: Page,
        recorder: RunRecorder,
        run_id: str,
    ) -> ItemOutcome | None:
        """An earlier attempt committed its intent but no confirmation: ask the portal first."""
        portal_cls = type(portal)
        if not portal_cls.supports(Action.FIND_SUBMISSION):
            raise AmbiguousSubmission(
                f"{portal_cls.display_name} has no appeal history to check a possible submit"
            )
        lookup = portal.find_submission(item.reference)
        self.s.audit.record(
            AuditAction.RECONCILE,
            "found" if lookup.found else "not_found",
            payer=item.payer,
            account=item.account,
            approver=request.approved_by,
            item_id=item.id,
            correlation_id=run_id,
            submission_id=lookup.confirmation_id,
        )
        if lookup.found and lookup.confirmation_id:
            evidence = capture_evidence(
                page,
                folder=self.s.settings.resolved_artifacts_dir / "evidence" / str(item.id),
                stem=f"attempt{item.attempt}-history",
                redactor=recorder.redactor,
                portal=portal,
            )
            self.s.queue.confirm_submission(
                item,
                submission_id=pending.id,
                confirmation_id=lookup.confirmation_id,
                via="history",
                evidence=evidence,
                audit=_confirmed(item, request, run_id, lookup.confirmation_id, "history", evidence),
            )
            log.info(
                "reconciled from the portal's history",
                item_id=item.id,
                confirmation_id=lookup.confirmation_id,
            )
            return ItemOutcome(item.id, ItemState.DONE, confirmation_id=lookup.confirmation_id, run_id=run_id)
        if not portal_cls.history_reliable:
            raise AmbiguousSubmission(
                f"{portal_cls.display_name}'s history lacks the reference but may lag: not resubmitting"
            )
        self.s.queue.mark_submission_not_found(item, pending.id)
        return None


def _appeal_audit(
    action: AuditAction,
    outcome: str,
    item: LeasedItem,
    request: AppealRequest,
    run_id: str,
    submission_id: str,
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
        submission_id=submission_id,
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


class _LoginTrouble(Exception):
    """The login failed for a transient reason; the current item was failed and the batch ends."""
