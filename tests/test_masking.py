"""Screenshots mask patient data, and fail closed: the pixels, decoded, in real Chromium.

An RxPress claim page (its work area is an iframe) is screenshotted the two ways a run keeps one:
as submission evidence (``capture_evidence``) and as the last page of a kept bundle (``final.png``).
Each PNG is decoded (zlib, no imaging library) and every pixel inside every patient element's
bounding box must be the mask colour. Under the ``renamed`` redesign the page shows field labels the
portal does not know, so the whole work area must be masked instead.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import FloatRect, Locator, Page

from bot.evidence import capture_evidence
from bot.recording.recorder import RecordMode, RunInfo, RunRecorder
from bot.redact import Redactor
from bot.steps import StepRecorder
from portals.rxpress import RxPressPortal
from sandbox import SandboxAccount
from sandbox.data import Claim
from sandbox.rxpress.wording import words
from tests.fixtures.sandbox import SandboxPortal, canary_claim

MASK = (0xFF, 0x00, 0xFF)  # Playwright's default mask colour
TOLERANCE = 8  # per channel; PNG is exact, the margin only forgives a lossy encoder
PATIENT_ROWS = ("Drug", "Patient name", "Cardholder ID", "Date of birth")


# -- PNG, decoded with zlib --------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        at = x * self.channels
        r, g, b = self.rows[y][at : at + 3]
        return r, g, b

    def unmasked(self, box: FloatRect, *, inset: int = 1) -> list[tuple[int, int]]:
        """Pixels inside ``box`` (less ``inset`` at each edge, where sub-pixel edges blend) that are
        not the mask colour."""
        left, top = int(box["x"]) + inset, int(box["y"]) + inset
        right = min(int(box["x"] + box["width"]) - inset, self.width)
        bottom = min(int(box["y"] + box["height"]) - inset, self.height)
        assert right > left and bottom > top, f"an empty box: {box}"
        return [
            (x, y)
            for y in range(top, bottom)
            for x in range(left, right)
            if any(abs(c - m) > TOLERANCE for c, m in zip(self.pixel(x, y), MASK, strict=True))
        ]


def decode_png(data: bytes) -> Image:
    """An 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes) as rows of pixel bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, header = 8, bytearray(), b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(bytes(idat)), width * channels
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        rows.append(bytes(line))
        previous = rows[-1]
    return Image(width, height, channels, rows)


def _unfilter(kind: int, line: bytearray, up: bytes, bpp: int) -> None:
    if kind == 0:
        return
    if kind == 2:  # Up
        line[:] = bytes((a + b) & 0xFF for a, b in zip(line, up, strict=True))
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 1:  # Sub
            add = left
        elif kind == 3:  # Average
            add = (left + up[i]) // 2
        else:  # Paeth
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            add = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
        line[i] = (line[i] + add) & 0xFF


# -- the page ------------------------------------------------------------------------------------


@pytest.fixture
def portal(page: Page, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount) -> RxPressPortal:
    """RxPress with a session (signed in over plain HTTP: the login has tests of its own)."""
    url = rxpress_sandbox.url
    with httpx.Client(base_url=url) as client:
        client.post(
            "/login", data={"username": rxpress_account.username, "password": rxpress_account.password}
        )
        sent = rxpress_sandbox.state.inbox.latest(rxpress_account.username)
        assert sent is not None
        client.post("/login/code", data={"code": sent.code})
        session = client.cookies["RXSESSIONID"]
    page.context.add_cookies([{"name": "RXSESSIONID", "value": session, "url": url}])
    page.set_default_timeout(5_000)
    return RxPressPortal(page, url, StepRecorder(page))


def open_claim(portal: RxPressPortal, claim: Claim, redesign: str) -> list[Locator]:
    """Look the claim up as a person would, in the labels of ``redesign``; the patient elements.

    Driven by hand, not by the page object: under ``renamed`` the page object cannot search.
    """
    w, page = words(redesign), portal.page
    page.goto(portal.url("/main"))
    page.get_by_role("link", name=w["nav_claims"], exact=True).click()
    work = page.get_by_title(w["work_area"], exact=True).content_frame
    work.get_by_label(w["rx_number"], exact=True).fill(claim.claim_number)
    work.get_by_label(w["fill_date"], exact=True).fill(f"{claim.service_date:%m/%d/%Y}")
    work.get_by_role("button", name=w["search"], exact=True).click()
    work.get_by_role("table", name=w["claim_detail"]).wait_for()
    # the search inputs still hold the Rx number and fill date; the table shows them and the rest
    labels = (w["rx_number"], w["fill_date"], *PATIENT_ROWS)
    return [work.get_by_label(label, exact=True) for label in labels]


def boxes_of(locators: list[Locator]) -> list[FloatRect]:
    found = [box for loc in locators for one in loc.all() if (box := one.bounding_box()) is not None]
    assert len(found) >= 8, f"expected the 2 search inputs and 6 detail cells, found {len(found)}"
    return found


def final_png(portal: RxPressPortal, folder: Path) -> Path:
    """The last page of a run that keeps its bundle, as the recorder writes it."""
    info = RunInfo(
        run_id="masking-test", item_id=None, kind="claim_status", payer="rxpress", account="a", action="x"
    )
    recorder = RunRecorder(info, artifacts_dir=folder, mode=RecordMode.ALWAYS, redactor=Redactor())
    recorder.attach(portal.page.context, portal)
    bundle = recorder.finish(portal.page.context, portal.page, None, [])
    assert bundle.files.get("screenshot") == "final.png", bundle.files
    return Path(bundle.files["path"]) / "final.png"


@pytest.mark.parametrize("redesign", ["cosmetic", "renamed"])
def test_every_pixel_of_every_patient_field_is_masked_in_evidence_and_bundle_screenshots(
    portal: RxPressPortal, rxpress_sandbox: SandboxPortal, tmp_path: Path, redesign: str
) -> None:
    rxpress_sandbox.state.update_knobs(redesign=redesign)
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    boxes = boxes_of(open_claim(portal, claim, redesign))
    work_area = portal.page.get_by_title("Work area", exact=True).bounding_box()
    label = portal.work.get_by_role("rowheader", name="Patient name").bounding_box()
    assert work_area is not None and label is not None

    evidence = capture_evidence(
        portal.page, folder=tmp_path / "evidence", stem="claim", redactor=Redactor(), portal=portal
    )
    for name, png in (
        ("evidence", Path(evidence.png_path)),
        ("final.png", final_png(portal, tmp_path / "runs")),
    ):
        image = decode_png(png.read_bytes())
        for box in boxes:
            missed = image.unmasked(box)
            assert not missed, (
                f"{name} ({redesign}): {len(missed)} unmasked pixels in {box}, first {missed[0]}"
            )
        if redesign == "renamed":  # labels the portal does not know: the whole work area
            missed = image.unmasked(work_area)
            assert not missed, f"{name}: {len(missed)} pixels of the work area unmasked, first {missed[0]}"
        else:  # a page it knows: only the patient fields, the labels stay readable
            assert image.unmasked(label), f"{name}: the label 'Patient name' was masked too"
