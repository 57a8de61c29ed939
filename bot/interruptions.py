"""Pages a portal shows instead of the one asked for: declared by the portal, spotted by the engine.

A portal lists its interruptions as data (``Portal.interruptions``): each is a ``Sign`` saying what
on a page means maintenance, a CAPTCHA, a password-change demand, an ended session, a gateway or
application error, or a lost connection: a control by role and name, a text, or the window's
address, optionally inside a container (an alert that holds a heading). A portal that shows its
pages in frames names them too (``Portal.interruption_frames``). An ``Interstitial`` is a page that
stands in the way and is passed with one click (terms of use). A ``RetryControl`` is the control
an error state offers to ask again for what failed ("Try again"), which the engine's step retries
click before they load the page again.

``InterruptionWatch`` is the one implementation that looks for them: after every navigation,
while a step waits for a page (``Portal.land``) and when a step fails. It raises the error each
kind means, worded the same for every portal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import FrameLocator, Locator, Page

from bot.errors import (
    CaptchaShown,
    PasswordExpired,
    PortalError,
    PortalMaintenance,
    PortalServerError,
    PortalTimeout,
    SessionExpired,
)

Role = Literal["heading", "alert", "status", "dialog", "button", "link", "main", "region"]
Words = str | re.Pattern[str]
Root = Page | FrameLocator


class Interruption(StrEnum):
    MAINTENANCE = "maintenance"
    CAPTCHA = "captcha"
    PASSWORD_EXPIRED = "password_expired"  # noqa: S105 - a kind of page, not a password
    SESSION_EXPIRED = "session_expired"
    GATEWAY_ERROR = "gateway_error"
    APP_ERROR = "app_error"
    CONNECTION_LOST = "connection_lost"


# What each interruption means: the error, and its message ({shown}: the words the page shows).
MEANINGS: dict[Interruption, tuple[type[PortalError], str]] = {
    Interruption.MAINTENANCE: (PortalMaintenance, "{portal} shows its maintenance page{where}"),
    Interruption.CAPTCHA: (CaptchaShown, "{portal} shows a CAPTCHA{where}"),
    Interruption.PASSWORD_EXPIRED: (PasswordExpired, "{portal} demands a password change{where}"),
    Interruption.SESSION_EXPIRED: (SessionExpired, "{portal} ended the session{where}"),
    Interruption.GATEWAY_ERROR: (
        PortalServerError,
        "{portal} answered with a gateway error page{where}{shown}",
    ),
    Interruption.APP_ERROR: (PortalServerError, "{portal} shows an error{where}{shown}"),
    Interruption.CONNECTION_LOST: (PortalTimeout, "{portal} lost the connection to its server{where}"),
}


@dataclass(frozen=True)
class Sign:
    """What on a page means ``means``: a control by ``role`` and ``name``, a ``text``, or a
    ``url`` (searched in the window's address); ``inside``: the role of the container that holds it,
    which is then what the page is said to show."""

    means: Interruption
    role: Role | None = None
    name: Words | None = None
    text: Words | None = None
    inside: Role | None = None
    url: re.Pattern[str] | None = None

    def locate(self, root: Root) -> Locator | None:
        """Where the sign shows on ``root``; None for a sign read from the address."""
        if self.role is not None:
            found = root.get_by_role(self.role, name=self.name)
        elif self.text is not None:
            found = root.get_by_text(self.text)
        else:
            return None
        return root.get_by_role(self.inside).filter(has=found) if self.inside is not None else found


def heading(name: Words, means: Interruption) -> Sign:
    return Sign(means, role="heading", name=name)


def shown_text(text: Words, means: Interruption) -> Sign:
    return Sign(means, text=text)


GATEWAY_ERROR_PAGE = heading(re.compile(r"^5\d\d\b"), Interruption.GATEWAY_ERROR)
"""A load balancer's bare "502 Bad Gateway" page, whatever portal stands behind it."""


@dataclass(frozen=True)
class Interstitial:
    """A page that stands in the way of any other and is passed with one click (``what`` names it):
    the engine clicks its control at most ``times`` in a row while it waits for one page."""

    what: str
    role: Role
    name: str
    times: int = 3

    def locate(self, root: Root) -> Locator:
        return root.get_by_role(self.role, name=self.name, exact=True)


@dataclass(frozen=True)
class RetryControl:
    """What a portal's error state offers to ask again for what failed (a "Try again" button): it
    repeats only the request that failed, so the engine clicks it, where it shows, rather than load
    the whole page again."""

    role: Role
    name: str

    def locate(self, root: Root) -> Locator:
        return root.get_by_role(self.role, name=self.name, exact=True)


@dataclass(frozen=True)
class _Place:
    """The window or one frame, with the declared signs located in it."""

    where: str  # "" for the window, " in its work area" for a frame titled "Work area"
    root: Root
    signs: tuple[tuple[Sign, Locator | None], ...]
    any_shown: Locator | None  # every located sign at once, for one cheap look


class InterruptionWatch:
    """A portal's declared interruptions, located in its window and in the frames it names."""

    def __init__(self, page: Page, portal: str, signs: Sequence[Sign], frames: Sequence[str] = ()) -> None:
        self.page = page
        self.portal = portal
        self.places: dict[str | None, _Place] = {None: self._place("", page, signs)}
        for title in frames:
            frame = page.get_by_title(title, exact=True).content_frame
            self.places[title] = self._place(f" in its {title.lower()}", frame, signs)

    @staticmethod
    def _place(where: str, root: Root, signs: Sequence[Sign]) -> _Place:
        located = tuple((sign, sign.locate(root)) for sign in signs)
        any_shown: Locator | None = None
        for _, locator in located:
            if locator is not None:
                any_shown = locator if any_shown is None else any_shown.or_(locator)
        return _Place(where, root, located, any_shown)

    def root(self, frame: str | None = None) -> Root:
        """The window, or the frame with this title (one the portal declared)."""
        return self.places[frame].root

    def any_shown(self, frame: str | None = None) -> Locator | None:
        """Every declared interruption in the window or the frame, as one locator to wait for."""
        return self.places[frame].any_shown

    def check(self) -> None:
        """Raise the error of the first declared interruption the window or a frame shows."""
        for place in self.places.values():
            try:
                self._check(place)
            except PlaywrightError:
                continue  # the page is mid-navigation; the next step will look again

    def _check(self, place: _Place) -> None:
        address = self.page.url if place.root is self.page else None
        shows_any: bool | None = None
        for sign, locator in place.signs:
            if locator is None:
                if address is not None and sign.url is not None and sign.url.search(address):
                    raise self._error(sign.means, place.where, "")
                continue
            if shows_any is None:  # one look for the usual case; the signs below name what shows
                shows_any = place.any_shown is not None and place.any_shown.count() > 0
            if shows_any and locator.count() > 0 and locator.first.is_visible():
                raise self._error(sign.means, place.where, " ".join(locator.first.inner_text().split()))

    def _error(self, means: Interruption, where: str, words: str) -> PortalError:
        error, message = MEANINGS[means]
        if means == Interruption.GATEWAY_ERROR and words:
            words = f" ({words})"
        elif words:
            words = f": {words}"
        return error(message.format(portal=self.portal, where=where, shown=words))
