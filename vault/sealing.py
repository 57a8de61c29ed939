"""AES-GCM sealing of one vault record, bound to its (payer, account, field).

A sealed blob is ``version byte || 96-bit random nonce || ciphertext+tag``. The associated data
names the record and the key id, so a ciphertext copied onto another record (another account,
another field) or relabelled with another key id fails authentication instead of decrypting.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.errors import RecordTampered, VaultKeyError
from vault.keyring import Keyring

VERSION = 1
NONCE_BYTES = 12


@dataclass(frozen=True, order=True)
class RecordRef:
    """Names a record; what every vault error message says instead of a value."""

    payer: str
    account: str
    field: str

    def __str__(self) -> str:
        return f"{self.payer}/{self.account}/{self.field}"


def associated_data(ref: RecordRef, kid: str) -> bytes:
    # JSON of a list is an unambiguous encoding: no choice of names makes two records collide
    return json.dumps(["payerbot-vault", VERSION, ref.payer, ref.account, ref.field, kid]).encode()


def seal(keyring: Keyring, ref: RecordRef, plaintext: bytes) -> tuple[str, bytes]:
    """Encrypt under the active key: (key id, blob)."""
    key = keyring.active
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(key.material).encrypt(nonce, plaintext, associated_data(ref, key.kid))
    return key.kid, bytes([VERSION]) + nonce + body


def unseal(keyring: Keyring, ref: RecordRef, kid: str, blob: bytes) -> bytes:
    """Decrypt a record, or say which record failed and why, without a byte of its content."""
    key = keyring.get(kid)
    if key is None:
        raise VaultKeyError(
            f"vault record {ref} is sealed with key '{kid}', which the keyring ({keyring.source}) "
            f"does not hold (it holds: {', '.join(keyring.kids)})"
        )
    blob = bytes(blob)
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] != VERSION:
        raise RecordTampered(f"vault record {ref} is malformed (not a version {VERSION} sealed record)")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return AESGCM(key.material).decrypt(nonce, body, associated_data(ref, kid))
    except InvalidTag:
        raise RecordTampered(
            f"vault record {ref} failed authentication under key '{kid}': the key is not the one "
            "that sealed it, its bytes were altered, or it was moved from another record"
        ) from None
