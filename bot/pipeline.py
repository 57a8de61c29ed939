"""One portal run, written once for every mode that makes one.

The worker (and the catalog, which runs it), a dry run, a live replay and an offline replay run a
portal action the same way: the account's session (none offline), a fresh browser context with
the recorder's options, the recorder and the step recorder wired together (each value typed or
read registered for scrubbing, screenshots masked by the portal's fields), the action chosen by
the request's type, an appeal's submit through its gate, one new login when the portal ends the
session mid-run, and the run's record written once.

What differs between modes is a ``RunMode``: what the gate does before the click (commit an
intent, stop, or click only when the recorded run did), what a status read or a confirmation leads
to (queue writes, for the worker only), what an earlier submit that may have gone through means,
and how the run is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from playwright.sync_api import Browser, BrowserContext, Page

from bot.documents import AppealFiles, appeal_files
from bot.errors import AccountDisabled, NotFoundOnPortal, PayerbotError, PlannedStop, SessionExpired
from bot.logging import get_logger
from bot.models import (
    AppealRequest,
    ClaimStatusRequest,
    PaStatusRequest,
    Payload,
    SubmissionResult,
    WorkKind,
    payload_digest,
)
from bot.portal import ACTION_FOR_KIND, Portal, SubmitGate, submit_through_gate
from bot.recording.recorder import Bundle, RecordMode, RunInfo, RunRecorder, new_run_id
from bot.redact import PROCESS_SECRETS, Redactor
from bot.services import Services
from bot.session import AccountSession, trusted_portal_url
from bot.status import ClaimStatus, PaStatus
from bot.steps import Step, StepRecorder
from portals import get_portal

log = get_logger()

R = TypeVar("R")


@dataclass(frozen=True)
class Subject:
    """What a run works on: a work item by reference, and its input."""

    item_id: int
    kind: WorkKind
    payer: str
    account: str
    request: Payload
    attempt: int
    reference: str
    """What an appeal types into the portal's form, and looks up in its history."""

    @property
    def digest(self) -> str:
        return payload_digest(self.kind, self.payer, self.account, self.request.model_dump(mode="json"))


@dataclass(frozen=True)
class PortalRun:
    """A run under way, as a mode's hooks see it."""

    run_id: str
    subject: Subject
    portal: Portal
    page: Page
    recorder: RunRecorder
    steps: StepRecorder


@dataclass(frozen=True)
class Ended(Generic[R]):
    """How a run ended: the mode's value, or the error (its message scrubbed), and its bundle."""

    run_id: str
    value: R | None
    error: Exception | None
    bundle: Bundle


class RunMode(Generic[R]):
    """What one kind of run does where runs differ. ``R`` is what a finished action gives back."""

    record: RecordMode = RecordMode.FAILURES
    save_run: bool = True
    """Write the run's light record (and its bundle's place) to the ``runs`` table."""
    dry_run: bool = False
    """Marks the run as one that writes nothing to the queue or to the portal's records."""
    replay_of: str | None = None

    def login(self, session: AccountSession, run_id: str) -> None:
        session.ensure()

    def on_step(self, step: Step) -> None:
        """Each step as it is recorded."""

    def on_session_expired(self) -> None:
        """The portal ended the session; the run starts again after one new login."""

    def read(self, run: PortalRun, status: ClaimStatus | PaStatus) -> R:
        raise NotImplementedError

    def earlier_submit(self, run: PortalRun, request: AppealRequest) -> R | None:
        """An appeal's earlier submit that may have gone through, settled before any new one: a
        value ends the run there, None goes on to the submit."""
        return None

    def files(
        self, request: AppealRequest, documents_dir: Path | None, max_bytes: int
    ) -> AbstractContextManager[AppealFiles]:
        return appeal_files(request, documents_dir, max_bytes)

    def gate(self, run: PortalRun, request: AppealRequest) -> SubmitGate:
        raise NotImplementedError

    def submitted(self, run: PortalRun, request: AppealRequest, result: SubmissionResult) -> R:
        raise NotImplementedError

    def succeeded(self, run: PortalRun, context: BrowserContext) -> None:
        """The action completed; the run's context is still open."""

    def failed(self, run: PortalRun, error: PayerbotError) -> None:
        """The action failed (not a planned stop); the failing page is still open."""


def open_session(services: Services, browser: Browser, payer: str, account: str) -> AccountSession:
    """The account's session, on the URL sealed with it; refused for a disabled account."""
    stored = services.vault.account(payer, account)
    if not stored.enabled:
        raise AccountDisabled(f"account {payer}/{account} is disabled: {stored.disabled_reason}")
    portal_cls = get_portal(payer)
    return AccountSession(
        browser=browser,
        portal_cls=portal_cls,
        # the sealed URL, never the column alone: one a database writer changed gets no request
        portal_url=trusted_portal_url(services.vault, portal_cls, payer, account, stored.portal_url),
        payer=payer,
        account=account,
        vault=services.vault,
        audit=services.audit,
        settings=services.settings,
    )


class Pipeline:
    def __init__(self, services: Services) -> None:
        self.s = services

    def run(
        self, session: AccountSession, subject: Subject, mode: RunMode[R], run_id: str | None = None
    ) -> Ended[R]:
        """A run in the account's session; one the portal ends mid-run is logged in again once
        and started over as a run of its own (the expired one keeps its record)."""
        run_id = run_id or new_run_id(subject.item_id)
        for attempt in (1, 2):
            mode.login(session, run_id)  # the stored session, or one login in its own untraced context
            ended = self.walk(
                subject,
                mode,
                portal_url=session.portal_url,
                open_context=lambda options: session.new_context(**options),
                run_id=run_id,
            )
            if attempt == 2 or not isinstance(ended.error, SessionExpired):
                return ended
            log.info("session expired mid-batch; logging in again", item_id=subject.item_id)
            mode.on_session_expired()
            run_id = new_run_id(subject.item_id)
            session.renew()
        raise AssertionError("unreachable")

    def walk(
        self,
        subject: Subject,
        mode: RunMode[R],
        *,
        portal_url: str,
        open_context: Callable[[dict[str, object]], BrowserContext],
        run_id: str | None = None,
        artifacts_dir: Path | None = None,
    ) -> Ended[R]:
        """One walk through the portal in a context of its own, recorded as ``mode`` says.

        Errors come back in ``Ended`` (their messages scrubbed of every value the run registered:
        a portal's refusal may repeat what was searched for); an interrupt is raised once the
        run's record is written.
        """
        info = RunInfo(
            run_id=run_id or new_run_id(subject.item_id),
            item_id=subject.item_id,
            kind=str(subject.kind),
            payer=subject.payer,
            account=subject.account,
            action=str(ACTION_FOR_KIND[subject.kind]),
            attempt=subject.attempt,
            payload_digest=subject.digest,
            portal_url=portal_url,
            dry_run=mode.dry_run,
            replay_of=mode.replay_of,
        )
        recorder = RunRecorder(
            info,
            artifacts_dir=artifacts_dir or self.s.settings.resolved_artifacts_dir,
            mode=mode.record,
            redactor=Redactor(parent=PROCESS_SECRETS),
        )
        recorder.learn_request(subject.request)  # before the first page: it may show them at once
        context = open_context(recorder.context_options())
        page = context.new_page()

        def on_step(step: Step, step_page: Page) -> None:
            recorder.on_step(step, step_page)
            mode.on_step(step)

        # every value typed that is not marked safe is the patient's (an explanation, a fill date)
        # a retried step waits on the services' clock: a test drives it, a worker sleeps on it
        steps = StepRecorder(page, on_step=on_step, on_typed=recorder.learn, clock=self.s.clock)
        portal = get_portal(subject.payer)(page, portal_url, steps)
        recorder.attach(context, portal)
        run = PortalRun(info.run_id, subject, portal, page, recorder, steps)
        value: R | None = None
        error: BaseException | None = None
        try:
            value = self._act(run, mode)
            mode.succeeded(run, context)
        except BaseException as exc:
            error = exc
            if isinstance(exc, PayerbotError):
                exc.args = (recorder.redactor.scrub(exc.message), *exc.args[1:])
                if not isinstance(exc, PlannedStop):
                    mode.failed(run, exc)
        bundle = recorder.finish(context, page, error, steps.steps)
        if mode.save_run:
            self.s.runs.save(bundle)
        if error is not None and not isinstance(error, Exception):
            raise error  # an interrupt, recorded as it happened
        return Ended(info.run_id, value, error, bundle)

    def _act(self, run: PortalRun, mode: RunMode[R]) -> R:
        """The action the request's type names."""
        request, portal = run.subject.request, run.portal
        if isinstance(request, ClaimStatusRequest):
            try:
                reading = portal.check_claim_status(request)
            except NotFoundOnPortal as missing:  # a status: the payer has no record of it (A4)
                words = run.recorder.redactor.scrub(missing.message)
                return mode.read(run, self.s.mapper.claim_not_found(type(portal), words))
            run.recorder.learn(*reading.sensitive)
            return mode.read(run, self.s.mapper.claim(type(portal), reading))
        if isinstance(request, PaStatusRequest):
            pa_reading = portal.check_pa_status(request)
            run.recorder.learn(*pa_reading.sensitive)
            today = self.s.clock.now().date()  # an authorization that ended before it is flagged
            return mode.read(run, self.s.mapper.pa(type(portal), pa_reading, today=today))
        if isinstance(request, AppealRequest):
            settled = mode.earlier_submit(run, request)
            if settled is not None:
                return settled
            # private copies of the approved bytes, checked here and removed once the submit is over
            with mode.files(request, self.s.settings.documents_dir, portal.max_upload_bytes) as files:
                result = submit_through_gate(
                    portal, request, files, run.subject.reference, mode.gate(run, request)
                )
            return mode.submitted(run, request, result)
        raise TypeError(type(request).__name__)  # pragma: no cover - the payload models are a closed set
