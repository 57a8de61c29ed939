"""TOTP: RFC 6238 codes, one use per time step across processes, no code sent near its expiry."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.clock import ManualClock
from bot.db import make_engine
from bot.errors import Disposition, TotpStepBusy, VaultError
from vault import Keyring, TotpSpec, Vault, parse_totp

SECRET = pyotp.random_base32()

# RFC 6238 appendix B: (time, SHA1, SHA256, SHA512) with 8 digits
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}


@pytest.mark.parametrize(("unix", "sha1", "sha256", "sha512"), RFC6238)
def test_codes_match_the_rfc_6238_vectors(unix: int, sha1: str, sha256: str, sha512: str) -> None:
    at = datetime.fromtimestamp(unix, UTC)
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        secret = base64.b32encode(SEEDS[digest]).decode()
        uri = f"otpauth://totp/Acme:someone?secret={secret}&digits=8&period=30&algorithm={digest.upper()}"
        assert parse_totp(uri).code_at(at) == expected, (unix, digest)
    plain = TotpSpec(base64.b32encode(SEEDS["sha1"]).decode(), digits=8)
    assert plain.code_at(at) == sha1


def test_secret_spelling_is_normalized_and_bad_secrets_refused() -> None:
    assert parse_totp("jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp").secret == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    for bad, message in [
        ("", "empty"),
        ("not-base32!", "not base32"),
        ("JBSWY3DP", "RFC 4226"),
        ("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "totp"),
        (f"otpauth://totp/x?secret={SECRET}&algorithm=MD5", "algorithm"),
    ]:
        with pytest.raises(VaultError, match=message) as caught:
            parse_totp(bad)
        assert SECRET not in str(caught.value)


def add(vault: Vault, account: str = "front-desk") -> None:
    vault.add_account("acme", account, username="u", password="p", second_factor="totp", totp_secret=SECRET)


def at_step_start(clock: ManualClock, plus: float = 0.0) -> None:
    """Move the clock to the start of the next 30 s step, plus some seconds."""
    now = clock.now().timestamp()
    clock.advance(30 - now % 30 + plus)


def test_the_code_is_the_one_for_the_current_step(vault: Vault, vault_clock: ManualClock) -> None:
    add(vault)
    at_step_start(vault_clock, 3)
    code = vault.login_secrets("acme", "front-desk").one_time_code
    assert code is not None
    assert code() == pyotp.TOTP(SECRET).at(vault_clock.now())


def test_two_processes_never_send_the_same_code_in_one_step(
    db_url: str, engine: Engine, vault_keyring: Keyring
) -> None:
    """Two vaults with their own engines and clocks share only the database, like two workers."""
    start = datetime(2026, 1, 5, 9, 0, 2, tzinfo=UTC)  # 2 s into a step
    clock_a, clock_b = ManualClock(start), ManualClock(start)
    other_engine = make_engine(db_url)
    try:
        vault_a = Vault(engine, vault_keyring, clock=clock_a)
        vault_b = Vault(other_engine, vault_keyring, clock=clock_b)
        add(vault_a)

        code_a = vault_a.login_secrets("acme", "front-desk").one_time_code()  # type: ignore[misc]
        code_b = vault_b.login_secrets("acme", "front-desk").one_time_code()  # type: ignore[misc]

        assert clock_a.now() == start  # the first had a fresh step: no wait
        assert clock_b.now() == start + timedelta(seconds=28)  # the second waited for the next step
        assert code_a == pyotp.TOTP(SECRET).at(start)
        assert code_b == pyotp.TOTP(SECRET).at(start + timedelta(seconds=28))
        assert code_a != code_b
        # a retry of the first process, still inside the second's step, waits once more
        code_a2 = vault_a.login_secrets("acme", "front-desk").one_time_code()  # type: ignore[misc]
        assert clock_a.now() == start + timedelta(seconds=58)
        assert code_a2 not in (code_a, code_b)
    finally:
        other_engine.dispose()


def test_a_code_with_under_five_seconds_left_waits_for_the_next_step(
    vault: Vault, vault_clock: ManualClock
) -> None:
    add(vault)
    at_step_start(vault_clock, 26)  # 4 s left
    before = vault_clock.now()
    code = vault.login_secrets("acme", "front-desk").one_time_code()  # type: ignore[misc]

    assert vault_clock.now() == before + timedelta(seconds=4)
    assert code == pyotp.TOTP(SECRET).at(vault_clock.now())
    assert code != pyotp.TOTP(SECRET).at(before)


def test_steps_are_claimed_per_account(vault: Vault, vault_clock: ManualClock) -> None:
    add(vault, "one")
    add(vault, "two")
    at_step_start(vault_clock, 1)
    before = vault_clock.now()
    vault.login_secrets("acme", "one").one_time_code()  # type: ignore[misc]
    vault.login_secrets("acme", "two").one_time_code()  # type: ignore[misc]
    assert vault_clock.now() == before


def test_a_step_claimed_far_ahead_gives_up_with_a_retryable_error(
    engine: Engine, vault: Vault, vault_clock: ManualClock
) -> None:
    """Another host whose clock runs ahead took future steps: wait a bounded time, then say so."""
    add(vault)
    step = int(vault_clock.now().timestamp()) // 30
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET totp_last_step = :s"), {"s": step + 100})
    before = vault_clock.now()

    with pytest.raises(TotpStepBusy, match="acme/front-desk: no unused TOTP time step") as caught:
        vault.login_secrets("acme", "front-desk").one_time_code()  # type: ignore[misc]
    assert caught.value.disposition is Disposition.RETRY
    assert vault_clock.now() - before <= timedelta(seconds=4 * 30)


def test_totp_repr_and_errors_hide_the_secret(vault: Vault) -> None:
    add(vault)
    source = vault.login_secrets("acme", "front-desk").one_time_code
    assert SECRET not in repr(source)
    assert SECRET not in repr(parse_totp(SECRET))
