"""Page fingerprints (controls by role and name, frames included), how two compare, and how the last
good look of a page is kept and chosen."""

from __future__ import annotations

from playwright.sync_api import Page

from scenarios.baselines import MAX_STATES, closest, merge_states, page_key
from scenarios.fingerprint import diff, page_fingerprint, reduce_aria


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
