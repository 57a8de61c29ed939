"""Replaying a recorded run: live against the portal, or offline against the run's own network log.

A replay runs the same portal action with the same input, read from the queue item the run refers
to (the bundle keeps the input by reference only), and prints each step beside the recorded one:
the same, now failing, now passing, or beyond the recording. Where it fails on a page, it prints
how that page differs from its last good look ("button "Submit appeal" is now "Send request"").

Live replays use the account's session (reused, or one untraced login) and never write to the
queue: a submission walks to the final page and stops before the click. Only with
``allow_submit``, and only while the item is approved and not submitted (no confirmed submission,
no open ``submitting`` record), does the item go through the worker's own exactly-once path: its
own lease, the ``submitting`` record, the click and the confirmation (``scenarios.submit``).

Offline replays serve every request from the bundle's HAR and abort any other
(``bot.recording.offline``): no network and no risk. The login ran in its own unrecorded context, so it
is not in the HAR; the replay starts at the item's first page with no cookies at all, and the
recorded answers are the logged-in ones. The HAR was scrubbed (form bodies, and every registered
value in its URLs), so requests match by method and URL, a scrubbed value in a recorded URL
standing for any one value, in recorded order. Offline, the submit click goes ahead only when the
recorded run clicked (its answer is in the HAR); otherwise it stops there.

Both walk the portal through the worker's own run pipeline (``bot.pipeline``); a ``ReplayRun``
says what differs: the gate, the printed steps, and nothing written to the queue.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext

from bot.documents import AppealFiles, appeal_files, write_letter
from bot.errors import (
    DocumentProblem,
    PayerbotError,
    PlannedStop,
    PortalChanged,
    ReplayRefused,
    ReplayStop,
    Transient,
    error_class,
)
from bot.models import AppealRequest, Payload, SubmissionResult, WorkKind, parse_payload
from bot.pipeline import Ended, Pipeline, PortalRun, RunMode, Subject, open_session
from bot.portal import ACTION_FOR_KIND, SubmitGate
from bot.queue import ItemView, submission_reference
from bot.recording.fingerprint import diff, page_fingerprint
from bot.recording.offline import HarRouter
from bot.recording.recorder import RecordMode
from bot.redact import MASK
from bot.services import Services
from bot.status import ClaimStatus, PaStatus
from bot.steps import Outcome, Step
from scenarios.runs import RunView, StepLine

Printer = Callable[[str], None]


@dataclass
class ReplayedStep:
    step: Step
    recorded: StepLine | None
    verdict: str

    def line(self) -> str:
        s = StepLine.of(self.step.model_dump(mode="json"))
        state = "ok" if s.outcome == "ok" else "FAILED"
        text = f"{s.index:>3} {s.kind:<8} {s.what:<72} {state:<6}  {self.verdict}"
        if s.outcome == "failed" and s.error:
            text += f"\n      {s.error}"
        return text


@dataclass
class ReplayResult:
    recorded: RunView
    mode: str  # live or offline
    outcome: str = "ok"  # ok, stopped, failed
    error_kind: str | None = None
    error: str | None = None
    locator: str | None = None
    url_path: str | None = None
    detail: str | None = None  # what the action read or got (a status, a confirmation number)
    steps: list[ReplayedStep] = field(default_factory=list)
    fingerprint: list[str] = field(default_factory=list)
    last_good: list[str] | None = None
    run_id: str | None = None  # the replay's own run (live replays are recorded)

    @property
    def same_as_recorded(self) -> bool:
        """Ended as the recorded run did: the same error on the same control, or both fine."""
        rec = self.recorded
        if rec.outcome != "failed" or self.outcome != "failed":
            return (rec.outcome == "failed") == (self.outcome == "failed")
        return self.error_kind == rec.error_kind and self.locator == _recorded_locator(rec)

    def change_lines(self) -> list[str]:
        if self.last_good is None or not self.fingerprint:
            return []
        return diff(self.last_good, self.fingerprint).lines()


def _recorded_locator(run: RunView) -> str | None:
    if run.bundle is not None and run.bundle.locator:
        return run.bundle.locator
    failed = [s for s in run.steps if s.outcome == "failed"]
    return failed[-1].locator if failed else None


def compare(step: Step, recorded: StepLine | None) -> str:
    """One replayed step against the recorded step at the same position."""
    if recorded is None:
        return "beyond the recording"
    if recorded.kind != step.kind or (recorded.locator or recorded.target) != (step.locator or step.target):
        return f"differs: recorded {recorded.kind} {recorded.what}"
    now_failed = step.outcome == Outcome.FAILED
    if now_failed == (recorded.outcome == "failed"):
        return "same as recorded"
    return "NOW FAILS (recorded: ok)" if now_failed else "now passes (recorded: failed)"


def as_recorded(request: Payload) -> Payload:
    """The input as the scrubbed recording shows it: its claim and PA numbers were registered, so
    the recorded pages and URLs hold the mask where they stood, and a page object that checks the
    page shows the number it searched for compares the mask with the mask."""
    masked = {name: MASK for name in ("claim_number", "pa_number") if getattr(request, name, None)}
    return request.model_copy(update=masked)


def item_input(services: Services, run: RunView) -> tuple[ItemView, Payload]:
    """The run's input, read by reference from its queue item."""
    if run.item_id is None:
        raise ReplayRefused(f"run {run.id} names no work item; a replay reads its input from the item")
    view = services.queue.get(run.item_id)
    return view, parse_payload(WorkKind(view.kind), view.payload)


class ReplayRun(RunMode[str]):
    """A replay's run: each step printed beside the recorded one, nothing written to the queue.

    Live, it uses the account's session, stops before the submit click and is recorded as a run of
    its own (a bundle when it fails). Offline, see ``OfflineReplay``. The run's value is what the
    action read or got, for the operator to read.
    """

    dry_run = True
    record = RecordMode.FAILURES
    kind = "live"

    def __init__(self, services: Services, recorded: RunView, out: Printer) -> None:
        self.s = services
        self.recorded = recorded
        self.replay_of = recorded.id
        self.out = out
        self.result = ReplayResult(recorded=recorded, mode=self.kind)

    def on_step(self, step: Step) -> None:
        recorded = self.recorded.steps[step.index] if step.index < len(self.recorded.steps) else None
        replayed = ReplayedStep(step, recorded, compare(step, recorded))
        self.result.steps.append(replayed)
        self.out(replayed.line())

    def on_session_expired(self) -> None:
        self.out("the portal ended the session; logging in again and replaying from the start")
        self.result = ReplayResult(recorded=self.recorded, mode=self.kind)

    def read(self, run: PortalRun, status: ClaimStatus | PaStatus) -> str:
        what = "claim status" if isinstance(status, ClaimStatus) else "authorization"
        return f"{what} {status.label} ({status.payer_wording})"

    def gate(self, run: PortalRun, request: AppealRequest) -> SubmitGate:
        return _stop_before_click

    def submitted(self, run: PortalRun, request: AppealRequest, result: SubmissionResult) -> str:
        return f"confirmation {result.confirmation_id} (served from the recording)"

    def failed(self, run: PortalRun, error: PayerbotError) -> None:
        """Where it failed, and how that page differs from its last good look."""
        result, recorder = self.result, run.recorder
        result.error_kind, result.error = type(error).__name__, error.message
        failed = [s for s in run.steps.steps if s.outcome == Outcome.FAILED]
        result.locator = error.locator if isinstance(error, PortalChanged) else None
        if failed:
            result.url_path = failed[-1].url_path
            result.locator = result.locator or failed[-1].locator
        recorder.learn_sensitive(run.page)
        result.fingerprint = [recorder.redactor.scrub(x) for x in page_fingerprint(run.page)]  # bounded
        result.last_good = self.s.runs.baselines.last_good(
            recorder.info.payer, result.url_path, result.fingerprint
        )


class OfflineReplay(ReplayRun):
    """Nothing reaches the portal and nothing is recorded: the recording is the run. The submit
    click goes ahead only when the recorded run clicked (its answer is in the recording), and a
    document no longer in the documents folder is replaced by a stand-in letter."""

    kind = "offline"
    record = RecordMode.NEVER
    save_run = False

    def __init__(self, services: Services, recorded: RunView, out: Printer, scratch: Path) -> None:
        super().__init__(services, recorded, out)
        self.scratch = scratch

    def gate(self, run: PortalRun, request: AppealRequest) -> SubmitGate:
        if self.recorded.outcome in {"ok", "failed"}:
            return _offline_click  # the recorded run clicked (or failed before): its answers are in the HAR
        return _stop_before_click

    def files(
        self, request: AppealRequest, documents_dir: Path | None, max_bytes: int
    ) -> AbstractContextManager[AppealFiles]:
        try:
            return appeal_files(request, documents_dir, max_bytes)
        except DocumentProblem as exc:
            self.out(f"note: {exc.message}; offline, a stand-in letter is uploaded instead")
            letter = write_letter(
                self.scratch, "stand-in-letter.pdf", "A stand-in letter for an offline replay."
            )
            return nullcontext(AppealFiles(letter=letter, attachments=[letter for _ in request.attachments]))


class Replayer:
    """Replays runs for an operator; ``out`` receives one line at a time as the replay goes."""

    def __init__(self, services: Services, browser: Browser, *, out: Printer = print) -> None:
        self.s = services
        self.browser = browser
        self.out = out
        self.pipeline = Pipeline(services)

    def replay(self, run: RunView, *, offline: bool = False, allow_submit: bool = False) -> ReplayResult:
        view, request = item_input(self.s, run)
        subject = Subject(
            view.id,
            WorkKind(view.kind),
            view.payer,
            view.account,
            request,
            view.attempts,
            view.submission_reference or submission_reference(view.id, view.idempotency_key),
        )
        if run.payload_digest and subject.digest != run.payload_digest:
            self.out(f"note: item {view.id}'s input changed since run {run.id}; replaying today's input")
        if allow_submit and isinstance(request, AppealRequest):
            if offline:
                raise ReplayRefused("--allow-submit submits for real; it cannot go with --offline")
            from scenarios.submit import submit_for_real

            return submit_for_real(self.s, self.browser, run, view, out=self.out)
        if offline:
            return self._offline(run, subject)
        session = open_session(self.s, self.browser, view.payer, view.account)  # the worker's sealed URL
        action = ACTION_FOR_KIND[subject.kind]
        self.out(f"replaying run {run.id} live: item {view.id}, {view.payer} {action}, {session.portal_url}")
        mode = ReplayRun(self.s, run, self.out)
        return self._ended(self.pipeline.run(session, subject, mode), mode)

    def _offline(self, run: RunView, subject: Subject) -> ReplayResult:
        har = run.file("har")
        if har is None:
            raise ReplayRefused(
                f"run {run.id} kept no network log (only failed runs, or runs with --record always, "
                "keep one); replay it live instead"
            )
        portal_url = run.portal_url or _origin_of(har)
        self.out(
            f"replaying run {run.id} offline from {har} (no network): item {subject.item_id}, {subject.payer}"
        )
        folder = Path(tempfile.mkdtemp(prefix="payerbot-offline-"))

        def offline_context(options: dict[str, object]) -> BrowserContext:
            # no cookies: every answer comes from the recording (and a run that keeps nothing, no HAR)
            context = self.browser.new_context()
            context.set_default_timeout(self.s.settings.action_timeout_ms)
            context.set_default_navigation_timeout(self.s.settings.navigation_timeout_ms)
            context.route("**/*", HarRouter.load(har))
            return context

        try:
            mode = OfflineReplay(self.s, run, self.out, folder)
            recorded = replace(subject, request=as_recorded(subject.request))
            ended = self.pipeline.walk(
                recorded, mode, portal_url=portal_url, open_context=offline_context, artifacts_dir=folder
            )
            return self._ended(ended, mode)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _ended(self, ended: Ended[str], mode: ReplayRun) -> ReplayResult:
        result, error = mode.result, ended.error
        if mode.save_run:
            result.run_id = ended.run_id
        if error is not None and not isinstance(error, PayerbotError):
            raise error  # a bug: the operator sees it as it is
        result.outcome = ended.bundle.outcome if error is not None else "ok"
        result.detail = error.message if isinstance(error, PlannedStop) else ended.value
        self._report(result, mode.kind)
        return result

    # -- what the operator reads at the end -------------------------------------------------------

    def _report(self, result: ReplayResult, mode: str) -> None:
        rec = result.recorded
        if result.outcome == "failed":
            self.out(f"result: failed, {result.error_kind}: {result.error}")
            if mode == "offline" and result.error_kind and _is_transient(result.error_kind):
                self.out(
                    "  (offline, a request the recording has no answer for is aborted: the replay went "
                    "where the recorded run did not)"
                )
        else:
            self.out(f"result: {result.outcome}: {result.detail}")
        recorded_end = f"{rec.error_kind}: {rec.error}" if rec.outcome == "failed" else rec.outcome
        verdict = "the same as" if result.same_as_recorded else "differently from"
        self.out(f"this ends {verdict} the recorded run ({recorded_end})")
        lines = result.change_lines()
        if result.outcome == "failed" and result.url_path:
            if lines:
                self.out(f"page {result.url_path} compared with its last good look:")
                for line in lines:
                    self.out(f"  {line}")
            elif result.last_good is None:
                self.out(f"page {result.url_path}: no good run has recorded this page yet to compare with")
            else:
                self.out(f"page {result.url_path}: same controls as its last good look")
        if result.run_id:
            self.out(f"this replay is run {result.run_id} (`payerbot scenarios show {result.run_id}`)")


def _is_transient(error_kind: str) -> bool:
    cls = error_class(error_kind)
    return cls is not None and issubclass(cls, Transient)


def _stop_before_click() -> None:
    raise ReplayStop("stopped at the final page, before the submit click (nothing submitted)")


def _offline_click() -> None:
    """Offline, the click reaches no portal: the recording answers it."""


def _origin_of(har: Path) -> str:
    entries = json.loads(har.read_text(encoding="utf-8")).get("log", {}).get("entries", [])
    if not entries:
        raise ReplayRefused(f"{har} holds no requests to replay")
    url = str(entries[0]["request"]["url"])
    return "/".join(url.split("/", 3)[:3])
