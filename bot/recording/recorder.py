"""Recording one portal run, and the bundle it leaves when it fails (or when asked).

Each run works in a private temporary folder: a screenshot for each step (patient data masked by
``bot.evidence.screenshot_mask``, which masks the whole content area of a page it cannot vouch for;
a navigation or click shares the screenshot of the page it led to, a read that of the page it read),
the Playwright trace (started after login: the login runs in a context of its own) and the HAR of
the run's own browser context. A run that ends as expected (or at a planned stop) throws the
folder away and keeps only its light record (steps and timings, in the ``runs`` table). A failed
run's folder is scrubbed (credentials, cookies, patient data) and moved to
``<artifacts>/runs/<run id>`` with 0700 permissions, with ``bundle.json`` describing it.

Every recorded run also notes the structure (fingerprint) of each page it worked on, once the page
is loaded, so that a later failure can be compared with the last good look of the same page.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Locator, Page
from playwright.sync_api import Error as PlaywrightError
from pydantic import BaseModel, Field

from bot.errors import PayerbotError, PlannedStop, PortalChanged
from bot.evidence import (
    PatientFields,
    learn_shown_values,
    page_html,
    private_dir,
    screenshot_mask,
)
from bot.models import AppealRequest, Payload
from bot.navigation import NavigationTracker
from bot.recording.fingerprint import page_fingerprint
from bot.recording.scrub import scrub_har, scrub_trace
from bot.redact import PROCESS_SECRETS, Redactor
from bot.steps import Outcome, Step, StepKind

PAGE_CHANGING = frozenset({StepKind.NAVIGATE, StepKind.CLICK})
# a wait may end on new data (a list drawn by script), so its patient values are learned for scrubbing
SHOWS_NEW_DATA = frozenset({StepKind.EXPECT})
# the first of these after a page change finds the page loaded: the moment to fingerprint it
PAGE_LOADED = frozenset({StepKind.FILL, StepKind.SELECT, StepKind.UPLOAD, StepKind.EXPECT, StepKind.READ})
BUNDLE_FILE = "bundle.json"
# A request's patient values: the claim or Rx number and the PA number (each identifies one patient's
# record), the fill date (a date of care) and the explanation. Not the approver: a colleague.
REQUEST_PATIENT_FIELDS = ("claim_number", "pa_number", "fill_date", "explanation")


class RecordMode(StrEnum):
    FAILURES = "failures"
    ALWAYS = "always"
    NEVER = "never"


def new_run_id(item_id: int | None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{item_id or 0}-{uuid.uuid4().hex[:6]}"


class RunInfo(BaseModel):
    """Which run this was. The item's input is kept by reference (id and digest), never in clear."""

    run_id: str
    item_id: int | None
    kind: str
    payer: str
    account: str
    action: str
    attempt: int = 0
    payload_digest: str | None = None
    portal_url: str | None = None
    dry_run: bool = False
    replay_of: str | None = None  # the run an operator replayed


class Bundle(BaseModel):
    info: RunInfo
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str = "running"
    error_kind: str | None = None
    error: str | None = None
    disposition: str | None = None
    locator: str | None = None
    url_path: str | None = None
    fingerprint: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    # URL path -> the distinct fingerprints the page showed once loaded (a form, then its results)
    pages: dict[str, list[list[str]]] = Field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> Bundle:
        return cls.model_validate_json((folder / BUNDLE_FILE).read_text(encoding="utf-8"))


class RunRecorder:
    """Collects one run's steps and artifacts; keeps a scrubbed bundle when the run failed."""

    def __init__(
        self,
        info: RunInfo,
        *,
        artifacts_dir: Path,
        mode: RecordMode = RecordMode.FAILURES,
        redactor: Redactor | None = None,
    ) -> None:
        self.info = info
        self.mode = mode
        self.artifacts_dir = artifacts_dir
        self.redactor = redactor or Redactor(parent=PROCESS_SECRETS)
        self.bundle = Bundle(info=info, started_at=datetime.now(UTC))
        self.work = Path(tempfile.mkdtemp(prefix="payerbot-run-"))  # mkdtemp makes it 0700
        self.fields: PatientFields | None = None
        self._tracing = False
        self._context: BrowserContext | None = None
        self._last_shot: str | None = None
        self._page_changed = True
        self._navigation: list[NavigationTracker] = []
        self._unshot: list[Step] = []

    @property
    def recording(self) -> bool:
        return self.mode != RecordMode.NEVER

    def context_options(self) -> dict[str, Any]:
        """Options for the run's ``browser.new_context``: the HAR this run may keep."""
        if not self.recording:
            return {}
        return {"record_har_path": str(self.work / "network.har"), "record_har_content": "embed"}

    def attach(self, context: BrowserContext, fields: PatientFields) -> None:
        """Record ``context``; ``fields`` (the run's portal) says where its pages show patient data."""
        self.fields = fields
        self._context = context
        for page in context.pages:
            self._watch(page)
        if self.recording:
            # no screencast: its frames would show patient data unmasked; DOM snapshots are scrubbed
            context.tracing.start(screenshots=False, snapshots=True, sources=False)
            self._tracing = True

    def _watch(self, page: Page) -> None:
        """Know when the main frame waits for its next document.

        Until it arrives, reading the page (its texts, its HTML) waits for it with no timeout, so
        a portal that never answers would hold the recorder, and the worker, forever.
        """
        self._navigation.append(NavigationTracker.of(page))

    @property
    def navigating(self) -> bool:
        """The page is waiting for the next document: it cannot be read until that comes."""
        return any(tracker.main_frame_waiting for tracker in self._navigation)

    # -- per step ------------------------------------------------------------------------------

    def learn_request(self, request: Payload) -> None:
        """Register what the request itself holds of a patient, before any page shows it."""
        self.redactor.add(*(getattr(request, name, None) for name in REQUEST_PATIENT_FIELDS))
        if isinstance(request, AppealRequest):  # its member id, dates of service and contact
            self.redactor.add(*request.patient_values())

    def learn(self, *values: str | date | None) -> None:
        """Register patient values (typed or read) for every artifact's scrub; the redactor takes
        a multi-line value whole and line by line."""
        self.redactor.add(*values)

    def learn_sensitive(self, page: Page) -> None:
        """Remember the patient values this page shows, so every artifact can be scrubbed of them."""
        if self.navigating or self.fields is None:
            return  # its values were learned when it loaded; the next page's are learned on arrival
        learn_shown_values(self.redactor, self.fields)

    def _mask(self, page: Page) -> list[Locator]:
        """What this page's screenshot masks; everything, when the run has no portal to ask."""
        # CSS for the body: no role names it
        return screenshot_mask(page, self.fields) if self.fields else [page.locator("body")]

    @contextlib.contextmanager
    def _trace_group(self, name: str) -> Iterator[None]:
        """The recorder's own calls (masks, screenshots) folded under one entry of the trace."""
        if not self._tracing or self._context is None:
            yield
            return
        try:
            self._context.tracing.group(name)
        except PlaywrightError:
            yield
            return
        try:
            yield
        finally:
            with contextlib.suppress(PlaywrightError):
                self._context.tracing.group_end()

    def on_step(self, step: Step, page: Page) -> None:
        failed = step.outcome == Outcome.FAILED
        if not failed and (step.kind in PAGE_CHANGING or self.navigating):
            # A click may have started a navigation the page's events have not reported yet, and
            # reading the page then waits for that document with no timeout. The next step, which
            # waits for the page it expects, looks at it; its screenshot stands for this step too.
            self._page_changed = True
            self._unshot.append(step)
            return
        first_look = self._page_changed
        if not failed and not first_look and step.kind == StepKind.READ:
            step.screenshot = self._last_shot  # a read changes nothing on the page
            return
        looks = failed or first_look or step.kind in SHOWS_NEW_DATA
        if not looks and not self.recording:
            return
        with self._trace_group(f"payerbot: record step {step.index}"):
            if looks:
                self.learn_sensitive(page)
            if self.recording and self.navigating:
                step.screenshot = self._last_shot  # the page shown is the old one, and cannot be taken
            elif self.recording:
                if not failed and first_look and step.kind in PAGE_LOADED:
                    self._note_page(step, page)
                self._screenshot(step, page)
        self._page_changed = False

    def _note_page(self, step: Step, page: Page) -> None:
        """Keep the loaded page's fingerprint under its path (scrubbed when the run ends)."""
        if not step.url_path:
            return
        found = page_fingerprint(page)
        states = self.bundle.pages.setdefault(step.url_path, [])
        if found and found not in states:
            states.append(found)

    def _screenshot(self, step: Step, page: Page) -> None:
        name = f"steps/{step.index:03d}-{step.kind}.jpg"
        (self.work / "steps").mkdir(exist_ok=True)
        try:
            page.screenshot(
                path=str(self.work / name), type="jpeg", quality=60, mask=self._mask(page), timeout=5_000
            )
            step.screenshot = self._last_shot = name
        except PlaywrightError:
            return
        for earlier in self._unshot:  # the page-changing steps that led here
            earlier.screenshot = name
        self._unshot.clear()

    # -- end of run ----------------------------------------------------------------------------

    def finish(
        self, context: BrowserContext, page: Page | None, error: BaseException | None, steps: list[Step]
    ) -> Bundle:
        """Stop recording, close the run's context, and keep or discard the bundle."""
        bundle = self.bundle
        bundle.steps = list(steps)
        bundle.ended_at = datetime.now(UTC)
        if error is None:
            bundle.outcome = "ok"
        elif isinstance(error, PlannedStop):
            bundle.outcome = error.outcome
        else:
            bundle.outcome = "failed"
        failed = bundle.outcome == "failed"
        keep = self.mode == RecordMode.ALWAYS or (failed and self.recording)
        if error is not None:
            self._describe_error(error)
        if page is not None and keep:
            with self._trace_group("payerbot: the page as the run ended"):
                self._capture_page(page)
        # patient values learned late (a name read on the last page) may sit in earlier fingerprints
        bundle.pages = {
            path: [[self.redactor.scrub(x) for x in state] for state in states]
            for path, states in bundle.pages.items()
        }
        if self._tracing:
            try:
                if keep:
                    context.tracing.stop(path=str(self.work / "trace.zip"))
                else:
                    context.tracing.stop()
            except PlaywrightError:
                pass
        with contextlib.suppress(PlaywrightError):
            context.close()
        if keep:
            self._keep()
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        return bundle

    def _describe_error(self, error: BaseException) -> None:
        bundle = self.bundle
        bundle.error_kind = type(error).__name__
        if isinstance(error, PayerbotError):
            bundle.error = self.redactor.scrub(error.message)
            bundle.disposition = str(error.disposition)
        else:  # an unexpected error's message may hold anything; keep its type only
            bundle.error = f"unexpected {type(error).__name__}"
            bundle.disposition = "human"
        if isinstance(error, PortalChanged):
            bundle.locator = error.locator
        failed = [s for s in bundle.steps if s.outcome == Outcome.FAILED]
        if failed:
            bundle.url_path = failed[-1].url_path
            bundle.locator = bundle.locator or failed[-1].locator

    def _capture_page(self, page: Page) -> None:
        if self.navigating:  # the run ended waiting for a page: screenshots and reads would wait too
            return
        self.learn_sensitive(page)
        try:
            self.bundle.fingerprint = [self.redactor.scrub(x) for x in page_fingerprint(page)]
            page.screenshot(
                path=str(self.work / "final.png"), full_page=True, mask=self._mask(page), timeout=5_000
            )
            self.bundle.files["screenshot"] = "final.png"
            for earlier in self._unshot:
                earlier.screenshot = "final.png"
            (self.work / "page.html").write_text(self.redactor.scrub(page_html(page)), encoding="utf-8")
            self.bundle.files["dom"] = "page.html"
            if self.bundle.url_path is None:
                url = page.url
                self.bundle.url_path = (
                    "/" + url.split("/", 3)[3].split("?", 1)[0] if url.count("/") >= 3 else url
                )
        except PlaywrightError:
            pass

    def _keep(self) -> None:
        if (self.work / "network.har").exists():
            scrub_har(self.work / "network.har", self.redactor)
            self.bundle.files["har"] = "network.har"
        if (self.work / "trace.zip").exists():
            scrub_trace(self.work / "trace.zip", self.redactor)
            self.bundle.files["trace"] = "trace.zip"
        shots = (
            sorted(p.relative_to(self.work).as_posix() for p in (self.work / "steps").glob("*.jpg"))
            if (self.work / "steps").is_dir()
            else []
        )
        if shots:
            self.bundle.files["step_screenshots"] = ",".join(shots)
        for step in self.bundle.steps:  # a value marked safe may still hold a registered one
            step.error = self.redactor.scrub(step.error) if step.error else step.error
            step.value = self.redactor.scrub(step.value) if step.value else step.value
        (self.work / BUNDLE_FILE).write_text(self.bundle.model_dump_json(indent=2), encoding="utf-8")
        target = private_dir(self.artifacts_dir / "runs") / self.info.run_id
        shutil.move(str(self.work), target)
        target.chmod(0o700)
        for path in target.rglob("*"):
            os.chmod(path, 0o700 if path.is_dir() else 0o600)
        self.bundle.files["path"] = str(target)

    @property
    def bundle_path(self) -> Path | None:
        path = self.bundle.files.get("path")
        return Path(path) if path else None


def light_record(bundle: Bundle) -> dict[str, Any]:
    """What every run keeps in the database: its steps and timings, no values."""
    fields = {"index", "kind", "locator", "outcome", "duration_ms", "url_path", "error"}
    return {
        "steps": [s.model_dump(mode="json", include=fields) for s in bundle.steps],
        "fingerprint": bundle.fingerprint,
    }
