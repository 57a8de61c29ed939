"""The page steps every portal shares, written once: ``Portal`` inherits them.

Opening a page and landing on it (the control expected, or a declared interruption, classified; a
declared interstitial clicked through), the sign-in outcome (``bot.sign_in`` walks the sign-in), a step the
portal may refuse with a message, the submit click behind the gate and the confirmation after it,
paging a result list, searching the appeal history, and the "found nothing" message. Each is built
on the run's ``StepRecorder``, so every wait and read is a recorded step, and none re-labels an
error: what an error after the submit click means is decided by ``bot.portal.submit_through_gate``.
Landing is one step for the step recorder's retries; opening a listed record, the next page of a
list and a history search are clicks marked repeatable; the submit click ends every retry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import ClassVar

from playwright.sync_api import Locator, Page

from bot.errors import (
    AmbiguousSubmission,
    LoginRejected,
    NotFoundOnPortal,
    PortalChanged,
    PortalValidationError,
    SecondFactorRejected,
    SessionExpired,
)
from bot.interruptions import InterruptionWatch, Interstitial
from bot.models import AppealLevel, AppealRequest, SubmissionLookup
from bot.parsing import format_us_date
from bot.readers import HistoryTable, Pager, find_in_history
from bot.steps import StepRecorder, describe_locator

PERSONAL_FIELDS = frozenset(
    {"member_id", "service_from", "service_to", "contact_name", "contact_phone", "contact_email"}
)
"""The appeal form fields that hold patient or personal data."""


def personal_labels(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The labels an appeal form's ``labels`` (field name -> label) gives its patient and personal
    fields (``PERSONAL_FIELDS``): what a portal adds to its ``sensitive_labels``."""
    return tuple(label for name, label in labels.items() if name in PERSONAL_FIELDS)


class PageSteps:
    """What a portal's intent methods call between its own locators."""

    display_name: ClassVar[str]
    interstitial: ClassVar[Interstitial | None]
    not_found_words: ClassVar[str | None]
    page: Page
    base_url: str
    steps: StepRecorder
    watch: InterruptionWatch

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def open(self, path: str, expected: Locator | None = None, target: str | None = None) -> None:
        """Go to ``path`` on the portal and, when given, land on the ``expected`` control."""
        self.steps.goto(self.url(path), target=path.split("?", 1)[0])
        if expected is not None:
            self.land(expected, target or path)

    def session_shows(self, path: str, signed_in: Locator, signed_out: Locator) -> bool:
        """``is_logged_in`` for most portals: open ``path``, which needs a session; True when the
        page shows ``signed_in``, False when it shows ``signed_out`` or the portal ended the session."""
        try:
            self.open(path)
            self.land(signed_in.or_(signed_out), "signed-in check", interstitial=False)
        except SessionExpired:
            return False
        return self.steps.read_optional(signed_in) is not None

    def land(
        self, expected: Locator, target: str, *, frame: str | None = None, interstitial: bool = True
    ) -> None:
        """Wait for the expected control, or any declared interruption, in the window or in the
        declared ``frame``; then classify the page (``check_page``, then any 5xx it answered).

        The ``interstitial`` the portal declares is clicked through wherever it stands in the way, at
        most its ``times`` in a row, then the portal counts as changed. The whole landing is one step
        for the step recorder's retries: a page that answered 5xx is brought back and landed on again.
        """
        self.steps.unit(lambda: self._land(expected, target, frame, interstitial))

    def _land(self, expected: Locator, target: str, frame: str | None, interstitial: bool) -> None:
        shown = self.watch.any_shown(frame)
        waiting = expected if shown is None else expected.or_(shown)
        passing = self.interstitial if interstitial else None
        if passing is None:
            self._wait_and_classify(waiting, target)
            return
        through = passing.locate(self.watch.root(frame))
        for _ in range(passing.times + 1):
            self._wait_and_classify(waiting.or_(through), target)
            if self.steps.read_optional(through) is None:
                return
            self.steps.click(through)
        raise PortalChanged(
            f"{passing.what} came back {passing.times} times in a row", locator=describe_locator(through)
        )

    def _wait_and_classify(self, waiting: Locator, target: str) -> None:
        self.steps.expect(waiting.first, target=target)
        self.steps.after_navigation()  # check_page, then any 5xx the page answered

    def sign_in_outcome(
        self, expected: Locator, refusal: Locator, what: str, *, second_factor: bool = False
    ) -> None:
        """After a sign-in step: wait for the next control or the portal's refusal (``what``: the
        step, in the portal's words). A refusal raises LoginRejected, or SecondFactorRejected after
        the second factor, with the portal's own words. The next control shown is no refusal,
        whatever alert shows beside it: the next page may draw one of its own (its data failed to
        load) once the wait has ended, and a transient error must not disable an account."""
        self.land(expected.or_(refusal), f"{what} outcome")
        if self.steps.read_optional(expected.filter(visible=True)) is not None:
            return
        words = self.steps.read_optional(refusal)
        if words is not None:
            error = SecondFactorRejected if second_factor else LoginRejected
            raise error(f"{self.display_name} refused the {what}: {words}")

    def proceed(
        self, expected: Locator, message: Locator, target: str, *, refused: str, frame: str | None = None
    ) -> None:
        """Wait for the next control or the portal's messages instead (``target``: the step), and
        raise the messages (``refusal``)."""
        self.land(expected.or_(message), target, frame=frame)
        self.refusal(message, refused)

    def refusal(self, message: Locator, refused: str) -> None:
        """When the page shows ``message``: PortalValidationError "<portal> refused <refused>:
        <words>", or NotFoundOnPortal when the words start with the portal's ``not_found_words``."""
        if self.steps.read_optional(message) is None:
            return
        messages = self.steps.read_all(message)
        missing = self.not_found_words
        if missing is not None and any(m.startswith(missing) for m in messages):
            raise NotFoundOnPortal(f"{self.display_name}: {' '.join(messages)}")
        raise PortalValidationError(f"{self.display_name} refused {refused}: {' '.join(messages)}")

    def click_submit(self, button: Locator, gate: Callable[[], None]) -> None:
        """The click that submits: once the button shows, the gate (the engine commits its
        "submitting" record and refuses a stale lease), and only if it returned, the click, which
        waits for no answer (a hung one must not hold the worker past its timeout)."""
        self.steps.expect(button, target="submit")
        gate()
        self.steps.submitting()  # from here on nothing is retried, whatever fails
        self.steps.click(button)

    def confirmation(
        self,
        confirmed: Locator,
        message: Locator,
        target: str,
        *,
        number: Locator | None = None,
        pattern: re.Pattern[str] | None = None,
        frame: str | None = None,
    ) -> str:
        """After the submit click: wait for the confirmation and read its ``number`` (by default the
        confirmation's own words; the part that matches ``pattern``, when given). A message instead,
        or no number, is a changed portal, which ``submit_through_gate`` turns into a submit to
        reconcile."""
        self.land(confirmed.or_(message), target, frame=frame)
        if self.steps.read_optional(message) is not None:
            raise PortalChanged("the portal answered the submit with a message instead of a confirmation")
        shown = self.steps.read(confirmed if number is None else number)
        found = pattern.search(shown) if pattern is not None else None
        if pattern is not None and found is None:
            raise PortalChanged("the confirmation shows no confirmation number")
        return found.group(0) if found is not None else shown

    def open_from_pages(
        self, listing: Locator, row: Locator, *, what: str, number: str, pager: Pager, none_found: Locator
    ) -> None:
        """Page a result list until ``row`` (the ``what`` numbered ``number``) shows in ``listing``,
        and open it. NotFoundOnPortal when the list is empty, ends, or goes on past its last page
        the bot reads (``pager.max_pages``)."""
        for page_no in range(1, pager.max_pages + 1):
            position = self.page.get_by_text(pager.position_of(page_no))
            self.land(position.or_(none_found), f"{what} list page {page_no}")
            if self.steps.read_optional(none_found) is not None:
                break
            self.steps.expect(listing, target=f"{what} list")
            if self.steps.read_optional(row) is not None:
                self.steps.click(row, repeatable=True)  # opening a record changes nothing
                return
            if page_no >= pager.pages(self.steps.read(position)):
                break
            self.steps.click(pager.next_button(self.page), repeatable=True)
        else:
            raise NotFoundOnPortal(
                f"{self.display_name} lists no {what} {number} on its first {pager.max_pages} pages"
            )
        raise NotFoundOnPortal(f"{self.display_name} has no {what} {number}")

    def search_history(
        self,
        field: Locator,
        search: Locator,
        table: Locator,
        layout: HistoryTable,
        reference: str,
        *,
        frame: str | None = None,
        navigates: bool = False,
        pager: Pager | None = None,
    ) -> SubmissionLookup:
        """Type our reference into the appeal history's search ``field``, ``search``, and look it
        up in the ``table`` that answers, or in the status message that says it found none. With a
        ``pager``, the answer's next pages are read until one lists it or they end; a history that
        goes on past ``pager.max_pages`` is AmbiguousSubmission."""
        self.steps.fill(field, reference, safe=True)
        self.steps.click(search, navigates=navigates, repeatable=True)  # a search changes nothing
        none_found = self.watch.root(frame).get_by_role("status").filter(has_text=layout.none_found)
        self.land(table.or_(none_found), layout.what, frame=frame)
        found = find_in_history(self.steps, table, layout, reference, none_found=none_found)
        if pager is None:
            return found
        next_page = pager.next_button(self.page)
        for page_no in range(2, pager.max_pages + 2):
            if found.found or self.steps.read_optional(next_page) is None:
                return found
            if page_no > pager.max_pages:
                break
            self.steps.click(next_page, navigates=navigates, repeatable=True)  # paging changes nothing
            self.land(self.page.get_by_text(pager.position_of(page_no)), f"{layout.what} page {page_no}")
            found = find_in_history(self.steps, table, layout, reference, none_found=none_found)
        raise AmbiguousSubmission(f"{self.display_name}'s history goes on past {pager.max_pages} pages")

    def fill_fields(self, root: Locator | Page, labels: Mapping[str, str], values: Mapping[str, str]) -> None:
        """Type each of ``values`` (``AppealRequest.form_fields``) into the field of ``root`` that
        ``labels`` names for it (field name -> the portal's label); a value the form has no label
        for is not typed. Patient and personal values (member id, dates of service, contact) are
        typed as values to scrub from every artifact, never written into the steps."""
        for name, label in labels.items():
            if name in values:
                field = root.get_by_label(label, exact=True)
                self.steps.fill(field, values[name], safe=name not in PERSONAL_FIELDS)

    def fill_appeal_form(
        self,
        root: Locator | Page,
        request: AppealRequest,
        labels: Mapping[str, str],
        levels: Mapping[AppealLevel, str],
        dates: Callable[[date], str] = format_us_date,
    ) -> None:
        """Fill the appeal form fields of ``root`` that ``labels`` names (``fill_fields``, dates
        written by ``dates``), choosing the request's level, where ``labels`` names a "level" field,
        as its option label in ``levels`` (the portal's own, like its reason labels)."""
        if "level" in labels:
            self.steps.select(root.get_by_label(labels["level"], exact=True), levels[request.level])
        typed = {name: label for name, label in labels.items() if name != "level"}
        self.fill_fields(root, typed, request.form_fields(dates))

    def found_nothing(self, message: Locator, what: str) -> None:
        """Raise NotFoundOnPortal when the page shows its "found nothing" ``message``; ``what``
        names what was sought (the runner scrubs any patient value from the message)."""
        if self.steps.read_optional(message) is not None:
            raise NotFoundOnPortal(f"{self.display_name} has no {what}")
