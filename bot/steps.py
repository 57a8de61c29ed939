"""Steps are data: every page action a portal takes goes through here and is written down.

A page object calls ``steps.fill(locator, value)``, ``steps.click(locator)`` and so on instead of the
Playwright methods. Each call becomes a ``Step`` (kind, locator, outcome, timing), which the engine
keeps for the run's record and its replay. Playwright's errors are mapped here, once, at the portal
boundary: a server error or maintenance page becomes a transient error, a control that is not on a
fully loaded page becomes ``PortalChanged`` naming the locator.

A step that fails because the portal answered 5xx (a gateway error page, an app's own error state)
is retried here, inside the attempt, a bounded number of times with a backoff on the run's clock,
and only where repeating changes nothing on the portal: the engine clicks the portal's declared
retry control where it shows, or loads the page again and does again the steps that led from
that load to the failed step. Typing, choosing, waiting and reading may be done again; a click
only when the page object marks it ``repeatable`` (opening a listed record, a search). A click not
so marked ends that: nothing before it is done again, and nothing at all once the submit gate has
let the click through. Each retry is a ``retry`` step, and the steps it does again are recorded
again (marked ``retry`` in their meta), so a bundle and a replay show them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from pydantic import BaseModel, Field

from bot.clock import Clock, SystemClock
from bot.errors import PortalChanged, PortalError, PortalServerError, PortalTimeout, SecretOriginMismatch
from bot.navigation import NavigationTracker
from bot.origin import origin_of
from bot.step_retry import Repeat, RetryPolicy, Segment


class StepKind(StrEnum):
    NAVIGATE = "navigate"
    FILL = "fill"
    CLICK = "click"
    SELECT = "select"
    UPLOAD = "upload"
    READ = "read"
    EXPECT = "expect"
    RETRY = "retry"  # a failed step about to be tried again: what failed, the wait, how the page returns


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
T = TypeVar("T")


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
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
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
        # retries wait on this clock (a test hands in a ManualClock)
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        # the control the portal's error state offers to ask again (the portal sets it)
        self.retry_control: Locator | None = None
        self._segment: Segment | None = None  # None: the page cannot be rebuilt
        self._nested = 0  # > 0 inside a compound step or a rebuild: only the outermost step retries
        self._retries = 0  # made in this run
        self._sealed = False  # the submit gate let the click through: nothing is retried any more
        self._marks: dict[str, str] = {}  # meta of every step a rebuild does
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
            meta=dict(self._marks),
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
        where = target or url.split("?", 1)[0]
        self._perform(lambda: self._load(url, where), Repeat.LOAD, anchor=Segment(url, where))

    def _load(self, url: str, target: str) -> None:
        self.last_server_error = None  # a new page: what the last one answered no longer matters
        with self._step(StepKind.NAVIGATE, target=target):
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

        def type_it() -> None:
            with self._step(StepKind.FILL, locator, value=value if safe else None):
                origin = self._secret_origins.get(value)
                if origin is not None:
                    self._fill_secret(locator, value, origin)
                else:
                    locator.fill(value)

        self._perform(type_it, Repeat.REDO)

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
        def choose() -> None:
            with self._step(StepKind.SELECT, locator, value=label):
                locator.select_option(label=label)

        self._perform(choose, Repeat.REDO)

    def check(self, locator: Locator) -> None:
        def tick() -> None:
            with self._step(StepKind.CLICK, locator, target="check"):
                locator.check()

        self._perform(tick, Repeat.REDO)  # a box ticked on the page, sent only by a later click

    def click(self, locator: Locator, *, navigates: bool = False, repeatable: bool = False) -> None:
        """Click. ``navigates`` waits, within the navigation timeout, for the page the click opens.

        Playwright's own wait for a navigation a click starts ignores every timeout (a server that
        never answers would hold it forever), so clicks never use it: a navigating click waits on
        ``expect_navigation``, which the timeout bounds, and any other caller waits on the next
        page's controls.

        ``repeatable``: the page object declares that clicking again changes nothing on the portal
        (opening a listed record, the next page of a list, a search), so the engine may click it
        again to rebuild the page after a transient failure. Off by default: a click not so marked
        is never done twice, and nothing before it is done again.
        """

        def press() -> None:
            self.last_server_error = None
            with self._step(StepKind.CLICK, locator) as step:
                if repeatable:
                    step.meta["repeatable"] = "true"
                if navigates:
                    with self.page.expect_navigation():
                        locator.click(no_wait_after=True)
                else:
                    locator.click(no_wait_after=True)
            if navigates:
                self.after_navigation()

        self._perform(press, Repeat.REDO if repeatable else Repeat.NEVER, click=True)

    def upload(self, locator: Locator, files: Sequence[Path]) -> None:
        def attach() -> None:
            # the count only: a file's name may carry a patient's name
            with self._step(StepKind.UPLOAD, locator, value=f"{len(files)} file(s)"):
                locator.set_input_files(list(files))

        self._perform(attach, Repeat.REDO)  # set on the page, sent only by a later click

    def read(self, locator: Locator) -> str:
        def read() -> str:
            with self._step(StepKind.READ, locator):
                return locator.inner_text().strip()

        return self._perform(read, Repeat.READ)

    def read_optional(self, locator: Locator) -> str | None:
        """Read a value the page shows only sometimes (no wait: the page is already loaded)."""

        def read() -> str | None:
            with self._step(StepKind.READ, locator, target="optional") as step:
                if locator.count() == 0:
                    step.meta["absent"] = "true"
                    return None
                return locator.first.inner_text().strip()

        return self._perform(read, Repeat.READ)

    def read_all(self, locator: Locator) -> list[str]:
        def read() -> list[str]:
            with self._step(StepKind.READ, locator, target="all"):
                return [t.strip() for t in locator.all_inner_texts()]

        return self._perform(read, Repeat.READ)

    def expect(self, locator: Locator, *, target: str | None = None) -> None:
        """Wait until the control is visible; a page without it is a changed (or slow) page."""

        def wait() -> None:
            with self._step(StepKind.EXPECT, locator, target=target):
                locator.wait_for(state="visible")

        self._perform(wait, Repeat.REDO)

    def table(self, rows: Locator) -> list[list[str]]:
        """Read a table's rows as lists of cell texts."""

        def read() -> list[list[str]]:
            with self._step(StepKind.READ, rows, target="table"):
                return [[c.strip() for c in row.locator("td, th").all_inner_texts()] for row in rows.all()]

        return self._perform(read, Repeat.READ)

    def unit(self, action: Callable[[], T]) -> T:
        """Do a step made of steps (landing on a page: a wait, the page's classification, an
        interstitial clicked through) as one: retried as one, and done again as one when the page is
        rebuilt. Its own steps are recorded as usual."""
        return self._perform(action, Repeat.REDO)

    def submitting(self) -> None:
        """The submit gate let the click through: from here on no step is retried or done again,
        whatever fails (what a failure then means is ``bot.portal.submit_through_gate``'s rule)."""
        self._sealed = True
        self._segment = None

    # -- transient failures, retried in place --------------------------------------------------

    def _perform(
        self, act: Callable[[], T], repeat: Repeat, *, anchor: Segment | None = None, click: bool = False
    ) -> T:
        """Do ``act``; when it fails with a transient 5xx and the page can be rebuilt, wait, rebuild
        the page and do it again, a bounded number of times. A failed ``click`` is done again only
        after a rebuild, never after the portal's retry control: the click may have happened, and
        that control asks again for what it led to."""
        if self._nested:  # a step inside a compound step or a rebuild: the outermost one decides
            return act()
        if anchor is not None:
            self._segment = anchor  # a page asked for by its address can always be asked for again
        elif repeat is Repeat.NEVER:
            self._segment = None  # the click may change the portal: rebuilding past it might repeat it
        tries = 0
        while True:
            try:
                with self._nesting():
                    result = act()
            except PortalError as exc:
                failure: PortalError = exc
            else:
                self._remember(act, repeat, click=click)
                return result
            control = not click
            while True:  # a rebuild that fails too counts as one more try
                tries += 1
                if not self._may_retry(failure, tries):
                    raise failure
                try:
                    self._rebuild(failure, tries, again=repeat is not Repeat.LOAD, by_control=control)
                    break
                except PortalError as exc:
                    failure = exc
                    control = False  # the control would ask again for a step of the rebuild, not ours

    def _may_retry(self, failure: PortalError, tries: int) -> bool:
        return (
            isinstance(failure, self.retry.kinds)
            and not self._sealed
            and self._segment is not None
            and tries <= self.retry.retries
            and self._retries < self.retry.per_run
        )

    def _rebuild(self, failure: PortalError, tries: int, *, again: bool, by_control: bool) -> None:
        """Wait, write the retry down, and bring the page back to where the failed step began: the
        portal's retry control, or the page loaded again and the steps since then done again. A
        failed load needs neither: the caller loads it again."""
        segment = self._segment
        assert segment is not None  # _may_retry
        self._retries += 1
        self.last_server_error = None  # what the failed page answered no longer matters
        control = self._shown_retry_control() if again and by_control else None
        if control is not None:
            how = "retry control"
        elif again and segment.redo:
            how = f"load again, then {len(segment.redo)} steps again"
        else:
            how = "load again"
        wait = self.retry.wait(tries)
        with self._step(StepKind.RETRY, target=how) as step:
            step.error = type(failure).__name__  # the kind only: a page's own words may hold anything
            step.meta.update({"try": str(tries), "wait_ms": str(round(wait * 1000))})
            self.clock.sleep(wait)
        if not again:
            return
        with self._nesting(), self._marked(tries):
            if control is not None:
                with self._step(StepKind.CLICK, control, target="retry control"):
                    control.click(no_wait_after=True)
                return
            self._load(segment.url, segment.target)
            for redo in list(segment.redo):
                redo()

    def _shown_retry_control(self) -> Locator | None:
        control = self.retry_control
        if control is None or self.navigation.main_frame_waiting:
            return None
        try:  # no wait: the failed step has already seen the page
            return control.first if control.first.is_visible() else None
        except PlaywrightError:
            return None

    def _remember(self, act: Callable[[], object], repeat: Repeat, *, click: bool) -> None:
        segment = self._segment
        if segment is None or repeat is not Repeat.REDO:
            return
        url = self._address() if click else self.page.url.split("#", 1)[0]
        moved = url is not None and url != segment.url and origin_of(url) == origin_of(segment.url)
        if url is not None and moved and self.navigation.document_fetched:
            # the step took the window to an address it loads from with GET (a search's answer, an
            # app's view): rebuilding from here is loading that address, not the steps that led there
            self._segment = Segment.at(url)
            return
        segment.redo.append(act)

    def _address(self) -> str | None:
        """The window's address as its document knows it: an app's view changed by a click's own
        script, which ``page.url`` may not have heard of yet. None while a document is on its way
        (asking the page then would wait for it)."""
        if self.navigation.main_frame_waiting:
            return None
        try:
            return str(self.page.evaluate("location.href")).split("#", 1)[0]
        except PlaywrightError:
            return None

    @contextmanager
    def _nesting(self) -> Iterator[None]:
        self._nested += 1
        try:
            yield
        finally:
            self._nested -= 1

    @contextmanager
    def _marked(self, tries: int) -> Iterator[None]:
        self._marks = {"retry": str(tries)}
        try:
            yield
        finally:
            self._marks = {}
