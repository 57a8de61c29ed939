"""Out-of-band login codes come from the inbox configured for the payer (``PAYERBOT_CODE_INBOXES``),
never from a path written into the code: a relay at its own path, with its own answer shape, is the
one read; a payer that e-mails codes and has no inbox configured sends no request to its portal and
hands its items to a person with the setting named.

Real parts: the RxPress sandbox over HTTP, real Chromium, SQLite, and a relay on loopback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from typer.testing import CliRunner

import portals
from bot.cli import app as cli_app
from bot.errors import ConfigError
from bot.models import NewItem, WorkKind
from bot.services import build_services
from bot.session import AccountSession
from bot.settings import load_settings
from bot.worker import Worker
from sandbox import SandboxAccount, payer_ids
from tests.code_inbox_support import Inbox, serve_inbox
from tests.e2e_support import (
    Workspace,
    account_row,
    audit_rows,
    item_rows,
    login_posts,
    make_workspace,
)
from tests.fixtures.sandbox import SandboxPortal, canary_claim


@pytest.fixture
def ws(tmp_path: Path, sqlite_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, sqlite_url)
    workspace.config.update(record="never", action_timeout_ms=5_000, navigation_timeout_ms=10_000)
    yield workspace
    workspace.dispose()


@pytest.fixture
def relay() -> Iterator[Inbox]:
    with serve_inbox() as running:
        yield running


def add_desk(ws: Workspace, portal: SandboxPortal, login: SandboxAccount) -> None:
    ws.vault().add_account(
        "rxpress",
        "desk",
        username=login.username,
        password=login.password,
        second_factor="out_of_band",
        portal_url=portal.url,
    )


def session_for(ws: Workspace, browser: Browser, portal: SandboxPortal, **settings: Any) -> AccountSession:
    services = build_services(ws.settings(**settings), engine=ws.engine)
    return AccountSession(
        browser=browser,
        portal_cls=portals.get_portal("rxpress"),
        portal_url=portal.url,
        payer="rxpress",
        account="desk",
        vault=services.vault,
        audit=services.audit,
        settings=services.settings,
    )


def test_the_code_is_read_from_the_relay_configured_at_its_own_path(
    ws: Workspace,
    browser: Browser,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
    relay: Inbox,
) -> None:
    """A relay that forwards the portal's e-mail as text, under a path of its own: the code is found
    in the configured JSON field by the configured pattern, and the relay is the only inbox asked."""

    def forwarded_mail(username: str) -> dict[str, Any]:
        sent = rxpress_sandbox.state.inbox.latest(username)
        text = f"Your RxPress security code: {sent.code}. It expires in 5 minutes." if sent else None
        return {"message": {"subject": "RxPress sign-in", "text": text}}

    relay.answer = forwarded_mail
    add_desk(ws, rxpress_sandbox, rxpress_account)
    inbox = {
        "source": "http",
        "url": relay.template(),
        "code_field": "message.text",
        "code_pattern": r"security code: (\d{6})",
        "wait_seconds": 15,
        "poll_seconds": 0.2,
    }
    session = session_for(ws, browser, rxpress_sandbox, code_inboxes={"rxpress": inbox})

    session.ensure()

    assert session.verified and session.logins == 1
    assert relay.requests and set(relay.requests) == {rxpress_account.username}
    assert rxpress_sandbox.state.stats()["second_factor_posts"][rxpress_account.username] == 1


def test_an_account_entry_wins_over_its_payers(
    ws: Workspace,
    browser: Browser,
    rxpress_sandbox: SandboxPortal,
    rxpress_account: SandboxAccount,
    relay: Inbox,
) -> None:
    """``rxpress/desk`` names the account's own mailbox; the payer's entry (unreachable) is not asked."""
    relay.answer = lambda username: {"code": rxpress_sandbox.state.inbox.latest(username).code}  # type: ignore[union-attr]
    add_desk(ws, rxpress_sandbox, rxpress_account)
    inboxes = {
        "rxpress": {"source": "http", "url": "http://127.0.0.1:9/nowhere/{username}", "code_field": "code"},
        "rxpress/desk": {
            "source": "http",
            "url": relay.template(),
            "code_field": "code",
            "wait_seconds": 15,
            "poll_seconds": 0.2,
        },
    }
    session = session_for(ws, browser, rxpress_sandbox, code_inboxes=inboxes)

    session.ensure()

    assert session.verified and set(relay.requests) == {rxpress_account.username}


def test_a_payer_that_e_mails_codes_with_no_inbox_configured_goes_to_a_person_unrequested(
    ws: Workspace, browser: Browser, rxpress_sandbox: SandboxPortal, rxpress_account: SandboxAccount
) -> None:
    """No inbox for RxPress: not one request to the portal (no login POST that would spend one of
    the account's tries), every item to a person with the setting named, the account left enabled."""
    add_desk(ws, rxpress_sandbox, rxpress_account)
    claims = [canary_claim(rxpress_sandbox.state) for _ in range(2)]
    report = ws.queue().enqueue(
        [
            NewItem(
                kind=WorkKind.CLAIM_STATUS,
                payer="rxpress",
                account="desk",
                payload={"claim_number": c.claim_number, "fill_date": c.service_date.isoformat()},
                idempotency_key=f"status-{c.claim_number}",
            )
            for c in claims
        ]
    )
    assert report.ok, report.rejected
    ids = report.queued
    before = rxpress_sandbox.state.stats()["requests"]

    services = build_services(ws.settings(), engine=ws.engine)
    Worker(services, browser, owner="test-worker").drain()

    rows = item_rows(ws, ids)
    assert [(r["state"], r["last_error_kind"]) for r in rows] == [("needs_human", "CodeInboxMissing")] * 2
    assert all("PAYERBOT_CODE_INBOXES" in (r["last_error"] or "") for r in rows), rows
    assert rxpress_sandbox.state.stats()["requests"] == before
    assert login_posts(rxpress_sandbox.state, rxpress_account.username) == 0
    assert account_row(ws, "rxpress", "desk")["enabled"]  # nothing wrong with the account itself
    assert len(audit_rows(ws, action="human_handoff", account="desk")) == 2


# -- the setting -------------------------------------------------------------------------------------


def inboxes_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: object) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("PAYERBOT_CODE_INBOXES", value if isinstance(value, str) else json.dumps(value))


def relay_entry(**fields: Any) -> dict[str, Any]:
    return {"source": "http", "url": "https://relay.example/codes/{username}", "code_field": "code", **fields}


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (relay_entry(url="https://{username}.relay.example/codes"), "not in its host or fragment"),
        (relay_entry(url="https://relay.example/codes#{username}"), "not in its host or fragment"),
        (relay_entry(url="https://relay.example/codes/latest"), "must hold {username} exactly once"),
        (relay_entry(url="https://relay.example/{mailbox}/{username}"), "no placeholder but {username}"),
        (relay_entry(url="http://relay.example/codes/{username}"), "must use https://"),
        (relay_entry(url="https://relay:secret@relay.example/{username}"), "must not carry a user name"),
        (relay_entry(code_field=None), "names no way to find the code"),
        (relay_entry(code_pattern=r"(\d+)-(\d+)"), "more than one group"),
        (relay_entry(code_pattern="(unclosed"), "is not a regular expression"),
        (relay_entry(wait_seconds=5, poll_seconds=10), "poll_seconds is longer than wait_seconds"),
        (relay_entry(wait_seconds=0), "wait_seconds: Input should be greater than 0"),
        (relay_entry(source="imap"), "source: Input should be 'http'"),
        (relay_entry(mailbox="INBOX"), "mailbox: Extra inputs are not permitted"),
    ],
)
def test_a_bad_inbox_entry_stops_the_program_naming_the_variable_and_the_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entry: dict[str, Any], problem: str
) -> None:
    inboxes_env(monkeypatch, tmp_path, {"rxpress": entry})
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert message.startswith("bad configuration: PAYERBOT_CODE_INBOXES: ") and "rxpress" in message, message
    assert problem in message and len(message.splitlines()) == 1, message
    assert "secret" not in message  # a URL's password is never repeated


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{rxpress: 1}", "is not JSON"),
        ('["rxpress"]', "must be a JSON object"),
        ({"RxPress": relay_entry()}, "'RxPress' is not a payer id or payer/account"),
    ],
)
def test_a_bad_inbox_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: object, problem: str
) -> None:
    inboxes_env(monkeypatch, tmp_path, value)
    with pytest.raises(ConfigError, match=rf"PAYERBOT_CODE_INBOXES: .*{re.escape(problem)}"):
        load_settings()


def test_an_account_entry_is_found_before_its_payers_and_other_payers_have_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    payer_wide = relay_entry(url="https://relay.example/pharmacy/{username}")
    own = relay_entry(url="http://127.0.0.1:8025/desk?u={username}", code_field=None, code_pattern=r"\d{6}")
    inboxes_env(monkeypatch, tmp_path, {"rxpress": payer_wide, "rxpress/desk one": own})
    settings = load_settings()
    found = {account: settings.code_inbox("rxpress", account) for account in ("desk one", "billing")}
    assert {a: i.url if i else None for a, i in found.items()} == {
        "desk one": own["url"],
        "billing": payer_wide["url"],
    }
    assert settings.code_inbox("meridian", "desk one") is None
    billing = found["billing"]
    assert billing is not None and (billing.wait_seconds, billing.poll_seconds) == (120, 2)  # the defaults


def test_the_sandbox_cli_prints_its_inbox_as_the_setting_a_deployment_would_write(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rows = json.loads(
        CliRunner().invoke(cli_app, ["sandbox", "accounts", "--json", "--port-base", "8400"]).stdout
    )
    port = 8400 + payer_ids().index("rxpress")
    assert {r["payer"] for r in rows if r["code_inbox"]} == {"rxpress"}  # the one payer that e-mails codes
    assert all(
        r["code_inbox"]["url"] == f"http://127.0.0.1:{port}/__sandbox/inbox/{{username}}"
        for r in rows
        if r["payer"] == "rxpress"
    )

    shown = CliRunner().invoke(cli_app, ["sandbox", "accounts", "--port-base", "8400"]).stdout
    [line] = [line for line in shown.splitlines() if line.startswith("export PAYERBOT_CODE_INBOXES=")]
    inboxes_env(monkeypatch, tmp_path, line.removeprefix("export PAYERBOT_CODE_INBOXES=").strip("'"))
    inbox = load_settings().code_inbox("rxpress", "rxpress-pharmacy")
    assert inbox is not None and inbox.origin == f"http://127.0.0.1:{port}"
