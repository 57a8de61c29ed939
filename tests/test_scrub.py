"""Scrubbing a real HAR and a real trace, recorded in Chromium against the sandbox's Meridian.

One recording serves every test: an appeal walked through Meridian's wizard (a urlencoded form
with a multi-line textarea, a multipart upload, the submit), a claim looked up with a patient key
in its query, a JSON POST with camelCase patient keys, a multipart POST built by script, and a
JSON answer served as ``application/octet-stream`` (which the HAR and trace keep as base64).
Every check looks for the values in spellings written here, independently of ``bot.redact``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, Route

from bot.recording.offline import HarRouter
from bot.recording.scrub import scrub_har, scrub_trace
from bot.redact import MASK, Redactor
from sandbox import SandboxServer
from tests.fixtures.sandbox import canary_account

NAME = "Zephyrine Ng"
DOB = date(1961, 3, 3)
EXPLANATION = (
    "Zephyrine Ng has had weekly migraines since 2019.\n"
    "Two triptans failed; the enclosed letter from Dr Vale explains.\n"
    "Please reconsider the denial."
)
UNREGISTERED = {  # values that only their key marks as patient data
    "memberId (query)": "QMBR-CANARY-8812",
    "rxNumber": "RX-CANARY-7654321",
    "drugName": "Canaryzepam 10 mg",
}
PDF = b"%PDF-1.4\n% letter for Zephyrine Ng, born 03/03/1961\n%%EOF\n"
BINARY_PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n% Canaryzepam 10 mg for RX-CANARY-7654321\n%%EOF\n"


@dataclass(frozen=True)
class Recording:
    har: Path
    trace: Path
    member_id: str
    claim_number: str
    reference: str

    def redactor(self) -> Redactor:
        """What a run registers: the patient's name, member id and birth date, the explanation."""
        redactor = Redactor()
        redactor.add(NAME, self.member_id, DOB, EXPLANATION)
        return redactor

    def forbidden(self) -> dict[str, set[str]]:
        """Every spelling of every registered value, lower-cased, by value name."""
        return {
            "name": spelled(NAME),
            "member id": spelled(self.member_id),
            "birth date": spelled(DOB.isoformat()) | spelled(f"{DOB:%m/%d/%Y}"),
            "explanation": spelled(EXPLANATION),
            **{key: spelled(value) for key, value in UNREGISTERED.items()},
        }


def spelled(value: str) -> set[str]:
    """The value as browsers and servers write it; a multi-line value also line by line."""
    lines = value.splitlines()
    forms: set[str] = set()
    for text in {"\n".join(lines), "\r\n".join(lines)}:
        forms |= {text, html.escape(text), json.dumps(text)[1:-1], quote(text, safe=""), quote_plus(text)}
    if len(lines) > 1:
        for line in lines:
            forms |= spelled(line)
    return {f.lower() for f in forms}


def relabel_as_binary(route: Route) -> None:
    """A portal API that answers JSON as ``application/octet-stream``: the real answer, relabelled."""
    answer = route.fetch()
    route.fulfill(response=answer, headers={**answer.headers, "content-type": "application/octet-stream"})


def sign_in(url: str, username: str, password: str, totp_secret: str) -> str:
    """Meridian's session cookie, signed in over plain HTTP (the login is not what is recorded)."""
    with httpx.Client(base_url=url) as client:
        client.post("/login", data={"username": username, "password": password})
        answer = client.post("/login/verify", data={"code": pyotp.TOTP(totp_secret).now()})
        assert answer.headers["location"] == "/dashboard"
        return client.cookies["mh_session"]


@pytest.fixture(scope="module")
def recording(
    sandbox: SandboxServer, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Recording:
    state, url = sandbox.portal("meridian"), sandbox.url("meridian")
    state.reset()
    account = canary_account(state)
    patient = state.add_patient(first_name="Zephyrine", last_name="Ng", date_of_birth=DOB)
    claim = state.add_claim("Denied", patient=patient)
    reference = f"scrub-{claim.claim_number}"
    folder = tmp_path_factory.mktemp("recorded")
    har, trace = folder / "network.har", folder / "trace.zip"

    context = browser.new_context(record_har_path=str(har), record_har_content="embed")
    cookie = sign_in(url, account.username, account.password, account.totp_secret or "")
    context.add_cookies([{"name": "mh_session", "value": cookie, "url": url}])
    context.tracing.start(snapshots=True, screenshots=False, sources=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    # a test drives the sandbox's forms by their field names: the wording is not what it is about
    page.goto(f"{url}/appeals/new?restart=1")
    page.locator('[name="claim_number"]').fill(claim.claim_number)
    page.locator('[name="level"]').select_option("L1")
    page.locator('[name="denial_date"]').fill(f"{datetime.now(UTC).date() - timedelta(days=10):%m/%d/%Y}")
    page.locator('[name="member_id"]').fill(claim.patient.member_id)
    page.locator('[name="billing_npi"]').fill("1234567893")
    page.locator('form[action="/appeals/new"] button[type=submit]').click()
    page.wait_for_url("**/appeals/new/reason")
    page.locator('[name="reason"]').select_option("MN")
    page.locator('[name="explanation"]').fill(EXPLANATION)
    page.locator('[name="reference"]').fill(reference)
    page.locator('form[action="/appeals/new/reason"] button[type=submit]').click()
    page.wait_for_url("**/appeals/new/documents")
    page.locator('[name="letter"]').set_input_files(
        {"name": "letter.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    page.locator('form[action="/appeals/new/documents"] button[type=submit]').click()
    page.wait_for_url("**/appeals/new/review")
    page.locator('[name="confirm"]').check()
    page.locator('form[action="/appeals/new/submit"] button[type=submit]').click()
    page.wait_for_url("**/appeals/new/submit")
    page.goto(f"{url}/claims?claim_number={claim.claim_number}&memberId={UNREGISTERED['memberId (query)']}")
    page.evaluate(
        """async (body) => {
            await fetch('/api/notes', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                       body: JSON.stringify(body)});
        }""",
        {
            "claimNumber": claim.claim_number,
            "patient": {"firstName": "Zephyrine", "lastName": "Ng"},
            "memberId": patient.member_id,
            "dateOfBirth": DOB.isoformat(),
            "rxNumber": UNREGISTERED["rxNumber"],
            "drugName": UNREGISTERED["drugName"],
        },
    )
    # Chromium records no body for a multipart POST that carries a file: these parts are text
    page.evaluate(
        """async ([explanation, member]) => {
            const form = new FormData();
            form.append('explanation', explanation);
            form.append('member', member);
            await fetch('/appeals/new/documents', {method: 'POST', body: form});
        }""",
        [EXPLANATION, patient.member_id],
    )
    page.route("**/__sandbox/ledger*", relabel_as_binary)
    page.evaluate("(ref) => fetch('/__sandbox/ledger?reference=' + ref).then((r) => r.text())", reference)
    context.tracing.stop(path=str(trace))
    context.close()
    state.reset()
    return Recording(har, trace, patient.member_id, claim.claim_number, reference)


@pytest.fixture
def har(recording: Recording, tmp_path: Path) -> Path:
    copy = tmp_path / "network.har"
    shutil.copy(recording.har, copy)
    return copy


def entries(har: Path) -> list[dict[str, Any]]:
    return json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]


def entry(har: Path, method: str, path: str) -> dict[str, Any]:
    found = [
        e
        for e in entries(har)
        if e["request"]["method"] == method and urlsplit(e["request"]["url"]).path == path
    ]
    assert found, f"no {method} {path} in {har}"
    return found[0]


def base64_bodies(doc: Any) -> Iterator[bytes]:
    if isinstance(doc, dict):
        if doc.get("encoding") == "base64" and isinstance(doc.get("text"), str):
            with contextlib.suppress(binascii.Error, ValueError):
                yield base64.b64decode(doc["text"])
        for value in doc.values():
            yield from base64_bodies(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from base64_bodies(value)


def hits(recording: Recording, where: str, data: bytes | str) -> list[str]:
    low = (data.decode("utf-8", "replace") if isinstance(data, bytes) else data).lower()
    found = []
    for name, forms in recording.forbidden().items():
        found += [f"{name} ({form!r}) in {where}" for form in sorted(forms) if form in low]
    if re.search(r"(?<![a-z0-9])ng(?![a-z0-9])", low.replace(MASK, " ")):
        found.append(f"surname 'Ng' as a word in {where}")
    return found


def har_hits(recording: Recording, har: Path) -> list[str]:
    text = har.read_text(encoding="utf-8")
    found = hits(recording, har.name, text)
    for number, body in enumerate(base64_bodies(json.loads(text))):
        found += hits(recording, f"{har.name} base64 body {number}", body)
    return found


def test_har_form_bodies_keep_their_field_names_and_lose_every_value(recording: Recording, har: Path) -> None:
    scrub_har(har, recording.redactor())

    reason = entry(har, "POST", "/appeals/new/reason")["request"]["postData"]
    assert reason["mimeType"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(reason["text"])) == {"reason": MASK, "explanation": MASK, "reference": MASK}
    assert {p["name"]: p["value"] for p in reason["params"]} == dict.fromkeys(
        ("reason", "explanation", "reference"), MASK
    )
    scripted = next(
        e["request"]["postData"]
        for e in entries(har)
        if e["request"]["url"].endswith("/appeals/new/documents") and "postData" in e["request"]
    )
    assert scripted["mimeType"].startswith("multipart/form-data")
    parts = scripted["text"].split(scripted["mimeType"].split("boundary=")[1])
    assert [p.split("\r\n\r\n", 1)[1] for p in parts[1:-1]] == [f"{MASK}\r\n--", f"{MASK}\r\n--"]
    assert 'name="explanation"' in parts[1] and 'name="member"' in parts[2]
    assert har_hits(recording, har) == []


def test_har_json_bodies_lose_the_values_of_camel_case_patient_keys(recording: Recording, har: Path) -> None:
    scrub_har(har, recording.redactor())

    body = json.loads(entry(har, "POST", "/api/notes")["request"]["postData"]["text"])
    assert body == {
        "claimNumber": recording.claim_number,
        "patient": MASK,
        "memberId": MASK,
        "dateOfBirth": MASK,
        "rxNumber": MASK,
        "drugName": MASK,
    }
    assert har_hits(recording, har) == []


def test_har_base64_bodies_are_decoded_scrubbed_and_encoded_again(recording: Recording, har: Path) -> None:
    content = entry(har, "GET", "/__sandbox/ledger")["response"]["content"]
    assert content["encoding"] == "base64"
    assert hits(recording, "the recorded ledger answer", base64.b64decode(content["text"]))

    scrub_har(har, recording.redactor())

    content = entry(har, "GET", "/__sandbox/ledger")["response"]["content"]
    [ledger] = json.loads(base64.b64decode(content["text"]))
    assert ledger["explanation"] == MASK and ledger["reference"] == recording.reference
    assert har_hits(recording, har) == []


def test_har_queries_lose_patient_values_and_the_har_still_replays_offline(
    recording: Recording, har: Path, browser: Browser, tmp_path: Path
) -> None:
    before = [(e["request"]["method"], urlsplit(e["request"]["url"]).path) for e in entries(har)]
    scrub_har(har, recording.redactor())

    lookup = entry(har, "GET", "/claims")["request"]
    assert {q["name"]: q["value"] for q in lookup["queryString"]} == {
        "claim_number": recording.claim_number,
        "memberId": MASK,
    }
    assert dict(parse_qsl(urlsplit(lookup["url"]).query)) == {
        "claim_number": recording.claim_number,
        "memberId": MASK,
    }
    assert [(e["request"]["method"], urlsplit(e["request"]["url"]).path) for e in entries(har)] == before
    assert har_hits(recording, har) == []

    context = browser.new_context()
    try:
        context.route("**/*", HarRouter.load(har))
        page = context.new_page()
        reason = next(e["request"]["url"] for e in entries(har) if e["request"]["url"].endswith("/reason"))
        answer = page.goto(reason)
        assert answer is not None and answer.status == 200
        assert page.locator('[name="explanation"]').count() == 1
    finally:
        context.close()


def test_trace_members_and_resources_keep_no_value_in_any_encoding(
    recording: Recording, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.zip"
    shutil.copy(recording.trace, trace)
    with zipfile.ZipFile(trace) as archive:
        resources_before = [
            n
            for n in archive.namelist()
            if n.startswith("resources/") and hits(recording, n, archive.read(n))
        ]
    assert resources_before, "no resource held a value: the check below would prove nothing"

    scrub_trace(trace, recording.redactor())

    found: list[str] = []
    with zipfile.ZipFile(trace) as archive:
        for name in archive.namelist():
            data = archive.read(name)
            found += hits(recording, name, data)
            for line in data.splitlines():
                with contextlib.suppress(ValueError):
                    for number, body in enumerate(base64_bodies(json.loads(line))):
                        found += hits(recording, f"{name} base64 body {number}", body)
    assert found == []


def test_trace_multipart_bodies_lose_file_names_and_contents_and_keep_part_names(
    recording: Recording, tmp_path: Path
) -> None:
    """Chromium keeps no multipart body with a file in it; a recorder that does (another browser,
    a later Chromium) writes the file's bytes into the body: the scripted body, given one such part."""
    trace, name = tmp_path / "trace.zip", ""
    with zipfile.ZipFile(recording.trace) as src, zipfile.ZipFile(trace, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("resources/") and b'name="explanation"' in data:
                name, delimiter = info.filename, data.split(b"\r\n", 1)[0]
                part = (
                    b'\r\nContent-Disposition: form-data; name="letter"; filename="letter.pdf"\r\n'
                    b"Content-Type: application/pdf\r\n\r\n" + BINARY_PDF + b"\r\n"
                )
                data = data.replace(delimiter + b"--", delimiter + part + delimiter + b"--")
            dst.writestr(info, data)
    assert name, "the recording kept no multipart body"

    scrub_trace(trace, recording.redactor())

    with zipfile.ZipFile(trace) as archive:
        body = archive.read(name)
    # the part's name stays; its file name may carry a patient's name, so it goes with the content
    assert b'name="letter"; filename="[redacted]"' in body and b'name="explanation"' in body
    assert b"letter.pdf" not in body
    assert b"%PDF" not in body and b"RX-CANARY" not in body and b"Canaryzepam" not in body
    assert body.count(MASK.encode()) == 4  # three values and the file name
