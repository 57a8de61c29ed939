"""One portal account's browser session for a batch: reuse the stored one, else log in once.

The login runs in a browser context of its own with no trace and no HAR (both would record the
typed password and the cookies); each item then runs in a fresh context started from the session's
storage state, so a logged-in session serves the whole batch. The storage state is kept encrypted
in the vault and reused on the next run. A login the portal rejects disables the account in the
database at once: exactly one attempt, never a retry that would lock the account.

Logins go only to the origin of the URL sealed with the account: a session handed a URL elsewhere
refuses before any request, and each secret, as the vault reveals it, is registered with the
login's step recorder, which types it only into a field whose page and document are that origin.
A payer that sends its code by e-mail or SMS reads it from the inbox configured for the account
(``PAYERBOT_CODE_INBOXES``); with none configured the session refuses, again before any request.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, cast

from playwright.sync_api import Browser, BrowserContext, StorageState

from bot.audit import AuditAction, AuditTrail
from bot.errors import (
    CodeInboxMissing,
    LoginRefused,
    LoginRejected,
    PortalError,
    RecordTampered,
    UntrustedPortalUrl,
)
from bot.logging import get_logger
from bot.login import CodeSource, LoginSecrets, SecondFactorKind
from bot.origin import origin_of, url_problem
from bot.portal import Portal
from bot.redact import PROCESS_SECRETS
from bot.settings import Settings
from bot.steps import StepRecorder
from vault import InboxSource, Vault

log = get_logger()


def _cookie_values(state: StorageState | None) -> list[str]:
    values = (cookie.get("value", "") for cookie in (state.get("cookies", []) if state else []))
    return [value for value in values if len(value) >= 8]


def remember_cookie_values(state: StorageState | None) -> None:
    """Session cookies are secrets: every log line and artifact is scrubbed of their values."""
    PROCESS_SECRETS.add(*_cookie_values(state))


def release_cookie_values(state: StorageState | None) -> None:
    """A replaced session's cookies are sent no more: still scrubbed, but no longer pinned."""
    PROCESS_SECRETS.release(*_cookie_values(state))


def _sealed(vault: Vault, payer: str, account: str) -> str:
    """The URL sealed with the account (``""``: the payer's default); refused when none opens."""
    where = f"vault account {payer}/{account}"
    try:
        sealed: str | None = vault.sealed_portal_url(payer, account)
    except RecordTampered:
        raise UntrustedPortalUrl(
            f"{where}: its sealed portal URL failed authentication (altered, or copied from another "
            "account); login refused, nothing requested"
        ) from None
    if sealed is None:
        raise UntrustedPortalUrl(
            f"{where} has no sealed portal URL (stored before URLs were sealed); login refused. After "
            f"checking the URL, `payerbot vault update {payer} {account} --url URL` seals it ('' for "
            "the payer's default), then `payerbot vault enable` re-enables the account"
        )
    return sealed


def _usable(url: str, payer: str, account: str) -> str:
    problem = url_problem(url)
    if problem is not None:
        raise UntrustedPortalUrl(f"vault account {payer}/{account}: its portal URL {problem}; login refused")
    return url


def sealed_portal_url(vault: Vault, portal_cls: type[Portal], payer: str, account: str) -> str:
    """The URL the vault vouches for: the sealed one or the payer's default, https unless loopback."""
    return _usable(_sealed(vault, payer, account) or portal_cls.default_url, payer, account)


def _shown(url: str) -> str:
    return origin_of(url)[:120] if url else "the payer's default"


def trusted_portal_url(
    vault: Vault, portal_cls: type[Portal], payer: str, account: str, listed: str | None
) -> str:
    """``sealed_portal_url``, refused too when ``accounts.portal_url`` (``listed``) says otherwise.

    Asked before any browser work: a URL a database writer changed gets no request at all.
    """
    sealed = _sealed(vault, payer, account)
    if (listed or "") != sealed:
        raise UntrustedPortalUrl(
            f"vault account {payer}/{account}: accounts.portal_url ({_shown(listed or '')}) is not the URL "
            f"sealed with the account ({_shown(sealed)}); login refused, nothing requested "
            f"(`payerbot vault update {payer} {account} --url URL` sets both)"
        )
    return _usable(sealed or portal_cls.default_url, payer, account)


def lock_out(vault: Vault, audit: AuditTrail, payer: str, account: str, exc: LoginRejected) -> None:
    """No further login until a person looks: disable the account, and write down why."""
    refused = isinstance(exc, LoginRefused)  # payerbot's own refusal, not the portal's
    vault.disable(payer, account, exc.message)
    detail = {"error_kind": type(exc).__name__}
    audit.record(
        AuditAction.LOGIN,
        "untrusted_origin" if refused else "rejected",
        payer=payer,
        account=account,
        detail=detail,
    )
    audit.record(
        AuditAction.ACCOUNT_DISABLED, "disabled", payer=payer, account=account, detail={"reason": exc.message}
    )
    event = "login refused off the sealed origin" if refused else "login rejected"
    log.error(
        f"{event}; account disabled",
        payer=payer,
        account=account,
        error_kind=type(exc).__name__,
    )


def code_source_for(
    settings: Settings, portal_cls: type[Portal], payer: str, account: str, vault: Vault
) -> InboxSource | None:
    """Where the account's e-mailed or texted login code is read, for a payer that sends one.

    Asked before any request: with no inbox configured a login would spend one of the account's
    tries on a code it cannot read, so the account's items go to a person instead.
    """
    if portal_cls.second_factor != SecondFactorKind.OUT_OF_BAND:
        return None
    inbox = settings.code_inbox(payer, account)
    where = f"the code inbox for {payer}/{account} (PAYERBOT_CODE_INBOXES)"
    if inbox is None:
        raise CodeInboxMissing(
            f"{portal_cls.display_name} sends its login code by e-mail or SMS and PAYERBOT_CODE_INBOXES "
            f"names no inbox for {payer} or {payer}/{account}; no login tried"
        )
    return InboxSource(inbox, where=where, clock=vault.clock)


@dataclass
class AccountSession:
    browser: Browser
    portal_cls: type[Portal]
    portal_url: str
    payer: str
    account: str
    vault: Vault
    audit: AuditTrail
    settings: Settings
    state: StorageState | None = None
    code_source: InboxSource | None = None  # the account's code inbox, when its payer sends codes
    verified: bool = False
    logins: int = field(default=0)

    def __post_init__(self) -> None:
        # the vault keeps, as JSON, what ``storage_state()`` returned
        self.state = cast("StorageState | None", self.vault.load_session(self.payer, self.account))
        remember_cookie_values(self.state)

    def new_context(self, **options: Any) -> BrowserContext:
        context = self.browser.new_context(storage_state=self.state, **options)
        context.set_default_timeout(self.settings.action_timeout_ms)
        context.set_default_navigation_timeout(self.settings.navigation_timeout_ms)
        return context

    def ensure(self) -> None:
        """Have a session the portal accepts: the stored one if it still works, else one login."""
        if self.verified:
            return
        if self.code_source is None:
            self.code_source = code_source_for(
                self.settings, self.portal_cls, self.payer, self.account, self.vault
            )
        origin = self._sealed_origin()
        context = self.new_context()
        try:
            page = context.new_page()
            portal = self.portal_cls(page, self.portal_url, StepRecorder(page, clock=self.vault.clock))
            if self.state is not None and portal.is_logged_in():
                self.verified = True
                self.audit.record(AuditAction.SESSION_REUSED, "ok", payer=self.payer, account=self.account)
                return
            self._login(portal, context, origin)
        finally:
            context.close()

    def _sealed_origin(self) -> str:
        """The origin sealed with the account; a session handed a URL elsewhere refuses, unrequested."""
        try:
            sealed = origin_of(sealed_portal_url(self.vault, self.portal_cls, self.payer, self.account))
            if origin_of(self.portal_url) != sealed:
                raise UntrustedPortalUrl(
                    f"vault account {self.payer}/{self.account}: the session's portal URL "
                    f"({origin_of(self.portal_url)}) is not on the sealed origin ({sealed}); login refused"
                )
        except UntrustedPortalUrl as exc:
            lock_out(self.vault, self.audit, self.payer, self.account, exc)
            raise
        return sealed

    def _secrets(self, steps: StepRecorder, origin: str) -> LoginSecrets:
        """The account's secrets; each, as it is revealed, is remembered for scrubbing and may be
        typed only on ``origin`` (the login's step recorder checks)."""
        secrets = self.vault.login_secrets(self.payer, self.account, out_of_band=self.code_source)
        code, answer = secrets.one_time_code, secrets.answer

        def revealed(value: str) -> str:
            PROCESS_SECRETS.add(value)
            steps.add_secret(value, origin=origin)
            return value

        revealed(secrets.username)
        revealed(secrets.password.get_secret_value())

        def remembered_codes(source: CodeSource) -> CodeSource:
            def remembered_code() -> str:
                value = revealed(source())
                # valid for one time step: still scrubbed, but from the bounded pool, so months of
                # logins do not grow the pinned list
                PROCESS_SECRETS.release(value)
                return value

            return remembered_code

        def remembered_answer(question: str) -> str:
            return revealed(answer(question))

        return replace(
            secrets, one_time_code=remembered_codes(code) if code else None, answer=remembered_answer
        )

    def _login(self, portal: Portal, context: BrowserContext, origin: str) -> None:
        secrets = self._secrets(portal.steps, origin)
        self.audit.record(
            AuditAction.VAULT_READ, "ok", payer=self.payer, account=self.account, detail={"fields": "login"}
        )
        self.logins += 1
        try:
            portal.login(secrets)
        except LoginRejected as exc:
            lock_out(self.vault, self.audit, self.payer, self.account, exc)
            raise
        except PortalError as exc:
            self.audit.record(
                AuditAction.LOGIN,
                "error",
                payer=self.payer,
                account=self.account,
                detail={"error_kind": type(exc).__name__},
            )
            raise
        release_cookie_values(self.state)
        self.state = context.storage_state()
        remember_cookie_values(self.state)
        self.vault.save_session(self.payer, self.account, self.state)
        self.verified = True
        self.audit.record(AuditAction.LOGIN, "ok", payer=self.payer, account=self.account)
        log.info("logged in", payer=self.payer, account=self.account)

    def renew(self) -> None:
        """The portal ended the session: forget it and log in again (once)."""
        release_cookie_values(self.state)
        self.state = None
        self.verified = False
        self.vault.clear_session(self.payer, self.account)
        self.ensure()

    def keep(self, context: BrowserContext) -> None:
        """Portals refresh cookies as they go; keep the newest state for the next item and run."""
        try:
            state = context.storage_state()
        except Exception:  # a closed context keeps the previous state
            return
        if state != self.state:
            release_cookie_values(self.state)
            self.state = state
            remember_cookie_values(state)
            self.vault.save_session(self.payer, self.account, state)
