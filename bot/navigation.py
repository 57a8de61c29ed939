"""Which documents a page is still waiting for: one tracker per page, shared by all who ask.

While the main frame waits for its next document, Playwright's reads of the page (``evaluate``,
``count``, a screenshot) wait for it with no timeout, so the step recorder and the run recorder
must not read then. A child frame's document on its way (a portal's work area in an iframe) means
the portal is slow, not changed. The step recorder, the run recorder and a portal's ``is_busy``
ask the same tracker, so the page carries one set of listeners. It also knows how the window's
document was asked for: a page fetched with GET can be loaded again, one that answered a form's
POST cannot (loading it again would post again).
"""

from __future__ import annotations

import weakref

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request, Response

_TRACKERS: weakref.WeakKeyDictionary[Page, NavigationTracker] = weakref.WeakKeyDictionary()


class NavigationTracker:
    """The main frame's navigation until its document answers; child frames' until they loaded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.main_frame_request: Request | None = None
        # the method of the request whose answer the window's document is (None before the first)
        self.document_method: str | None = None
        self._child_frame_requests: set[Request] = set()
        page.on("request", self._started)
        page.on("response", self._answered)
        page.on("requestfinished", self._settled)
        page.on("requestfailed", self._settled)

    @classmethod
    def of(cls, page: Page) -> NavigationTracker:
        """The page's tracker, made on first use (its listeners see navigations from then on)."""
        tracker = _TRACKERS.get(page)
        if tracker is None:
            tracker = _TRACKERS[page] = cls(page)
        return tracker

    @property
    def main_frame_waiting(self) -> bool:
        """The main frame asked for a document that has not answered: reading the page would hang."""
        return self.main_frame_request is not None

    @property
    def document_fetched(self) -> bool:
        """The window's document answered a GET: loading its address again asks for the same page."""
        return self.document_method == "GET" and not self.main_frame_waiting

    @property
    def child_frames_loading(self) -> bool:
        """A frame inside the page is still loading its document."""
        return bool(self._child_frame_requests)

    def _started(self, request: Request) -> None:
        try:
            if not request.is_navigation_request():
                return
            if request.frame == self.page.main_frame:
                self.main_frame_request = request
            elif request.frame.parent_frame is not None:
                self._child_frame_requests.add(request)
        except PlaywrightError:  # a service worker's request has no frame
            pass

    def _answered(self, response: Response) -> None:
        # the main frame's document answered: the page can be read again (its body may still stream)
        if response.request is self.main_frame_request:
            self.main_frame_request = None
            # a redirect's answer is followed by the request it redirects to, which then sets this
            self.document_method = response.request.method

    def _settled(self, request: Request) -> None:
        if request is self.main_frame_request:
            self.main_frame_request = None
        self._child_frame_requests.discard(request)
