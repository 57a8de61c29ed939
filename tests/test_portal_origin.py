"""Credentials go only to the account's own origin.

The portal URL is sealed with the account, so a database writer who rewrites
``accounts.portal_url`` (or copies another account's sealed URL) gets no request at all: the
account is disabled and its items go to a person. No secret is typed into a page, or a frame, of
another origin. A login URL (portal, payer default, inbox) must be https unless its host is loopback.

Real parts: the sandbox portals over HTTP, real Chromium, SQLite (PostgreSQL where the queue runs
in process), worker processes, and a loopback HTTP receiver standing in for the attacker's page.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, FrameLocator, Page
from typer.testing import CliRunner

import portals
from bot.cli import app, common
from bot.errors import ConfigError, SecretOriginMismatch, UntrustedPortalUrl
from bot.origin import origin_of
from bot.services import build_services
from bot.session import AccountSession
from bot.settings import load_settings
from bot.steps import StepRecorder
from bot.worker import Worker
from portals.meridian import MeridianPortal
from sandbox import SandboxAccount
from tests.e2e_support import (
    Workspace,
    audit_rows,
    enqueue_status,
    item_rows,
    login_posts,
    make_workspace,
    run_worker,
    seed_account,
)
from tests.fixtures.sandbox import SandboxPortal, canary_account, canary_claim, login_secrets
from vault import Keyring, Vault

# -- a receiver on loopback: the attacker's page ---------------------------------------------------

SIGN_IN_FORM = b"""<!doctype html><title>Sign in</title>
<form method="post" action="/login">
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button>Sign in</button></form>"""
SIGN_IN_REFUSED = b"""<!doctype html><title>Sign in</title><div role="alert">Sign-in failed</div>"""


class Receiver:
    """A threaded loopback HTTP server that writes down every request it gets.

    ``phish`` serves a sign-in form like Meridian's; ``redirect`` sends every path to ``target``
    (a login that moves to another origin); ``frame`` serves a page whose sign-in form is an
    iframe of ``target`` (a field in a document of another origin), or of its own ``/login``."""

    def __init__(self, mode: str = "phish", target: str = "") -> None:
        self.requests: list[tuple[str, str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver.requests.append(("GET", self.path, ""))
                if mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", target + self.path)
                    self.end_headers()
                    return
                framed_here = not target and self.path.startswith("/login")  # the frame's own form
                if mode == "frame" and not framed_here:
                    body = f'<!doctype html><iframe title="Sign in" src="{target}/login"></iframe>'.encode()
                else:
                    body = SIGN_IN_FORM
                self._answer(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(("POST", self.path, self.rfile.read(length).decode()))
                self._answer(SIGN_IN_REFUSED)

            def _answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def ws(tmp_path: Path, sqlite_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, sqlite_url)
    workspace.config.update(record="never", action_timeout_ms=5_000, navigation_timeout_ms=10_000)
    yield workspace
    workspace.dispose()


@pytest.fixture
def any_db_ws(tmp_path: Path, db_url: str) -> Iterator[Workspace]:
    workspace = make_workspace(tmp_path, db_url)
    workspace.config.update(record="never", action_timeout_ms=5_000, navigation_timeout_ms=10_000)
    yield workspace
    workspace.dispose()


def drain(ws: Workspace, browser: Browser) -> None:
    """One in-process worker (the test's Chromium) until nothing is due."""
    services = build_services(ws.settings(), engine=ws.engine)
    Worker(services, browser, owner="test-worker").drain()


def status_items(ws: Workspace, portal: SandboxPortal, account: str, count: int = 2) -> list[int]:
    claims = [canary_claim(portal.state, "Paid").claim_number for _ in range(count)]
    return enqueue_status(ws, portal.state.payer_id, account, claims)


def assert_handed_to_a_person(ws: Workspace, ids: list[int], account: str, reason: str, kind: str) -> None:
    """Every item needs a person with the reason, the account is disabled, the audit says why."""
    rows = item_rows(ws, ids)
    assert [r["state"] for r in rows] == ["needs_human"] * len(ids), [
        (r["state"], r["last_error"]) for r in rows
    ]
    assert all(reason in (r["last_error"] or "") for r in rows), [r["last_error"] for r in rows]
    info = ws.vault().account("meridian", account)
    assert not info.enabled and reason in (info.disabled_reason or ""), info
    [refused] = audit_rows(ws, action="login", outcome="untrusted_origin", account=account)
    assert json.loads(refused["detail"])["error_kind"] == kind
    assert len(audit_rows(ws, action="account_disabled", account=account)) == 1
    assert len(audit_rows(ws, action="human_handoff", account=account)) == len(ids)


# -- the sealed URL --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_portal_url_rewritten_in_the_database_gets_no_request_and_goes_to_a_person(
    ws: Workspace, meridian_sandbox: SandboxPortal, receiver: Receiver
) -> None:
    portal = meridian_sandbox
    account, login = seed_account(ws, portal.state)
    ids = status_items(ws, portal, account)
    with ws.engine.begin() as conn:  # an upstream system (or anyone who can write the database)
        conn.execute(
            sa.text("UPDATE accounts SET portal_url = :u WHERE account = :a"),
            {"u": receiver.url, "a": account},
        )

    run = run_worker(ws)

    assert run.returncode == 0, run.describe()
    assert receiver.requests == []
    assert login_posts(portal.state, login.username) == 0
    assert_handed_to_a_person(ws, ids, account, "is not the URL sealed", "UntrustedPortalUrl")


def test_a_sealed_url_copied_from_another_account_does_not_open(
    any_db_ws: Workspace, browser: Browser, meridian_sandbox: SandboxPortal, receiver: Receiver
) -> None:
    ws, portal = any_db_ws, meridian_sandbox
    account, login = seed_account(ws, portal.state)
    other = canary_account(portal.state)
    ws.vault().add_account(
        "meridian", "other", username=other.username, password=other.password, portal_url=receiver.url
    )
    ids = status_items(ws, portal, account)
    with ws.engine.begin() as conn:  # the other account's sealed URL row, copied, and the column to match
        row = conn.execute(
            sa.text(
                "SELECT key_id, ciphertext FROM vault_records "
                "WHERE account = 'other' AND field = 'portal_url'"
            )
        ).one()
        conn.execute(
            sa.text(
                "UPDATE vault_records SET key_id = :k, ciphertext = :c "
                "WHERE account = :a AND field = 'portal_url'"
            ),
            {"k": row.key_id, "c": row.ciphertext, "a": account},
        )
        conn.execute(
            sa.text("UPDATE accounts SET portal_url = :u WHERE account = :a"),
            {"u": receiver.url, "a": account},
        )

    drain(ws, browser)

    assert receiver.requests == []
    assert login_posts(portal.state, login.username) == 0
    assert_handed_to_a_person(ws, ids, account, "failed authentication", "UntrustedPortalUrl")


def test_an_account_stored_before_urls_were_sealed_is_refused_until_vault_update_seals_it(
    ws: Workspace, browser: Browser, meridian_sandbox: SandboxPortal
) -> None:
    portal = meridian_sandbox
    account, login = seed_account(ws, portal.state)
    ids = status_items(ws, portal, account, 1)
    with ws.engine.begin() as conn:  # what an account added before this change looks like
        conn.execute(
            sa.text("DELETE FROM vault_records WHERE account = :a AND field = 'portal_url'"), {"a": account}
        )

    drain(ws, browser)

    assert login_posts(portal.state, login.username) == 0
    command = f"payerbot vault update meridian {account} --url"
    assert_handed_to_a_person(ws, ids, account, command, "UntrustedPortalUrl")

    # the operator checks the URL and seals it, enables the account and retries: it works again
    ws.vault().update_secrets("meridian", account, portal_url=portal.url)
    ws.vault().enable("meridian", account)
    ws.queue().retry(ids[0], actor="operator")
    drain(ws, browser)
    assert [r["state"] for r in item_rows(ws, ids)] == ["done"]
    assert login_posts(portal.state, login.username) == 1


def test_a_session_handed_a_url_off_the_sealed_origin_refuses_before_any_request(
    ws: Workspace, browser: Browser, meridian_sandbox: SandboxPortal, receiver: Receiver
) -> None:
    """What a live replay does: it builds the session from the account row; the session itself
    refuses a URL whose origin is not the sealed one."""
    account, login = seed_account(ws, meridian_sandbox.state)
    services = build_services(ws.settings(), engine=ws.engine)
    session = AccountSession(
        browser=browser,
        portal_cls=MeridianPortal,
        portal_url=receiver.url,
        payer="meridian",
        account=account,
        vault=services.vault,
        audit=services.audit,
        settings=services.settings,
    )
    with pytest.raises(UntrustedPortalUrl, match="is not on the sealed origin"):
        session.ensure()
    assert receiver.requests == []
    assert login_posts(meridian_sandbox.state, login.username) == 0
    assert not ws.vault().account("meridian", account).enabled


class PlainHttpPortal(MeridianPortal):
    """Meridian's pages under a payer whose default URL is plain http to a remote host."""

    payer_id = "plainhttp"
    default_url = "http://portal.plainhttp.invalid"


def test_a_payer_default_url_over_plain_http_is_refused_at_run_time(
    ws: Workspace, browser: Browser, meridian_sandbox: SandboxPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(portals.registry(), PlainHttpPortal.payer_id, PlainHttpPortal)
    login = canary_account(meridian_sandbox.state)
    ws.vault().add_account("plainhttp", "desk", username=login.username, password=login.password)
    claim = canary_claim(meridian_sandbox.state, "Paid").claim_number
    ids = enqueue_status(ws, "plainhttp", "desk", [claim])

    drain(ws, browser)

    [row] = item_rows(ws, ids)
    assert (row["state"], row["last_error_kind"]) == ("needs_human", "UntrustedPortalUrl"), row
    assert "https://" in row["last_error"]
    assert not ws.vault().account("plainhttp", "desk").enabled


# -- the typing guard --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["redirect", "frame"])
def test_a_login_form_on_another_origin_gets_no_secret(
    page: Page, meridian_sandbox: SandboxPortal, meridian_account: SandboxAccount, mode: str
) -> None:
    """``redirect``: the login page moved to another origin; ``frame``: the right page, but the
    field is in an iframe of another origin. Either way nothing is typed and nothing is posted."""
    with Receiver(mode, target=meridian_sandbox.url) as sealed:
        steps = StepRecorder(page)
        for secret in (meridian_account.username, meridian_account.password):
            steps.add_secret(secret, origin=origin_of(sealed.url))
        if mode == "redirect":
            with pytest.raises(SecretOriginMismatch, match="not the account's origin"):
                MeridianPortal(page, sealed.url, steps).login(login_secrets(meridian_account))
            assert origin_of(page.url) == origin_of(meridian_sandbox.url)
            form: Page | FrameLocator = page
        else:
            page.goto(sealed.url + "/login")
            form = page.frame_locator("iframe")
            with pytest.raises(SecretOriginMismatch, match="not the account's origin"):
                steps.fill(form.get_by_label("Username", exact=True), meridian_account.username)
        assert steps.steps[-1].outcome == "failed"
        assert form.get_by_label("Username", exact=True).input_value() == ""
        assert form.get_by_label("Password", exact=True).input_value() == ""
        assert login_posts(meridian_sandbox.state, meridian_account.username) == 0
        steps.fill(form.get_by_label("Username", exact=True), "not-a-secret")  # anything else is typed
        assert form.get_by_label("Username", exact=True).input_value() == "not-a-secret"


def test_a_secret_is_typed_into_a_frame_of_the_sealed_origin(page: Page) -> None:
    """Old framed portals (RxPress's work area) keep working: a same-origin frame is the origin."""
    with Receiver("frame") as sealed:
        steps = StepRecorder(page)
        steps.add_secret("frame-secret-5d1e", origin=origin_of(sealed.url))
        page.goto(sealed.url + "/")
        field = page.frame_locator("iframe").get_by_label("Password", exact=True)
        steps.fill(field, "frame-secret-5d1e")
        assert field.input_value() == "frame-secret-5d1e"


def test_a_login_redirected_to_another_origin_disables_the_account_and_types_nothing(
    ws: Workspace, browser: Browser, meridian_sandbox: SandboxPortal
) -> None:
    portal = meridian_sandbox
    with Receiver("redirect", target=portal.url) as sealed:
        login = canary_account(portal.state)
        account = "redirected"
        ws.vault().add_account(
            "meridian",
            account,
            username=login.username,
            password=login.password,
            second_factor="totp",
            totp_secret=login.totp_secret,
            portal_url=sealed.url,
        )
        ids = status_items(ws, portal, account)
        drain(ws, browser)

    assert login_posts(portal.state, login.username) == 0
    assert [r[:2] for r in sealed.requests] == [("GET", "/login")]  # then the redirect, and no more
    assert_handed_to_a_person(ws, ids, account, "not the account's origin", "SecretOriginMismatch")


@pytest.mark.parametrize("payer", ["rxpress", "bluepeak"])
def test_logins_with_a_code_or_an_answer_pass_the_guard_on_their_own_origin(
    ws: Workspace, browser: Browser, sandbox: Any, payer: str
) -> None:
    """A regression guard: RxPress (code from the inbox) and BluePeak (security answer) log in with
    every secret registered; the Meridian login runs through the guard in the worker tests."""
    state = sandbox.portal(payer)
    login = canary_account(state)
    ws.read_codes_from(state)
    kind = "out_of_band" if payer == "rxpress" else "security_questions"
    ws.vault().add_account(
        payer,
        "desk",
        username=login.username,
        password=login.password,
        second_factor=kind,
        answers=dict(login.security_answers) or None,
        portal_url=state.base_url,
    )
    services = build_services(ws.settings(), engine=ws.engine)
    session = AccountSession(
        browser=browser,
        portal_cls=portals.get_portal(payer),
        portal_url=state.base_url,
        payer=payer,
        account="desk",
        vault=services.vault,
        audit=services.audit,
        settings=services.settings,
    )
    session.ensure()
    assert session.logins == 1 and session.verified
    assert login_posts(state, login.username) == 1


# -- https unless loopback ---------------------------------------------------------------------------


@pytest.fixture
def vault_cli(
    sqlite_url: str, vault_keyring: Keyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("PAYERBOT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PAYERBOT_VAULT_KEY", vault_keyring.active.line())
    monkeypatch.delenv("PAYERBOT_VAULT_KEY_FILE", raising=False)
    secrets = json.dumps(
        {"username": "desk-user", "password": "desk-pass-7c1d", "totp_secret": "GEZDGNBVGY3TQOJQ"}
    )

    def invoke(*args: str) -> Any:
        common.settings.cache_clear()
        common.engine.cache_clear()
        return CliRunner().invoke(app, ["vault", *args], input=secrets)

    yield invoke
    common.engine().dispose()
    common.settings.cache_clear()
    common.engine.cache_clear()


def test_vault_add_and_update_want_https_unless_the_host_is_loopback(
    vault_cli: Any, sqlite_url: str, vault_keyring: Keyring
) -> None:
    refused = vault_cli("add", "meridian", "remote", "--url", "http://portal.example", "--stdin-json")
    assert refused.exit_code == 2, refused.output
    assert "https://" in refused.output and len(refused.output.strip().splitlines()) == 1, refused.output
    accepted = [
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost:9",
        "http://[::1]:9",
        "https://portal.example",
    ]
    for number, url in enumerate(accepted):
        added = vault_cli("add", "meridian", f"desk-{number}", "--url", url, "--stdin-json")
        assert added.exit_code == 0, (url, added.output)

    listed = json.loads(vault_cli("list", "--json").output)
    assert "remote" not in [row["account"] for row in listed]  # nothing was stored for the refused URL
    refused = vault_cli("update", "meridian", "desk-4", "--url", "http://portal.example")
    assert refused.exit_code == 2 and "https://" in refused.output, refused.output
    updated = vault_cli("update", "meridian", "desk-4", "--url", "https://new.example")
    assert updated.exit_code == 0, updated.output
    replaced = vault_cli(
        "add", "meridian", "desk-0", "--replace", "--url", "https://other.example", "--stdin-json"
    )
    assert replaced.exit_code == 0, replaced.output
    to_default = vault_cli("update", "meridian", "desk-1", "--url", "")
    assert to_default.exit_code == 0, to_default.output

    engine = common.engine()
    vault = Vault(engine, vault_keyring)
    expected = {
        "desk-0": "https://other.example",
        "desk-1": "",
        "desk-2": accepted[2],
        "desk-4": "https://new.example",
    }
    for account, url in expected.items():
        assert vault.sealed_portal_url("meridian", account) == url
        assert vault.account("meridian", account).portal_url == (url or None)


def test_a_code_inbox_over_plain_http_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    def inbox_at(url: str) -> str:
        return json.dumps({"rxpress": {"source": "http", "url": url, "code_field": "code"}})

    monkeypatch.setenv("PAYERBOT_CODE_INBOXES", inbox_at("http://example.com/codes/{username}"))
    with pytest.raises(ConfigError, match=r"PAYERBOT_CODE_INBOXES: .*rxpress: url must use https://"):
        load_settings()
    for url in ("http://127.0.0.1:8025", "http://localhost:8025", "https://mail.example.com"):
        monkeypatch.setenv("PAYERBOT_CODE_INBOXES", inbox_at(url + "/codes/{username}"))
        inbox = load_settings().code_inbox("rxpress", "desk")
        assert inbox is not None and inbox.url == url + "/codes/{username}"
    # the variable it replaces is refused, not silently ignored
    monkeypatch.setenv("PAYERBOT_INBOX_URL", "https://mail.example.com")
    with pytest.raises(ConfigError, match=r"PAYERBOT_INBOX_URL: .*no longer read.*PAYERBOT_CODE_INBOXES"):
        load_settings()
