"""Sealed records: every field kind round-trips; a wrong key, altered bytes or a moved record fail
with an error naming the record and never its value."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.errors import NotFound, RecordTampered, VaultError, VaultKeyError
from vault import Keyring, Vault, VaultKey, answer_field

PASSWORD = "CANARY-pass-4f9e1"
USERNAME = "CANARY-user-77ab"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ANSWER = "CANARY-answer-0c2d"
COOKIE = "CANARY-cookie-a91f"
QUESTION = "What was the name of your first pet?"


def add_totp_account(vault: Vault, account: str = "front-desk") -> None:
    vault.add_account(
        "acme",
        account,
        username=USERNAME,
        password=SecretStr(PASSWORD),
        second_factor="totp",
        totp_secret=TOTP_SECRET,
        answers={QUESTION: ANSWER},
        portal_url="https://portal.example.test",
    )


def ciphertext(engine: Engine, account: str, field: str) -> bytes:
    with engine.connect() as conn:
        return bytes(
            conn.execute(
                sa.text("SELECT ciphertext FROM vault_records WHERE account = :a AND field = :f"),
                {"a": account, "f": field},
            ).scalar_one()
        )


def set_ciphertext(engine: Engine, account: str, field: str, blob: bytes) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE vault_records SET ciphertext = :c WHERE account = :a AND field = :f"),
            {"c": blob, "a": account, "f": field},
        )


def test_every_field_kind_round_trips(vault: Vault) -> None:
    add_totp_account(vault)
    state = {"cookies": [{"name": "sid", "value": COOKIE}], "origins": []}
    vault.save_session("acme", "front-desk", state)

    secrets = vault.login_secrets("acme", "front-desk")
    assert secrets.username == USERNAME
    assert secrets.password.get_secret_value() == PASSWORD
    assert secrets.answer("  what was the NAME of your first pet ") == ANSWER
    assert secrets.one_time_code is not None
    assert len(secrets.one_time_code()) == 6
    assert vault.load_session("acme", "front-desk") == state

    vault.clear_session("acme", "front-desk")
    assert vault.load_session("acme", "front-desk") is None


def test_nothing_stored_in_clear(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault)
    vault.save_session("acme", "front-desk", {"cookies": [{"value": COOKIE}]})
    with engine.connect() as conn:
        blobs = [bytes(b) for b in conn.execute(sa.text("SELECT ciphertext FROM vault_records")).scalars()]
    assert len(blobs) == 6  # username, password, totp, one answer, portal URL, session
    for canary in (USERNAME, PASSWORD, TOTP_SECRET, ANSWER, COOKIE, "first pet"):
        assert all(canary.encode() not in blob for blob in blobs), canary


def test_wrong_key_with_the_same_id_names_the_record(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault)
    kid = vault.keyring.active.kid
    impostor = Vault(engine, Keyring([VaultKey(kid, b"\x01" * 32)]))

    with pytest.raises(RecordTampered) as caught:
        impostor.login_secrets("acme", "front-desk")

    message = str(caught.value)
    assert "acme/front-desk/" in message
    assert kid in message
    assert USERNAME not in message
    assert PASSWORD not in message


def test_key_missing_from_keyring_names_the_record_and_the_key(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault)
    other = Vault(engine, Keyring.generate())

    with pytest.raises(VaultKeyError, match=r"acme/front-desk/username.*sealed with key") as caught:
        other.login_secrets("acme", "front-desk")
    assert vault.keyring.active.kid in str(caught.value)


def test_a_flipped_ciphertext_byte_is_detected(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault)
    original = ciphertext(engine, "front-desk", "password")
    for position in (0, 5, 20, len(original) - 1):  # version, nonce, body, tag
        blob = bytearray(original)
        blob[position] ^= 0x01
        set_ciphertext(engine, "front-desk", "password", bytes(blob))

        with pytest.raises(RecordTampered, match="acme/front-desk/password") as caught:
            vault.login_secrets("acme", "front-desk")
        assert PASSWORD not in str(caught.value)
    set_ciphertext(engine, "front-desk", "password", original)
    assert vault.login_secrets("acme", "front-desk").password.get_secret_value() == PASSWORD


def test_a_ciphertext_moved_to_another_field_is_detected(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault)
    user_blob = ciphertext(engine, "front-desk", "username")
    pass_blob = ciphertext(engine, "front-desk", "password")
    set_ciphertext(engine, "front-desk", "username", pass_blob)
    set_ciphertext(engine, "front-desk", "password", user_blob)

    with pytest.raises(RecordTampered, match="acme/front-desk/username"):
        vault.login_secrets("acme", "front-desk")


def test_a_ciphertext_moved_to_another_account_is_detected(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault, "front-desk")
    vault.add_account("acme", "billing", username="billing-user", password="other-password")
    set_ciphertext(engine, "billing", "password", ciphertext(engine, "front-desk", "password"))

    with pytest.raises(RecordTampered, match="acme/billing/password"):
        vault.login_secrets("acme", "billing")
    # the account whose record was copied is untouched
    assert vault.login_secrets("acme", "front-desk").password.get_secret_value() == PASSWORD


def test_a_relabelled_key_id_is_detected(engine: Engine, vault_keyring: Keyring) -> None:
    second = Keyring.generate()
    both = Keyring([VaultKey("new", second.active.material), vault_keyring.active])
    vault = Vault(engine, vault_keyring)
    add_totp_account(vault)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE vault_records SET key_id = 'new' WHERE field = 'password'"))

    with pytest.raises(RecordTampered, match="acme/front-desk/password"):
        Vault(engine, both).login_secrets("acme", "front-desk")


def test_tampered_totp_secret_fails_only_when_a_code_is_asked(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault)
    blob = bytearray(ciphertext(engine, "front-desk", "totp_secret"))
    blob[-1] ^= 0x80
    set_ciphertext(engine, "front-desk", "totp_secret", bytes(blob))

    secrets = vault.login_secrets("acme", "front-desk")  # the TOTP secret is not decrypted yet
    assert secrets.one_time_code is not None
    with pytest.raises(RecordTampered, match="acme/front-desk/totp_secret"):
        secrets.one_time_code()


def test_a_tampered_session_raises_instead_of_returning_garbage(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault)
    vault.save_session("acme", "front-desk", {"cookies": []})
    blob = bytearray(ciphertext(engine, "front-desk", "session"))
    blob[14] ^= 0xFF
    set_ciphertext(engine, "front-desk", "session", bytes(blob))

    with pytest.raises(RecordTampered, match="acme/front-desk/session"):
        vault.load_session("acme", "front-desk")


def test_adding_an_existing_account_is_refused_and_keeps_its_secrets(vault: Vault) -> None:
    add_totp_account(vault)
    with pytest.raises(VaultError, match="already exists"):
        vault.add_account("acme", "front-desk", username="x", password="y")
    assert vault.login_secrets("acme", "front-desk").password.get_secret_value() == PASSWORD


def test_replace_swaps_the_secrets_and_drops_the_session(vault: Vault) -> None:
    add_totp_account(vault)
    vault.save_session("acme", "front-desk", {"cookies": []})
    vault.add_account("acme", "front-desk", username="new-user", password="new-pass", replace=True)

    secrets = vault.login_secrets("acme", "front-desk")
    assert (secrets.username, secrets.password.get_secret_value()) == ("new-user", "new-pass")
    assert secrets.one_time_code is None
    assert vault.load_session("acme", "front-desk") is None
    assert vault.account("acme", "front-desk").second_factor == "none"


def test_a_bad_totp_secret_stores_nothing(vault: Vault) -> None:
    with pytest.raises(VaultError, match="totp_secret: the TOTP secret is not base32"):
        vault.add_account("acme", "a1", username="u", password="p", second_factor="totp", totp_secret="0189!")
    assert vault.accounts() == []


def test_update_changes_only_what_is_given(vault: Vault) -> None:
    add_totp_account(vault)
    vault.save_session("acme", "front-desk", {"cookies": []})
    vault.update_secrets(
        "acme", "front-desk", password="fixed-by-a-person", answers={"Favourite colour?": "teal"}
    )

    secrets = vault.login_secrets("acme", "front-desk")
    assert secrets.username == USERNAME
    assert secrets.password.get_secret_value() == "fixed-by-a-person"
    assert secrets.answer(QUESTION) == ANSWER
    assert secrets.answer("favourite colour") == "teal"
    assert vault.load_session("acme", "front-desk") is None  # belonged to the old password


def test_missing_account_is_not_found(vault: Vault) -> None:
    for call in (
        lambda: vault.login_secrets("acme", "ghost"),
        lambda: vault.account("acme", "ghost"),
        lambda: vault.remove_account("acme", "ghost"),
        lambda: vault.save_session("acme", "ghost", {}),
        lambda: vault.disable("acme", "ghost", "x"),
        lambda: vault.is_enabled("acme", "ghost"),
    ):
        with pytest.raises(NotFound, match="acme/ghost"):
            call()


def test_remove_deletes_the_account_and_all_its_records(engine: Engine, vault: Vault) -> None:
    add_totp_account(vault)
    vault.save_session("acme", "front-desk", {"cookies": []})
    vault.remove_account("acme", "front-desk")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM vault_records")).scalar_one() == 0
    assert vault.accounts() == []


def test_account_info_names_keys_and_session_but_no_secret(vault: Vault, vault_clock: ManualClock) -> None:
    add_totp_account(vault)
    vault.save_session("acme", "front-desk", {"cookies": [{"value": COOKIE}]})
    (info,) = vault.accounts()
    assert info.has_session
    assert info.session_saved_at == vault_clock.now()
    assert info.key_ids == [vault.keyring.active.kid]
    assert info.answers == 1
    dumped = info.model_dump_json() + repr(info)
    for canary in (USERNAME, PASSWORD, TOTP_SECRET, ANSWER, COOKIE):
        assert canary not in dumped


def test_answer_fields_are_keyed_by_the_normalized_question() -> None:
    assert answer_field("What is your  favourite\tcolour?") == answer_field("what is your favourite colour")
    assert answer_field("What is your favourite colour?") != answer_field("What is your favourite color?")
    assert "colour" not in answer_field("What is your favourite colour?")
