"""The vault: encrypted portal credentials, second factors, session state and the lockout flag.

The runner calls ``Vault.login_secrets`` (a ``bot.login.LoginSecrets``), ``load_session`` /
``save_session`` / ``clear_session``, and ``disable`` when a portal rejects a login.

Keys (``PAYERBOT_VAULT_KEY``, or ``PAYERBOT_VAULT_KEY_FILE`` with mode 0600) form a keyring of
``kid:base64key`` lines, the first one active. Rotating a key, without losing a record:

1. ``payerbot vault keygen --add-to KEYFILE``: a new key becomes active; the old one still reads.
2. ``payerbot vault rotate``: every record is re-sealed under it, one transaction per record, so an
   interrupted rotation is simply run again.
3. ``payerbot vault retire OLDKID``: refused while any record is still sealed with the old key.
"""

from __future__ import annotations

from vault.core import Vault
from vault.fields import AccountInfo, answer_field, normalize_question
from vault.keyring import Keyring, VaultKey, new_key
from vault.oob import BindsUser, InboxSource
from vault.rotation import RotationReport
from vault.sealing import RecordRef
from vault.totp import TotpCodes, TotpSpec, parse_totp

__all__ = [
    "AccountInfo",
    "BindsUser",
    "InboxSource",
    "Keyring",
    "RecordRef",
    "RotationReport",
    "TotpCodes",
    "TotpSpec",
    "Vault",
    "VaultKey",
    "answer_field",
    "new_key",
    "normalize_question",
    "parse_totp",
]
