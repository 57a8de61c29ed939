"""The vault: portal accounts, their sealed secrets, session state and lockout flag.

Every secret is one ``vault_records`` row sealed by ``vault.sealing`` and bound to its
(payer, account, field). Login secrets are decrypted when used: the password when
``login_secrets`` is built, the TOTP secret only when a code is asked for, an answer only when its
question is asked. The lockout flag is a column of ``accounts``, so it survives restarts.

The portal URL is sealed too, as its own record (``""`` for the payer's default), written in the
same transaction as the secrets; ``accounts.portal_url`` is only a readable copy for `vault list`.
Whoever can write the database but holds no key cannot send a login anywhere else.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from bot.clock import Clock, SystemClock
from bot.errors import AccountDisabled, ConfigError, UnknownSecondFactorPrompt, VaultError, VaultKeyError
from bot.login import CodeSource, LoginSecrets, SecondFactorKind
from bot.origin import url_problem
from bot.settings import Settings
from vault import store
from vault.fields import (
    ANSWER_PREFIX,
    PASSWORD,
    PORTAL_URL,
    SESSION,
    TOTP,
    USERNAME,
    AccountInfo,
    answer_field,
)
from vault.keyring import Keyring
from vault.oob import BindsUser
from vault.rotation import RotationReport, rotate_records
from vault.sealing import RecordRef, seal, unseal
from vault.totp import TotpCodes, TotpSpec, parse_totp

PAYER_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
Secret = SecretStr | str


def _reveal(value: Secret) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def check_names(payer: str, account: str) -> None:
    if not PAYER_PATTERN.match(payer):
        raise VaultError(f"payer id '{payer[:60]}' must match {PAYER_PATTERN.pattern}")
    if not account.strip() or len(account) > 200 or any(ord(c) < 32 for c in account):
        raise VaultError("account name must be 1-200 printable characters")


def check_portal_url(url: str) -> None:
    """Refuse a URL a login may not go to; ``""`` (the payer's default) is checked when it is used."""
    problem = url_problem(url) if url else None
    if problem is not None:
        raise VaultError(f"portal URL {problem}")


class Vault:
    """Accounts and their secrets. ``keyring`` may be None for what needs no key (list)."""

    def __init__(self, engine: Engine, keyring: Keyring | None, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self._keyring = keyring
        self.clock: Clock = clock or SystemClock()

    @classmethod
    def from_settings(
        cls, engine: Engine, settings: Settings, *, clock: Clock | None = None, need_key: bool = True
    ) -> Vault:
        """The vault with the keyring from ``PAYERBOT_VAULT_KEY`` or ``PAYERBOT_VAULT_KEY_FILE``.

        ``need_key=False`` reads no key at all, for what only reads account rows (list), so an
        operator can inspect accounts without the key. What changes them (enable, disable, remove)
        is audited, and the audit chain key is sealed in the vault, so those need the key.
        """
        keyring = Keyring.from_settings(settings) if need_key else None
        return cls(engine, keyring, clock=clock)

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise VaultKeyError(
                "no vault key: set PAYERBOT_VAULT_KEY or PAYERBOT_VAULT_KEY_FILE "
                "(`payerbot vault keygen --out FILE` makes a key file)"
            )
        return self._keyring

    def __repr__(self) -> str:
        return f"Vault({self.engine.url.render_as_string(hide_password=True)}, {self._keyring!r})"

    # -- records ----------------------------------------------------------------------------

    def _read(self, ref: RecordRef) -> bytes | None:
        with self.engine.connect() as conn:
            found = store.get_record(conn, ref)
        return None if found is None else unseal(self.keyring, ref, *found)

    def _require(self, ref: RecordRef) -> bytes:
        data = self._read(ref)
        if data is None:
            raise VaultError(f"vault record {ref} is missing (`payerbot vault update` can set it)")
        return data

    def _sealed(
        self, payer: str, account: str, values: dict[str, bytes]
    ) -> list[tuple[RecordRef, str, bytes]]:
        out = []
        for name, plaintext in values.items():
            ref = RecordRef(payer, account, name)
            out.append((ref, *seal(self.keyring, ref, plaintext)))
        return out

    # -- accounts ---------------------------------------------------------------------------

    def add_account(
        self,
        payer: str,
        account: str,
        *,
        username: str,
        password: Secret,
        second_factor: str = "none",
        totp_secret: Secret | None = None,
        answers: dict[str, Secret] | None = None,
        portal_url: str | None = None,
        replace: bool = False,
    ) -> None:
        """Store an account and its secrets in one transaction (all of them, or nothing).

        ``replace`` swaps the secrets of an existing account (its session is dropped; its lockout
        flag and used TOTP steps are kept).
        """
        check_names(payer, account)
        try:
            kind = SecondFactorKind(second_factor)
        except ValueError:
            known = ", ".join(k.value for k in SecondFactorKind)
            # the value is not echoed: a misplaced argument could hold a secret
            raise VaultError(f"second factor must be one of: {known}") from None
        check_portal_url(portal_url or "")
        values = self._credential_values(
            kind, username=username, password=password, totp_secret=totp_secret, answers=answers
        )
        values[PORTAL_URL] = (portal_url or "").encode()
        sealed = self._sealed(payer, account, values)
        now = self.clock.now()
        with store.write(self.engine) as conn:
            if store.account_exists(conn, payer, account):
                if not replace:
                    raise VaultError(
                        f"vault account {payer}/{account} already exists "
                        "(`payerbot vault add --replace` replaces its secrets)"
                    )
                store.delete_records(conn, payer, account)
                store.update_account(
                    conn, payer, account, second_factor=kind.value, portal_url=portal_url or None
                )
            else:
                store.insert_account(
                    conn,
                    payer=payer,
                    account=account,
                    portal_url=portal_url or None,
                    second_factor=kind.value,
                    enabled=True,
                    created_at=now,
                )
            for ref, kid, blob in sealed:
                store.put_record(conn, ref, kid, blob, now)

    @staticmethod
    def _credential_values(
        kind: SecondFactorKind,
        *,
        username: str,
        password: Secret,
        totp_secret: Secret | None,
        answers: dict[str, Secret] | None,
    ) -> dict[str, bytes]:
        if not username.strip():
            raise VaultError("username is empty")
        if not _reveal(password):
            raise VaultError("password is empty")
        if kind is SecondFactorKind.TOTP and totp_secret is None:
            raise VaultError("second factor totp needs a TOTP secret")
        if kind is not SecondFactorKind.TOTP and totp_secret is not None:
            raise VaultError(f"a TOTP secret was given but the second factor is {kind.value}")
        if kind is SecondFactorKind.SECURITY_QUESTIONS and not answers:
            raise VaultError("second factor security_questions needs at least one question and answer")
        values = {USERNAME: username.strip().encode(), PASSWORD: _reveal(password).encode()}
        if totp_secret is not None:
            values[TOTP] = parse_totp(_reveal(totp_secret)).to_json()
        values.update(Vault._answer_values(answers or {}))
        return values

    @staticmethod
    def _answer_values(answers: dict[str, Secret]) -> dict[str, bytes]:
        values: dict[str, bytes] = {}
        for number, (question, answer) in enumerate(answers.items(), start=1):
            if not question.strip():
                raise VaultError(f"security question {number} is empty")
            if not _reveal(answer).strip():
                raise VaultError(f"the answer to security question {number} is empty")
            field = answer_field(question)
            if field in values:
                raise VaultError(f"security question {number} repeats an earlier question")
            values[field] = _reveal(answer).encode()
        return values

    def update_secrets(
        self,
        payer: str,
        account: str,
        *,
        username: str | None = None,
        password: Secret | None = None,
        totp_secret: Secret | None = None,
        answers: dict[str, Secret] | None = None,
        portal_url: str | None = None,
    ) -> None:
        """Change some secrets of an account (answers are added or replaced question by question).

        ``portal_url`` re-seals the URL (``""``: the payer's default) and sets its readable copy in
        ``accounts`` in the same transaction. A changed username, password or URL drops the stored
        session, which belonged to the old login.
        """
        values: dict[str, bytes] = {}
        if username is not None:
            if not username.strip():
                raise VaultError("username is empty")
            values[USERNAME] = username.strip().encode()
        if password is not None:
            if not _reveal(password):
                raise VaultError("password is empty")
            values[PASSWORD] = _reveal(password).encode()
        if totp_secret is not None:
            values[TOTP] = parse_totp(_reveal(totp_secret)).to_json()
        values.update(self._answer_values(answers or {}))
        if portal_url is not None:
            check_portal_url(portal_url)
            values[PORTAL_URL] = portal_url.encode()
        if not values:
            raise VaultError("nothing to update: give a username, password, TOTP secret, answers or URL")
        sealed = self._sealed(payer, account, values)
        now = self.clock.now()
        with store.write(self.engine) as conn:
            row = store.account_row(conn, payer, account)
            if TOTP in values and row.second_factor != SecondFactorKind.TOTP.value:
                raise VaultError(f"vault account {payer}/{account} uses {row.second_factor}, not totp")
            for ref, kid, blob in sealed:
                store.put_record(conn, ref, kid, blob, now)
            if PORTAL_URL in values:
                store.update_account(conn, payer, account, portal_url=portal_url or None)
            if values.keys() & {USERNAME, PASSWORD, PORTAL_URL}:
                store.delete_records(conn, payer, account, [SESSION])

    def accounts(self) -> list[AccountInfo]:
        with self.engine.connect() as conn:
            rows = store.all_accounts(conn)
            records = store.record_summaries(conn)
        by_account: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for rec in records:
            by_account[(rec.payer, rec.account)].append(rec)
        return [self._info(row, by_account[(row.payer, row.account)]) for row in rows]

    def account(self, payer: str, account: str) -> AccountInfo:
        with self.engine.connect() as conn:
            row = store.account_row(conn, payer, account)
            records = store.record_summaries(conn, payer, account)
        return self._info(row, records)

    @staticmethod
    def _info(row: Any, records: list[Any]) -> AccountInfo:
        session = next((r for r in records if r.field == SESSION), None)
        return AccountInfo(
            payer=row.payer,
            account=row.account,
            portal_url=row.portal_url,
            portal_url_sealed=any(r.field == PORTAL_URL for r in records),
            second_factor=row.second_factor,
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            disabled_at=row.disabled_at,
            has_session=session is not None,
            session_saved_at=session.updated_at if session is not None else None,
            answers=sum(1 for r in records if r.field.startswith(ANSWER_PREFIX)),
            key_ids=sorted({r.key_id for r in records}),
            created_at=row.created_at,
        )

    def remove_account(self, payer: str, account: str) -> None:
        with store.write(self.engine) as conn:
            store.delete_account(conn, payer, account)

    # -- login ------------------------------------------------------------------------------

    def sealed_portal_url(self, payer: str, account: str) -> str | None:
        """The portal URL sealed with the account (``""``: the payer's default), None when none is.

        An account stored before URLs were sealed has none; RecordTampered when the record was
        altered or copied from another account.
        """
        data = self._read(RecordRef(payer, account, PORTAL_URL))
        return None if data is None else data.decode()

    def login_secrets(
        self, payer: str, account: str, *, out_of_band: CodeSource | BindsUser | None = None
    ) -> LoginSecrets:
        """What the portal's ``login`` needs. Raises AccountDisabled for a disabled account.

        ``out_of_band`` gives the code a portal sends by e-mail or SMS: a callable, or an
        ``InboxSource`` that the vault binds to the account's username.
        """
        with self.engine.connect() as conn:
            row = store.account_row(conn, payer, account)
        if not row.enabled:
            raise AccountDisabled(
                f"vault account {payer}/{account} is disabled ({row.disabled_reason or 'no reason given'}); "
                f"`payerbot vault enable {payer} {account}` re-enables it"
            )
        username = self._require(RecordRef(payer, account, USERNAME)).decode()
        password = SecretStr(self._require(RecordRef(payer, account, PASSWORD)).decode())
        code: CodeSource | None = None
        if row.second_factor == SecondFactorKind.TOTP.value:
            code = self.totp_codes(payer, account)
        elif out_of_band is not None:
            code = out_of_band.for_user(username) if hasattr(out_of_band, "for_user") else out_of_band
        elif row.second_factor == SecondFactorKind.OUT_OF_BAND.value:
            raise ConfigError(
                f"vault account {payer}/{account} gets its one-time code out of band: "
                "login_secrets needs an out_of_band code source"
            )
        return LoginSecrets(
            username=username, password=password, one_time_code=code, answer=self._answers(payer, account)
        )

    def totp_codes(self, payer: str, account: str, *, min_remaining: float = 5.0) -> TotpCodes:
        """A code source for the account's TOTP; the secret is decrypted per code asked for."""

        def load() -> TotpSpec:
            return TotpSpec.from_json(self._require(RecordRef(payer, account, TOTP)))

        def claim(step: int) -> bool:
            return store.claim_totp_step(self.engine, payer, account, step)

        return TotpCodes(f"{payer}/{account}", load, claim, self.clock, min_remaining=min_remaining)

    def _answers(self, payer: str, account: str) -> Callable[[str], str]:
        def answer(question: str) -> str:
            data = self._read(RecordRef(payer, account, answer_field(question)))
            if data is None:
                raise UnknownSecondFactorPrompt(
                    f"vault account {payer}/{account} has no answer for the security question "
                    f"{question.strip()[:160]!r} (`payerbot vault update --answers` adds one)"
                )
            return data.decode()

        return answer

    # -- session state ----------------------------------------------------------------------

    def save_session(self, payer: str, account: str, storage_state: Mapping[str, object]) -> None:
        ref = RecordRef(payer, account, SESSION)
        kid, blob = seal(self.keyring, ref, json.dumps(storage_state).encode())
        with store.write(self.engine) as conn:
            store.account_row(conn, payer, account)
            store.put_record(conn, ref, kid, blob, self.clock.now())

    def load_session(self, payer: str, account: str) -> dict[str, Any] | None:
        data = self._read(RecordRef(payer, account, SESSION))
        return None if data is None else json.loads(data)

    def clear_session(self, payer: str, account: str) -> None:
        with store.write(self.engine) as conn:
            store.delete_records(conn, payer, account, [SESSION])

    # -- lockout ----------------------------------------------------------------------------

    def disable(self, payer: str, account: str, reason: str) -> None:
        """Stop every login of the account until a person enables it again."""
        with store.write(self.engine) as conn:
            store.update_account(
                conn,
                payer,
                account,
                enabled=False,
                disabled_reason=reason[:500],
                disabled_at=self.clock.now(),
            )

    def enable(self, payer: str, account: str) -> None:
        with store.write(self.engine) as conn:
            store.update_account(conn, payer, account, enabled=True, disabled_reason=None, disabled_at=None)

    def is_enabled(self, payer: str, account: str) -> bool:
        with self.engine.connect() as conn:
            return bool(store.account_row(conn, payer, account).enabled)

    # -- keys -------------------------------------------------------------------------------

    def key_usage(self) -> dict[str, int]:
        """How many records each key id seals."""
        with self.engine.connect() as conn:
            return store.key_usage(conn)

    def rotate(self, *, after_each: Callable[[RecordRef], None] | None = None) -> RotationReport:
        """Re-seal every record under the active key, one transaction per record."""
        return rotate_records(self.engine, self.keyring, after_each=after_each)

    def check_retirable(self, kid: str) -> None:
        """Raise unless ``kid`` may leave the keyring: not active, and no record sealed with it."""
        if kid == self.keyring.active.kid:
            raise VaultKeyError(f"key '{kid}' is the active key; make another key active first")
        used = self.key_usage().get(kid, 0)
        if used:
            raise VaultKeyError(
                f"key '{kid}' still seals {used} record(s); run `payerbot vault rotate` first"
            )
