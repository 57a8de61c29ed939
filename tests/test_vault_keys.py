"""Keyring format, key files, rotation (also interrupted) and retiring old keys."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.errors import RecordTampered, VaultKeyError
from bot.settings import Settings
from vault import Keyring, RecordRef, Vault, new_key
from vault.keyring import create_key_file, derive_kid, replace_key_file

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()


@pytest.fixture(autouse=True)
def _no_vault_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYERBOT_VAULT_KEY", raising=False)
    monkeypatch.delenv("PAYERBOT_VAULT_KEY_FILE", raising=False)


def fill(vault: Vault, accounts: int = 3) -> None:
    for n in range(accounts):
        vault.add_account(
            "acme",
            f"acct-{n}",
            username=f"user-{n}",
            password=f"pass-{n}",
            second_factor="security_questions",
            answers={"Question one?": f"one-{n}", "Question two?": f"two-{n}"},
        )
        vault.save_session("acme", f"acct-{n}", {"n": n})


def assert_all_readable(vault: Vault, accounts: int = 3) -> None:
    for n in range(accounts):
        secrets = vault.login_secrets("acme", f"acct-{n}")
        assert (secrets.username, secrets.password.get_secret_value()) == (f"user-{n}", f"pass-{n}")
        assert secrets.answer("question one") == f"one-{n}"
        assert secrets.answer("QUESTION TWO?") == f"two-{n}"
        assert vault.load_session("acme", f"acct-{n}") == {"n": n}


# --- keyring format -------------------------------------------------------------------------


def test_keyring_lines_first_is_active() -> None:
    keyring = Keyring.parse(f"# comment\n\nnew:{KEY_B}\nold:{KEY_A}  # the previous key\n")
    assert keyring.active.kid == "new"
    assert keyring.kids == ["new", "old"]
    assert keyring.get("old").material == b"A" * 32  # type: ignore[union-attr]


def test_a_bare_key_gets_an_id_derived_from_its_hash() -> None:
    keyring = Keyring.parse(KEY_A)
    assert keyring.active.kid == derive_kid(b"A" * 32)
    assert keyring.active.kid != derive_kid(b"B" * 32)


def test_env_keyring_accepts_commas_between_entries() -> None:
    settings = Settings(vault_key=f"new:{KEY_B},old:{KEY_A}", _env_file=None)  # type: ignore[call-arg]
    assert Keyring.from_settings(settings).kids == ["new", "old"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("k1:not base64!", "line 1: the key is not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "line 1: the key is 5 bytes"),
        (f"k1:{KEY_A}\nk1:{KEY_B}", "key id 'k1' appears twice"),
        (f"bad kid:{KEY_A}", "line 1: the key id must be"),
    ],
)
def test_malformed_keyrings_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(VaultKeyError, match=message) as caught:
        Keyring.parse(text)
    assert KEY_A not in str(caught.value)
    assert KEY_B not in str(caught.value)


def test_keyring_repr_shows_ids_only() -> None:
    keyring = Keyring.parse(f"k1:{KEY_A}")
    assert KEY_A not in repr(keyring)
    assert "AAAA" not in repr(keyring.active)
    assert "k1" in repr(keyring)


def test_no_key_configured_says_what_to_set() -> None:
    with pytest.raises(VaultKeyError, match="PAYERBOT_VAULT_KEY or PAYERBOT_VAULT_KEY_FILE"):
        Keyring.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]


# --- key files ------------------------------------------------------------------------------


def test_a_key_file_readable_by_others_is_refused_with_the_chmod(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    path.write_text(f"k1:{KEY_A}\n")
    path.chmod(0o644)
    with pytest.raises(VaultKeyError, match=rf"mode 0644.*chmod 600 {path}"):
        Keyring.from_settings(Settings(vault_key_file=path, _env_file=None))  # type: ignore[call-arg]
    path.chmod(0o600)
    assert Keyring.from_file(path).kids == ["k1"]


def test_a_new_key_file_is_created_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    keyring = Keyring([new_key("first")])
    create_key_file(path, keyring)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Keyring.from_file(path).active.material == keyring.active.material
    with pytest.raises(VaultKeyError, match="already exists"):
        create_key_file(path, Keyring.generate())
    assert Keyring.from_file(path).kids == ["first"]


def test_replacing_a_key_file_keeps_0600_even_under_a_loose_umask(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    create_key_file(path, Keyring([new_key("old")]))
    old_umask = os.umask(0)
    try:
        replace_key_file(path, Keyring.from_file(path).with_new_active(new_key("new")))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Keyring.from_file(path).kids == ["new", "old"]
    assert [p.name for p in tmp_path.iterdir()] == ["vault.key"]  # no temp file left


# --- rotation -------------------------------------------------------------------------------


def test_rotate_then_retire_the_old_key_and_everything_still_decrypts(
    engine: Engine, vault_keyring: Keyring
) -> None:
    old_vault = Vault(engine, vault_keyring)
    fill(old_vault)
    old_kid = vault_keyring.active.kid
    rotated = vault_keyring.with_new_active(new_key("k2"))
    vault = Vault(engine, rotated)

    with pytest.raises(VaultKeyError, match=rf"key '{old_kid}' still seals 18 record"):
        vault.check_retirable(old_kid)
    report = vault.rotate()

    assert (report.rotated, report.already_current, report.failed) == (18, 0, [])
    assert report.usage_after == {"k2": 18}
    assert report.complete
    vault.check_retirable(old_kid)
    retired = Vault(engine, rotated.without(old_kid))
    assert_all_readable(retired)
    with pytest.raises(VaultKeyError, match="sealed with key 'k2'"):
        old_vault.login_secrets("acme", "acct-0")


def test_an_interrupted_rotation_loses_nothing_and_a_rerun_completes(
    engine: Engine, vault_keyring: Keyring
) -> None:
    fill(Vault(engine, vault_keyring))
    vault = Vault(engine, vault_keyring.with_new_active(new_key("k2")))
    done: list[RecordRef] = []

    class Interrupted(Exception):
        pass

    def stop_after_seven(ref: RecordRef) -> None:
        done.append(ref)
        if len(done) == 7:
            raise Interrupted

    with pytest.raises(Interrupted):
        vault.rotate(after_each=stop_after_seven)

    assert vault.key_usage() == {"k2": 7, vault_keyring.active.kid: 11}
    assert_all_readable(vault)  # half rotated: every record opens with one key or the other

    report = vault.rotate()
    assert (report.rotated, report.already_current) == (11, 7)
    assert vault.key_usage() == {"k2": 18}
    assert_all_readable(Vault(engine, Keyring([vault.keyring.active])))


def test_rotation_reports_a_tampered_record_and_rotates_the_rest(
    engine: Engine, vault_keyring: Keyring
) -> None:
    fill(Vault(engine, vault_keyring), accounts=1)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE vault_records SET ciphertext = :c WHERE field = 'password'"), {"c": b"\x01" * 48}
        )
    vault = Vault(engine, vault_keyring.with_new_active(new_key("k2")))

    report = vault.rotate()

    assert report.failed == ["acme/acct-0/password: RecordTampered"]
    assert report.rotated == 5
    assert not report.complete
    with pytest.raises(VaultKeyError, match="still seals 1 record"):
        vault.check_retirable(vault_keyring.active.kid)
    with pytest.raises(RecordTampered, match="acme/acct-0/password"):
        vault.login_secrets("acme", "acct-0")


def test_the_active_key_cannot_be_retired(vault: Vault) -> None:
    with pytest.raises(VaultKeyError, match="is the active key"):
        vault.check_retirable(vault.keyring.active.kid)
    with pytest.raises(VaultKeyError, match="is the active key"):
        vault.keyring.without(vault.keyring.active.kid)
