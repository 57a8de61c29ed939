"""Page fingerprints (controls by role and name, frames included), how two compare, and how the last
good look of a page is kept and chosen."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from bot.db import PageFingerprint, make_engine, utcnow
from bot.migrate import upgrade
from bot.recording.baselines import MAX_STATES, closest, merge_states, page_key
from bot.recording.fingerprint import diff, page_fingerprint, reduce_aria
from sandbox.bluepeak.api import COOKIE
from tests.fixtures.db import PG_ADMIN_URL
from tests.fixtures.sandbox import SandboxPortal, canary_account, canary_claim


def test_fingerprint_keeps_controls_and_headings_drops_text_and_reads_yaml_quoted_names() -> None:
    snapshot = "\n".join(
        [
            '- heading "Claim status" [level=1]',
            "- text: Patient Jane Doe, born 01/02/1960",
            '- textbox "Claim number"',
            "- 'textbox \"Prescription #\"'",  # YAML quotes a name holding "#" or ": "
            "- 'button \"Patient''s chart: open\"'",
            '- button "Search"',
            '- button "Search"',
            "- paragraph: some words",
        ]
    )
    assert reduce_aria(snapshot) == [
        'heading "Claim status"',
        'textbox "Claim number"',
        'textbox "Prescription #"',
        'button "Patient\'s chart: open"',
        'button "Search"',
    ]


def test_diff_reads_a_control_gone_and_one_of_its_role_come_as_a_rename() -> None:
    good = ['heading "Review"', 'checkbox "I confirm"', 'button "Submit appeal"', 'link "Help"']
    now = ['heading "Review"', 'checkbox "I confirm"', 'button "Send request"', 'link "Help"', 'link "Chat"']
    change = diff(good, now)
    assert change.changed
    assert change.lines() == ['button "Submit appeal" is now "Send request"', 'new: link "Chat"']
    assert not diff(good, list(good)).changed


def test_page_fingerprint_includes_the_controls_inside_frames(page: Page) -> None:
    page.set_content(
        '<nav aria-label="Menu"><a href="#c">Claim Inquiry</a></nav>'
        "<iframe title='Work area' srcdoc=\"<form role=search><label for=r>Rx number</label>"
        '<input id=r><button>Search</button></form>"></iframe>'
    )
    page.frame_locator("iframe").get_by_role("button", name="Search").wait_for()
    found = page_fingerprint(page)
    assert {'navigation "Menu"', 'link "Claim Inquiry"', 'textbox "Rx number"', 'button "Search"'} <= set(
        found
    )


def test_a_page_is_keyed_by_its_kind_not_the_record_it_shows() -> None:
    assert page_key("/app/claims/2d2ae8b6ced6") == "/app/claims/:id"
    assert page_key("/claims") == "/claims"
    assert page_key("/appeals/new/review") == "/appeals/new/review"


def test_last_good_keeps_recent_distinct_states_and_picks_the_closest() -> None:
    form = ['heading "Claim status"', 'textbox "Claim number"', 'button "Search"']
    results = [*form, 'heading "Patient"', 'table "Adjustment and remark codes"']
    states = merge_states([form], [results, form])
    assert states == [results, form]
    assert closest(states, ['heading "Claim status"', 'textbox "Claim ID"', 'button "Find"']) == form
    assert closest(states, [*results[:-1], 'table "Codes"']) == results
    assert closest([], form) is None
    many = merge_states([], [[f'button "{i}"'] for i in range(MAX_STATES + 3)])
    assert len(many) == MAX_STATES and many[0] == ['button "0"']


# A page of Playwright's ARIA snapshot as a portal shows it: a menu (a list in a navigation), a
# search form, a history table, a list of records, a layout table around a form, a pager.
RECORDS_PAGE = """\
- navigation "Main":
  - list:
    - listitem:
      - link "Claims":
        - /url: /claims
    - listitem:
      - link "Appeal history":
        - /url: /appeals
- heading "Claim MH2026000123" [level=1]
- search:
  - textbox "Claim number": MH2026000123
  - button "Search"
- table "Submitted appeals":
  - rowgroup:
    - row "Reference Appeal number Patient Submitted":
      - columnheader "Reference"
      - columnheader "Appeal number"
      - columnheader "Patient"
      - columnheader "Submitted"
  - rowgroup:
    - row "REF-77 MA-104455 Mara Okafor Mar 3, 2026":
      - cell "REF-77":
        - link "REF-77":
          - /url: /appeals/1
      - cell "MA-104455"
      - cell "Mara Okafor":
        - button "Mara Okafor"
      - cell "Mar 3, 2026"
    - row "REF-78 MA-104456 Zora Brightwater Mar 4, 2026":
      - rowheader "REF-78":
        - heading "Zora Brightwater" [level=3]
      - 'cell "Brightwater, Zora: see chart"':
        - checkbox "Zora Brightwater"
- list "Recent patients":
  - listitem:
    - link "Luca Montoya":
      - /url: /patients/9
  - listitem:
    - link "Okafor, Mara":
- table:
  - rowgroup:
    - row "Member ID":
      - cell "Member ID"
      - cell:
        - textbox "Member ID"
- link "billing@clinic.example":
  - /url: mailto:billing@clinic.example
- button "Seen Dec 29, 2025"
- navigation "Pagination":
  - button "Page 2"
  - text: Page 1 of 6
  - button "Next"
"""


def test_reduce_aria_keeps_the_structure_of_a_table_and_a_list_but_not_the_records_they_show() -> None:
    assert reduce_aria(RECORDS_PAGE) == [
        'navigation "Main"',
        'link "Claims"',  # a menu is a list in a navigation: its links are controls, not records
        'link "Appeal history"',
        'heading "Claim #"',
        'textbox "Claim number"',
        'button "Search"',
        'table "Submitted appeals"',
        'columnheader "Reference"',
        'columnheader "Appeal number"',
        'columnheader "Patient"',
        'columnheader "Submitted"',
        "link",  # inside a row or a list item: the role stays, the record's value does not
        "button",
        "heading",
        "checkbox",
        "table",
        'textbox "Member ID"',  # a field in a layout table keeps its label
        'link "#"',  # an e-mail
        'button "Seen #"',  # a date
        'navigation "Pagination"',
        'button "Page #"',
        'button "Next"',
    ]
    kept = " ".join(reduce_aria(RECORDS_PAGE))
    for value in ("MH2026", "REF-7", "MA-1044", "Okafor", "Brightwater", "Montoya", "billing@", "2025"):
        assert value not in kept


def test_a_renamed_control_still_reads_as_a_rename_and_a_record_row_never_names_a_value() -> None:
    good = reduce_aria('- textbox "Claim number"\n- button "Page 2"\n- heading "Claim MH2026000123"')
    now = reduce_aria('- textbox "Claim ID"\n- button "Page 3"\n- heading "Claim MH2026000999"')
    assert diff(good, now).lines() == ['textbox "Claim number" is now "Claim ID"']
    table = '- table "Claims":\n  - row "x":\n    - cell "BP-1":\n      - link "{}"'
    change = diff(reduce_aria(table.format("BP-1")), reduce_aria(table.format("BP-2") + '\n- link "Help"'))
    assert change.lines() == ['new: link "Help"']  # not a rename of a nameless link


@pytest.fixture
def bluepeak_page(page: Page, bluepeak_sandbox: SandboxPortal) -> Page:
    """A browser signed in to BluePeak (over plain HTTP: signing in through the pages has its tests)."""
    account = canary_account(bluepeak_sandbox.state)
    with httpx.Client(base_url=bluepeak_sandbox.url) as client:
        question = client.post(
            "/api/login", json={"username": account.username, "password": account.password}
        )
        answer = account.security_answers[question.json()["question"]]
        assert client.post("/api/login/answer", json={"answer": answer}).status_code == 200
        assert client.post("/api/terms").status_code == 200
        session = client.cookies[COOKIE]
    page.context.add_cookies([{"name": COOKIE, "value": session, "url": bluepeak_sandbox.url}])
    page.set_default_timeout(5_000)
    return page


def _date_spellings(day: date) -> set[str]:
    return {day.isoformat(), f"{day:%m/%d/%Y}", f"{day:%b %d, %Y}", f"{day:%B} {day.day}"}


def test_a_real_list_and_record_page_keep_their_controls_and_no_number_name_or_date(
    bluepeak_page: Page, bluepeak_sandbox: SandboxPortal
) -> None:
    state = bluepeak_sandbox.state
    claim = canary_claim(state, "Not covered", newest=True)  # heads the list's first page
    page = bluepeak_page
    seen: dict[str, list[str]] = {}
    page.goto(f"{bluepeak_sandbox.url}/app/claims")
    expect(page.get_by_role("link", name=claim.claim_number)).to_be_visible()
    seen["claims"] = page_fingerprint(page)
    page.get_by_role("link", name=claim.claim_number).click()
    expect(page.get_by_role("heading", name=f"Claim {claim.claim_number}")).to_be_visible()
    expect(page.get_by_text(claim.patient.name)).to_be_visible()
    seen["claim"] = page_fingerprint(page)
    page.goto(f"{bluepeak_sandbox.url}/app/pa")
    expect(page.get_by_role("table", name="Prior authorizations").get_by_role("link").first).to_be_visible()
    seen["pas"] = page_fingerprint(page)

    values = {*state.claims, *state.pas, claim.patient.name, claim.patient.last_name}
    values |= {p.name for p in state.patients} | _date_spellings(claim.service_date)
    for name, found in seen.items():
        text = "\n".join(found)
        leaked = sorted(v for v in values if v in text)
        assert not leaked, f"{name}: the fingerprint holds {leaked[:3]}"
        assert not re.search(r"\d", text), f"{name}: the fingerprint holds a digit: {found}"
    assert {
        'link "Claims"',
        'link "Prior authorizations"',
        'button "Sign out"',
        'heading "Claims"',
        'searchbox "Member ID"',
        'button "Search"',
        'table "Claims"',
        'columnheader "Claim number"',
        'columnheader "Service date"',
        'button "Next"',
        "link",
    } <= set(seen["claims"])
    assert {'heading "Claim #"', 'heading "Patient"', 'heading "Claim details"'} <= set(seen["claim"])
    assert {'table "Prior authorizations"', 'columnheader "Authorization number"'} <= set(seen["pas"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) on each engine, to migrate step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    admin = request.getfixturevalue("pg_admin")
    name = f"payerbot_m_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migration_0002_drops_the_fingerprints_kept_with_record_values(fresh_db_url: str) -> None:
    engine = make_engine(fresh_db_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                sa.insert(PageFingerprint.__table__).values(
                    payer="bluepeak",
                    url_path="/app/pa",
                    states=[['link "BPA-940893"']],
                    run_id="r1",
                    seen_at=utcnow(),
                )
            )
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM page_fingerprints")).scalar() == 0
    finally:
        engine.dispose()
