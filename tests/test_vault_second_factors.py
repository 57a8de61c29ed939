"""Security questions, out-of-band codes from an inbox, and the lockout flag."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.code_inbox import HttpCodeInbox
from bot.errors import (
    AccountDisabled,
    CodeInboxMissing,
    ConfigError,
    PortalTimeout,
    UnknownSecondFactorPrompt,
    VaultError,
)
from tests.code_inbox_support import Inbox, serve_inbox
from vault import InboxSource, Vault


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with serve_inbox() as running:
        yield running


def source(inbox: Inbox | str, clock: ManualClock, **options: Any) -> InboxSource:
    """The vault's poll of ``inbox`` (a relay, or a URL template), configured as a deployment would."""
    url = inbox if isinstance(inbox, str) else inbox.template()
    config = HttpCodeInbox.model_validate({"source": "http", "url": url, "code_field": "code", **options})
    return InboxSource(config, where="the code inbox for acme/oob", clock=clock)


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
    polls = source(inbox, vault_clock, wait_seconds=60, poll_seconds=2)
    code = vault.login_secrets("acme", "oob", out_of_band=polls).one_time_code
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
        "acme", "oob", out_of_band=source(inbox, vault_clock, wait_seconds=30, poll_seconds=5)
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
    polls = source(
        "http://127.0.0.1:9/codes/{username}",
        vault_clock,
        wait_seconds=10,
        poll_seconds=5,
        request_timeout_seconds=1,
    )
    code = vault.login_secrets("acme", "oob", out_of_band=polls).one_time_code
    with pytest.raises(PortalTimeout, match="within 10 s"):
        code()  # type: ignore[misc]


def test_the_deadline_bounds_the_wait_even_between_polls(
    vault: Vault, inbox: Inbox, vault_clock: ManualClock
) -> None:
    """A 10 s wait polled every 4 s asks at 0, 4, 8 and 10 s, then gives up: never past the deadline."""
    add_oob(vault)
    code = vault.login_secrets(
        "acme", "oob", out_of_band=source(inbox, vault_clock, wait_seconds=10, poll_seconds=4)
    ).one_time_code
    assert code is not None
    inbox.requests.clear()
    start = vault_clock.now()
    with pytest.raises(PortalTimeout, match=r"within 10 s \(the code inbox for acme/oob; last poll: "):
        code()
    assert vault_clock.now() - start == timedelta(seconds=10)
    assert len(inbox.requests) == 4


def test_a_code_in_a_nested_field_is_found_by_the_configured_pattern(
    vault: Vault, inbox: Inbox, vault_clock: ManualClock
) -> None:
    add_oob(vault)
    messages: dict[str, str] = {}
    inbox.answer = lambda user: {"data": {"latest": {"body": messages.get(user)}}}
    polls = source(
        inbox, vault_clock, code_field="data.latest.body", code_pattern=r"code is (\d{6})", poll_seconds=1
    )
    code = vault.login_secrets("acme", "oob", out_of_band=polls).one_time_code
    assert code is not None
    messages["desk@clinic.test"] = "Your RxPress security code is 604518. Do not share it."
    assert code() == "604518"


def test_a_pattern_alone_reads_a_plain_text_answer(
    vault: Vault, inbox: Inbox, vault_clock: ManualClock
) -> None:
    add_oob(vault)
    text: dict[str, str] = {}
    inbox.answer = lambda user: text.get(user, "")  # a JSON string: the pattern reads the raw answer
    polls = source(inbox, vault_clock, code_field=None, code_pattern=r"\b(\d{6})\b", poll_seconds=1)
    code = vault.login_secrets("acme", "oob", out_of_band=polls).one_time_code
    assert code is not None
    text["desk@clinic.test"] = "Security code 771203 for desk@clinic.test"
    assert code() == "771203"


def test_an_answer_that_holds_no_code_is_never_typed(
    vault: Vault, inbox: Inbox, vault_clock: ManualClock
) -> None:
    """A field that holds a whole message (the pattern forgotten) is not a code: the poll waits it out."""
    add_oob(vault)
    inbox.codes["desk@clinic.test"] = "Your security code is 482913"
    code = vault.login_secrets(
        "acme", "oob", out_of_band=source(inbox, vault_clock, wait_seconds=4, poll_seconds=2)
    ).one_time_code
    with pytest.raises(PortalTimeout, match="last poll: its answer held no code where the entry says"):
        code()  # type: ignore[misc]


def test_the_relay_token_is_sent_and_a_token_file_others_can_read_is_refused_unasked(
    vault: Vault, inbox: Inbox, vault_clock: ManualClock, tmp_path: Path
) -> None:
    add_oob(vault)
    token = tmp_path / "relay.token"
    token.write_text("relay-token-5f2c9e\n", encoding="utf-8")
    token.chmod(0o644)
    with pytest.raises(CodeInboxMissing, match=r"acme/oob: its bearer_token_file .* mode 0644.*chmod 600"):
        source(inbox, vault_clock, bearer_token_file=str(token))
    assert inbox.requests == []  # refused before anything was asked

    token.chmod(0o600)
    polls = source(inbox, vault_clock, bearer_token_file=str(token), poll_seconds=1)
    code = vault.login_secrets("acme", "oob", out_of_band=polls).one_time_code
    inbox.codes["desk@clinic.test"] = "553190"
    assert code is not None and code() == "553190"
    assert set(inbox.authorizations) == {"Bearer relay-token-5f2c9e"}


def test_a_redirect_is_not_followed(vault: Vault, vault_clock: ManualClock) -> None:
    """A redirect could lead off the configured origin or onto plain http: its target is never asked."""
    add_oob(vault)
    with serve_inbox() as relay, serve_inbox() as elsewhere:
        elsewhere.codes["desk@clinic.test"] = "900417"
        relay.redirect_to = f"{elsewhere.url}/codes/desk%40clinic.test"
        polls = source(relay, vault_clock, wait_seconds=4, poll_seconds=2)
        code = vault.login_secrets("acme", "oob", out_of_band=polls).one_time_code
        with pytest.raises(PortalTimeout, match="last poll: it answered HTTP 302"):
            code()  # type: ignore[misc]
        assert relay.requests and elsewhere.requests == []


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
