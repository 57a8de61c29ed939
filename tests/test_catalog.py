"""The regression catalog: every entry in scenarios/catalog run against the sandbox portals with its
knobs, through the real worker and runner in real Chromium, each on a throwaway SQLite deployment.

One sandbox and one browser serve the whole catalog; entries that leave the login alone share one
logged-in account per payer (see ``scenarios.catalog.Logins``), so the catalog stays affordable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from bot.errors import ConfigError
from bot.models import WorkKind
from portals import payer_ids
from sandbox import SandboxServer
from scenarios.catalog import CATALOG_DIR, Entry, Logins, load_catalog, load_entry, run_entry
from scenarios.catalog.workspace import migrated_template

ENTRIES = load_catalog()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("catalog-template"))


@pytest.fixture(scope="module")
def logins() -> Logins:
    return Logins()


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_catalog_entry_ends_as_expected(
    entry: Entry, sandbox: SandboxServer, browser: Browser, template: Path, logins: Logins, tmp_path: Path
) -> None:
    result = run_entry(entry, sandbox, browser, tmp_path, template=template, logins=logins)
    assert result.passed, result.summary()


def test_catalog_covers_each_payer_action_and_failure_knob() -> None:
    """Every payer in each action and the knobs its own page objects must recognise (its sign-in,
    maintenance and error pages, both redesigns, a submit recorded then failed); every knob at least
    once. The slowest knobs (a session expiring mid-batch, a late confirmation) run once or twice."""
    everywhere = {"maintenance", "error_rate", "captcha_after_logins", "reject_password", "password_expired"}
    everywhere |= {"redesign", "record_then_fail", "latency_ms"}
    somewhere = everywhere | {"session_expiry_requests", "slow_confirmation_ms", "history_lag_requests"}
    for payer in payer_ids():
        mine = [e for e in ENTRIES if e.payer == payer]
        assert {e.kind for e in mine} == set(WorkKind), payer
        turned = {k for e in mine for k in e.knobs}
        assert everywhere <= turned, (payer, everywhere - turned)
        assert {e.knobs.get("redesign") for e in mine} >= {"cosmetic", "renamed"}, payer
    assert somewhere <= {k for e in ENTRIES for k in e.knobs}


PA = "payer: meridian\nkind: pa_status\ninput: {pa: approved}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: bad-entry\npayer: meridian\nkind: claim_status\nexpect: {state: done}\n", "input.claim"),
        (
            "name: bad-entry\npayer: meridian\nkind: claim_status\ninput: {claim: Paid}\n"
            "knobs: {redesign: upside-down}\nexpect: {state: done}\n",
            "knobs",
        ),
        ("name: bad-entry\n" + PA.replace("meridian", "nowhere") + "expect: {state: done}\n", "payer"),
        ("name: other-name\n" + PA + "expect: {state: done}\n", "name"),
        ("name: bad-entry\n" + PA + "expect: {state: won}\n", "state"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_a_bad_catalog_file_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad-entry.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as refused:
        load_entry(path)
    assert str(path) in refused.value.message


def test_checked_in_entries_are_named_after_their_files() -> None:
    assert ENTRIES, f"no entries in {CATALOG_DIR}"
    assert sorted(e.name for e in ENTRIES) == sorted(p.stem for p in CATALOG_DIR.glob("*.yaml"))
