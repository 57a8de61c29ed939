"""RxPress PBM's sandbox over real HTTP: the e-mailed code, remembered devices, the frames, NCPDP
rejects, drug PAs, redeterminations with their lagging history, the knobs and the ledger."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from bot.status import HCR01, ClaimRule, Hcr01
from sandbox import SandboxAccount
from sandbox.data import Claim
from sandbox.rxpress.redetermination import HISTORY_LAG
from sandbox.rxpress.wording import CLAIM_KINDS, COMMON_REJECTS, PA_KINDS
from tests.fixtures.sandbox import SandboxPortal, canary_claim

PDF = b"%PDF-1.4\n% sandbox test letter\n"
KEY_REJECTS = ("70", "75", "76", "79", "88")


@pytest.fixture
def client(rxpress_sandbox: SandboxPortal) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rxpress_sandbox.url, timeout=10) as c:
        yield c


def text_of(response: httpx.Response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))


def inbox(portal: SandboxPortal, username: str) -> dict[str, str | None]:
    return dict(httpx.get(f"{portal.url}/__sandbox/inbox/{username}").json())


def password_step(client: httpx.Client, account: SandboxAccount) -> httpx.Response:
    return client.post("/login", data={"username": account.username, "password": account.password})


def sign_in(
    client: httpx.Client, portal: SandboxPortal, account: SandboxAccount, *, remember: bool = False
) -> httpx.Response:
    assert password_step(client, account).headers["location"] == "/login/code"
    form = {"code": inbox(portal, account.username)["code"]}
    if remember:
        form["remember"] = "yes"
    return client.post("/login/code", data=form)


def us(day: date) -> str:
    return day.strftime("%m/%d/%Y")


def look_up(client: httpx.Client, claim: Claim, fill: date | None = None) -> str:
    form = {"rx_number": claim.claim_number, "fill_date": us(fill or claim.service_date)}
    return text_of(client.post("/app/claims", data=form))


def request_fields(**changes: str) -> dict[str, str]:
    """The review level, rejection notice date, cardholder and contact of a request: valid (a first
    level, rejected ten days ago) unless ``changes`` says otherwise."""
    notice = datetime.now(UTC).date() - timedelta(days=10)
    return {
        "level": "L1",
        "denial_date": us(notice),
        "member_id": "CH0042",
        "contact_name": "Pat Chen",
        "contact_phone": "(555) 010-0199",
        "contact_email": "pat@pharmacy.example",
        **changes,
    }


def request_redetermination(
    client: httpx.Client, claim: Claim, reference: str, letter: bytes = PDF, **changes: str
) -> httpx.Response:
    form = {
        "rx": claim.claim_number,
        "fill": us(claim.service_date),
        "reason": "01",
        "explanation": "Two formulary alternatives failed.",
        "reference": reference,
        **request_fields(**changes),
    }
    files = {
        "letter": ("letter.pdf", letter, "application/pdf"),
        "attachments": ("notes.pdf", PDF, "application/pdf"),
    }
    return client.post("/app/redetermination", data=form, files=files)


def submit(client: httpx.Client, claim: Claim, reference: str) -> httpx.Response:
    assert (
        request_redetermination(client, claim, reference).headers["location"] == "/app/redetermination/review"
    )
    return client.post("/app/redetermination/submit")


def history(client: httpx.Client, reference: str) -> str:
    return text_of(client.get("/app/redeterminations", params={"reference": reference}))


def touch(client: httpx.Client, n: int) -> None:
    """n more requests to the portal, the clock its history lag runs on."""
    for _ in range(n):
        assert client.get("/login").status_code == 200


# -- the e-mailed security code ---------------------------------------------------------------------


def test_password_then_the_emailed_code_opens_the_frame_set(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    assert inbox(rxpress_sandbox, rxpress_account.username) == {
        "code": None,
        "sent_at": None,
        "expires_at": None,
    }
    done = sign_in(client, rxpress_sandbox, rxpress_account)
    assert done.headers["location"] == "/main"
    main = client.get("/main")
    assert re.search(r'<iframe name="workarea" [^>]*title="Work area" src="/app/welcome"', main.text)
    assert 'href="/app/claims" target="workarea"' in main.text
    assert "Welcome, Canary User" in text_of(client.get("/app/welcome"))
    stats = rxpress_sandbox.state.stats()
    assert stats["login_posts"][rxpress_account.username] == 1
    assert stats["second_factor_posts"][rxpress_account.username] == 1


def test_a_code_works_once_and_the_inbox_keeps_showing_it(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    sign_in(client, rxpress_sandbox, rxpress_account)
    used = inbox(rxpress_sandbox, rxpress_account.username)["code"]
    client.get("/logout")
    assert inbox(rxpress_sandbox, rxpress_account.username)["code"] == used  # a mailbox keeps mail
    password_step(client, rxpress_account)
    fresh = inbox(rxpress_sandbox, rxpress_account.username)["code"]
    assert fresh != used  # each log-in sends a new code, so the poll can tell old from new
    refused = client.post("/login/code", data={"code": used})
    assert "The security code you entered is incorrect." in text_of(refused)
    assert client.post("/login/code", data={"code": fresh}).headers["location"] == "/main"


def test_the_same_code_twice_is_refused_as_used(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    state = rxpress_sandbox.state
    password_step(client, rxpress_account)
    sent = state.inbox.latest(rxpress_account.username)
    assert sent is not None
    assert state.inbox.check(rxpress_account.username, sent.code) == "ok"
    replay = client.post("/login/code", data={"code": sent.code})
    assert "This security code has already been used." in text_of(replay)
    assert client.get("/main").headers["location"].startswith("/login")


def test_an_expired_code_is_refused(
    client: httpx.Client,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox_state = rxpress_sandbox.state.inbox
    password_step(client, rxpress_account)
    code = inbox(rxpress_sandbox, rxpress_account.username)["code"]
    later = time.time() + inbox_state.ttl + 1
    monkeypatch.setattr(inbox_state, "now", lambda: later)  # five minutes pass, without waiting
    refused = client.post("/login/code", data={"code": code})
    assert "This security code has expired." in text_of(refused)
    assert "A new security code has been sent." in text_of(client.post("/login/code/resend"))
    fresh = inbox(rxpress_sandbox, rxpress_account.username)["code"]
    assert client.post("/login/code", data={"code": fresh}).headers["location"] == "/main"


def test_a_remembered_device_skips_the_code_for_its_user_only(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    done = sign_in(client, rxpress_sandbox, rxpress_account, remember=True)
    cookie = done.headers["set-cookie"]
    assert "rx_device=" in cookie and "Max-Age=2592000" in cookie
    sent_at = inbox(rxpress_sandbox, rxpress_account.username)["sent_at"]
    client.get("/logout")
    assert password_step(client, rxpress_account).headers["location"] == "/main"
    assert inbox(rxpress_sandbox, rxpress_account.username)["sent_at"] == sent_at  # no new code sent
    assert client.get("/app/claims").status_code == 200
    assert rxpress_sandbox.state.stats()["second_factor_posts"][rxpress_account.username] == 1
    other = rxpress_sandbox.state.add_account()
    assert password_step(client, other).headers["location"] == "/login/code"


def test_wrong_password_is_refused_in_rxpress_words(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    page = client.post("/login", data={"username": rxpress_account.username, "password": "wrong"})
    assert "The User ID or password you entered is incorrect." in text_of(page)
    assert inbox(rxpress_sandbox, rxpress_account.username)["code"] is None
    assert rxpress_sandbox.state.stats()["login_posts"][rxpress_account.username] == 1


def test_demo_accounts_are_out_of_band_accounts_without_totp(rxpress_sandbox: SandboxPortal) -> None:
    accounts = rxpress_sandbox.state.accounts
    assert {"rx.pharmacy", "rx.tech"} <= set(accounts)
    assert rxpress_sandbox.state.payer.second_factor == "out_of_band"
    assert all(a.totp_secret is None for a in accounts.values())


# -- claims and PAs ---------------------------------------------------------------------------------


def test_claim_inquiry_needs_the_fill_date_and_shows_ncpdp_rejects(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=KEY_REJECTS)
    sign_in(client, rxpress_sandbox, rxpress_account)
    page = look_up(client, claim)
    assert "Claim status REJECTED" in page
    lists = shipped_codelists()
    for code in KEY_REJECTS:
        assert f"{code} {lists.describe(CodeSystem.NCPDP_REJECT, code)}" in page
    assert "75 Prior Authorization Required" in page and "79 Refill Too Soon" in page
    for shown in (claim.patient.name, claim.patient.member_id, us(claim.patient.date_of_birth)):
        assert shown in page
    wrong_day = look_up(client, claim, fill=date(2020, 1, 1))
    assert "No claim found for this Rx number and fill date." in wrong_day
    bad = text_of(client.post("/app/claims", data={"rx_number": "12", "fill_date": "tomorrow"}))
    assert "Enter the 7-digit Rx number." in bad and "Enter the fill date as MM/DD/YYYY." in bad


def test_pa_status_shows_dates_and_reasons(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    state = rxpress_sandbox.state
    approved, denied = state.add_pa("approved"), state.add_pa("denied")
    assert approved.valid_from and approved.valid_to and denied.reason
    sign_in(client, rxpress_sandbox, rxpress_account)
    page = text_of(client.post("/app/pa", data={"pa_number": approved.pa_number}))
    assert "PA status APPROVED" in page
    assert f"Effective date {us(approved.valid_from)}" in page
    assert f"Expiration date {us(approved.valid_to)}" in page
    page = text_of(client.post("/app/pa", data={"pa_number": denied.pa_number.lower()}))
    assert "PA status DENIED" in page and f"Reason {denied.reason}" in page
    assert "Effective date N/A" in page
    assert "No prior authorization found for RXPA000000." in text_of(
        client.post("/app/pa", data={"pa_number": "RXPA000000"})
    )


def test_truth_gives_every_claim_and_pa_in_x12_terms(rxpress_sandbox: SandboxPortal) -> None:
    truth = httpx.get(f"{rxpress_sandbox.url}/__sandbox/truth").json()
    assert truth["payer"] == "rxpress"
    kinds = {(k.wording, k.category, k.status_code, k.code_list) for k in CLAIM_KINDS}
    for claim in truth["claims"]:
        assert re.fullmatch(r"\d{7}", claim["claim_number"])
        # a reject's 277 composite names its primary NCPDP reject (code list RX)
        code = (
            None
            if claim["code_list"] == "RX" and claim["status_code"] == claim["ncpdp"][0]
            else claim["status_code"]
        )
        assert (claim["wording"], claim["category"], code, claim["code_list"]) in kinds
        ClaimRule(category=claim["category"])  # a valid X12 category
        assert bool(claim["ncpdp"]) == claim["wording"].startswith("REJECTED")
    assert {c["wording"] for c in truth["claims"]} >= {k.wording for k in CLAIM_KINDS}
    for pa in truth["pas"]:
        assert re.fullmatch(r"RXPA\d{6}", pa["pa_number"])
        assert pa["decision"] == HCR01[Hcr01(pa["hcr01"])][1]
    assert {p["wording"] for p in truth["pas"]} >= {k.wording for k in PA_KINDS}


def test_seeded_reject_codes_come_from_the_shipped_ncpdp_list(rxpress_sandbox: SandboxPortal) -> None:
    lists = shipped_codelists()
    claims = rxpress_sandbox.state.truth()["claims"]
    codes = {code for c in claims for code in c["ncpdp"]}
    assert len(codes) >= 15
    for code in codes:
        assert lists.get(CodeSystem.NCPDP_REJECT, code) is not None, code
    for claim in claims:
        if claim["wording"] == "REJECTED":
            assert claim["ncpdp"][0] in COMMON_REJECTS  # the primary reject is a benefit reject
        if claim["wording"] == "REJECTED - INVALID CLAIM DATA":
            [code] = claim["ncpdp"]
            assert (lists.describe(CodeSystem.NCPDP_REJECT, code) or "").startswith("M/I ")


# -- redeterminations and the ledger ----------------------------------------------------------------


def test_redetermination_is_recorded_once_and_confirmed_with_its_number(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    review = text_of(client.get(request_redetermination(client, claim, "RX-REF-1").headers["location"]))
    assert f"Rx number {claim.claim_number}" in review and "Your reference RX-REF-1" in review
    assert client.get("/__sandbox/ledger", params={"reference": "RX-REF-1"}).json() == []
    confirmation = client.post("/app/redetermination/submit")
    number = re.search(r"Redetermination number (RD-\d{8})", text_of(confirmation))
    assert number is not None
    [entry] = client.get("/__sandbox/ledger", params={"reference": "RX-REF-1"}).json()
    assert entry["appeal_number"] == number.group(1)
    assert entry["claim_number"] == claim.claim_number
    assert entry["fill_date"] == claim.service_date.isoformat()
    assert entry["reason"] == "medical_necessity"
    assert entry["letter_sha256"] == hashlib.sha256(PDF).hexdigest()
    assert entry["attachments"] == ["notes.pdf"]
    assert entry["username"] == rxpress_account.username
    again = client.post("/app/redetermination/submit")  # the draft is gone: no second record
    assert "Your request has expired. Start again." in text_of(again)
    assert len(client.get("/__sandbox/ledger", params={"reference": "RX-REF-1"}).json()) == 1


@pytest.mark.parametrize(
    ("wording", "rejects", "message"),
    [
        ("PAID", (), "A redetermination can be requested only for a rejected claim."),
        ("REJECTED - INVALID CLAIM DATA", (), "Correct the claim and resubmit it"),
        ("IN PROCESS", (), "A redetermination can be requested only for a rejected claim."),
        ("REJECTED", ("79",), "Reject 79 is not eligible for redetermination."),  # wait, not appeal
        ("REJECTED", ("41", "70"), "Reject 41 is not eligible for redetermination."),  # the primary payer
    ],
)
def test_only_rejected_claims_can_be_sent_for_redetermination(
    client: httpx.Client,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
    wording: str,
    rejects: tuple[str, ...],
    message: str,
) -> None:
    claim = canary_claim(rxpress_sandbox.state, wording, **({"ncpdp": rejects} if rejects else {}))
    sign_in(client, rxpress_sandbox, rxpress_account)
    page = request_redetermination(client, claim, "RX-REF-NO")
    assert message in text_of(page) and "location" not in page.headers


def test_a_letter_that_is_not_a_pdf_is_refused_before_review(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    page = request_redetermination(client, claim, "RX-REF-ZIP", letter=b"PK\x03\x04")
    assert "The redetermination letter must be a PDF file." in text_of(page)
    assert client.get("/app/redetermination/review").headers["location"] == "/app/redetermination"


def test_history_shows_a_request_only_after_the_lag(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    submit(client, claim, "RX-REF-LAG")
    touch(client, HISTORY_LAG - 1)
    assert "No redetermination requests found." in history(client, "RX-REF-LAG")  # request LAG
    [entry] = rxpress_sandbox.state.ledger_entries(reference="RX-REF-LAG")
    shown = history(client, "RX-REF-LAG")  # request LAG + 1
    assert f"RX-REF-LAG {entry.appeal_number} {claim.claim_number}" in shown


def test_history_lag_knob_sets_the_lag_and_zero_shows_at_once(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    rxpress_sandbox.state.update_knobs(history_lag_requests=50)
    submit(client, claim, "RX-REF-KNOB")
    touch(client, 20)
    assert "No redetermination requests found." in history(client, "RX-REF-KNOB")
    rxpress_sandbox.state.update_knobs(history_lag_requests=0)
    assert "RX-REF-KNOB" in history(client, "RX-REF-KNOB")


# -- knobs --------------------------------------------------------------------------------------------


def test_maintenance_answers_the_window_and_the_work_area_with_503(
    client: httpx.Client, rxpress_sandbox: SandboxPortal
) -> None:
    rxpress_sandbox.state.update_knobs(maintenance=True)
    for path in ("/login", "/main", "/app/claims", "/app/redetermination"):
        page = client.get(path)
        assert page.status_code == 503 and "System Unavailable" in page.text
    assert client.get("/__sandbox/inbox/anyone").status_code == 200


def test_session_times_out_inside_the_work_area(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    rxpress_sandbox.state.update_knobs(session_expiry_requests=2)
    sign_in(client, rxpress_sandbox, rxpress_account)
    assert client.get("/main").status_code == 200
    assert client.get("/app/welcome").status_code == 200
    frame = client.get("/app/claims", follow_redirects=True)
    assert frame.url.path == "/login"
    assert "Your session has timed out. Please log in again." in text_of(frame)


def test_captcha_after_n_logins_refuses_even_the_right_password(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    rxpress_sandbox.state.update_knobs(captcha_after_logins=1)
    client.post("/login", data={"username": rxpress_account.username, "password": "wrong"})
    assert "Security Check" in text_of(client.get("/login"))
    refused = password_step(client, rxpress_account)
    assert "Security Check" in text_of(refused) and "location" not in refused.headers
    assert inbox(rxpress_sandbox, rxpress_account.username)["code"] is None


def test_reject_password_and_password_expired(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    rxpress_sandbox.state.update_knobs(reject_password=True)
    assert "The User ID or password you entered is incorrect." in text_of(
        password_step(client, rxpress_account)
    )
    rxpress_sandbox.state.update_knobs(reject_password=False, password_expired=True)
    expired = text_of(password_step(client, rxpress_account))
    assert "Password Expired" in expired and "Your password has expired." in expired


def test_error_rate_fails_pages_with_gateway_errors(
    client: httpx.Client, rxpress_sandbox: SandboxPortal
) -> None:
    rxpress_sandbox.state.update_knobs(error_rate=1.0, error_statuses=(502,))
    page = client.get("/login")
    assert page.status_code == 502 and "502 Bad Gateway" in page.text


@pytest.mark.parametrize("failure", ["502", "drop"])
def test_record_then_fail_records_the_request_and_breaks_the_answer(
    client: httpx.Client,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
    failure: str,
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    rxpress_sandbox.state.update_knobs(record_then_fail=failure)
    reference = f"RX-REF-{failure}"
    if failure == "502":
        assert submit(client, claim, reference).status_code == 502
    else:
        with pytest.raises(httpx.RemoteProtocolError):
            submit(client, claim, reference)
    assert len(rxpress_sandbox.state.ledger_entries(reference=reference)) == 1


def test_slow_confirmation_records_before_it_answers(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    request_redetermination(client, claim, "RX-REF-SLOW")
    rxpress_sandbox.state.update_knobs(slow_confirmation_ms=2000)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/app/redetermination/submit", timeout=0.3)
    assert len(rxpress_sandbox.state.ledger_entries(reference="RX-REF-SLOW")) == 1


def test_cosmetic_redesign_keeps_every_word(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    plain = client.post(
        "/app/claims", data={"rx_number": claim.claim_number, "fill_date": us(claim.service_date)}
    )
    rxpress_sandbox.state.update_knobs(redesign="cosmetic")
    restyled = client.post(
        "/app/claims", data={"rx_number": claim.claim_number, "fill_date": us(claim.service_date)}
    )
    assert plain.text != restyled.text
    assert 'id="f_rx_number"' in plain.text and 'id="ctl00_Body_txtrx_number"' in restyled.text
    words = {"Rx number", "Fill date", "Claim status", "Reject codes", "Claim detail", "Patient name"}
    for word in words:
        assert word in text_of(restyled)
    assert "Claim status REJECTED" in text_of(restyled)


def test_renamed_redesign_changes_labels_and_moves_the_upload_to_review(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    rxpress_sandbox.state.update_knobs(redesign="renamed")
    form = text_of(client.get("/app/redetermination"))
    assert "Prescription #" in form and "Rx number" not in form
    assert "Letter (PDF)" not in form  # the upload moved to the review step
    data = {
        "rx": claim.claim_number,
        "fill": us(claim.service_date),
        "reason": "99",
        "explanation": "x",
        "reference": "RX-REF-RENAMED",
        **request_fields(),
    }
    assert client.post("/app/redetermination", data=data).headers["location"] == "/app/redetermination/review"
    review = client.get("/app/redetermination/review")
    assert "Letter (PDF)" in text_of(review) and 'value="Send request"' in review.text
    done = client.post("/app/redetermination/submit", files={"letter": ("l.pdf", PDF, "application/pdf")})
    assert "Request received" in text_of(done) and "Request number RD-" in text_of(done)
    assert len(rxpress_sandbox.state.ledger_entries(reference="RX-REF-RENAMED")) == 1


# -- what the redetermination form asks: level, rejection notice, cardholder, contact --------------------


def ledger_form(portal: SandboxPortal, reference: str) -> dict[str, str]:
    [entry] = portal.state.ledger_entries(reference=reference)
    return entry.form


def test_the_ledger_keeps_every_field_of_the_form_under_the_shared_names(
    client: httpx.Client, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    notice = datetime.now(UTC).date() - timedelta(days=10)
    review = text_of(client.get(request_redetermination(client, claim, "RX-FORM-1").headers["location"]))
    assert "Review level Redetermination (level 1)" in review
    assert f"Date of rejection notice {us(notice)}" in review and "Cardholder ID CH0042" in review
    assert "Redetermination number RD-" in text_of(client.post("/app/redetermination/submit"))
    assert ledger_form(rxpress_sandbox, "RX-FORM-1") == {
        "level": "first_level",
        "denial_date": notice.isoformat(),  # typed MM/DD/YYYY, kept ISO
        "member_id": "CH0042",
        "contact_name": "Pat Chen",
        "contact_phone": "(555) 010-0199",
        "contact_email": "pat@pharmacy.example",
    }
    # the contact is optional: a request without one keeps no contact field
    blank = {"contact_name": "", "contact_phone": "", "contact_email": ""}
    request_redetermination(client, claim, "RX-FORM-2", level="IR", **blank)
    client.post("/app/redetermination/submit")
    kept = ledger_form(rxpress_sandbox, "RX-FORM-2")
    assert kept == {"level": "external_review", "denial_date": notice.isoformat(), "member_id": "CH0042"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"level": ""}, "Choose a review level."),
        ({"level": "L9"}, "Choose a review level."),
        ({"denial_date": ""}, "Enter the date of the rejection notice as MM/DD/YYYY."),
        ({"denial_date": "13/45/2026"}, "Enter the date of the rejection notice as MM/DD/YYYY."),
        ({"denial_date": "12/31/2099"}, "The date of the rejection notice cannot be in the future."),
        ({"member_id": ""}, "Enter the cardholder ID (3 to 20 letters or digits)."),
        ({"member_id": "CH 0042!"}, "Enter the cardholder ID (3 to 20 letters or digits)."),
        ({"contact_phone": "555-0199"}, "Enter the contact phone as a 10-digit number."),
        ({"contact_email": "pat-at-pharmacy"}, "Enter a valid contact e-mail address."),
    ],
)
def test_a_missing_or_invalid_field_is_refused_in_rxpress_words_before_review(
    client: httpx.Client,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
    changes: dict[str, str],
    message: str,
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    page = request_redetermination(client, claim, "RX-FORM-BAD", **changes)
    assert page.status_code == 200 and '<p role="alert">' in page.text
    assert message in text_of(page)
    assert client.get("/app/redetermination/review").headers["location"] == "/app/redetermination"
    assert rxpress_sandbox.state.ledger_entries(reference="RX-FORM-BAD") == []


@pytest.mark.parametrize(("level", "days"), [("RC", 65), ("L1", 65), ("L2", 60), ("IR", 120)])
def test_a_request_past_the_levels_filing_limit_is_refused_and_the_last_day_is_taken(
    client: httpx.Client,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
    level: str,
    days: int,
) -> None:
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    today = datetime.now(UTC).date()
    late = request_redetermination(
        client, claim, "RX-LATE", level=level, denial_date=us(today - timedelta(days=days + 1))
    )
    expected = f"The filing limit for this request has passed ({days} days from the rejection notice)."
    assert expected in text_of(late)
    assert rxpress_sandbox.state.ledger_entries(reference="RX-LATE") == []
    last_day = request_redetermination(
        client, claim, "RX-LAST-DAY", level=level, denial_date=us(today - timedelta(days=days))
    )
    assert last_day.headers["location"] == "/app/redetermination/review"


def test_the_filing_limit_is_checked_again_on_the_day_of_the_submit(
    client: httpx.Client,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request reviewed on its last day and submitted the next is refused, and nothing recorded."""
    claim = canary_claim(rxpress_sandbox.state, "REJECTED", ncpdp=("70",))
    sign_in(client, rxpress_sandbox, rxpress_account)
    today = datetime.now(UTC).date()
    notice = us(today - timedelta(days=65))
    assert request_redetermination(client, claim, "RX-MIDNIGHT", denial_date=notice).status_code == 303

    class Tomorrow(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Tomorrow:  # type: ignore[override]
            return cls.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

    monkeypatch.setattr("sandbox.rxpress.redetermination.datetime", Tomorrow)
    refused = client.post("/app/redetermination/submit")
    assert "The filing limit for this request has passed (65 days" in text_of(refused)
    assert rxpress_sandbox.state.ledger_entries(reference="RX-MIDNIGHT") == []
