"""The audit chain's key: a random 256-bit HMAC key, sealed as one vault record.

It is kept under a name no account can take (``_audit/chain/key``: payer ids start with a letter),
so it is a record like any other: ``vault rotate`` re-seals it, ``vault keys`` counts it and
``vault retire`` waits for it. The key itself never changes, so every row it chained verifies for
ever. The sealed value also holds the id of the first row the key chained: unkeyed rows are allowed
only before it, and a database writer cannot move that line without the vault key.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

from bot.audit import ChainKey
from bot.errors import VaultKeyError
from vault import store
from vault.keyring import Keyring
from vault.sealing import RecordRef, seal, unseal

if TYPE_CHECKING:
    from vault.core import Vault

CHAIN_KEY_REF = RecordRef("_audit", "chain", "key")
KEY_BYTES = 32


class VaultChainKeyStore:
    """``bot.audit.ChainKeyStore`` over the vault: read and made through the caller's connection,
    so the key can be made inside the transaction of the first keyed row."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def _keyring(self) -> Keyring:
        try:
            return self._vault.keyring
        except VaultKeyError as exc:
            raise VaultKeyError(
                f"the audit trail needs the vault key (its chain key is sealed in the vault): {exc.message}"
            ) from None

    def load(self, conn: Connection) -> ChainKey | None:
        found = store.get_record(conn, CHAIN_KEY_REF)
        if found is None:
            return None
        data = json.loads(unseal(self._keyring(), CHAIN_KEY_REF, *found))
        return ChainKey(base64.b64decode(data["key"]), int(data["first_keyed_id"]))

    def create(self, conn: Connection, first_keyed_id: int) -> ChainKey:
        """Make the key, unless another writer just did: theirs is then the one read back."""
        secret = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
        plaintext = json.dumps({"key": secret, "first_keyed_id": first_keyed_id}).encode()
        kid, blob = seal(self._keyring(), CHAIN_KEY_REF, plaintext)
        store.insert_record_if_absent(conn, CHAIN_KEY_REF, kid, blob, self._vault.clock.now())
        made = self.load(conn)
        if made is None:  # pragma: no cover - the insert or a concurrent one put it there
            raise VaultKeyError(f"vault record {CHAIN_KEY_REF} could not be written")
        return made
