"""Evidence of a submission: the confirmation page as PNG and HTML, with their SHA-256.

The screenshot masks patient data and the HTML is scrubbed of it, so evidence proves what the
payer confirmed (appeal number, claim, date) without becoming a second copy of the chart.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

from bot.queue.types import Evidence
from bot.redact import Redactor


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
    mask: list[Locator],
) -> Evidence:
    """Write ``<stem>.png`` and ``<stem>.html`` of the page as it is now, 0600 in a 0700 folder."""
    private_dir(folder)
    png = folder / f"{stem}.png"
    html = folder / f"{stem}.html"
    page.screenshot(path=str(png), full_page=True, mask=mask)
    for locator in mask:
        redactor.add(*locator.all_inner_texts())
    html.write_text(redactor.scrub(page_html(page)), encoding="utf-8")
    for path in (png, html):
        path.chmod(0o600)
    return Evidence(str(png), sha256_file(png), str(html), sha256_file(html))
