"""Meridian's sandbox over real HTTP: sign-in, lookups, the appeal wizard, the ledger and the knobs."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from bot.status import CERTIFIED, HCR01, ClaimRule, Hcr01
from portals.meridian import MeridianPortal
from sandbox import SandboxAccount
from sandbox.meridian.wording import APPEAL_LEVELS, CLAIM_KINDS, FILING_LIMITS, PA_KINDS
from tests.fixtures.sandbox import SandboxPortal, canary_claim

PDF = b"%PDF-1.4\n% sandbox test letter\n"


@pytest.fixture
def meridian(meridian_sandbox: SandboxPortal) -> SandboxPortal:
    """This module's ``meridian`` is the sandbox portal, whatever other plugins call by that name."""
    return meridian_sandbox


@pytest.fixture
def client(meridian: SandboxPortal) -> httpx.Client:
    with httpx.Client(base_url=meridian.url, timeout=10) as c:
        yield c


def text_of(response: httpx.Response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))


def sign_in(client: httpx.Client, account: SandboxAccount, code: str | None = None) -> httpx.Response:
    client.post("/login", data={"username": account.username, "password": account.password})
    assert account.totp_secret
    return client.post(
        "/login/verify", data={"code": code or pyotp.TOTP(account.totp_secret).now()}, follow_redirects=True
    )


def us(days_ago: int) -> str:
    return f"{datetime.now(UTC).date() - timedelta(days=days_ago):%m/%d/%Y}"


def claim_step(claim_number: str, **fields: str) -> dict[str, str]:
    """The claim step's form: the claim, and the appeal fields Meridian requires (``fields`` replace them)."""
    form = {"level": "L1", "denial_date": us(10), "member_id": "M00001", "billing_npi": "1234567893"}
    return {"claim_number": claim_number, **form, **fields}


def submit_appeal(client: httpx.Client, claim_number: str, reference: str, **fields: str) -> httpx.Response:
    assert client.post("/appeals/new", data=claim_step(claim_number, **fields)).status_code == 303
    form = {"reason": "CE", "explanation": "Modifier 25 was documented.", "reference": reference}
    assert client.post("/appeals/new/reason", data=form).status_code == 303
    files = {
        "letter": ("letter.pdf", PDF, "application/pdf"),
        "attachments": ("notes.txt", b"n", "text/plain"),
    }
    assert client.post("/appeals/new/documents", files=files).status_code == 303
    return client.post("/appeals/new/submit", data={"confirm": "yes"})


def ledger(meridian: SandboxPortal, reference: str) -> list[dict[str, object]]:
    rows = httpx.get(f"{meridian.url}/__sandbox/ledger", params={"reference": reference}).json()
    return list(rows)


# -- sign-in --------------------------------------------------------------------------------------


def test_password_and_totp_lead_to_the_dashboard(
    client: httpx.Client, meridian_account: SandboxAccount
) -> None:
    page = sign_in(client, meridian_account)
    assert page.url.path == "/dashboard"
    assert "Welcome, Canary User" in text_of(page)


def test_totp_code_used_again_in_its_time_step_is_refused(
    client: httpx.Client, meridian_account: SandboxAccount
) -> None:
    code = pyotp.TOTP(meridian_account.totp_secret or "").now()
    assert sign_in(client, meridian_account, code).url.path == "/dashboard"
    client.get("/logout")
    again = sign_in(client, meridian_account, code)
    assert "This code has already been used" in text_of(again)
    assert client.get("/dashboard").headers["location"].startswith("/login")


def test_wrong_totp_code_is_refused(client: httpx.Client, meridian_account: SandboxAccount) -> None:
    totp = pyotp.TOTP(meridian_account.totp_secret or "")
    valid = {totp.at(time.time() + 30 * k) for k in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    page = sign_in(client, meridian_account, wrong)
    assert "The one-time code is not valid" in text_of(page)
    assert page.url.path == "/login/verify"


def test_wrong_password_is_refused_and_counted_once(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    page = client.post("/login", data={"username": meridian_account.username, "password": "wrong"})
    assert "Invalid username or password" in text_of(page)
    stats = httpx.get(f"{meridian.url}/__sandbox/stats").json()
    assert stats["login_posts"][meridian_account.username] == 1
    assert meridian_account.username not in stats["second_factor_posts"]


def test_account_is_locked_after_five_wrong_passwords(
    client: httpx.Client, meridian_account: SandboxAccount
) -> None:
    for _ in range(5):
        client.post("/login", data={"username": meridian_account.username, "password": "wrong"})
    page = client.post(
        "/login", data={"username": meridian_account.username, "password": meridian_account.password}
    )
    assert "Your account is locked" in text_of(page)
    assert "location" not in page.headers


def test_demo_accounts_sign_in(client: httpx.Client, meridian: SandboxPortal) -> None:
    demo = meridian.state.accounts["mh.viewer"]
    assert sign_in(client, demo).url.path == "/dashboard"


# -- lookups --------------------------------------------------------------------------------------


def test_claim_page_shows_patient_status_and_codes(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "Denied", carc=("50",), rarc=("N130",))
    sign_in(client, meridian_account)
    page = text_of(client.get("/claims", params={"claim_number": claim.claim_number}))
    for shown in (
        claim.patient.name,
        claim.patient.member_id,
        claim.patient.date_of_birth.strftime("%m/%d/%Y"),
    ):
        assert shown in page
    assert "Status Denied" in page
    (adjusted,) = claim.adjustments  # with its group and amount: all that was billed, not paid
    assert adjusted.amount == claim.billed and adjusted.group in {"CO", "OA", "PI"}
    words = "These are non-covered services because this is not deemed a"
    assert f"Adjustment reason {adjusted.group} 50 {words}" in page and f"${claim.billed:,.2f}" in page
    assert "Remark N130" in page


def test_unknown_claim_and_pa_say_not_found(client: httpx.Client, meridian_account: SandboxAccount) -> None:
    sign_in(client, meridian_account)
    assert "No claim found" in text_of(client.get("/claims", params={"claim_number": "MH0000000000"}))
    assert "No authorization found" in text_of(
        client.get("/authorizations", params={"pa_number": "MPA0000000"})
    )


def test_pa_page_shows_decision_and_dates(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    pa = meridian.state.add_pa("approved")
    assert pa.valid_from and pa.valid_to
    sign_in(client, meridian_account)
    page = text_of(client.get("/authorizations", params={"pa_number": pa.pa_number}))
    assert "Status Approved" in page
    assert f"Valid from {pa.valid_from:%m/%d/%Y}" in page
    assert f"Valid to {pa.valid_to:%m/%d/%Y}" in page


# -- the wizard and the ledger ----------------------------------------------------------------------


def test_ledger_records_the_appeal_with_letter_digest_and_history_shows_it(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    confirmation = submit_appeal(client, claim.claim_number, "REF-LEDGER-1")
    assert confirmation.status_code == 200
    number = re.search(r"Appeal number (MA-\d{8})", text_of(confirmation))
    assert number is not None
    [entry] = ledger(meridian, "REF-LEDGER-1")
    assert entry["appeal_number"] == number.group(1)
    assert entry["claim_number"] == claim.claim_number
    assert entry["reason"] == "coding_error"
    assert entry["letter_filename"] == "letter.pdf"
    assert entry["letter_sha256"] == hashlib.sha256(PDF).hexdigest()
    assert entry["attachments"] == ["notes.txt"]
    assert entry["username"] == meridian_account.username
    history = text_of(client.get("/appeals", params={"reference": "REF-LEDGER-1"}))
    assert f"REF-LEDGER-1 {number.group(1)} {claim.claim_number}" in history


def test_wizard_refuses_a_letter_that_is_not_a_pdf(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    client.post("/appeals/new", data=claim_step(claim.claim_number))
    client.post("/appeals/new/reason", data={"reason": "MN", "explanation": "x", "reference": "REF-NOPDF"})
    page = client.post(
        "/appeals/new/documents", files={"letter": ("letter.docx", b"PK\x03\x04", "application/pdf")}
    )
    assert "The appeal letter must be a PDF file" in text_of(page)
    assert client.get("/appeals/new/review").headers["location"] == "/appeals/new/documents"


def test_wizard_refuses_a_claim_that_is_not_finalized(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "In process")
    sign_in(client, meridian_account)
    page = client.post("/appeals/new", data={"claim_number": claim.claim_number})
    assert "This claim cannot be appealed until it is finalized" in text_of(page)


# -- knobs ------------------------------------------------------------------------------------------


def _statuses(client: httpx.Client, n: int) -> list[int]:
    return [client.get("/login").status_code for _ in range(n)]


def test_error_rate_draws_the_same_failures_for_the_same_seed(
    client: httpx.Client, meridian: SandboxPortal
) -> None:
    knobs = {"error_rate": 0.5, "error_statuses": [500, 503], "error_seed": 11}
    httpx.post(f"{meridian.url}/__sandbox/knobs", json=knobs)
    first = _statuses(client, 40)
    httpx.post(f"{meridian.url}/__sandbox/knobs", json=knobs)
    second = _statuses(client, 40)
    httpx.post(f"{meridian.url}/__sandbox/knobs", json={**knobs, "error_seed": 12})
    other = _statuses(client, 40)
    assert first == second
    assert first != other
    assert set(first) == {200, 500, 503}
    assert 8 <= sum(s != 200 for s in first) <= 32


def test_maintenance_answers_every_page_with_503(client: httpx.Client, meridian: SandboxPortal) -> None:
    meridian.state.update_knobs(maintenance=True)
    for path in ("/login", "/dashboard", "/claims", "/appeals/new"):
        page = client.get(path)
        assert page.status_code == 503
        assert "Scheduled maintenance" in page.text
    assert client.get("/__sandbox/stats").status_code == 200


def test_session_expires_after_n_authenticated_requests(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    meridian.state.update_knobs(session_expiry_requests=3)
    sign_in(client, meridian_account)  # the dashboard after sign-in is request 1
    assert client.get("/claims").status_code == 200
    assert client.get("/authorizations").status_code == 200
    expired = client.get("/claims", follow_redirects=True)
    assert expired.url.path == "/login"
    assert "Your session has expired" in text_of(expired)


def test_captcha_replaces_the_login_form_after_n_login_posts(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    meridian.state.update_knobs(captcha_after_logins=2)
    for _ in range(2):
        client.post("/login", data={"username": meridian_account.username, "password": "wrong"})
    assert "Verify you are human" in text_of(client.get("/login"))
    refused = client.post(
        "/login", data={"username": meridian_account.username, "password": meridian_account.password}
    )
    assert "Verify you are human" in text_of(refused)
    assert "location" not in refused.headers


def test_reject_password_refuses_correct_credentials(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    meridian.state.update_knobs(reject_password=True)
    page = client.post(
        "/login", data={"username": meridian_account.username, "password": meridian_account.password}
    )
    assert "Invalid username or password" in text_of(page)


def test_password_expired_is_shown_after_correct_credentials(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    meridian.state.update_knobs(password_expired=True)
    page = client.post(
        "/login", data={"username": meridian_account.username, "password": meridian_account.password}
    )
    assert "Your password has expired and must be changed" in text_of(page)


def test_record_then_fail_502_records_the_appeal_and_answers_502(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    meridian.state.update_knobs(record_then_fail="502")
    response = submit_appeal(client, claim.claim_number, "REF-502")
    assert response.status_code == 502
    assert len(ledger(meridian, "REF-502")) == 1


def test_record_then_fail_drop_records_the_appeal_and_drops_the_connection(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    meridian.state.update_knobs(record_then_fail="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        submit_appeal(client, claim.claim_number, "REF-DROP")
    assert len(ledger(meridian, "REF-DROP")) == 1


def test_slow_confirmation_records_before_it_answers(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    client.post("/appeals/new", data=claim_step(claim.claim_number))
    client.post("/appeals/new/reason", data={"reason": "MN", "explanation": "x", "reference": "REF-SLOW"})
    client.post("/appeals/new/documents", files={"letter": ("l.pdf", PDF, "application/pdf")})
    meridian.state.update_knobs(slow_confirmation_ms=2000)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/appeals/new/submit", data={"confirm": "yes"}, timeout=0.3)
    # the answer is still on its way, and the appeal is already in the ledger
    assert len(ledger(meridian, "REF-SLOW")) == 1


def test_latency_is_added_to_every_page(client: httpx.Client, meridian: SandboxPortal) -> None:
    meridian.state.update_knobs(latency_ms=250)
    started = time.monotonic()
    assert client.get("/login").status_code == 200
    assert time.monotonic() - started >= 0.25


# -- control endpoints and truth ------------------------------------------------------------------


def test_knobs_endpoint_replaces_knobs_and_names_a_bad_field(meridian: SandboxPortal) -> None:
    url = f"{meridian.url}/__sandbox/knobs"
    assert httpx.post(url, json={"redesign": "cosmetic", "latency_ms": 5}).json()["redesign"] == "cosmetic"
    assert meridian.state.knobs.latency_ms == 5
    bad = httpx.post(url, json={"error_rate": 2})
    assert bad.status_code == 422
    assert bad.json()["details"][0]["loc"] == ["error_rate"]
    unknown = httpx.post(url, json={"latency": 5})
    assert unknown.status_code == 422
    assert meridian.state.knobs.redesign == "cosmetic"  # a refused change changes nothing


def test_reset_restores_knobs_and_keeps_the_ledger_unless_all(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    submit_appeal(client, claim.claim_number, "REF-RESET")
    meridian.state.update_knobs(maintenance=True)
    httpx.post(f"{meridian.url}/__sandbox/reset")
    assert meridian.state.knobs.maintenance is False
    assert len(ledger(meridian, "REF-RESET")) == 1
    httpx.post(f"{meridian.url}/__sandbox/reset", params={"all": "1"})
    assert ledger(meridian, "REF-RESET") == []
    assert meridian.state.stats()["login_posts"] == {}


def test_canary_accounts_and_claims_can_be_added_over_http(meridian: SandboxPortal) -> None:
    made = httpx.post(f"{meridian.url}/__sandbox/accounts", json={"username": "canary-http"}).json()
    assert made["totp_secret"] and made["username"] == "canary-http"
    claim = httpx.post(f"{meridian.url}/__sandbox/claims", json={"wording": "Paid"}).json()
    assert claim["category"] == "F1" and claim["wording"] == "Paid"
    assert claim["claim_number"] in meridian.state.claims
    bad = httpx.post(f"{meridian.url}/__sandbox/claims", json={"wording": "Lost in the mail"})
    assert bad.status_code == 422 and "Lost in the mail" in bad.json()["error"]


def test_truth_gives_every_claim_and_pa_in_x12_terms(meridian: SandboxPortal) -> None:
    truth = httpx.get(f"{meridian.url}/__sandbox/truth").json()
    assert truth["payer"] == "meridian" and truth["seed"] == 7
    claims, pas = truth["claims"], truth["pas"]
    assert len(claims) >= 60 and len(pas) >= 25
    kinds = {(k.wording, k.category, k.status_code) for k in CLAIM_KINDS}
    for claim in claims:
        assert re.fullmatch(r"MH\d{10}", claim["claim_number"])
        assert (claim["wording"], claim["category"], claim["status_code"]) in kinds
        ClaimRule(category=claim["category"])  # a valid X12 category
    assert {c["wording"] for c in claims} >= {k.wording for k in CLAIM_KINDS}
    for pa in pas:
        assert re.fullmatch(r"MPA\d{7}", pa["pa_number"])
        code = Hcr01(pa["hcr01"])
        assert pa["decision"] == HCR01[code][1]
        assert (pa["valid_from"] is not None) == (code in CERTIFIED)
        assert (pa["certification_number"] is not None) == (code in CERTIFIED)
    assert {p["wording"] for p in pas} >= {k.wording for k in PA_KINDS}


def test_seeded_carc_and_rarc_codes_are_active_codes_of_the_shipped_lists(meridian: SandboxPortal) -> None:
    lists = shipped_codelists()
    claims = meridian.state.truth()["claims"]
    carc = {code for c in claims for code in c["carc"]}
    rarc = {code for c in claims for code in c["rarc"]}
    assert len(carc) >= 10 and rarc
    for system, codes in ((CodeSystem.CARC, carc), (CodeSystem.RARC, rarc)):
        for code in codes:
            found = lists.get(system, code)
            assert found is not None and found.active, f"{system} {code}"
    denied = [c for c in claims if c["category"] == "F2"]
    assert denied and all(c["carc"] for c in denied)


# -- the appeal form's fields and the filing limit --------------------------------------------------


def test_the_claim_step_records_every_appeal_field_in_the_ledger_normalized(
    client: httpx.Client, meridian: SandboxPortal, meridian_account: SandboxAccount
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    fields = {
        "level": "L2",
        "denial_date": us(30),
        "service_from": "01/05/2026",
        "service_to": "01/07/2026",
        "disputed_codes": "co-50 N115",
        "disputed_amount": "$1,125.5",
    }
    assert submit_appeal(client, claim.claim_number, "REF-FORM-1", **fields).status_code == 200
    [entry] = ledger(meridian, "REF-FORM-1")
    denied = datetime.now(UTC).date() - timedelta(days=30)
    assert entry["form"] == {
        "level": "second_level",
        "denial_date": denied.isoformat(),
        "member_id": "M00001",
        "service_from": "2026-01-05",
        "service_to": "2026-01-07",
        "billing_npi": "1234567893",
        "disputed_codes": "CO-50, N115",
        "disputed_amount": "1125.50",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"level": ""}, "Choose the appeal level"),
        ({"level": "L9"}, "Choose the appeal level"),
        ({"denial_date": ""}, "Enter the denial date"),
        ({"denial_date": "2026-01-05"}, "Enter the denial date as MM/DD/YYYY"),
        ({"denial_date": us(-3)}, "The denial date cannot be in the future"),
        ({"member_id": ""}, "Enter the member ID"),
        ({"billing_npi": ""}, "Enter the billing provider NPI"),
        ({"billing_npi": "123456789"}, "The billing provider NPI must be 10 digits"),
        ({"service_from": "13/45/2026"}, "Enter the service date as MM/DD/YYYY"),
        ({"service_from": "01/07/2026", "service_to": "01/05/2026"}, "cannot be before the service date"),
        ({"disputed_amount": "a lot"}, "Enter the amount in dispute in dollars and cents"),
        ({"disputed_codes": "fifty"}, "Enter the denial codes as CARC or RARC codes"),
    ],
)
def test_the_claim_step_refuses_a_missing_or_invalid_field_in_its_own_words(
    client: httpx.Client,
    meridian: SandboxPortal,
    meridian_account: SandboxAccount,
    fields: dict[str, Any],
    message: str,
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    page = client.post("/appeals/new", data=claim_step(claim.claim_number, **fields))
    assert page.status_code == 200 and message in text_of(page)  # the claim step again, with its alert
    assert client.get("/appeals/new/reason").headers["location"] == "/appeals/new"


@pytest.mark.parametrize(("value", "label", "level"), APPEAL_LEVELS)
def test_a_late_appeal_is_refused_with_meridians_filing_limit_and_nothing_is_recorded(
    client: httpx.Client,
    meridian: SandboxPortal,
    meridian_account: SandboxAccount,
    value: str,
    label: str,
    level: str,
) -> None:
    claim = canary_claim(meridian.state, "Denied")
    sign_in(client, meridian_account)
    limit = FILING_LIMITS[level]
    before = len(meridian.state.ledger)
    late = client.post(
        "/appeals/new", data=claim_step(claim.claim_number, level=value, denial_date=us(limit + 1))
    )
    assert (
        f"The filing limit for this appeal has passed: {label} requests must be received within {limit} days"
        " of the denial date." in text_of(late)
    )
    assert client.get("/appeals/new/reason").headers["location"] == "/appeals/new"  # no step further
    on_time = client.post(
        "/appeals/new", data=claim_step(claim.claim_number, level=value, denial_date=us(limit))
    )
    assert on_time.status_code == 303  # the last day of the limit is still in time
    assert len(meridian.state.ledger) == before


def test_the_sandboxs_filing_limits_agree_with_the_portal_modules_deadlines() -> None:
    """Written apart (the payer's words in the sandbox, the bot's declaration in the module)."""
    assert {level: days for level, days in MeridianPortal.filing_deadline_days.items()} == FILING_LIMITS
    assert {level for _, _, level in APPEAL_LEVELS} == set(FILING_LIMITS)
