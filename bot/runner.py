"""The one place where the queue, the vault, the browser and a payer's portal meet.

For a leased batch (items of one payer account) the runner opens the account's session, then runs
each item through the run pipeline (``bot.pipeline``) in a fresh browser context, as a leased run
(``bot.leased_run``: the status or the confirmation, the evidence, the audit record) or a dry run.
Errors are sorted by their family: transient ones wait and retry, terminal ones fail, the rest go
to a person; those that concern the account (a rejected login, a CAPTCHA) or the lease end the
batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from playwright.sync_api import Browser

from bot.audit import AuditAction
from bot.errors import (
    AccountDisabled,
    AmbiguousSubmission,
    CaptchaShown,
    CodeInboxMissing,
    DryRunStop,
    InternalError,
    LoginRejected,
    PayerbotError,
    StaleLease,
    Transient,
    UntrustedPortalUrl,
    VaultError,
)
from bot.heartbeat import Heartbeat
from bot.leased_run import DryRun, ItemOutcome, LeasedRun, LoginTrouble, subject_of
from bot.logging import get_logger
from bot.models import ItemState, WorkKind
from bot.pipeline import Pipeline, open_session
from bot.portal import ACTION_FOR_KIND
from bot.queue import Queue
from bot.queue.types import Batch, LeasedItem
from bot.recording.recorder import RecordMode
from bot.services import Services
from bot.session import AccountSession, lock_out
from portals import get_portal

log = get_logger()


@contextmanager
def held(queue: Queue, batch: Batch, lease_seconds: float) -> Iterator[Heartbeat]:
    """The batch's lease, kept alive while the block runs and given back when it ends."""
    with Heartbeat(partial(queue.heartbeat, batch), lease_seconds=lease_seconds) as heartbeat:
        try:
            yield heartbeat
        finally:
            queue.release(batch)


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
        self.pipeline = Pipeline(services)

    # -- a batch ---------------------------------------------------------------------------------

    def run_batch(self, batch: Batch, heartbeat: Heartbeat) -> BatchReport:
        report = BatchReport(batch.payer, batch.account)
        try:
            session = open_session(self.s, self.browser, batch.payer, batch.account)
        except AccountDisabled as exc:
            self._hand_all(batch.items, exc, report)
            return report
        except UntrustedPortalUrl as exc:
            lock_out(self.s.vault, self.s.audit, batch.payer, batch.account, exc)
            self._hand_account(batch, list(batch.items), exc, report)
            return report
        except VaultError as exc:  # no key, or not the key that sealed it: each item fails, as at login
            self._hand_all(batch.items, exc, report)
            return report
        remaining = list(batch.items)
        while remaining:
            item = remaining.pop(0)
            if heartbeat.lost:
                break
            try:
                report.outcomes.append(self._run_item(session, item, heartbeat))
            except StaleLease as exc:
                log.warning("lease lost; stopping the batch", item_id=item.id, error=exc.message)
                break
            except (LoginRejected, CaptchaShown, AccountDisabled, CodeInboxMissing) as exc:
                # this item is already running, so the sweep of queued items misses it
                self._hand_account(batch, [item, *remaining], exc, report)
                remaining = []
            except LoginTrouble:
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

    def _run_item(self, session: AccountSession, item: LeasedItem, hb: Heartbeat) -> ItemOutcome:
        get_portal(item.payer).require(ACTION_FOR_KIND[item.kind])
        if not self.dry_run:
            self.s.queue.mark_running(item)
        if self.dry_run:  # a dry run keeps every run's bundle
            mode: LeasedRun = DryRun(self.s, item, hb, session, RecordMode.ALWAYS)
        else:
            mode = LeasedRun(self.s, item, hb, session, self.record)
        try:
            ended = self.pipeline.run(session, subject_of(item), mode)
            if ended.error is not None:
                raise ended.error
            assert ended.value is not None  # a run that raised nothing gave its outcome
            return ended.value
        except LoginTrouble as trouble:
            self._fail(item, trouble.error, mode.run_id)
            raise  # the portal is unwell at login: the batch leaves the rest for a later lease
        except (StaleLease, LoginRejected, CaptchaShown, CodeInboxMissing):
            raise  # the batch decides: these concern the account or the lease, not this item
        except DryRunStop as exc:
            return ItemOutcome(item.id, "dry_run", error=exc.message, run_id=mode.run_id)
        except PayerbotError as exc:
            return self._fail(item, exc, mode.run_id)
        except Exception as exc:  # a bug must not lose the item or stop the worker
            log.exception("unexpected error in a portal run", item_id=item.id, error_kind=type(exc).__name__)
            return self._fail(
                item, InternalError(f"unexpected {type(exc).__name__}; see run {mode.run_id}"), mode.run_id
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
