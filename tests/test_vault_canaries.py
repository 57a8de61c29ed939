"""Secrets never show in an exception message, its chain, or a repr; sealing holds for any input."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from bot.errors import PayerbotError, RecordTampered
from vault import Keyring, RecordRef, Vault, VaultKey, new_key
from vault.sealing import seal, unseal

PASSWORD = "CANARY-canary-pw-e4d1"
USERNAME = "CANARY-canary-user-1b7c"
TOTP_SECRET = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"
ANSWER = "CANARY-canary-ans-90fe"
COOKIE = "CANARY-canary-cookie-5a5a"
CANARIES = (PASSWORD, USERNAME, TOTP_SECRET, ANSWER, COOKIE)


def full_text(exc: BaseException) -> str:
    """The message, the whole chain and the formatted traceback, as a log would print them."""
    return "".join(traceback.format_exception(exc))


def test_no_failure_path_carries_a_secret(engine: Engine, vault: Vault) -> None:
    vault.add_account(
        "acme",
        "a1",
        username=USERNAME,
        password=PASSWORD,
        second_factor="totp",
        totp_secret=TOTP_SECRET,
        answers={"First pet?": ANSWER},
    )
    vault.save_session("acme", "a1", {"cookies": [{"value": COOKIE}]})
    secrets = vault.login_secrets("acme", "a1")
    wrong = Vault(engine, Keyring([VaultKey(vault.keyring.active.kid, b"\x00" * 32)]))
    with engine.begin() as conn:  # a second account whose records all fail authentication
        conn.execute(
            sa.text(
                "INSERT INTO vault_records (payer, account, field, key_id, ciphertext, updated_at) "
                "SELECT payer, 'a2', field, key_id, ciphertext, updated_at FROM vault_records"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO accounts (payer, account, second_factor, enabled, totp_last_step, "
                "lease_token, created_at) SELECT payer, 'a2', second_factor, enabled, 0, 0, created_at "
                "FROM accounts"
            )
        )

    failures: list[Callable[[], object]] = [
        lambda: wrong.login_secrets("acme", "a1"),
        lambda: wrong.load_session("acme", "a1"),
        lambda: vault.login_secrets("acme", "a2"),
        lambda: vault.load_session("acme", "a2"),
        lambda: Vault(engine, Keyring.generate()).login_secrets("acme", "a1"),
        lambda: secrets.answer("Unknown question?"),
        lambda: vault.add_account("acme", "a1", username=USERNAME, password=PASSWORD),
        lambda: vault.add_account(
            "acme", "a3", username=USERNAME, password=PASSWORD, second_factor="totp", totp_secret=PASSWORD
        ),
        lambda: vault.add_account(
            "acme", "a3", username=USERNAME, password=PASSWORD, totp_secret=TOTP_SECRET
        ),
        lambda: vault.add_account("acme", "a3", username=USERNAME, password=PASSWORD, second_factor=PASSWORD),
        lambda: vault.update_secrets("acme", "a1", totp_secret=ANSWER),
        lambda: Keyring.parse(PASSWORD),
        lambda: Keyring.parse(f"k1:{PASSWORD}"),
    ]
    for number, call in enumerate(failures):
        with pytest.raises(PayerbotError) as caught:
            call()
        text = full_text(caught.value)
        for canary in CANARIES:
            assert canary not in text, f"case {number} leaked a secret: {type(caught.value).__name__}"

    reprs = [
        repr(vault),
        repr(secrets),
        repr(secrets.one_time_code),
        repr(vault.accounts()),
        repr(vault.keyring),
        repr(vault.rotate()),
        str(secrets.password),
    ]
    for text in reprs:
        for canary in (PASSWORD, TOTP_SECRET, ANSWER, COOKIE):
            assert canary not in text


# --- sealing properties (no database) -------------------------------------------------------

names = st.text(min_size=1, max_size=40)
refs = st.builds(RecordRef, names, names, names)
KEYRING = Keyring([new_key("p1")])


@settings(max_examples=200, deadline=None)
@given(ref=refs, plaintext=st.binary(max_size=300))
def test_any_record_round_trips(ref: RecordRef, plaintext: bytes) -> None:
    kid, blob = seal(KEYRING, ref, plaintext)
    assert unseal(KEYRING, ref, kid, blob) == plaintext


@settings(max_examples=200, deadline=None)
@given(ref=refs, other=refs, plaintext=st.binary(max_size=100))
def test_a_record_never_opens_under_another_name(ref: RecordRef, other: RecordRef, plaintext: bytes) -> None:
    if ref == other:
        return
    kid, blob = seal(KEYRING, ref, plaintext)
    with pytest.raises(RecordTampered, match="failed authentication"):
        unseal(KEYRING, other, kid, blob)


@settings(max_examples=200, deadline=None)
@given(ref=refs, plaintext=st.binary(min_size=1, max_size=100), data=st.data())
def test_any_flipped_bit_is_detected(ref: RecordRef, plaintext: bytes, data: st.DataObject) -> None:
    kid, blob = seal(KEYRING, ref, plaintext)
    position = data.draw(st.integers(0, len(blob) - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(blob)
    damaged[position] ^= 1 << bit
    with pytest.raises(RecordTampered):
        unseal(KEYRING, ref, kid, bytes(damaged))


def test_each_seal_uses_a_fresh_nonce() -> None:
    ref = RecordRef("acme", "a1", "password")
    blobs = {seal(KEYRING, ref, b"same")[1] for _ in range(50)}
    assert len(blobs) == 50
