"""Steps are data: every page action a portal takes goes through here and is written down.

A page object calls ``steps.fill(locator, value)``, ``steps.click(locator)`` and so on instead of the
Playwright methods. Each call becomes a ``Step`` (kind, locator, outcome, timing), which the engine
keeps for the run's record and its replay. Playwright's errors are mapped here, once, at the portal
boundary: a server error or maintenance page becomes a transient error, a control that is not on a
fully loaded page becomes ``PortalChanged`` naming the locator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from pydantic import BaseModel, Field

from bot.errors import PortalChanged, PortalError, PortalServerError, PortalTimeout, SecretOriginMismatch
from bot.navigation import NavigationTracker
from bot.origin import origin_of


class StepKind(StrEnum):
    NAVIGATE = "navigate"
    FILL = "fill"
    CLICK = "click"
    SELECT = "select"
    UPLOAD = "upload"
    READ = "read"
    EXPECT = "expect"


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"


class Step(BaseModel):
    index: int
    kind: StepKind
    locator: str | None = None
    target: str | None = None
    value: str | None = None  # only values that are safe to keep (never secrets or patient data)
    outcome: Outcome = Outcome.OK
    error: str | None = None
    url_path: str | None = None
    started_at: datetime
    duration_ms: int = 0
    screenshot: str | None = None
    meta: dict[str, str] = Field(default_factory=dict)


def describe_locator(locator: Locator) -> str:
    """Playwright's own selector text, e.g. ``internal:role=button[name="Submit appeal"i]``."""
    text = repr(locator)
    marker = "selector='"
    if marker in text:
        return text.split(marker, 1)[1].rsplit("'", 1)[0]
    return text


StepHook = Callable[[Step, Page], None]
PageCheck = Callable[[], None]


class StepRecorder:
    """Performs page actions, records them as ``Step``s, and maps Playwright errors."""

    def __init__(
        self,
        page: Page,
        *,
        on_step: StepHook | None = None,
        check_page: PageCheck | None = None,
        busy: Callable[[Page], bool] | None = None,
        on_typed: Callable[[str], None] | None = None,
    ) -> None:
        self.page = page
        self.steps: list[Step] = []
        self.on_step = on_step
        # told every value typed that is not marked safe: the run registers it as patient data
        self.on_typed = on_typed
        self.check_page = check_page
        self.busy = busy
        self.last_server_error: int | None = None
        # while the main frame waits for its next document, Playwright's evaluate and count wait
        # for it with no timeout, so a failed step must not ask the page anything
        self.navigation = NavigationTracker.of(page)
        # secret value -> the one origin it may be typed on (the session registers each as revealed)
        self._secret_origins: dict[str, str] = {}
        page.on("response", self._watch_response)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _watch_response(self, response: Response) -> None:
        kind = response.request.resource_type
        if kind in {"document", "xhr", "fetch"} and response.status >= 500:
            self.last_server_error = response.status

    def _path(self) -> str:
        url = self.page.url
        return "/" + url.split("/", 3)[3].split("?", 1)[0] if url.count("/") >= 3 else url

    @contextmanager
    def _step(
        self,
        kind: StepKind,
        locator: Locator | None = None,
        *,
        target: str | None = None,
        value: str | None = None,
    ) -> Iterator[Step]:
        step = Step(
            index=len(self.steps),
            kind=kind,
            locator=describe_locator(locator) if locator is not None else None,
            target=target,
            value=value,
            started_at=datetime.now(UTC),
        )
        self.steps.append(step)
        t0 = time.perf_counter()
        try:
            yield step
        except PortalError as exc:
            step.outcome, step.error = Outcome.FAILED, f"{type(exc).__name__}: {exc.message}"
            raise
        except PlaywrightError as exc:
            mapped = self._map(exc, step)
            step.outcome, step.error = Outcome.FAILED, f"{type(mapped).__name__}: {mapped.message}"
            raise mapped from None
        finally:
            step.duration_ms = int((time.perf_counter() - t0) * 1000)
            step.url_path = self._safe_path()
            if self.on_step is not None:
                self.on_step(step, self.page)

    def _safe_path(self) -> str | None:
        try:
            return self._path()
        except PlaywrightError:
            return None

    def _map(self, exc: PlaywrightError, step: Step) -> PortalError:
        """Turn a Playwright error into the portal error family that decides the item's fate."""
        # taken, not read: a status left behind would fail the next, healthy, step
        status, self.last_server_error = self.last_server_error, None
        if self.navigation.main_frame_waiting:
            where = step.target or step.locator or step.kind
            return PortalTimeout(
                f"the portal had not answered the page asked for when {step.kind} ({where}) timed out"
            )
        if self.check_page is not None:
            try:
                self.check_page()  # raises maintenance, CAPTCHA, expired session, ... when it sees one
            except PortalError as known:
                return known
            except PlaywrightError:
                pass
        if status is not None:
            return PortalServerError(f"the portal answered HTTP {status}")
        if not isinstance(exc, PlaywrightTimeout):
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "net::" in first_line or "Target" in first_line or "closed" in first_line:
                return PortalTimeout(f"the connection to the portal failed during {step.kind}")
            return PortalChanged(f"{step.kind} failed on {step.locator}", locator=step.locator)
        if self._still_loading():
            return PortalTimeout(f"the portal was still loading after {step.kind} of {step.locator}")
        where = step.locator or step.target or step.kind
        return PortalChanged(f"no element matched {where} on {self._safe_path()}", locator=step.locator)

    def _still_loading(self) -> bool:
        try:
            if self.page.evaluate("document.readyState") != "complete":
                return True
            return bool(self.busy and self.busy(self.page))
        except PlaywrightError:
            return True

    # -- actions -------------------------------------------------------------------------------

    def goto(self, url: str, *, target: str | None = None) -> None:
        self.last_server_error = None  # a new page: what the last one answered no longer matters
        with self._step(StepKind.NAVIGATE, target=target or url.split("?", 1)[0]):
            response = self.page.goto(url)
            if response is not None and response.status >= 500:
                self.last_server_error = response.status
        self.after_navigation()

    def after_navigation(self) -> None:
        """Let the portal recognise a page it knows is not the one asked for (maintenance, ...)."""
        status, self.last_server_error = self.last_server_error, None  # taken even if check_page raises
        if self.check_page is not None:
            self.check_page()
        if status is not None:
            raise PortalServerError(f"the portal answered HTTP {status}")

    def add_secret(self, value: str, *, origin: str) -> None:
        """Let ``fill`` type ``value`` only where the page and the field's document are ``origin``."""
        self._secret_origins[value] = origin

    def fill(self, locator: Locator, value: str, *, safe: bool = False) -> None:
        """Type into a field; the value is written down only when the caller marks it ``safe``.

        Any other value (a secret aside) is handed to ``on_typed`` first, so a run scrubs what it
        typed from every artifact even when the typing fails halfway.
        """
        if not safe and self.on_typed is not None and value not in self._secret_origins:
            self.on_typed(value)
        with self._step(StepKind.FILL, locator, value=value if safe else None):
            origin = self._secret_origins.get(value)
            if origin is not None:
                self._fill_secret(locator, value, origin)
            else:
                locator.fill(value)

    def _fill_secret(self, locator: Locator, value: str, origin: str) -> None:
        """Type a secret only when the top page and the field's own document are on ``origin``.

        Checked and typed through one element handle: a page that navigates in between detaches
        it, so the typing fails rather than land in the next page.
        """
        field = locator.element_handle()
        try:
            document = origin_of(field.evaluate("e => e.ownerDocument.location.origin"))
            top = origin_of(self.page.url)
            if top != origin or document != origin:
                raise SecretOriginMismatch(
                    f"a secret field in a document of {document} on a page of {top} is not the "
                    f"account's origin {origin}; nothing was typed"
                )
            field.fill(value)
        finally:
            with suppress(PlaywrightError):  # a page gone meanwhile took the handle with it
                field.dispose()

    def select(self, locator: Locator, label: str) -> None:
        with self._step(StepKind.SELECT, locator, value=label):
            locator.select_option(label=label)

    def check(self, locator: Locator) -> None:
        with self._step(StepKind.CLICK, locator, target="check"):
            locator.check()

    def click(self, locator: Locator, *, navigates: bool = False) -> None:
        """Click. ``navigates`` waits, within the navigation timeout, for the page the click opens.

        Playwright's own wait for a navigation a click starts ignores every timeout (a server that
        never answers would hold it forever), so clicks never use it: a navigating click waits on
        ``expect_navigation``, which the timeout bounds, and any other caller waits on the next
        page's controls.
        """
        self.last_server_error = None
        with self._step(StepKind.CLICK, locator):
            if navigates:
                with self.page.expect_navigation():
                    locator.click(no_wait_after=True)
            else:
                locator.click(no_wait_after=True)
        if navigates:
            self.after_navigation()

    def upload(self, locator: Locator, files: Sequence[Path]) -> None:
        # the count only: a file's name may carry a patient's name
        with self._step(StepKind.UPLOAD, locator, value=f"{len(files)} file(s)"):
            locator.set_input_files(list(files))

    def read(self, locator: Locator) -> str:
        with self._step(StepKind.READ, locator):
            return locator.inner_text().strip()

    def read_optional(self, locator: Locator) -> str | None:
        """Read a value the page shows only sometimes (no wait: the page is already loaded)."""
        with self._step(StepKind.READ, locator, target="optional") as step:
            if locator.count() == 0:
                step.meta["absent"] = "true"
                return None
            return locator.first.inner_text().strip()

    def read_all(self, locator: Locator) -> list[str]:
        with self._step(StepKind.READ, locator, target="all"):
            return [t.strip() for t in locator.all_inner_texts()]

    def expect(self, locator: Locator, *, target: str | None = None) -> None:
        """Wait until the control is visible; a page without it is a changed (or slow) page."""
        with self._step(StepKind.EXPECT, locator, target=target):
            locator.wait_for(state="visible")

    def table(self, rows: Locator) -> list[list[str]]:
        """Read a table's rows as lists of cell texts."""
        with self._step(StepKind.READ, rows, target="table"):
            return [[c.strip() for c in row.locator("td, th").all_inner_texts()] for row in rows.all()]
