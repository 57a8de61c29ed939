"""Security questions, out-of-band codes from an inbox, and the lockout flag."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.errors import AccountDisabled, ConfigError, PortalTimeout, UnknownSecondFactorPrompt, VaultError
from vault import InboxSource, Vault


@dataclass
class Inbox:
    """A tiny stand-in for the sandbox's ``/__sandbox/inbox/{username}``: serves whatever the test
    puts in it, after an optional number of empty answers, and counts requests per username."""

    url: str = ""
    codes: dict[str, str] = field(default_factory=dict)
    empty_polls: int = 0
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    state = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            prefix = "/__sandbox/inbox/"
            if not self.path.startswith(prefix):
                self.send_error(404)
                return
            user = unquote(self.path.removeprefix(prefix))
            state.requests.append(user)
            if state.empty_polls > 0:
                state.empty_polls -= 1
                self.send_error(404)
                return
            body = json.dumps({"code": state.codes.get(user)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


# --- security questions ---------------------------------------------------------------------


def test_a_known_question_is_answered_however_it_is_spelled(vault: Vault) -> None:
    vault.add_account(
        "acme",
        "sq",
        username="u",
        password="p",
        second_factor="security_questions",
        answers={"In what city were you born?": "Springfield", "Name of your first school?": "Lincoln"},
    )
    answer = vault.login_secrets("acme", "sq").answer
    assert answer("In what city were you born?") == "Springfield"
    assert answer("  in what CITY were you   born ") == "Springfield"
    assert answer("Name of your first school:") == "Lincoln"


def test_an_unknown_question_names_the_account_and_the_question(vault: Vault) -> None:
    vault.add_account(
        "acme", "sq", username="u", password="p", second_factor="security_questions", answers={"Q one?": "a1"}
    )
    answer = vault.login_secrets("acme", "sq").answer
    with pytest.raises(
        UnknownSecondFactorPrompt, match=r"acme/sq.*'What is your favourite food\?'"
    ) as caught:
        answer("What is your favourite food?")
    assert "a1" not in str(caught.value)


def test_security_questions_need_an_answer(vault: Vault) -> None:
    with pytest.raises(VaultError, match="needs at least one question"):
        vault.add_account("acme", "sq", username="u", password="p", second_factor="security_questions")


# --- out of band ----------------------------------------------------------------------------


def add_oob(vault: Vault) -> None:
    vault.add_account("acme", "oob", username="desk@clinic.test", password="p", second_factor="out_of_band")


def test_the_inbox_code_arrives_after_some_polls(
    vault: Vault, inbox: Inbox, vault_clock: ManualClock
) -> None:
    add_oob(vault)
    source = InboxSource(inbox.url, clock=vault_clock, timeout=60, poll_every=2)
    code = vault.login_secrets("acme", "oob", out_of_band=source).one_time_code
    assert code is not None

    inbox.codes["desk@clinic.test"] = "482913"
    inbox.empty_polls = 3
    before = vault_clock.now()

    assert code() == "482913"
    assert vault_clock.now() - before == timedelta(seconds=6)  # three empty polls, 2 s apart
    assert set(inbox.requests) == {"desk@clinic.test"}  # the vault bound the source to the username


def test_a_code_already_in_the_inbox_before_login_is_skipped_as_stale(
    vault: Vault, inbox: Inbox, vault_clock: ManualClock
) -> None:
    add_oob(vault)
    inbox.codes["desk@clinic.test"] = "111111"  # left over from an earlier login
    code = vault.login_secrets(
        "acme", "oob", out_of_band=InboxSource(inbox.url, clock=vault_clock, timeout=30, poll_every=5)
    ).one_time_code
    assert code is not None
    start = vault_clock.now()

    with pytest.raises(PortalTimeout, match=r"no new one-time code arrived .* within 30 s"):
        code()
    assert vault_clock.now() - start == timedelta(seconds=30)

    inbox.codes["desk@clinic.test"] = "222222"
    assert code() == "222222"
    inbox.requests.clear()
    with pytest.raises(PortalTimeout):
        code()  # the same code is never handed out twice
    assert len(inbox.requests) == 7  # bounded: one poll per 5 s of a 30 s deadline


def test_an_unreachable_inbox_times_out_instead_of_crashing(vault: Vault, vault_clock: ManualClock) -> None:
    add_oob(vault)
    source = InboxSource("http://127.0.0.1:9", clock=vault_clock, timeout=10, poll_every=5, request_timeout=1)
    code = vault.login_secrets("acme", "oob", out_of_band=source).one_time_code
    with pytest.raises(PortalTimeout, match="within 10 s"):
        code()  # type: ignore[misc]


def test_a_plain_callable_serves_as_the_out_of_band_source(vault: Vault) -> None:
    add_oob(vault)
    assert vault.login_secrets("acme", "oob", out_of_band=lambda: "654321").one_time_code() == "654321"  # type: ignore[misc]


def test_an_out_of_band_account_without_a_source_is_a_config_error(vault: Vault) -> None:
    add_oob(vault)
    with pytest.raises(ConfigError, match="acme/oob gets its one-time code out of band"):
        vault.login_secrets("acme", "oob")


# --- lockout --------------------------------------------------------------------------------


def test_disable_survives_a_new_vault_and_blocks_login(
    engine: Engine, vault: Vault, vault_clock: ManualClock
) -> None:
    vault.add_account("acme", "a1", username="u", password="p")
    vault.disable("acme", "a1", "LoginRejected: the portal said the password is wrong")

    restarted = Vault(engine, vault.keyring)
    assert restarted.is_enabled("acme", "a1") is False
    info = restarted.account("acme", "a1")
    assert info.disabled_reason == "LoginRejected: the portal said the password is wrong"
    assert info.disabled_at == vault_clock.now()
    with pytest.raises(AccountDisabled, match=r"acme/a1 is disabled .*payerbot vault enable acme a1"):
        restarted.login_secrets("acme", "a1")

    restarted.enable("acme", "a1")
    assert Vault(engine, vault.keyring).is_enabled("acme", "a1")
    assert restarted.account("acme", "a1").disabled_reason is None
    assert restarted.login_secrets("acme", "a1").password.get_secret_value() == "p"


def test_replacing_secrets_keeps_the_lockout_until_enabled(vault: Vault) -> None:
    vault.add_account("acme", "a1", username="u", password="old")
    vault.disable("acme", "a1", "password rejected")
    vault.update_secrets("acme", "a1", password="new")
    assert not vault.is_enabled("acme", "a1")
    vault.enable("acme", "a1")
    assert vault.login_secrets("acme", "a1").password.get_secret_value() == "new"
