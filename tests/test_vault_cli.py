"""`payerbot vault ...` end to end on a real database: secrets go in by stdin or hidden prompt and
never come out, unknown payers are refused, and the key lifecycle (keygen, rotate, retire) works."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

import portals
from bot.cli import app, common
from bot.db import make_engine
from bot.login import SecondFactorKind
from bot.portal import Action, Portal
from vault import Keyring, Vault

PASSWORD = "CANARY-cli-pass-5e1b"
USERNAME = "CANARY-cli-user-9d0c"
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
ANSWER = "CANARY-cli-answer-33aa"
CANARIES = (PASSWORD, USERNAME, TOTP_SECRET, ANSWER)

Invoke = Callable[..., Result]


class VaultTestPortal(Portal):
    """A payer registered for these tests only (the vault needs its id, not its pages)."""

    payer_id = "vaulttest"
    display_name = "Vault Test Payer"
    default_url = "http://127.0.0.1:1"
    actions = frozenset({Action.CLAIM_STATUS})
    second_factor = SecondFactorKind.TOTP


@pytest.fixture
def cli(
    db_url: str, vault_keyring: Keyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Invoke]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("PAYERBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("PAYERBOT_VAULT_KEY", vault_keyring.active.line())
    monkeypatch.delenv("PAYERBOT_VAULT_KEY_FILE", raising=False)
    monkeypatch.setitem(portals.registry(), VaultTestPortal.payer_id, VaultTestPortal)
    common.settings.cache_clear()
    common.engine.cache_clear()
    runner = CliRunner()

    def invoke(
        *args: str, input: str | None = None, env: dict[str, str | None] | None = None, echoed: str = ""
    ) -> Result:
        common.settings.cache_clear()
        common.engine.cache_clear()
        result = runner.invoke(app, ["vault", *args], input=input, env=env)
        for canary in CANARIES:
            if canary == echoed:  # a prompt that is not hidden echoes what was typed, as a terminal would
                continue
            assert canary not in result.output, f"a secret reached the output of vault {args[0]}"
        return result

    yield invoke
    common.engine().dispose()
    common.settings.cache_clear()
    common.engine.cache_clear()


def stdin_secrets(**extra: object) -> str:
    return json.dumps(
        {"username": USERNAME, "password": PASSWORD, "totp_secret": TOTP_SECRET, "answers": {"Pet?": ANSWER}}
        | extra
    )


def test_add_from_stdin_json_then_list_shows_no_secret(
    cli: Invoke, db_url: str, vault_keyring: Keyring
) -> None:
    added = cli("add", "vaulttest", "desk-1", "--stdin-json", input=stdin_secrets())
    assert added.exit_code == 0, added.output

    listed = cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["payer"] == "vaulttest"
    assert row["account"] == "desk-1"
    assert row["second_factor"] == "totp"  # the payer's default
    assert row["enabled"] is True
    assert row["has_session"] is False
    assert row["answers"] == 1
    assert row["key_ids"] == [vault_keyring.active.kid]

    engine = make_engine(db_url)
    try:
        secrets = Vault(engine, vault_keyring).login_secrets("vaulttest", "desk-1")
        assert (secrets.username, secrets.password.get_secret_value()) == (USERNAME, PASSWORD)
        assert secrets.answer("pet") == ANSWER
    finally:
        engine.dispose()


def test_add_by_hidden_prompts(cli: Invoke, db_url: str, vault_keyring: Keyring) -> None:
    typed = "\n".join([USERNAME, PASSWORD, PASSWORD, "Favourite pet?", ANSWER, ""]) + "\n"
    result = cli(
        "add", "vaulttest", "desk-2", "--second-factor", "security_questions", input=typed, echoed=USERNAME
    )
    assert result.exit_code == 0, result.output
    engine = make_engine(db_url)
    try:
        secrets = Vault(engine, vault_keyring).login_secrets("vaulttest", "desk-2")
        assert secrets.password.get_secret_value() == PASSWORD
        assert secrets.answer("favourite pet") == ANSWER
    finally:
        engine.dispose()


def test_an_unknown_payer_is_refused_with_the_known_ones(cli: Invoke) -> None:
    result = cli("add", "nosuchpayer", "desk-1", "--stdin-json", input=stdin_secrets())
    assert result.exit_code == 2
    assert "unknown payer 'nosuchpayer'" in result.output
    assert "vaulttest" in result.output
    assert json.loads(cli("list", "--json").output) == []


def test_bad_stdin_names_the_key_not_the_value(cli: Invoke) -> None:
    result = cli("add", "vaulttest", "desk-1", "--stdin-json", input=stdin_secrets(pasword=PASSWORD))
    assert result.exit_code == 2
    assert "unknown key(s) pasword" in result.output
    assert "Traceback" not in result.output
    broken = cli("add", "vaulttest", "desk-1", "--stdin-json", input='{"password": "' + PASSWORD)
    assert broken.exit_code == 2
    assert "stdin: not JSON" in broken.output


def test_secrets_are_not_accepted_as_arguments(cli: Invoke) -> None:
    result = cli("add", "vaulttest", "desk-1", "--password", "x")
    assert result.exit_code != 0
    assert "No such option" in result.output


def test_disable_enable_remove(cli: Invoke) -> None:
    cli("add", "vaulttest", "desk-1", "--stdin-json", input=stdin_secrets())
    assert cli("disable", "vaulttest", "desk-1", "--reason", "password rejected").exit_code == 0
    (row,) = json.loads(cli("list", "--json").output)
    assert (row["enabled"], row["disabled_reason"]) == (False, "password rejected")

    assert cli("enable", "vaulttest", "desk-1").exit_code == 0
    assert json.loads(cli("list", "--json").output)[0]["enabled"] is True

    assert cli("remove", "vaulttest", "desk-1", "--yes").exit_code == 0
    assert json.loads(cli("list", "--json").output) == []
    missing = cli("enable", "vaulttest", "desk-1")
    assert missing.exit_code == 2
    assert "no vault account vaulttest/desk-1" in missing.output


def test_update_password_from_stdin(cli: Invoke, db_url: str, vault_keyring: Keyring) -> None:
    cli("add", "vaulttest", "desk-1", "--stdin-json", input=stdin_secrets())
    result = cli(
        "update", "vaulttest", "desk-1", "--stdin-json", input=json.dumps({"password": PASSWORD + "-2"})
    )
    assert result.exit_code == 0, result.output
    engine = make_engine(db_url)
    try:
        secrets = Vault(engine, vault_keyring).login_secrets("vaulttest", "desk-1")
        assert secrets.password.get_secret_value() == PASSWORD + "-2"
        assert secrets.username == USERNAME
    finally:
        engine.dispose()


def test_key_lifecycle_keygen_add_rotate_retire(cli: Invoke, tmp_path: Path, db_url: str) -> None:
    key_file = tmp_path / "vault.key"
    env = {"PAYERBOT_VAULT_KEY": None, "PAYERBOT_VAULT_KEY_FILE": str(key_file)}
    made = cli("keygen", "--out", str(key_file), "--kid", "k1", env=env)
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cli("add", "vaulttest", "desk-1", "--stdin-json", input=stdin_secrets(), env=env)

    assert cli("keygen", "--add-to", str(key_file), "--kid", "k2", env=env).exit_code == 0
    assert Keyring.from_file(key_file).kids == ["k2", "k1"]
    early = cli("retire", "k1", env=env)
    assert early.exit_code == 2
    # the account's five records and the audit chain key (sealed at `vault add`, which is audited)
    assert "still seals 6 record(s)" in early.output

    rotated = cli("rotate", env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "rotated 6 record(s) to key 'k2'" in rotated.output
    retired = cli("retire", "k1", env=env)
    assert retired.exit_code == 0, retired.output
    assert Keyring.from_file(key_file).kids == ["k2"]
    assert json.loads(cli("list", "--json", env=env).output)[0]["key_ids"] == ["k2"]

    engine = make_engine(db_url)
    try:
        secrets = Vault(engine, Keyring.from_file(key_file)).login_secrets("vaulttest", "desk-1")
        assert secrets.password.get_secret_value() == PASSWORD
    finally:
        engine.dispose()


def test_a_key_file_others_can_read_is_refused_with_the_chmod(cli: Invoke, tmp_path: Path) -> None:
    key_file = tmp_path / "vault.key"
    key_file.write_text(Keyring.generate().dump())
    key_file.chmod(0o644)
    env = {"PAYERBOT_VAULT_KEY": None, "PAYERBOT_VAULT_KEY_FILE": str(key_file)}
    result = cli("add", "vaulttest", "desk-1", "--stdin-json", input=stdin_secrets(), env=env)
    assert result.exit_code == 2
    assert f"chmod 600 {key_file}" in result.output


def test_keygen_prints_a_usable_key(cli: Invoke) -> None:
    result = cli("keygen", "--kid", "fresh")
    assert result.exit_code == 0
    line = result.stdout.strip()
    assert Keyring.parse(line).active.kid == "fresh"


def test_a_tampered_record_gives_a_clean_error_not_a_trace(cli: Invoke, db_url: str) -> None:
    cli("add", "vaulttest", "desk-1", "--stdin-json", input=stdin_secrets())
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE vault_records SET key_id = 'k-other' WHERE field = 'password'")
    finally:
        engine.dispose()
    result = cli("update", "vaulttest", "desk-1", "--stdin-json", input=json.dumps({"username": "x"}))
    assert result.exit_code == 0  # updating does not need to open the damaged record
    rotate = cli("rotate")
    assert rotate.exit_code == 2
    assert "vaulttest/desk-1/password" in rotate.output
    assert "Traceback" not in rotate.output
