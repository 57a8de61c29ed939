"""The audit trail: one record per action with every field, tampering named at its row, the chain
keyed (a database writer without the vault key cannot recompute it), and checkpoints kept outside
the database that catch a chain cut short."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.audit import (
    CHAINED_FIELDS,
    KEYED,
    KEYED_FIELDS,
    UNKEYED,
    AuditAction,
    AuditTrail,
    append_checkpoint,
    read_checkpoints,
    row_hash,
)
from bot.clock import ManualClock
from bot.db import AuditEvent, AuditHead, make_engine
from bot.errors import VaultKeyError
from bot.migrate import upgrade
from vault import Keyring, Vault, new_key
from vault.chainkey import CHAIN_KEY_REF, VaultChainKeyStore


def _trail(engine: Engine, vault: Vault) -> AuditTrail:
    return AuditTrail(
        engine, actor="payerbot@test", host="host-a", clock=ManualClock(), key=VaultChainKeyStore(vault)
    )


def _fill(trail: AuditTrail, n: int = 5) -> None:
    for i in range(n):
        trail.record(
            AuditAction.STATUS_READ,
            "ok",
            payer="meridian",
            account="acct",
            approver="Dr. Approver",
            item_id=i + 1,
            correlation_id=f"run-{i}",
            submission_id=f"MA-{i}",
            detail={"canonical_status": "F1"},
        )


def test_each_record_keeps_every_field_and_the_chain_verifies(engine: Engine, vault: Vault) -> None:
    trail = _trail(engine, vault)
    trail.record(
        AuditAction.SUBMISSION,
        "confirmed",
        payer="meridian",
        account="acct",
        approver="Dr. Approver",
        item_id=9,
        correlation_id="run-9",
        submission_id="MA-123",
    )
    with engine.connect() as conn:
        row = conn.execute(sa.select(AuditEvent)).mappings().one()
    assert row["actor"] == "payerbot@test" and row["host"] == "host-a"
    assert (row["action"], row["outcome"], row["approver"]) == ("submission", "confirmed", "Dr. Approver")
    assert (row["item_id"], row["submission_id"], row["correlation_id"]) == (9, "MA-123", "run-9")
    assert row["at"].tzinfo is not None
    report = trail.verify()
    assert report.ok and report.checked == 1


def test_an_edited_row_is_named(engine: Engine, vault: Vault) -> None:
    trail = _trail(engine, vault)
    _fill(trail)
    with engine.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == 3).values(outcome="forged"))
    report = trail.verify()
    assert not report.ok and report.first_broken_id == 3


def test_a_deleted_row_is_named(engine: Engine, vault: Vault) -> None:
    trail = _trail(engine, vault)
    _fill(trail)
    with engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == 4))
    report = trail.verify()
    assert not report.ok and report.first_broken_id == 4


def test_a_deleted_newest_row_is_detected(engine: Engine, vault: Vault) -> None:
    trail = _trail(engine, vault)
    _fill(trail)
    with engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id == 5))
    report = trail.verify()
    assert not report.ok and report.first_broken_id == 5


def test_concurrent_writers_never_fork_the_chain_and_make_one_chain_key(engine: Engine, vault: Vault) -> None:
    from concurrent.futures import ThreadPoolExecutor

    trails = [_trail(engine, vault) for _ in range(4)]  # each loads (or makes) the key on its own

    def write(n: int) -> None:
        for i in range(10):
            trails[n].record(AuditAction.LOGIN, "ok", item_id=n * 100 + i)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(4)))
    report = trails[0].verify()
    assert report.ok and report.checked == 40
    with engine.connect() as conn:
        ids = conn.execute(sa.select(AuditEvent.item_id)).scalars().all()
    assert sorted(ids) == sorted(n * 100 + i for n in range(4) for i in range(10))
    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT count(*) FROM vault_records WHERE payer = '_audit'")).scalar()
    assert keys == 1


# -- the keyed chain ---------------------------------------------------------------------------------

# what an edit of each chained column looks like; every column of audit_events must be here
EDITS: dict[str, Any] = {
    "id": 1000,
    "at": lambda v: v + timedelta(seconds=1),
    "actor": "operator:mallory",
    "host": "elsewhere",
    "payer": "bluepeak",
    "account": "other",
    "approver": "Someone Else",
    "action": "login",
    "item_id": 99,
    "outcome": "forged",
    "correlation_id": "run-forged",
    "submission_id": "MA-forged",
    "detail": '{"canonical_status": "F2"}',
    "scheme": UNKEYED,
    "prev_hash": "f" * 64,
    "hash": "e" * 64,
}


def _row(engine: Engine, row_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(AuditEvent).where(AuditEvent.id == row_id)).mappings().one())


def _set(engine: Engine, row_id: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(AuditEvent).where(AuditEvent.id == row_id).values(**values))


def _set_head(engine: Engine, last_id: int) -> None:
    """Point ``audit_head`` at a row, as a database writer covering a deleted tail would."""
    with engine.begin() as conn:
        last_hash = conn.execute(sa.select(AuditEvent.hash).where(AuditEvent.id == last_id)).scalar_one()
        conn.execute(sa.update(AuditHead).values(last_id=last_id, last_hash=last_hash))


def test_every_column_of_an_audit_row_is_chained() -> None:
    assert set(EDITS) == set(AuditEvent.__table__.columns.keys())
    assert set(EDITS) == {*KEYED_FIELDS, "prev_hash", "hash"}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_an_edit_of_any_chained_field_is_named_at_its_row(engine: Engine, vault: Vault, field: str) -> None:
    trail = _trail(engine, vault)
    _fill(trail)
    assert trail.verify().ok
    old = _row(engine, 3)[field]
    edit = EDITS[field]
    new = edit(old) if callable(edit) else edit
    assert new != old
    _set(engine, 3, **{field: new})
    report = trail.verify()
    assert (report.ok, report.first_broken_id) == (False, 3), report


@pytest.mark.parametrize("unkeyed_scheme", [False, True], ids=["scheme-kept", "scheme-unkeyed"])
def test_the_head_row_rewritten_with_a_recomputed_sha256_is_named(
    engine: Engine, vault: Vault, unkeyed_scheme: bool
) -> None:
    """What a database writer without the vault key can do: rewrite the newest row, recompute its
    hash the unkeyed way, and point the head at it. Nothing later links to it, so only the key
    catches it."""
    trail = _trail(engine, vault)
    _fill(trail)
    row = _row(engine, 5)
    row.update(outcome="forged", approver="Someone Else")
    if unkeyed_scheme:
        row["scheme"] = UNKEYED
    forged = row_hash(row["prev_hash"], row)
    _set(engine, 5, outcome="forged", approver="Someone Else", scheme=row["scheme"], hash=forged)
    _set_head(engine, 5)
    report = trail.verify()
    assert (report.ok, report.first_broken_id) == (False, 5), report


def test_the_whole_chain_rewritten_unkeyed_is_named_at_its_first_keyed_row(
    engine: Engine, vault: Vault
) -> None:
    """Unkeyed rows are allowed only before the first keyed row; the key itself records which row
    that was, so it cannot be moved by rewriting every row the old way."""
    trail = _trail(engine, vault)
    _fill(trail)
    prev = "0" * 64
    for row_id in range(1, 6):
        row = _row(engine, row_id) | {"scheme": UNKEYED, "prev_hash": prev}
        row["hash"] = row_hash(prev, row)
        _set(engine, row_id, scheme=UNKEYED, prev_hash=f"tmp-{row_id}", hash=f"tmp-{row_id}")
        _set(engine, row_id, prev_hash=prev, hash=row["hash"])
        prev = row["hash"]
    _set_head(engine, 5)
    report = trail.verify()
    assert (report.ok, report.first_broken_id) == (False, 1), report
    assert "unkeyed" in str(report.reason)


def _insert_unkeyed(engine: Engine, count: int) -> None:
    """Rows as the chain held them before migration 0003: SHA-256 over the 13 chained fields."""
    prev = "0" * 64
    with engine.begin() as conn:
        for row_id in range(1, count + 1):
            fields: dict[str, Any] = {
                "id": row_id,
                "at": ManualClock().now(),
                "actor": "payerbot@old",
                "host": "host-a",
                "payer": "meridian",
                "account": "acct",
                "approver": None,
                "action": "login",
                "item_id": None,
                "outcome": "ok",
                "correlation_id": None,
                "submission_id": None,
                "detail": None,
            }
            digest = row_hash(prev, fields)
            conn.execute(sa.insert(AuditEvent).values(**fields, prev_hash=prev, hash=digest, scheme=UNKEYED))
            prev = digest
        conn.execute(sa.insert(AuditHead).values(id=1, last_id=count, last_hash=prev))


def test_unkeyed_rows_from_before_the_key_verify_and_the_first_keyed_row_chains_onto_them(
    engine: Engine, vault: Vault
) -> None:
    _insert_unkeyed(engine, 3)
    trail = _trail(engine, vault)
    assert trail.verify().ok  # no key yet: the old chain verifies as it did
    _fill(trail, 2)
    first_keyed = _row(engine, 4)
    assert (first_keyed["scheme"], first_keyed["prev_hash"]) == (KEYED, _row(engine, 3)["hash"])
    report = _trail(engine, vault).verify()
    assert report.ok and report.checked == 5, report
    # an edit of the last unkeyed row breaks the first keyed row's link: its MAC covers that hash
    _set(engine, 3, outcome="forged")
    assert trail.verify().first_broken_id == 3


def test_an_unkeyed_row_appended_after_keyed_ones_is_named(engine: Engine, vault: Vault) -> None:
    trail = _trail(engine, vault)
    _fill(trail, 3)
    last = _row(engine, 3)
    forged: dict[str, Any] = {**last, "id": 4, "outcome": "forged", "scheme": UNKEYED}
    forged["prev_hash"] = last["hash"]
    forged["hash"] = row_hash(last["hash"], forged)
    with engine.begin() as conn:
        conn.execute(sa.insert(AuditEvent).values(**forged))
    _set_head(engine, 4)
    report = trail.verify()
    assert (report.ok, report.first_broken_id) == (False, 4), report
    assert "unkeyed" in str(report.reason)


def test_the_chain_key_lives_in_the_vault_rotates_with_it_and_holds_back_retire(
    engine: Engine, vault: Vault, vault_keyring: Keyring
) -> None:
    trail = _trail(engine, vault)
    _fill(trail, 3)
    old_kid = vault_keyring.active.kid
    assert vault.key_usage() == {old_kid: 1}  # the chain key is a sealed record like any other
    rotated = Vault(engine, vault_keyring.with_new_active(new_key("k2")))
    with pytest.raises(VaultKeyError, match="still seals 1 record"):
        rotated.check_retirable(old_kid)
    report = rotated.rotate()
    assert (report.rotated, report.failed) == (1, [])
    rotated.check_retirable(old_kid)
    # the key itself did not change: the old rows verify, and new rows chain on, under the new keyring
    only_new = Vault(engine, Keyring([rotated.keyring.active]))
    trail = _trail(engine, only_new)
    _fill(trail, 2)
    assert trail.verify().ok and trail.verify().checked == 5


def test_without_the_vault_key_nothing_is_appended_and_the_error_says_so(
    engine: Engine, vault: Vault
) -> None:
    _fill(_trail(engine, vault), 2)
    keyless = _trail(engine, Vault(engine, None))
    with pytest.raises(VaultKeyError, match=r"audit trail needs the vault key.*PAYERBOT_VAULT_KEY"):
        keyless.record(AuditAction.LOGIN, "ok")
    with pytest.raises(VaultKeyError, match="audit trail needs the vault key"):
        keyless.verify()
    assert _trail(engine, vault).verify().checked == 2


def test_a_missing_chain_key_stops_appends_and_verify_names_the_first_keyed_row(
    engine: Engine, vault: Vault
) -> None:
    _fill(_trail(engine, vault), 2)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM vault_records WHERE payer = :p"), {"p": CHAIN_KEY_REF.payer})
    trail = _trail(engine, vault)
    with pytest.raises(VaultKeyError, match=r"audit chain key .* is missing"):
        trail.record(AuditAction.LOGIN, "ok")  # a new key would fork the chain: refused
    report = trail.verify()
    assert (report.ok, report.first_broken_id) == (False, 1), report
    assert "chain key" in str(report.reason)


# -- checkpoints -----------------------------------------------------------------------------------


def test_a_truncated_chain_with_its_head_rewritten_is_caught_by_a_checkpoint(
    engine: Engine, vault: Vault, tmp_path: Path
) -> None:
    trail = _trail(engine, vault)
    _fill(trail, 6)
    path = tmp_path / "checkpoints.jsonl"
    checkpoint = trail.checkpoint()
    append_checkpoint(path, checkpoint)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"id": 6, "hash": _row(engine, 6)["hash"], "at": checkpoint.at}

    with engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id > 4))
    _set_head(engine, 4)

    assert trail.verify().ok  # the chain alone cannot tell: nothing is left after row 4
    report = trail.verify(read_checkpoints(path))
    assert (report.ok, report.first_broken_id) == (False, 5), report
    assert f"rows 5 to 6 are missing: {path} line 1 names row 6" in str(report.reason)


def test_a_checkpoint_catches_rows_rewritten_after_it(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    trail = _trail(engine, vault)
    _fill(trail, 3)
    path = tmp_path / "checkpoints.jsonl"
    append_checkpoint(path, trail.checkpoint())
    _fill(trail, 2)
    append_checkpoint(path, trail.checkpoint())
    assert trail.verify(read_checkpoints(path)).ok
    # the newest rows replaced by others (written through the trail, so each is a valid link)
    with engine.begin() as conn:
        conn.execute(sa.delete(AuditEvent).where(AuditEvent.id > 3))
    _set_head(engine, 3)
    trail.record(AuditAction.LOGIN, "ok")
    trail.record(AuditAction.LOGIN, "ok")
    assert trail.verify().ok
    report = trail.verify(read_checkpoints(path))
    assert (report.ok, report.first_broken_id) == (False, 5), report
    assert f"not the hash {path} line 2 holds" in str(report.reason)


def test_a_malformed_checkpoint_line_is_named(tmp_path: Path) -> None:
    from bot.errors import ConfigError

    path = tmp_path / "checkpoints.jsonl"
    path.write_text('{"id": 3, "hash": "' + "a" * 64 + '", "at": "x"}\n\nnot json\n')
    with pytest.raises(ConfigError, match=f"{path} line 3: not an audit checkpoint"):
        read_checkpoints(path)


def test_the_migration_keeps_old_rows_verifiable(tmp_path: Path) -> None:
    """Rows written on revision 0002 get the unkeyed scheme, verify, and the keyed rows chain on."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(engine, "0002")
        prev = "0" * 64
        with engine.begin() as conn:
            for row_id in (1, 2):
                fields = {"id": row_id, "at": "2026-01-05 09:00:00", "actor": "payerbot@old", "host": "h"}
                fields |= {"action": "login", "outcome": "ok"}
                material = {k: fields.get(k) for k in CHAINED_FIELDS} | {"at": "2026-01-05T09:00:00+00:00"}
                digest = row_hash(prev, material)
                conn.execute(
                    sa.text(
                        "INSERT INTO audit_events (id, at, actor, host, action, outcome, prev_hash, hash) "
                        "VALUES (:id, :at, :actor, :host, :action, :outcome, :prev, :hash)"
                    ),
                    fields | {"prev": prev, "hash": digest},
                )
                prev = digest
            conn.execute(
                sa.text("INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 2, :h)"), {"h": prev}
            )
        upgrade(engine)
        vault = Vault(engine, Keyring.generate())
        trail = _trail(engine, vault)
        assert _row(engine, 1)["scheme"] == UNKEYED
        _fill(trail, 1)
        report = trail.verify()
        assert report.ok and report.checked == 3, report
    finally:
        engine.dispose()
