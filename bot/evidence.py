"""Evidence of a submission, and how every screenshot a run keeps masks patient data.

Evidence is the confirmation page as PNG and HTML, with their SHA-256. The screenshot masks patient
data and the HTML is scrubbed of it, so evidence proves what the payer confirmed (appeal number,
reference, date) without becoming a second copy of the chart.

``screenshot_mask`` is the one place that decides what a screenshot masks, for evidence and for a
run's bundle alike, and it fails closed: a page whose patient fields the portal cannot find, or that
shows fields the portal does not know, is masked whole rather than not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Protocol

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

from bot.queue.types import Evidence
from bot.redact import Redactor


class PatientFields(Protocol):
    """Where a portal's pages show patient data (``bot.portal.Portal`` says so for its payer)."""

    @property
    def known_fields(self) -> frozenset[str]: ...

    def sensitive_locators(self) -> list[Locator]: ...

    def content_area(self) -> Locator: ...

    def field_labels(self) -> Locator: ...


def screenshot_mask(page: Page, fields: PatientFields) -> list[Locator]:
    """What a screenshot of ``page`` masks: the portal's patient fields on a page it recognises.

    Otherwise the whole content area (or the body, when even that is gone): when none of the patient
    fields is found, which is what a renamed page or one the portal never described looks like, or
    when the page shows a field whose label the portal does not know (a partial rename: some
    patient labels found, others not). The operator then reads the scrubbed DOM and trace instead.
    """
    patient = fields.sensitive_locators()
    if any(_matches(loc) for loc in patient) and not _unknown_fields(fields):
        return patient
    area = fields.content_area()
    # CSS for the body: no role names it, and it is the last thing a page can show content in
    return [*patient, area if _matches(area) else page.locator("body")]


def _matches(locator: Locator) -> bool:
    try:
        return locator.count() > 0
    except PlaywrightError:  # a frame detached while we looked: not found, so masked whole
        return False


def _unknown_fields(fields: PatientFields) -> bool:
    try:
        shown = {label.strip().rstrip(":").strip() for label in fields.field_labels().all_inner_texts()}
    except PlaywrightError:
        return True  # cannot tell: fail closed
    return bool(shown - fields.known_fields - {""})


def learn_shown_values(redactor: Redactor, fields: PatientFields) -> None:
    """Register the texts the page shows in its patient fields (none when it is mid-navigation)."""
    with contextlib.suppress(PlaywrightError):
        for locator in fields.sensitive_locators():
            redactor.add(*locator.all_inner_texts())


def private_dir(path: Path) -> Path:
    """A folder only this user can enter: bundles and evidence may show portal pages."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def page_html(page: Page) -> str:
    """The page's HTML and, after it, each frame's: a framed portal confirms inside a frame."""
    parts = [page.content()]
    for frame in page.main_frame.child_frames:
        try:
            parts.append(f"\n<!-- frame {frame.name or 'unnamed'} -->\n{frame.content()}")
        except PlaywrightError:  # a frame detached while we read
            continue
    return "".join(parts)


def capture_evidence(
    page: Page,
    *,
    folder: Path,
    stem: str,
    redactor: Redactor,
    portal: PatientFields,
) -> Evidence:
    """Write ``<stem>.png`` and ``<stem>.html`` of the page as it is now, 0600 in a 0700 folder.

    The PNG is masked by ``screenshot_mask``; the HTML is scrubbed of every value ``redactor``
    holds (the run's: what it typed, read and was asked about) and of the page's patient fields.
    """
    private_dir(folder)
    png = folder / f"{stem}.png"
    html = folder / f"{stem}.html"
    page.screenshot(path=str(png), full_page=True, mask=screenshot_mask(page, portal))
    learn_shown_values(redactor, portal)
    html.write_text(redactor.scrub(page_html(page)), encoding="utf-8")
    for path in (png, html):
        path.chmod(0o600)
    return Evidence(str(png), sha256_file(png), str(html), sha256_file(html))
