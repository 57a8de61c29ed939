"""Key rotation: re-seal every record under the active key, one record per transaction.

Each record is read, opened with the key that sealed it, sealed under the active key and written
back in its own short transaction, so a rotation stopped at any point has lost nothing: every record
is under its old key or the new one, and both are in the keyring. Running it again finishes the job.
A record that cannot be opened is reported and left as it is; the rest still rotate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.errors import VaultError
from vault import store
from vault.keyring import Keyring
from vault.sealing import RecordRef, seal, unseal


@dataclass
class RotationReport:
    active_kid: str
    rotated: int = 0
    already_current: int = 0
    failed: list[str] = field(default_factory=list)
    """One line per record left under its old key: the record's name and why, never a value."""
    usage_after: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed and set(self.usage_after) <= {self.active_kid}


def rotate_records(
    engine: Engine, keyring: Keyring, *, after_each: Callable[[RecordRef], None] | None = None
) -> RotationReport:
    """``after_each`` runs after each record's commit (tests stop a rotation half way with it)."""
    active = keyring.active.kid
    with engine.connect() as conn:
        ids = store.record_ids_not_under(conn, active)
        current = store.key_usage(conn).get(active, 0)
    report = RotationReport(active_kid=active, already_current=current)
    for record_id in ids:
        with store.write(engine) as conn:
            row = store.lock_record(conn, record_id)
            if row is None:  # removed since the list was read
                continue
            ref = RecordRef(row.payer, row.account, row.field)
            if row.key_id == active:  # re-sealed by a writer since the list was read
                report.already_current += 1
                continue
            try:
                plaintext = unseal(keyring, ref, row.key_id, bytes(row.ciphertext))
            except VaultError as exc:
                report.failed.append(f"{ref}: {type(exc).__name__}")
                continue
            kid, blob = seal(keyring, ref, plaintext)
            store.reseal_record(conn, record_id, kid, blob)
        report.rotated += 1
        if after_each is not None:
            after_each(ref)
    with engine.connect() as conn:
        usage = store.key_usage(conn)
    report.usage_after = usage
    return report
