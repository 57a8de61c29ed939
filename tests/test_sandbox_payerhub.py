"""PayerHub's sandbox over real HTTP: the TOTP sign-in, the plan choice, the paged date-range search,
the view state, reconsideration requests and their history, the knobs and the ledger; and, in real
Chromium, what only a browser shows (role and label locators, a stale tab's postback)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Page, expect

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from bot.status import HCR01, ClaimRule, Hcr01
from sandbox import SandboxAccount
from sandbox.data import Claim
from sandbox.payerhub.wording import CLAIM_KINDS, PA_KINDS, PLANS
from tests.fixtures.sandbox import SandboxPortal, canary_claim

PDF = b"%PDF-1.4\n% sandbox test letter\n"
PLAN_ID = {p.name: p.payer_id for p in PLANS}
BLUE, CARDINAL, SUMMIT = (p.name for p in PLANS)
CLAIMS, AUTHS = "/Claims/ClaimStatus.aspx", "/Authorizations/Inquiry.aspx"
REQUEST, HISTORY = "/Reconsideration/Request.aspx", "/Reconsideration/History.aspx"
POSTBACK_ERROR = "Invalid postback or callback argument"
HIDDEN = ("__VIEWSTATE", "__VIEWSTATEGENERATOR", "__EVENTVALIDATION")


def text_of(response: httpx.Response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))


def us(day: date) -> str:
    return day.strftime("%m/%d/%Y")


class Hub:
    """A WebForms client: posts each control by its id (the name's last part) back to the page it
    is on, with that page's hidden fields, as a browser would."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.last: httpx.Response | None = None

    def get(self, path: str) -> httpx.Response:
        self.last = self.client.get(path, follow_redirects=True)
        return self.last

    def html(self) -> str:
        assert self.last is not None
        return self.last.text

    def hidden(self) -> dict[str, str]:
        return dict(re.findall(r'name="(__[A-Z]+)" id="__[A-Z]+" value="([^"]*)"', self.html()))

    def names(self) -> dict[str, str]:
        names = re.findall(r'name="(ctl00\$[^"]+)"', self.html())
        return {name.rsplit("$", 1)[-1]: name for name in names}

    def post(
        self,
        button: str,
        fields: Mapping[str, str] | None = None,
        *,
        files: Mapping[str, Any] | None = None,
        command: str = "1",
        hidden: Mapping[str, str] | None = None,
        follow: bool = True,
        **options: Any,
    ) -> httpx.Response:
        """Press ``button`` (a control id on the current page) with ``fields`` filled in."""
        assert self.last is not None
        names = self.names()
        data = {**(self.hidden() if hidden is None else hidden), names[button]: command}
        data.update({names[cid]: value for cid, value in (fields or {}).items()})
        upload = {names[cid]: value for cid, value in (files or {}).items()} or None
        path = self.last.url.path
        self.last = self.client.post(path, data=data, files=upload, follow_redirects=follow, **options)
        return self.last


@pytest.fixture
def client(payerhub_sandbox: SandboxPortal) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=payerhub_sandbox.url, timeout=10) as c:
        yield c


@pytest.fixture
def hub(client: httpx.Client) -> Hub:
    return Hub(client)


def sign_in(hub: Hub, account: SandboxAccount, code: str | None = None) -> httpx.Response:
    hub.get("/Account/Login.aspx")
    hub.post("btnSignIn", {"txtUserName": account.username, "txtPassword": account.password})
    assert account.totp_secret
    return hub.post("btnVerify", {"txtCode": code or pyotp.TOTP(account.totp_secret).now()})


def choose_plan(hub: Hub, path: str, plan: str) -> httpx.Response:
    hub.get(path)
    return hub.post("btnSelectPlan", {"ddlPlan": PLAN_ID[plan]})


def search(hub: Hub, plan: str, start: date, end: date, **narrow: str) -> httpx.Response:
    choose_plan(hub, CLAIMS, plan)
    return hub.post("btnSearch", {"txtFrom": us(start), "txtTo": us(end), **narrow})


def find(hub: Hub, claim: Claim) -> httpx.Response:
    """A claim's detail: searched by its plan, number and date of service, then opened."""
    assert claim.plan
    found = search(hub, claim.plan, claim.service_date, claim.service_date, txtClaimNumber=claim.claim_number)
    assert "Page 1 of 1 (1 claims)" in text_of(found)
    return hub.post("btnView", command="Select$0")


def claim_step(**changes: str) -> dict[str, str]:
    """What the claim step asks beside the number, by control id: valid (a first-level appeal of a
    denial ten days old, every optional field given) unless ``changes`` says otherwise."""
    today = datetime.now(UTC).date()
    return {
        "ddlLevel": "APPEAL1",
        "txtDenialDate": us(today - timedelta(days=10)),
        "txtMemberId": "BLH004200017",
        "txtBillingNpi": "1234567893",
        "txtServiceFrom": us(today - timedelta(days=40)),
        "txtServiceTo": us(today - timedelta(days=38)),
        "txtDisputedAmount": "$1,125.5",
        **changes,
    }


def fill_request(
    hub: Hub, claim: Claim, reference: str, *, letter: bytes = PDF, certify: bool = True
) -> dict[str, Any]:
    """Choose the plan, find the claim; the request's fields for "Submit request"."""
    assert claim.plan
    choose_plan(hub, REQUEST, claim.plan)
    found = hub.post("btnFindClaim", {"txtClaimNumber": claim.claim_number, **claim_step()})
    assert "Reason for reconsideration" in text_of(found), text_of(found)
    fields = {
        "ddlReason": "CODING",
        "txtExplanation": "Modifier 25 was documented.",
        "txtReference": reference,
    }
    if certify:
        fields["chkCertify"] = "on"
    files = {
        "fuLetter": ("letter.pdf", letter, "application/pdf"),
        "fuAttachments": ("notes.pdf", PDF, "application/pdf"),
    }
    return {"fields": fields, "files": files}


def reconsider(hub: Hub, claim: Claim, reference: str, **options: Any) -> httpx.Response:
    request = fill_request(hub, claim, reference)
    return hub.post("btnSubmit", request["fields"], files=request["files"], **options)


def denied(portal: SandboxPortal, plan: str = CARDINAL, **fields: Any) -> Claim:
    return canary_claim(portal.state, "Finalized - denied", plan=plan, **fields)


# -- sign-in --------------------------------------------------------------------------------------


def test_password_then_totp_lands_on_home_with_the_plans(hub: Hub, payerhub_account: SandboxAccount) -> None:
    home = sign_in(hub, payerhub_account)
    assert home.url.path == "/Default.aspx"
    page = text_of(home)
    assert "Welcome, Canary User" in page
    assert "Summit Medicare Advantage SMA90 Not available" in page
    assert "ASP.NET_SessionId" in hub.client.cookies


def test_every_page_carries_a_new_signed_view_state(hub: Hub, payerhub_account: SandboxAccount) -> None:
    sign_in(hub, payerhub_account)
    seen = set()
    for path in ("/Default.aspx", CLAIMS, CLAIMS, REQUEST, HISTORY):
        hub.get(path)
        fields = hub.hidden()
        assert set(fields) == set(HIDDEN)
        assert fields["__VIEWSTATE"].startswith("/wEPDw") and fields["__VIEWSTATE"] not in seen
        seen.add(fields["__VIEWSTATE"])


def test_totp_code_used_again_is_refused(hub: Hub, payerhub_account: SandboxAccount) -> None:
    code = pyotp.TOTP(payerhub_account.totp_secret or "").now()
    assert sign_in(hub, payerhub_account, code).url.path == "/Default.aspx"
    hub.get("/Account/SignOut.aspx")
    again = sign_in(hub, payerhub_account, code)
    assert "That verification code has already been used" in text_of(again)
    assert hub.get("/Default.aspx").url.path == "/Account/Login.aspx"


def test_wrong_totp_code_is_refused(hub: Hub, payerhub_account: SandboxAccount) -> None:
    totp = pyotp.TOTP(payerhub_account.totp_secret or "")
    valid = {totp.at(time.time() + 30 * k) for k in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    page = sign_in(hub, payerhub_account, wrong)
    assert "The verification code is incorrect." in text_of(page)
    assert page.url.path == "/Account/Verify.aspx"


def test_wrong_password_is_refused_and_counted_once(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    hub.get("/Account/Login.aspx")
    page = hub.post("btnSignIn", {"txtUserName": payerhub_account.username, "txtPassword": "wrong"})
    assert "The user name or password is incorrect." in text_of(page)
    stats = payerhub_sandbox.state.stats()
    assert stats["login_posts"][payerhub_account.username] == 1
    assert payerhub_account.username not in stats["second_factor_posts"]


def test_account_is_locked_after_five_wrong_passwords(hub: Hub, payerhub_account: SandboxAccount) -> None:
    hub.get("/Account/Login.aspx")
    for _ in range(5):
        hub.post("btnSignIn", {"txtUserName": payerhub_account.username, "txtPassword": "wrong"})
    page = hub.post(
        "btnSignIn", {"txtUserName": payerhub_account.username, "txtPassword": payerhub_account.password}
    )
    assert "Your account is locked." in text_of(page)
    assert page.url.path == "/Account/Login.aspx"


def test_demo_accounts_sign_in(hub: Hub, payerhub_sandbox: SandboxPortal) -> None:
    demo = payerhub_sandbox.state.accounts["ph.appeals"]
    assert demo.totp_secret
    assert sign_in(hub, demo).url.path == "/Default.aspx"


# -- the view state ---------------------------------------------------------------------------------


def test_a_postback_without_the_newest_view_state_gets_the_framework_error_page(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    sign_in(hub, payerhub_account)
    claims_page = hub.get(CLAIMS)
    old = hub.hidden()
    forged = {**old, "__VIEWSTATE": old["__VIEWSTATE"][:-4] + "AAAA"}
    missing = {k: v for k, v in old.items() if k != "__VIEWSTATE"}
    for hidden in (missing, forged, {**old, "__EVENTVALIDATION": ""}):
        hub.last = claims_page
        refused = hub.post("btnSelectPlan", {"ddlPlan": "BLH01"}, hidden=hidden)
        assert refused.status_code == 500 and POSTBACK_ERROR in refused.text
    hub.last = claims_page
    assert hub.post("btnSelectPlan", {"ddlPlan": "BLH01"}, hidden=old).status_code == 200  # still the newest
    stale = hub.hidden()
    hub.get("/Default.aspx")  # another page: its view state is now the newest
    hub.last = claims_page
    refused = hub.post("btnSelectPlan", {"ddlPlan": "BLH01"}, hidden=stale)
    assert refused.status_code == 500
    assert "Server Error in '/' Application." in text_of(refused)


def test_a_view_state_is_used_up_and_belongs_to_its_page(hub: Hub, payerhub_account: SandboxAccount) -> None:
    sign_in(hub, payerhub_account)
    history = hub.get(HISTORY)
    fields = hub.hidden()
    assert hub.post("btnSearch", {"txtReference": "x"}).status_code == 200
    hub.last = history
    assert hub.post("btnSearch", {"txtReference": "x"}, hidden=fields).status_code == 500  # used up
    hub.get(HISTORY)
    # the session's newest view state, posted to another page than the one it was given with
    claims = hub.client.post(CLAIMS, data={**hub.hidden(), "ctl00$MainContent$btnSelectPlan": "1"})
    assert claims.status_code == 500
    assert hub.post("btnSearch", {"txtReference": "x"}).status_code == 200  # not used up by that


def test_event_validation_refuses_a_value_the_page_did_not_offer(
    hub: Hub, payerhub_account: SandboxAccount
) -> None:
    sign_in(hub, payerhub_account)
    hub.get(CLAIMS)
    refused = hub.post("btnSelectPlan", {"ddlPlan": "NOPE9"})
    assert refused.status_code == 500 and POSTBACK_ERROR in refused.text
    search(hub, BLUE, date(2025, 1, 1), date(2026, 12, 31))
    assert hub.post("btnView", command="Select$10").status_code == 500  # ten rows: Select$0..9


def test_a_login_post_without_view_state_is_refused_and_not_counted(
    client: httpx.Client, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    form = {
        "ctl00$MainContent$txtUserName": payerhub_account.username,
        "ctl00$MainContent$txtPassword": payerhub_account.password,
        "ctl00$MainContent$btnSignIn": "Sign in",
    }
    assert client.post("/Account/Login.aspx", data=form).status_code == 500
    assert payerhub_account.username not in payerhub_sandbox.state.login_posts


# -- plans, the search and its pages --------------------------------------------------------------------


def test_the_plan_is_chosen_before_the_search_and_can_be_changed(
    hub: Hub, payerhub_account: SandboxAccount
) -> None:
    sign_in(hub, payerhub_account)
    first = text_of(hub.get(CLAIMS))
    assert "Health plan" in first and "btnSelectPlan" in hub.names() and "Dates of service" not in first
    assert "Select a health plan." in text_of(hub.post("btnSelectPlan", {"ddlPlan": ""}))
    chosen = text_of(hub.post("btnSelectPlan", {"ddlPlan": "CRD22"}))
    assert "Selected plan Cardinal Care" in chosen and "Dates of service" in chosen
    assert 'role="search" aria-label="Claim search"' in hub.html()
    again = text_of(hub.post("btnChangePlan"))
    assert "btnSelectPlan" in hub.names() and "Dates of service" not in again


def _rows(response: httpx.Response) -> list[str]:
    return re.findall(r'aria-label="View claim (\d{13})"', response.text)


def test_date_range_search_pages_ten_rows_newest_first_with_every_claim_once(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    start, end = date(2025, 6, 1), date(2026, 5, 31)
    truth = sorted(
        (c for c in payerhub_sandbox.state.claims.values() if c.plan == CARDINAL),
        key=lambda c: (-c.service_date.toordinal(), c.claim_number),
    )
    expected = [c.claim_number for c in truth if start <= c.service_date <= end]
    sign_in(hub, payerhub_account)
    page = search(hub, CARDINAL, start, end)
    pages = -(-len(expected) // 10)
    assert pages >= 3
    seen = []
    for number in range(1, pages + 1):
        assert f"Page {number} of {pages} ({len(expected)} claims)" in text_of(page)
        rows = _rows(page)
        assert len(rows) == (10 if number < pages else len(expected) - 10 * (pages - 1))
        seen += rows
        if number < pages:
            page = hub.post("btnNext")
    assert seen == expected
    assert "btnNext" not in hub.names()
    assert _rows(hub.post("btnPrev")) == expected[10 * (pages - 2) : 10 * (pages - 1)]


def test_a_claim_number_is_unique_only_within_its_plan(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    seeded = [c["claim_number"] for c in payerhub_sandbox.state.truth()["claims"]]
    assert len(seeded) - len(set(seeded)) == 4  # the seeded twins
    mine = denied(payerhub_sandbox, BLUE)
    twin = canary_claim(
        payerhub_sandbox.state, "Finalized - paid", plan=SUMMIT, claim_number=mine.claim_number
    )
    sign_in(hub, payerhub_account)
    for claim, status in ((mine, "Finalized - denied"), (twin, "Finalized - paid")):
        assert f"Claim status {status}" in text_of(find(hub, claim))
    wide = date(2024, 12, 31), date(2026, 12, 31)
    assert "No claims match your search." in text_of(
        search(hub, CARDINAL, *wide, txtClaimNumber=mine.claim_number)
    )


def test_claim_detail_shows_patient_status_and_codes_and_goes_back_to_the_same_page(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = denied(payerhub_sandbox, carc=("50",), rarc=("N130",))
    sign_in(hub, payerhub_account)
    page = text_of(find(hub, claim))
    for shown in (
        f"Health plan {CARDINAL}",
        f"Claim number {claim.claim_number}",
        f"Patient name {claim.patient.name}",
        f"Member ID {claim.patient.member_id}",
        f"Date of birth {us(claim.patient.date_of_birth)}",
        f"Date of service {us(claim.service_date)}",
        "Paid amount $0.00",
        "Claim status Finalized - denied",
        f"CARC {claim.adjustments[0].group} 50 These are non-covered services because this is not deemed a",
        "Patient responsibility $0.00",
        "RARC N130",
    ):
        assert shown in page
    back = hub.post("btnBack")
    assert _rows(back) == [claim.claim_number]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("", "01/31/2026", "Enter both dates of service."),
        ("2026-13-01", "01/31/2026", "Enter the dates of service as MM/DD/YYYY."),
        ("02/01/2026", "01/31/2026", "The To date must be on or after the From date."),
        ("01/01/2024", "01/31/2026", "Dates of service can span at most 24 months."),
    ],
)
def test_search_refuses_a_bad_date_range(
    hub: Hub, payerhub_account: SandboxAccount, start: str, end: str, message: str
) -> None:
    sign_in(hub, payerhub_account)
    choose_plan(hub, CLAIMS, BLUE)
    page = hub.post("btnSearch", {"txtFrom": start, "txtTo": end})
    assert page.status_code == 200 and message in text_of(page)
    assert 'role="alert"' in page.text and not _rows(page)


def test_authorization_inquiry_answers_for_the_plans_that_offer_it(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    pa = payerhub_sandbox.state.add_pa("approved", plan=CARDINAL)
    assert pa.valid_from and pa.valid_to
    sign_in(hub, payerhub_account)
    refused = choose_plan(hub, AUTHS, SUMMIT)
    assert "Authorization inquiry is not available for Summit Medicare Advantage." in text_of(refused)
    assert "Authorization number" not in text_of(refused)
    choose_plan(hub, AUTHS, BLUE)
    missing = hub.post("btnSearch", {"txtAuthNumber": pa.pa_number})  # a Cardinal Care authorization
    assert "No authorization with this number was found for Blue Lakes Health." in text_of(missing)
    choose_plan(hub, AUTHS, CARDINAL)
    page = text_of(hub.post("btnSearch", {"txtAuthNumber": pa.pa_number.lower()}))
    assert "Certification status Certified" in page
    assert f"Effective from {us(pa.valid_from)}" in page and f"Effective through {us(pa.valid_to)}" in page


# -- reconsideration and its history ----------------------------------------------------------------


def test_reconsideration_is_recorded_once_even_when_its_form_is_posted_twice(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    request = fill_request(hub, claim, "PH-REF-ONCE")
    form_page, fields = hub.last, hub.hidden()
    done = hub.post("btnSubmit", request["fields"], files=request["files"])
    number = re.search(r"Request number (PHR-\d{9})", text_of(done))
    assert done.status_code == 200 and number is not None
    assert "Reconsideration request submitted" in text_of(done)
    hub.last = form_page  # the browser's back button, and the same form sent again
    again = hub.post("btnSubmit", request["fields"], files=request["files"], hidden=fields)
    assert again.status_code == 500 and POSTBACK_ERROR in again.text
    [entry] = payerhub_sandbox.state.ledger_entries(reference="PH-REF-ONCE")
    assert entry.appeal_number == number.group(1)
    assert (entry.claim_number, entry.plan, entry.reason) == (claim.claim_number, CARDINAL, "coding_error")
    assert entry.letter_sha256 == hashlib.sha256(PDF).hexdigest()
    assert (entry.letter_filename, entry.attachments) == ("letter.pdf", ("notes.pdf",))
    assert entry.username == payerhub_account.username


def test_history_finds_requests_by_reference_at_once_and_pages_them(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    reconsider(hub, claim, "PH-HIST-one")
    hub.get(HISTORY)
    page = text_of(hub.post("btnSearch", {"txtReference": "ph-hist-ONE"}))
    [entry] = payerhub_sandbox.state.ledger_entries(reference="PH-HIST-one")
    assert f"PH-HIST-one {entry.appeal_number} {CARDINAL} {claim.claim_number}" in page
    for n in range(11):
        payerhub_sandbox.state.record_appeal(
            reference=f"PH-PAGE-{n:02d}", claim_number=claim.claim_number, plan=CARDINAL, reason="other",
            explanation="x", letter_filename="l.pdf", letter_sha256="0" * 64, username="someone",
        )  # fmt: skip
    first = hub.post("btnSearch", {"txtReference": "PH-PAGE-"})
    assert "Page 1 of 2 (11 requests)" in text_of(first) and "PH-PAGE-10" in first.text
    assert "PH-PAGE-00" in hub.post("btnNext").text
    assert "No reconsideration requests match this reference." in text_of(
        hub.post("btnSearch", {"txtReference": "PH-NEVER"})
    )


def test_only_a_finalized_claim_of_the_chosen_plan_can_be_reconsidered(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    pending = canary_claim(payerhub_sandbox.state, "Pended - in adjudication", plan=BLUE)
    elsewhere = denied(payerhub_sandbox, SUMMIT)
    sign_in(hub, payerhub_account)
    choose_plan(hub, REQUEST, BLUE)
    page = hub.post("btnFindClaim", {"txtClaimNumber": pending.claim_number})
    assert "Only finalized claims can be reconsidered." in text_of(page)
    page = hub.post("btnFindClaim", {"txtClaimNumber": elsewhere.claim_number})
    assert "No claim with this number was found for Blue Lakes Health." in text_of(page)


def test_a_request_needs_a_pdf_letter_and_the_certification(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    request = fill_request(hub, claim, "PH-REF-BAD", letter=b"PK\x03\x04", certify=False)
    page = text_of(hub.post("btnSubmit", request["fields"], files=request["files"]))
    assert "The reconsideration letter must be a PDF file." in page
    assert "Certify that this request is accurate and authorized." in page
    assert "Reason for reconsideration" in page  # the form again, for the same claim
    assert payerhub_sandbox.state.ledger_entries(reference="PH-REF-BAD") == []


# -- knobs ------------------------------------------------------------------------------------------


def test_maintenance_answers_every_page_with_503(
    client: httpx.Client, payerhub_sandbox: SandboxPortal
) -> None:
    payerhub_sandbox.state.update_knobs(maintenance=True)
    for path in ("/Account/Login.aspx", "/Default.aspx", CLAIMS, REQUEST):
        page = client.get(path)
        assert page.status_code == 503 and "PayerHub is unavailable" in page.text
    assert client.get("/__sandbox/stats").status_code == 200


def test_error_rate_draws_the_same_failures_for_the_same_seed(
    client: httpx.Client, payerhub_sandbox: SandboxPortal
) -> None:
    def statuses() -> list[int]:
        return [client.get("/Account/Login.aspx").status_code for _ in range(30)]

    knobs = {"error_rate": 0.5, "error_statuses": [500, 502], "error_seed": 4}
    payerhub_sandbox.state.set_knobs(knobs)
    first = statuses()
    payerhub_sandbox.state.set_knobs(knobs)
    assert statuses() == first and set(first) == {200, 500, 502}


def test_session_expires_after_n_requests_even_in_the_middle_of_a_search(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    payerhub_sandbox.state.update_knobs(session_expiry_requests=3)
    sign_in(hub, payerhub_account)  # home is request 1
    choose_plan(hub, CLAIMS, BLUE)  # the page (2) and its plan postback (3)
    expired = hub.post("btnSearch", {"txtFrom": "01/01/2025", "txtTo": "12/31/2026"})
    assert expired.url.path == "/Account/Login.aspx"
    assert "Your session has timed out. Please sign in again." in text_of(expired)
    payerhub_sandbox.state.update_knobs(session_expiry_requests=None)
    next_code = pyotp.TOTP(payerhub_account.totp_secret or "").at(time.time() + 30)  # a new time step
    assert sign_in(hub, payerhub_account, next_code).url.path == "/Default.aspx"


def test_captcha_replaces_the_sign_in_after_n_login_posts(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    payerhub_sandbox.state.update_knobs(captcha_after_logins=1)
    hub.get("/Account/Login.aspx")
    hub.post("btnSignIn", {"txtUserName": payerhub_account.username, "txtPassword": "wrong"})
    shown = hub.get("/Account/Login.aspx")
    assert "Security check" in text_of(shown) and "I'm not a robot" in text_of(shown)
    assert "btnSignIn" not in hub.names()


@pytest.mark.parametrize(
    ("knob", "shown"),
    [
        ("reject_password", "The user name or password is incorrect."),
        ("password_expired", "Your password has expired. Choose a new password to continue."),
    ],
)
def test_password_knobs_refuse_correct_credentials(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount, knob: str, shown: str
) -> None:
    payerhub_sandbox.state.update_knobs(**{knob: True})
    hub.get("/Account/Login.aspx")
    page = hub.post(
        "btnSignIn", {"txtUserName": payerhub_account.username, "txtPassword": payerhub_account.password}
    )
    assert shown in text_of(page) and page.url.path == "/Account/Login.aspx"


@pytest.mark.parametrize("failure", ["502", "drop"])
def test_record_then_fail_records_the_request_and_breaks_the_answer(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount, failure: str
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    request = fill_request(hub, claim, f"PH-REF-{failure}")
    payerhub_sandbox.state.update_knobs(record_then_fail=failure)
    if failure == "502":
        assert hub.post("btnSubmit", request["fields"], files=request["files"]).status_code == 502
    else:
        with pytest.raises(httpx.RemoteProtocolError):
            hub.post("btnSubmit", request["fields"], files=request["files"])
    assert len(payerhub_sandbox.state.ledger_entries(reference=f"PH-REF-{failure}")) == 1


def test_slow_confirmation_records_before_it_answers(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    request = fill_request(hub, claim, "PH-REF-SLOW")
    payerhub_sandbox.state.update_knobs(slow_confirmation_ms=2000)
    with pytest.raises(httpx.ReadTimeout):
        hub.post("btnSubmit", request["fields"], files=request["files"], timeout=0.3)
    assert len(payerhub_sandbox.state.ledger_entries(reference="PH-REF-SLOW")) == 1


def test_latency_is_added_to_every_page(client: httpx.Client, payerhub_sandbox: SandboxPortal) -> None:
    payerhub_sandbox.state.update_knobs(latency_ms=250)
    started = time.monotonic()
    assert client.get("/Account/Login.aspx").status_code == 200
    assert time.monotonic() - started >= 0.25


# -- the two redesigns --------------------------------------------------------------------------------


def test_cosmetic_redesign_keeps_every_word_and_changes_names_and_layout(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    plain = find(hub, claim)
    payerhub_sandbox.state.update_knobs(redesign="cosmetic")
    restyled = find(hub, claim)  # the same controls by id: the layout's container changed
    assert 'name="ctl00$MainContent$btnBack"' in plain.text
    assert 'name="ctl00$cphMain$btnBack"' in restyled.text and 'class="dl-row"' in restyled.text
    assert text_of(plain) != text_of(restyled)
    for shown in ("Claim detail", f"Claim number {claim.claim_number}", "Claim status Finalized - denied"):
        assert shown in text_of(restyled)
    back = hub.post("btnBack")
    assert "Date of service Claim number Claim status" in text_of(back)  # columns in a new order
    assert "Reconsideration request submitted" in text_of(reconsider(hub, claim, "PH-REF-COSMETIC"))


def test_renamed_redesign_changes_labels_and_moves_the_plan_into_the_search(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    payerhub_sandbox.state.update_knobs(redesign="renamed")
    page = hub.get(CLAIMS)
    assert "Payer" in text_of(page) and "Health plan" not in text_of(page)
    assert "btnSelectPlan" not in hub.names() and "txtFrom" in hub.names()  # no plan step of its own
    found = hub.post(
        "btnSearch",
        {"ddlPlan": PLAN_ID[CARDINAL], "txtFrom": us(claim.service_date), "txtTo": us(claim.service_date),
         "txtClaimNumber": claim.claim_number},
    )  # fmt: skip
    assert "Matching claims" in text_of(found) and "Payer claim ID" in text_of(found)
    assert _rows(found) == [] and f'aria-label="Open claim {claim.claim_number}"' in found.text
    hub.get(REQUEST)
    hub.post(
        "btnFindClaim", {"ddlPlan": PLAN_ID[CARDINAL], "txtClaimNumber": claim.claim_number, **claim_step()}
    )
    assert 'value="Send reconsideration"' in hub.html()
    fields = {
        "ddlReason": "MEDNEC",
        "txtExplanation": "x",
        "txtReference": "PH-REF-RENAMED",
        "chkCertify": "on",
    }
    done = hub.post("btnSubmit", fields, files={"fuLetter": ("l.pdf", PDF, "application/pdf")})
    assert "Reconsideration received" in text_of(done) and "Confirmation number PHR-" in text_of(done)
    assert len(payerhub_sandbox.state.ledger_entries(reference="PH-REF-RENAMED")) == 1


# -- control endpoints and truth ------------------------------------------------------------------------


def test_truth_lists_plans_and_every_claim_and_authorization_in_x12_terms(
    payerhub_sandbox: SandboxPortal,
) -> None:
    truth = httpx.get(f"{payerhub_sandbox.url}/__sandbox/truth").json()
    assert truth["payer"] == "payerhub" and truth["plans"] == [BLUE, CARDINAL, SUMMIT]
    kinds = {(k.wording, k.category, k.status_code) for k in CLAIM_KINDS}
    for claim in truth["claims"]:
        assert re.fullmatch(r"\d{13}", claim["claim_number"]) and claim["plan"] in truth["plans"]
        assert (claim["wording"], claim["category"], claim["status_code"]) in kinds
        ClaimRule(category=claim["category"])  # a valid X12 category
    assert {c["wording"] for c in truth["claims"]} >= {k.wording for k in CLAIM_KINDS}
    for pa in truth["pas"]:
        assert re.fullmatch(r"AU\d{8}", pa["pa_number"]) and pa["plan"] in {BLUE, CARDINAL}
        assert pa["decision"] == HCR01[Hcr01(pa["hcr01"])][1]
    assert {p["wording"] for p in truth["pas"]} >= {k.wording for k in PA_KINDS}
    member_ids = {c.patient.member_id for c in payerhub_sandbox.state.claims.values()}
    assert all(re.fullmatch(r"[A-Z]{3}\d{9}", m) for m in member_ids)
    added = httpx.post(
        f"{payerhub_sandbox.url}/__sandbox/claims", json={"wording": "Finalized - paid", "plan": SUMMIT}
    ).json()
    assert added["plan"] == SUMMIT
    assert payerhub_sandbox.state.claim(added["claim_number"], SUMMIT) is not None
    bad = httpx.post(f"{payerhub_sandbox.url}/__sandbox/claims", json={"plan": "Nowhere Health"})
    assert bad.status_code == 422 and "Nowhere Health" in bad.json()["error"]


def test_seeded_codes_are_active_codes_of_the_shipped_lists(payerhub_sandbox: SandboxPortal) -> None:
    lists = shipped_codelists()
    claims = payerhub_sandbox.state.truth()["claims"]
    for system, key in ((CodeSystem.CARC, "carc"), (CodeSystem.RARC, "rarc")):
        for code in {code for c in claims for code in c[key]}:
            found = lists.get(system, code)
            assert found is not None and found.active, f"{system} {code}"
    assert all(c["carc"] for c in claims if c["category"] == "F2")


# -- in a browser -----------------------------------------------------------------------------------


def browser_sign_in(page: Page, url: str, account: SandboxAccount) -> None:
    page.goto(f"{url}/Account/Login.aspx")
    page.get_by_label("User name", exact=True).fill(account.username)
    page.get_by_label("Password", exact=True).fill(account.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_label("Verification code", exact=True).fill(pyotp.TOTP(account.totp_secret or "").now())
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.get_by_role("heading", name="Welcome, Canary User")).to_be_visible()


def test_a_person_finds_pages_and_opens_a_claim_by_roles_and_labels(
    page: Page, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = canary_claim(payerhub_sandbox.state, "Finalized - adjusted", plan=BLUE, newest=True)
    browser_sign_in(page, payerhub_sandbox.url, payerhub_account)
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Claim status").click()
    page.get_by_label("Health plan", exact=True).select_option(label=BLUE)
    page.get_by_role("button", name="Select plan", exact=True).click()
    expect(page.get_by_label("Selected plan", exact=True)).to_have_text(BLUE)
    criteria = page.get_by_role("search", name="Claim search")
    dates = criteria.get_by_role("group", name="Dates of service")
    dates.get_by_label("From", exact=True).fill(us(claim.service_date - timedelta(days=400)))
    dates.get_by_label("To", exact=True).fill(us(claim.service_date))
    criteria.get_by_role("button", name="Search", exact=True).click()
    results = page.get_by_role("table", name="Claim search results")
    expect(results.get_by_role("row")).to_have_count(11)  # the header and ten rows
    expect(results.get_by_role("row").nth(1)).to_contain_text(claim.claim_number)  # newest first
    page.get_by_role("button", name="Next", exact=True).click()
    expect(page.get_by_text("Page 2 of")).to_be_visible()
    page.get_by_role("button", name="Previous", exact=True).click()
    page.get_by_role("button", name=f"View claim {claim.claim_number}").click()
    detail = page.get_by_role("region", name="Claim detail")
    expect(detail.get_by_label("Claim status", exact=True)).to_have_text("Finalized - adjusted")
    expect(page.get_by_role("table", name="Reason and remark codes")).to_be_visible()


def test_a_stale_tab_posts_back_to_the_error_page_and_a_reconsideration_uploads_once(
    page: Page, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount, tmp_path: Path
) -> None:
    claim = denied(payerhub_sandbox)
    browser_sign_in(page, payerhub_sandbox.url, payerhub_account)
    page.goto(f"{payerhub_sandbox.url}{REQUEST}")
    other = page.context.new_page()
    other.goto(f"{payerhub_sandbox.url}/Default.aspx")  # its page now holds the newest view state
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Select plan", exact=True).click()
    assert posted.value.status == 500
    expect(page.get_by_role("heading", name="Server Error in '/' Application.")).to_be_visible()
    other.close()
    page.goto(f"{payerhub_sandbox.url}{REQUEST}")
    page.get_by_label("Health plan", exact=True).select_option(label=CARDINAL)
    page.get_by_role("button", name="Select plan", exact=True).click()
    page.get_by_label("Claim number", exact=True).fill(claim.claim_number)
    page.get_by_label("Appeal level", exact=True).select_option(label="Reconsideration")
    page.get_by_label("Denial date", exact=True).fill(us(datetime.now(UTC).date()))
    page.get_by_label("Member ID", exact=True).fill(claim.patient.member_id)
    page.get_by_label("Billing provider NPI", exact=True).fill("1234567893")
    page.get_by_role("button", name="Find claim", exact=True).click()
    page.get_by_label("Reason for reconsideration", exact=True).select_option(
        label="Medical necessity review"
    )
    page.get_by_label("Explanation", exact=True).fill("The scan was medically necessary.")
    page.get_by_label("Your reference", exact=True).fill("PH-REF-BROWSER")
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(PDF)
    page.get_by_label("Reconsideration letter (PDF)", exact=True).set_input_files(letter)
    page.get_by_label("I certify that this request is accurate and authorized").check()
    page.get_by_role("button", name="Submit request", exact=True).click()
    expect(page.get_by_role("heading", name="Reconsideration request submitted")).to_be_visible()
    number = page.get_by_label("Request number", exact=True).inner_text()
    [entry] = payerhub_sandbox.state.ledger_entries(reference="PH-REF-BROWSER")
    assert entry.appeal_number == number and entry.letter_sha256 == hashlib.sha256(PDF).hexdigest()
    assert entry.reason == "medical_necessity"


# -- what the claim step asks: level, denial date, member, billing NPI, dates of service, amount -----


def find_for_request(hub: Hub, claim: Claim, **changes: str) -> httpx.Response:
    assert claim.plan
    choose_plan(hub, REQUEST, claim.plan)
    return hub.post("btnFindClaim", {"txtClaimNumber": claim.claim_number, **claim_step(**changes)})


def test_the_ledger_keeps_every_field_of_the_claim_step_under_the_shared_names(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    today = datetime.now(UTC).date()
    request = fill_request(hub, claim, "PH-FORM-1")
    shown = text_of(hub.last) if hub.last else ""
    assert (
        "Appeal level First-level appeal" in shown
        and f"Denial date {us(today - timedelta(days=10))}" in shown
    )
    hub.post("btnSubmit", request["fields"], files=request["files"])
    [entry] = payerhub_sandbox.state.ledger_entries(reference="PH-FORM-1")
    assert entry.form == {
        "level": "first_level",
        "denial_date": (today - timedelta(days=10)).isoformat(),  # typed MM/DD/YYYY, kept ISO
        "member_id": "BLH004200017",
        "billing_npi": "1234567893",
        "service_from": (today - timedelta(days=40)).isoformat(),
        "service_to": (today - timedelta(days=38)).isoformat(),
        "disputed_amount": "1125.50",  # typed "$1,125.5"
    }
    # the dates of service and the amount are optional: a request without them keeps none
    blank = {"txtServiceFrom": "", "txtServiceTo": "", "txtDisputedAmount": ""}
    find_for_request(hub, claim, ddlLevel="EXTERNAL", **blank)
    hub.post("btnSubmit", {**request["fields"], "txtReference": "PH-FORM-2"}, files=request["files"])
    [kept] = payerhub_sandbox.state.ledger_entries(reference="PH-FORM-2")
    assert set(kept.form) == {"level", "denial_date", "member_id", "billing_npi"}
    assert kept.form["level"] == "external_review"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ddlLevel": ""}, "Select an appeal level."),
        ({"txtDenialDate": ""}, "Enter the denial date as MM/DD/YYYY."),
        ({"txtDenialDate": "31/12/2026"}, "Enter the denial date as MM/DD/YYYY."),
        ({"txtDenialDate": "12/31/2099"}, "The denial date cannot be in the future."),
        ({"txtMemberId": ""}, "Enter the member ID."),
        ({"txtBillingNpi": ""}, "The billing provider NPI must be 10 digits."),
        ({"txtBillingNpi": "123456789"}, "The billing provider NPI must be 10 digits."),
        ({"txtBillingNpi": "12345678AB"}, "The billing provider NPI must be 10 digits."),
        ({"txtServiceFrom": "last week"}, "Enter the dates of service as MM/DD/YYYY."),
        ({"txtServiceFrom": "", "txtServiceTo": "01/02/2026"}, "Enter the first date of service."),
        ({"txtServiceFrom": "01/03/2026", "txtServiceTo": "01/02/2026"}, "The last date of service cannot"),
        ({"txtDisputedAmount": "12.345"}, "Enter the amount in dispute in dollars and cents."),
        ({"txtDisputedAmount": "-5"}, "Enter the amount in dispute in dollars and cents."),
    ],
)
def test_a_missing_or_invalid_field_is_refused_in_payerhub_words_at_the_claim_step(
    hub: Hub,
    payerhub_sandbox: SandboxPortal,
    payerhub_account: SandboxAccount,
    changes: dict[str, str],
    message: str,
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    page = find_for_request(hub, claim, **changes)
    assert page.status_code == 200 and 'role="alert"' in page.text
    assert message in text_of(page)
    assert "Reason for reconsideration" not in text_of(page)  # still the claim step: no request form
    assert "btnSubmit" not in hub.names()


def test_an_appeal_level_the_page_did_not_offer_is_an_invalid_postback(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount
) -> None:
    sign_in(hub, payerhub_account)
    page = find_for_request(hub, denied(payerhub_sandbox), ddlLevel="APPEAL9")
    assert page.status_code == 500 and POSTBACK_ERROR in page.text


@pytest.mark.parametrize(
    ("level", "days"), [("RECON", 65), ("APPEAL1", 120), ("APPEAL2", 60), ("EXTERNAL", 120)]
)
def test_a_request_past_the_levels_filing_limit_is_refused_and_the_last_day_is_taken(
    hub: Hub, payerhub_sandbox: SandboxPortal, payerhub_account: SandboxAccount, level: str, days: int
) -> None:
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    today = datetime.now(UTC).date()
    late = find_for_request(hub, claim, ddlLevel=level, txtDenialDate=us(today - timedelta(days=days + 1)))
    assert f"The filing limit for this request has passed ({days} days from the denial)." in text_of(late)
    assert "btnSubmit" not in hub.names()
    last_day = find_for_request(hub, claim, ddlLevel=level, txtDenialDate=us(today - timedelta(days=days)))
    assert "Reason for reconsideration" in text_of(last_day)


def test_the_filing_limit_is_checked_again_on_the_day_of_the_submit(
    hub: Hub,
    payerhub_sandbox: SandboxPortal,
    payerhub_account: SandboxAccount,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A claim found on the request's last day and submitted the next is refused, nothing recorded."""
    claim = denied(payerhub_sandbox)
    sign_in(hub, payerhub_account)
    today = datetime.now(UTC).date()
    find_for_request(hub, claim, ddlLevel="RECON", txtDenialDate=us(today - timedelta(days=65)))
    assert "btnSubmit" in hub.names()

    class Tomorrow(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Tomorrow:  # type: ignore[override]
            return cls.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

    monkeypatch.setattr("sandbox.payerhub.reconsideration.datetime", Tomorrow)
    fields = {"ddlReason": "OTHER", "txtExplanation": "x", "txtReference": "PH-MIDNIGHT", "chkCertify": "on"}
    refused = hub.post("btnSubmit", fields, files={"fuLetter": ("l.pdf", PDF, "application/pdf")})
    assert "The filing limit for this request has passed (65 days from the denial)." in text_of(refused)
    assert payerhub_sandbox.state.ledger_entries(reference="PH-MIDNIGHT") == []
