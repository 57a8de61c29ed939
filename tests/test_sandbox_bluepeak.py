"""BluePeak's sandbox over real HTTP: the shell, the JSON API's sign-in with a security question,
paginated lists, the terms gate, appeals, the ledger and the knobs."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.codelists import shipped_codelists
from bot.models import CodeSystem
from bot.status import HCR01, ClaimRule, Hcr01
from portals.bluepeak import BluePeakPortal
from sandbox import SandboxAccount
from sandbox.bluepeak.api import PAGE_SIZE, TERMS_EVERY, recent_claims, record_id
from sandbox.bluepeak.wording import APPEAL_LEVELS, CLAIM_KINDS, FILING_LIMITS, PA_KINDS, SECURITY_QUESTIONS
from tests.fixtures.sandbox import SandboxPortal, canary_claim

PDF = b"%PDF-1.4\n% sandbox test letter\n"


@pytest.fixture
def bluepeak(bluepeak_sandbox: SandboxPortal) -> SandboxPortal:
    return bluepeak_sandbox


@pytest.fixture
def client(bluepeak: SandboxPortal) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bluepeak.url, timeout=10) as c:
        yield c


def sign_in(client: httpx.Client, account: SandboxAccount, *, terms: bool = True) -> str:
    """Password, then the question asked; returns the question. Accepts the terms when asked."""
    first = client.post("/api/login", json={"username": account.username, "password": account.password})
    assert first.status_code == 200, first.text
    question = first.json()["question"]
    answered = client.post("/api/login/answer", json={"answer": account.security_answers[question]})
    assert answered.status_code == 200, answered.text
    if terms:
        client.post("/api/terms")
    return question


def get(client: httpx.Client, path: str, **params: object) -> httpx.Response:
    """A data view, accepting the terms of use when they stand in the way (as a person would)."""
    response = client.get(path, params=params)
    if response.status_code == 409:
        assert response.json()["error"] == "terms_required"
        assert client.post("/api/terms").status_code == 200
        response = client.get(path, params=params)
    return response


def days_ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def required(**fields: str) -> dict[str, str]:
    """The appeal fields BluePeak requires (``fields`` add to or replace them)."""
    form = {
        "level": "appeal-1",
        "denial_date": days_ago(10),
        "member_id": "M00001",
        "billing_npi": "1234567893",
    }
    return {**form, **fields}


def submit(
    client: httpx.Client, claim_number: str, reference: str, letter: bytes = PDF, **fields: str
) -> httpx.Response:
    data = {
        "claim": record_id(claim_number),
        "reason": "coding",
        "explanation": "Modifier 25 was documented.",
        "reference": reference,
        **required(**fields),
    }
    files = [
        ("letter", ("letter.pdf", letter, "application/pdf")),
        ("attachments", ("notes.pdf", PDF, "application/pdf")),
    ]
    return client.post("/api/appeals", data=data, files=files)


# -- the shell ------------------------------------------------------------------------------------


def test_every_app_path_gets_the_shell_with_the_redesigns_words(
    client: httpx.Client, bluepeak: SandboxPortal
) -> None:
    for path in ("/app", "/app/claims", "/app/claims/abc123", "/app/pa", "/app/appeals", "/app/login"):
        page = client.get(path)
        assert page.status_code == 200 and '<script src="/static/app.js"' in page.text, path
    assert "function route()" in client.get("/static/app.js").text

    def config() -> dict[str, object]:
        found = re.search(
            r'<script id="bp-config" type="application/json">(.*?)</script>', client.get("/app").text
        )
        assert found is not None
        return dict(json.loads(found.group(1)))

    assert config()["words"]["submit_appeal"] == "Submit appeal"  # type: ignore[index]
    bluepeak.state.update_knobs(redesign="renamed")
    assert config()["words"]["submit_appeal"] == "Send request"  # type: ignore[index]
    assert config()["redesign"] == "renamed"


# -- sign-in --------------------------------------------------------------------------------------


def test_password_then_the_asked_question_answered_in_any_case_signs_in(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    assert 2 <= len(bluepeak_account.security_answers) <= 3
    assert set(bluepeak_account.security_answers) <= set(SECURITY_QUESTIONS)
    assert client.get("/api/session").json()["signed_in"] is False
    first = client.post(
        "/api/login", json={"username": bluepeak_account.username, "password": bluepeak_account.password}
    )
    question = first.json()["question"]
    assert question in bluepeak_account.security_answers
    assert client.get("/api/claims").status_code == 401  # not yet: the question is unanswered
    shouted = "  " + bluepeak_account.security_answers[question].upper() + " "
    assert client.post("/api/login/answer", json={"answer": shouted}).json() == {"user": "Canary User"}
    session = client.get("/api/session").json()
    assert session["signed_in"] is True and session["user"] == "Canary User"
    stats = bluepeak.state.stats()
    assert stats["login_posts"][bluepeak_account.username] == 1
    assert stats["second_factor_posts"][bluepeak_account.username] == 1


def test_the_question_varies_between_logins_and_is_seeded(bluepeak: SandboxPortal) -> None:
    account = bluepeak.state.add_account("bp-http-questions")
    asked = []
    for _ in range(6):
        with httpx.Client(base_url=bluepeak.url) as c:
            asked.append(sign_in(c, account, terms=False))
    assert len(set(asked)) >= 2
    assert set(asked) <= set(account.security_answers)
    # an account given no answers gets them derived from the seed, like a TOTP secret
    assert bluepeak.state.payer.security_answers("bp-http-questions", 7) == account.security_answers
    assert bluepeak.state.payer.security_answers("bp-http-questions", 8) != account.security_answers


def test_wrong_answer_is_refused_and_the_session_stays_unsigned(
    client: httpx.Client, bluepeak_account: SandboxAccount
) -> None:
    client.post(
        "/api/login", json={"username": bluepeak_account.username, "password": bluepeak_account.password}
    )
    refused = client.post("/api/login/answer", json={"answer": "definitely not it"})
    assert refused.status_code == 401
    assert refused.json()["message"] == "That answer does not match our records"
    assert client.get("/api/session").json()["signed_in"] is False


def test_wrong_password_is_refused_and_counted_once_without_a_question(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    refused = client.post("/api/login", json={"username": bluepeak_account.username, "password": "nope"})
    assert refused.status_code == 401
    assert refused.json()["message"] == "Invalid username or password"
    assert "bp_sid" not in client.cookies
    stats = bluepeak.state.stats()
    assert stats["login_posts"][bluepeak_account.username] == 1
    assert bluepeak_account.username not in stats["second_factor_posts"]


def test_demo_accounts_sign_in_with_their_listed_answers(
    client: httpx.Client, bluepeak: SandboxPortal
) -> None:
    demo = bluepeak.state.accounts["bp.billing"]
    assert demo.security_answers["What was the name of your first pet?"] == "Juniper"
    sign_in(client, demo)
    assert client.get("/api/session").json()["user"] == "Casey Claims"


def test_api_without_a_session_is_401_and_a_stale_session_is_expired(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    assert client.get("/api/claims").json()["error"] == "unauthenticated"
    sign_in(client, bluepeak_account)
    bluepeak.state.sessions.clear()
    expired = client.get("/api/claims")
    assert expired.status_code == 401 and expired.json()["error"] == "session_expired"
    assert client.get("/api/session").json()["expired"] is True


# -- lists, details, terms --------------------------------------------------------------------------


def test_claims_are_paginated_newest_first_and_every_claim_is_on_exactly_one_page(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    sign_in(client, bluepeak_account)
    first = get(client, "/api/claims").json()
    total, pages = first["total"], first["pages"]
    assert total >= len(bluepeak.state.claims) and pages == -(-total // PAGE_SIZE) and pages >= 5
    seen = []
    for n in range(1, pages + 1):
        page = get(client, "/api/claims", page=n).json()
        assert page["page"] == n and len(page["items"]) == (
            PAGE_SIZE if n < pages else total - PAGE_SIZE * (pages - 1)
        )
        seen += [row["claim_number"] for row in page["items"]]
    assert len(seen) == len(set(seen)) == total
    assert seen == [c.claim_number for c in recent_claims(list(bluepeak.state.claims.values()))][:total]
    assert get(client, "/api/claims", page=999).json()["page"] == pages  # clamped, not empty
    row = first["items"][0]
    assert set(row) == {"id", "claim_number", "service_date", "billed", "status"}  # no patient data in lists


def test_a_claim_added_as_newest_heads_the_first_page_whatever_else_is_dated_late(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    # ties and later dates are what made a test's claim land on page 1 or 2 by the order tests ran in
    latest = max(c.service_date for c in bluepeak.state.claims.values())
    for _ in range(PAGE_SIZE):
        canary_claim(bluepeak.state, "Not covered", service_date=latest)
    first, second = (canary_claim(bluepeak.state, "Processing", newest=True) for _ in range(2))
    assert first.service_date > latest and second.service_date > first.service_date
    sign_in(client, bluepeak_account)
    top = [row["claim_number"] for row in get(client, "/api/claims").json()["items"][:2]]
    assert top == [second.claim_number, first.claim_number]


def test_member_filter_lists_only_that_members_claims(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    patient = bluepeak.state.add_patient()
    mine = {canary_claim(bluepeak.state, "Not covered", patient=patient).claim_number for _ in range(3)}
    sign_in(client, bluepeak_account)
    listed = get(client, "/api/claims", member=patient.member_id.lower()).json()
    assert {row["claim_number"] for row in listed["items"]} == mine and listed["pages"] == 1


def test_claim_detail_by_its_opaque_id_shows_patient_status_and_described_codes(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    claim = canary_claim(bluepeak.state, "Not covered", carc=("50",), rarc=("N130",))
    sign_in(client, bluepeak_account)
    detail = get(client, f"/api/claims/{record_id(claim.claim_number)}").json()
    assert detail["status"] == "Not covered" and detail["appealable"] is True
    assert detail["patient"] == {
        "name": claim.patient.name,
        "member_id": claim.patient.member_id,
        "date_of_birth": claim.patient.date_of_birth.strftime("%b %d, %Y"),
    }
    lists = shipped_codelists()
    (adjusted,) = claim.adjustments  # all that was billed and not paid, with its group
    assert detail["codes"] == [
        {
            "type": "CARC",
            "group": adjusted.group,
            "code": "50",
            "description": lists.describe(CodeSystem.CARC, "50"),
            "amount": f"${claim.billed:,.2f}",
        },
        {
            "type": "RARC",
            "group": "",
            "code": "N130",
            "description": lists.describe(CodeSystem.RARC, "N130"),
            "amount": "",
        },
    ]
    assert detail["patient_responsibility"] == "$0.00"
    assert get(client, f"/api/claims/{claim.claim_number}").status_code == 404  # numbers are not ids


def test_pa_list_and_detail(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    pa = bluepeak.state.add_pa("approved")
    sign_in(client, bluepeak_account)
    pages = get(client, "/api/pas").json()["pages"]
    listed = [
        r["pa_number"] for n in range(1, pages + 1) for r in get(client, "/api/pas", page=n).json()["items"]
    ]
    assert pa.pa_number in listed and len(listed) == len(bluepeak.state.pas)
    detail = get(client, f"/api/pas/{record_id(pa.pa_number)}").json()
    assert detail["status"] == "Authorized"
    assert detail["valid_from"] == pa.valid_from.strftime("%b %d, %Y")  # type: ignore[union-attr]


def test_terms_of_use_block_data_views_until_accepted_and_return_every_n_views(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    sign_in(client, bluepeak_account, terms=False)
    [session] = bluepeak.state.sessions.for_user(bluepeak_account.username)
    session.data["terms_due"] = True
    blocked = client.get("/api/claims")
    assert blocked.status_code == 409 and blocked.json()["error"] == "terms_required"
    assert client.post("/api/terms").status_code == 200
    statuses = [client.get("/api/claims").status_code for _ in range(TERMS_EVERY)]
    assert statuses[: TERMS_EVERY - 1] == [200] * (TERMS_EVERY - 1)
    assert statuses[-1] == 409


def test_some_logins_must_accept_the_terms_first(bluepeak: SandboxPortal) -> None:
    account = bluepeak.state.add_account("bp-http-terms")
    due = []
    for _ in range(8):
        with httpx.Client(base_url=bluepeak.url) as c:
            sign_in(c, account, terms=False)
            due.append(c.get("/api/claims").status_code == 409)
    assert any(due) and not all(due)


# -- appeals and the ledger -------------------------------------------------------------------------


def test_appeal_is_recorded_with_letter_digest_and_history_finds_it_by_reference(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    claim = canary_claim(bluepeak.state, "Not covered")
    sign_in(client, bluepeak_account)
    answer = submit(client, claim.claim_number, "REF-BP-LEDGER")
    assert answer.status_code == 201
    number = answer.json()["appeal_number"]
    assert re.fullmatch(r"BPA-APL-\d{8}", number)
    [entry] = bluepeak.state.ledger_entries(reference="REF-BP-LEDGER")
    assert entry.appeal_number == number and entry.claim_number == claim.claim_number
    assert entry.reason == "coding_error" and entry.letter_filename == "letter.pdf"
    assert entry.letter_sha256 == hashlib.sha256(PDF).hexdigest()
    assert entry.attachments == ("notes.pdf",) and entry.username == bluepeak_account.username
    history = get(client, "/api/appeals", reference="REF-BP-LEDGER").json()["items"]
    assert [(h["appeal_number"], h["reference"], h["claim_number"]) for h in history] == [
        (number, "REF-BP-LEDGER", claim.claim_number)
    ]
    assert get(client, "/api/appeals", reference="REF-BP-NEVER").json()["items"] == []


def test_appeal_refuses_a_letter_that_is_not_a_pdf_and_a_claim_not_finalized(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    denied = canary_claim(bluepeak.state, "Not covered")
    pending = canary_claim(bluepeak.state, "Processing")
    sign_in(client, bluepeak_account)
    not_pdf = submit(client, denied.claim_number, "REF-BP-ZIP", letter=b"PK\x03\x04")
    assert not_pdf.status_code == 422 and "must be a PDF" in not_pdf.json()["message"]
    too_early = submit(client, pending.claim_number, "REF-BP-EARLY")
    assert too_early.status_code == 422 and "cannot be appealed" in too_early.json()["message"]
    assert bluepeak.state.ledger_entries(reference="REF-BP-ZIP") == []
    assert bluepeak.state.ledger_entries(reference="REF-BP-EARLY") == []


# -- knobs on the API -----------------------------------------------------------------------------


def test_maintenance_answers_api_and_shell_with_503_and_retry_after(
    client: httpx.Client, bluepeak: SandboxPortal
) -> None:
    bluepeak.state.update_knobs(maintenance=True)
    for path in ("/app/claims", "/api/session", "/api/claims", "/static/app.js"):
        answer = client.get(path)
        assert answer.status_code == 503 and answer.headers["retry-after"], path
    assert client.get("/__sandbox/stats").status_code == 200


def test_error_rate_fails_api_responses_the_same_way_for_the_same_seed(
    client: httpx.Client, bluepeak: SandboxPortal
) -> None:
    knobs = {"error_rate": 0.5, "error_statuses": [500, 502], "error_seed": 3}
    runs = []
    for seed in (3, 3, 4):
        bluepeak.state.set_knobs({**knobs, "error_seed": seed})
        runs.append([client.get("/api/session").status_code for _ in range(30)])
    assert runs[0] == runs[1] != runs[2]
    assert set(runs[0]) == {200, 500, 502}


def test_session_expires_after_n_authenticated_requests(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    sign_in(client, bluepeak_account)  # accepting the terms is request 1
    bluepeak.state.update_knobs(session_expiry_requests=3)
    assert get(client, "/api/claims").status_code == 200
    assert get(client, "/api/pas").status_code == 200
    expired = client.get("/api/claims")
    assert expired.status_code == 401 and expired.json()["error"] == "session_expired"


def test_captcha_after_n_logins_refuses_even_correct_credentials(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    bluepeak.state.update_knobs(captcha_after_logins=2)
    for _ in range(2):
        client.post("/api/login", json={"username": bluepeak_account.username, "password": "wrong"})
    assert client.get("/api/session").json()["captcha"] is True
    refused = client.post(
        "/api/login", json={"username": bluepeak_account.username, "password": bluepeak_account.password}
    )
    assert refused.status_code == 403 and refused.json()["error"] == "captcha"


@pytest.mark.parametrize(
    ("knob", "status", "error"),
    [("reject_password", 401, "invalid_credentials"), ("password_expired", 403, "password_expired")],
)
def test_password_knobs_refuse_correct_credentials(
    client: httpx.Client,
    bluepeak: SandboxPortal,
    bluepeak_account: SandboxAccount,
    knob: str,
    status: int,
    error: str,
) -> None:
    bluepeak.state.update_knobs(**{knob: True})
    answer = client.post(
        "/api/login", json={"username": bluepeak_account.username, "password": bluepeak_account.password}
    )
    assert answer.status_code == status and answer.json()["error"] == error


def test_record_then_fail_records_the_appeal_and_breaks_the_answer(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    claim = canary_claim(bluepeak.state, "Not covered")
    sign_in(client, bluepeak_account)
    bluepeak.state.update_knobs(record_then_fail="502")
    assert submit(client, claim.claim_number, "REF-BP-502").status_code == 502
    bluepeak.state.update_knobs(record_then_fail="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        submit(client, claim.claim_number, "REF-BP-DROP")
    assert len(bluepeak.state.ledger_entries(reference="REF-BP-502")) == 1
    assert len(bluepeak.state.ledger_entries(reference="REF-BP-DROP")) == 1


def test_slow_confirmation_records_before_it_answers_and_latency_slows_the_api(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    claim = canary_claim(bluepeak.state, "Not covered")
    sign_in(client, bluepeak_account)
    bluepeak.state.update_knobs(slow_confirmation_ms=2000)
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            "/api/appeals",
            data={
                "claim": record_id(claim.claim_number),
                "reason": "other",
                "explanation": "x",
                "reference": "REF-BP-SLOW",
                **required(),
            },
            files={"letter": ("l.pdf", PDF, "application/pdf")},
            timeout=0.3,
        )
    assert len(bluepeak.state.ledger_entries(reference="REF-BP-SLOW")) == 1
    bluepeak.state.update_knobs(latency_ms=250)
    started = time.monotonic()
    assert client.get("/api/session").status_code == 200
    assert time.monotonic() - started >= 0.25


# -- truth ----------------------------------------------------------------------------------------


def test_truth_gives_every_claim_and_pa_in_x12_terms_with_bluepeak_numbers(bluepeak: SandboxPortal) -> None:
    truth = httpx.get(f"{bluepeak.url}/__sandbox/truth").json()
    assert truth["payer"] == "bluepeak"
    kinds = {(k.wording, k.category, k.status_code) for k in CLAIM_KINDS}
    for claim in truth["claims"]:
        assert re.fullmatch(r"BP-\d{9}", claim["claim_number"])
        assert (claim["wording"], claim["category"], claim["status_code"]) in kinds
        ClaimRule(category=claim["category"])  # a valid X12 category
    assert {c["wording"] for c in truth["claims"]} >= {k.wording for k in CLAIM_KINDS}
    for pa in truth["pas"]:
        assert re.fullmatch(r"BPA-\d{6}", pa["pa_number"])
        assert pa["decision"] == HCR01[Hcr01(pa["hcr01"])][1]
    assert {p["wording"] for p in truth["pas"]} >= {k.wording for k in PA_KINDS}


def test_seeded_codes_are_active_codes_of_the_shipped_lists(bluepeak: SandboxPortal) -> None:
    lists = shipped_codelists()
    claims = bluepeak.state.truth()["claims"]
    for system, key in ((CodeSystem.CARC, "carc"), (CodeSystem.RARC, "rarc")):
        codes = {code for c in claims for code in c[key]}
        assert codes
        for code in codes:
            found = lists.get(system, code)
            assert found is not None and found.active, f"{system} {code}"
    assert all(c["carc"] for c in claims if c["category"] == "F2")


# -- the appeal dialog's fields and the filing limit ------------------------------------------------


def test_the_appeal_records_every_dialog_field_in_the_ledger_normalized(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount
) -> None:
    claim = canary_claim(bluepeak.state, "Not covered")
    sign_in(client, bluepeak_account)
    fields = {
        "level": "recon",
        "service_from": "2026-01-05",
        "service_to": "2026-01-07",
        "disputed_amount": "$1,125.5",
    }
    assert submit(client, claim.claim_number, "REF-BP-FORM", **fields).status_code == 201
    [entry] = bluepeak.state.ledger_entries(reference="REF-BP-FORM")
    assert entry.form == {
        "level": "reconsideration",
        "denial_date": days_ago(10),
        "member_id": "M00001",
        "service_from": "2026-01-05",
        "service_to": "2026-01-07",
        "billing_npi": "1234567893",
        "disputed_amount": "1125.50",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"level": ""}, "Choose the review type"),
        ({"level": "appeal-9"}, "Choose a review type from the list"),
        ({"denial_date": ""}, "Enter the date of denial"),
        ({"denial_date": "01/05/2026"}, "Date of denial is not a date"),
        ({"denial_date": days_ago(-2)}, "The date of denial cannot be in the future"),
        ({"member_id": ""}, "Enter the member ID"),
        ({"member_id": "#"}, "Enter the member ID as it appears on the member's card"),
        ({"billing_npi": ""}, "Enter the billing NPI"),
        ({"billing_npi": "12345"}, "The billing NPI must be 10 digits"),
        ({"service_from": "2026-01-07", "service_to": "2026-01-05"}, "cannot be before the service date"),
        ({"disputed_amount": "lots"}, "Enter the amount disputed in dollars and cents"),
    ],
)
def test_the_appeal_refuses_a_missing_or_invalid_field_in_its_own_words(
    client: httpx.Client,
    bluepeak: SandboxPortal,
    bluepeak_account: SandboxAccount,
    fields: dict[str, Any],
    message: str,
) -> None:
    claim = canary_claim(bluepeak.state, "Not covered")
    sign_in(client, bluepeak_account)
    answer = submit(client, claim.claim_number, "REF-BP-BAD", **fields)
    assert answer.status_code == 422 and message in answer.json()["message"]
    assert bluepeak.state.ledger_entries(reference="REF-BP-BAD") == []


@pytest.mark.parametrize(("value", "level"), [(value, level) for value, _, level in APPEAL_LEVELS])
def test_a_late_appeal_is_refused_with_bluepeaks_filing_limit_and_nothing_is_recorded(
    client: httpx.Client, bluepeak: SandboxPortal, bluepeak_account: SandboxAccount, value: str, level: str
) -> None:
    claim = canary_claim(bluepeak.state, "Not covered")
    sign_in(client, bluepeak_account)
    days = FILING_LIMITS[level]
    late = submit(client, claim.claim_number, "REF-BP-LATE", level=value, denial_date=days_ago(days + 1))
    assert late.status_code == 422
    assert late.json() == {
        "error": "filing_limit",
        "message": f"The filing limit for this appeal has passed ({days} days from the denial).",
    }
    assert bluepeak.state.ledger_entries(reference="REF-BP-LATE") == []
    on_time = submit(client, claim.claim_number, "REF-BP-LAST-DAY", level=value, denial_date=days_ago(days))
    assert on_time.status_code == 201  # the last day of the limit is still in time


def test_the_sandboxs_filing_limits_agree_with_the_portal_modules_deadlines() -> None:
    """Written apart (the payer's words in the sandbox, the bot's declaration in the module)."""
    assert dict(BluePeakPortal.filing_deadline_days) == FILING_LIMITS
    assert {level for _, _, level in APPEAL_LEVELS} == set(FILING_LIMITS)
