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
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page

from bot.documents import AppealFiles, appeal_files, write_letter
from bot.errors import (
    AccountDisabled,
    DocumentProblem,
    PayerbotError,
    PlannedStop,
    PortalChanged,
    ReplayRefused,
    ReplayStop,
    SessionExpired,
    Transient,
    error_class,
)
from bot.models import (
    AppealRequest,
    ClaimStatusRequest,
    PaStatusRequest,
    Payload,
    WorkKind,
    parse_payload,
    payload_digest,
)
from bot.portal import ACTION_FOR_KIND, Portal, SubmitGate, submit_through_gate
from bot.queue import ItemView, submission_reference
from bot.recording.fingerprint import diff, page_fingerprint
from bot.recording.offline import HarRouter
from bot.recording.recorder import RecordMode, RunInfo, RunRecorder, new_run_id
from bot.redact import MASK, PROCESS_SECRETS, Redactor
from bot.services import Services
from bot.session import AccountSession, trusted_portal_url
from bot.steps import Outcome, Step, StepRecorder
from portals import get_portal
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


class Replayer:
    """Replays runs for an operator; ``out`` receives one line at a time as the replay goes."""

    def __init__(self, services: Services, browser: Browser, *, out: Printer = print) -> None:
        self.s = services
        self.browser = browser
        self.out = out

    def replay(self, run: RunView, *, offline: bool = False, allow_submit: bool = False) -> ReplayResult:
        view, request = item_input(self.s, run)
        digest = payload_digest(
            WorkKind(view.kind), view.payer, view.account, request.model_dump(mode="json")
        )
        if run.payload_digest and digest != run.payload_digest:
            self.out(f"note: item {view.id}'s input changed since run {run.id}; replaying today's input")
        if allow_submit and isinstance(request, AppealRequest):
            if offline:
                raise ReplayRefused("--allow-submit submits for real; it cannot go with --offline")
            from scenarios.submit import submit_for_real

            return submit_for_real(self.s, self.browser, run, view, out=self.out)
        if offline:
            return self._offline(run, view, request)
        return self._live(run, view, request, digest)

    # -- live ------------------------------------------------------------------------------------

    def _live(self, run: RunView, view: ItemView, request: Payload, digest: str) -> ReplayResult:
        portal_cls = get_portal(view.payer)
        account = self.s.vault.account(view.payer, view.account)
        if not account.enabled:
            raise AccountDisabled(
                f"account {view.payer}/{view.account} is disabled: {account.disabled_reason}"
            )
        session = AccountSession(
            browser=self.browser,
            portal_cls=portal_cls,
            # the sealed URL, as the worker uses: a replay types the same secrets
            portal_url=trusted_portal_url(
                self.s.vault, portal_cls, view.payer, view.account, account.portal_url
            ),
            payer=view.payer,
            account=view.account,
            vault=self.s.vault,
            audit=self.s.audit,
            settings=self.s.settings,
        )
        action = ACTION_FOR_KIND[WorkKind(view.kind)]
        self.out(f"replaying run {run.id} live: item {view.id}, {view.payer} {action}, {session.portal_url}")
        for attempt in (1, 2):
            session.ensure()  # the stored session, or one login in its own untraced context
            info = RunInfo(
                run_id=new_run_id(view.id),
                item_id=view.id,
                kind=view.kind,
                payer=view.payer,
                account=view.account,
                action=str(ACTION_FOR_KIND[WorkKind(view.kind)]),
                attempt=view.attempts,
                payload_digest=digest,
                portal_url=session.portal_url,
                dry_run=True,
                replay_of=run.id,
            )
            recorder = RunRecorder(
                info,
                artifacts_dir=self.s.settings.resolved_artifacts_dir,
                mode=RecordMode.FAILURES,
                redactor=Redactor(parent=PROCESS_SECRETS),
            )
            context = session.new_context(**recorder.context_options())
            result = self._walk(run, "live", context, recorder, portal_cls, session.portal_url, view, request)
            if result.error_kind == SessionExpired.__name__ and attempt == 1:
                self.out("the portal ended the session; logging in again and replaying from the start")
                session.renew()
                continue
            return result
        raise AssertionError("unreachable")

    # -- offline ---------------------------------------------------------------------------------

    def _offline(self, run: RunView, view: ItemView, request: Payload) -> ReplayResult:
        har = run.file("har")
        if har is None:
            raise ReplayRefused(
                f"run {run.id} kept no network log (only failed runs, or runs with --record always, "
                "keep one); replay it live instead"
            )
        portal_cls = get_portal(view.payer)
        portal_url = run.portal_url or _origin_of(har)
        request = as_recorded(request)
        self.out(f"replaying run {run.id} offline from {har} (no network): item {view.id}, {view.payer}")
        folder = Path(tempfile.mkdtemp(prefix="payerbot-offline-"))
        try:
            context = self.browser.new_context()  # no cookies: every answer comes from the recording
            context.set_default_timeout(self.s.settings.action_timeout_ms)
            context.set_default_navigation_timeout(self.s.settings.navigation_timeout_ms)
            context.route("**/*", HarRouter.load(har))
            info = RunInfo(
                run_id=new_run_id(view.id),
                item_id=view.id,
                kind=view.kind,
                payer=view.payer,
                account=view.account,
                action=run.action,
                portal_url=portal_url,
                dry_run=True,
                replay_of=run.id,
            )
            recorder = RunRecorder(info, artifacts_dir=folder, mode=RecordMode.NEVER)
            return self._walk(
                run, "offline", context, recorder, portal_cls, portal_url, view, request, folder
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- one walk through the portal ---------------------------------------------------------------

    def _walk(
        self,
        run: RunView,
        mode: str,
        context: BrowserContext,
        recorder: RunRecorder,
        portal_cls: type[Portal],
        portal_url: str,
        view: ItemView,
        request: Payload,
        scratch: Path | None = None,
    ) -> ReplayResult:
        result = ReplayResult(recorded=run, mode=mode)
        page = context.new_page()

        def on_step(step: Step, step_page: Page) -> None:
            recorder.on_step(step, step_page)
            recorded = run.steps[step.index] if step.index < len(run.steps) else None
            replayed = ReplayedStep(step, recorded, compare(step, recorded))
            result.steps.append(replayed)
            self.out(replayed.line())

        recorder.learn_request(request)  # the runner's registrations, so a replay's bundle is as clean
        steps = StepRecorder(page, on_step=on_step, on_typed=recorder.learn)
        portal = portal_cls(page, portal_url, steps)
        recorder.attach(context, portal)
        error: BaseException | None = None
        try:
            result.detail = self._act(portal, view, request, recorder, mode, run, scratch)
        except BaseException as exc:
            error = exc
        if isinstance(error, PayerbotError) and not isinstance(error, PlannedStop):
            self._describe_failure(result, error, steps.steps, page, recorder)
        bundle = recorder.finish(context, page, error, steps.steps)
        if recorder.mode != RecordMode.NEVER:
            self.s.runs.save(bundle)
            result.run_id = bundle.info.run_id
        if error is not None and not isinstance(error, PayerbotError):
            raise error  # a bug or an interrupt: the operator sees it as it is
        result.outcome = bundle.outcome if error is not None else "ok"
        if isinstance(error, PlannedStop):
            result.detail = error.message
        self._report(result, mode)
        return result

    def _describe_failure(
        self, result: ReplayResult, error: PayerbotError, steps: list[Step], page: Page, recorder: RunRecorder
    ) -> None:
        result.error_kind, result.error = type(error).__name__, recorder.redactor.scrub(error.message)
        failed = [s for s in steps if s.outcome == Outcome.FAILED]
        result.locator = error.locator if isinstance(error, PortalChanged) else None
        if failed:
            result.url_path = failed[-1].url_path
            result.locator = result.locator or failed[-1].locator
        recorder.learn_sensitive(page)
        result.fingerprint = [recorder.redactor.scrub(x) for x in page_fingerprint(page)]  # bounded
        result.last_good = self.s.runs.baselines.last_good(
            recorder.info.payer, result.url_path, result.fingerprint
        )

    def _act(
        self,
        portal: Portal,
        view: ItemView,
        request: Payload,
        recorder: RunRecorder,
        mode: str,
        run: RunView,
        scratch: Path | None,
    ) -> str:
        mapper = self.s.mapper
        if isinstance(request, ClaimStatusRequest):
            reading = portal.check_claim_status(request)
            recorder.learn(*reading.sensitive)
            status = mapper.claim(type(portal), reading)
            return f"claim status {status.label} ({status.payer_wording})"
        if isinstance(request, PaStatusRequest):
            pa = portal.check_pa_status(request)
            recorder.learn(*pa.sensitive)
            pa_status = mapper.pa(type(portal), pa)
            return f"authorization {pa_status.label} ({pa_status.payer_wording})"
        assert isinstance(request, AppealRequest)
        recorder.redactor.add(request.explanation)
        reference = view.submission_reference or submission_reference(view.id, view.idempotency_key)
        gate: SubmitGate = _stop_before_click
        if mode == "offline" and run.outcome in {"ok", "failed"}:
            gate = _offline_click  # the recorded run clicked (or failed before): its answers are in the HAR
        with self._files(request, mode, scratch, type(portal).max_upload_bytes) as files:
            result = submit_through_gate(portal, request, files, reference, gate)
        return f"confirmation {result.confirmation_id} (served from the recording)"

    def _files(
        self, request: AppealRequest, mode: str, scratch: Path | None, max_bytes: int
    ) -> AbstractContextManager[AppealFiles]:
        try:
            return appeal_files(request, self.s.settings.documents_dir, max_bytes)
        except DocumentProblem as exc:
            if mode != "offline" or scratch is None:
                raise
            self.out(f"note: {exc.message}; offline, a stand-in letter is uploaded instead")
            letter = write_letter(scratch, "stand-in-letter.pdf", "A stand-in letter for an offline replay.")
            return nullcontext(AppealFiles(letter=letter, attachments=[letter for _ in request.attachments]))

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
