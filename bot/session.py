"""One portal account's browser session for a batch: reuse the stored one, else log in once.

The login runs in a browser context of its own with no trace and no HAR (both would record the
typed password and the cookies); each item then runs in a fresh context started from the session's
storage state, so a logged-in session serves the whole batch. The storage state is kept encrypted
in the vault and reused on the next run. A login the portal rejects disables the account in the
database at once: exactly one attempt, never a retry that would lock the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from playwright.sync_api import Browser, BrowserContext

from bot.audit import AuditAction, AuditTrail
from bot.errors import LoginRejected, PortalError
from bot.logging import get_logger
from bot.portal import LoginSecrets, Portal, SecondFactorKind
from bot.redact import PROCESS_SECRETS
from bot.settings import Settings
from bot.steps import StepRecorder
from vault import InboxSource

log = get_logger()


def remember_cookie_values(state: dict[str, Any] | None) -> None:
    """Session cookies are secrets: every log line and artifact is scrubbed of their values."""
    for cookie in (state or {}).get("cookies", []):
        value = str(cookie.get("value", ""))
        if len(value) >= 8:
            PROCESS_SECRETS.add(value)


@dataclass
class AccountSession:
    browser: Browser
    portal_cls: type[Portal]
    portal_url: str
    payer: str
    account: str
    vault: Any  # vault.Vault (kept loose: the engine takes the vault handed in)
    audit: AuditTrail
    settings: Settings
    state: dict[str, Any] | None = None
    verified: bool = False
    logins: int = field(default=0)

    def __post_init__(self) -> None:
        self.state = self.vault.load_session(self.payer, self.account)
        remember_cookie_values(self.state)

    def new_context(self, **options: Any) -> BrowserContext:
        context = self.browser.new_context(storage_state=self.state, **options)  # type: ignore[arg-type]
        context.set_default_timeout(self.settings.action_timeout_ms)
        context.set_default_navigation_timeout(self.settings.navigation_timeout_ms)
        return context

    def ensure(self) -> None:
        """Have a session the portal accepts: the stored one if it still works, else one login."""
        if self.verified:
            return
        context = self.new_context()
        try:
            page = context.new_page()
            portal = self.portal_cls(page, self.portal_url, StepRecorder(page))
            if self.state is not None and portal.is_logged_in():
                self.verified = True
                self.audit.record(AuditAction.SESSION_REUSED, "ok", payer=self.payer, account=self.account)
                return
            self._login(portal, context)
        finally:
            context.close()

    def _secrets(self) -> LoginSecrets:
        """The account's secrets, with every code and answer remembered for scrubbing as it is typed."""
        out_of_band = None
        if self.portal_cls.second_factor == SecondFactorKind.OUT_OF_BAND:
            out_of_band = InboxSource(self.settings.inbox_url or self.portal_url, clock=self.vault.clock)
        secrets = self.vault.login_secrets(self.payer, self.account, out_of_band=out_of_band)
        PROCESS_SECRETS.add(secrets.username, secrets.password.get_secret_value())
        code, answer = secrets.one_time_code, secrets.answer

        def remembered_code() -> str:
            value = code()  # type: ignore[misc]
            PROCESS_SECRETS.add(value)
            return value

        def remembered_answer(question: str) -> str:
            value = answer(question)
            PROCESS_SECRETS.add(value)
            return value

        return replace(secrets, one_time_code=remembered_code if code else None, answer=remembered_answer)

    def _login(self, portal: Portal, context: BrowserContext) -> None:
        secrets = self._secrets()
        self.audit.record(
            AuditAction.VAULT_READ, "ok", payer=self.payer, account=self.account, detail={"fields": "login"}
        )
        self.logins += 1
        try:
            portal.login(secrets)
        except LoginRejected as exc:
            self.vault.disable(self.payer, self.account, exc.message)
            self.audit.record(
                AuditAction.LOGIN,
                "rejected",
                payer=self.payer,
                account=self.account,
                detail={"error_kind": type(exc).__name__},
            )
            self.audit.record(
                AuditAction.ACCOUNT_DISABLED,
                "disabled",
                payer=self.payer,
                account=self.account,
                detail={"reason": exc.message},
            )
            log.error(
                "login rejected; account disabled",
                payer=self.payer,
                account=self.account,
                error_kind=type(exc).__name__,
            )
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
        self.state = context.storage_state()  # type: ignore[assignment]
        remember_cookie_values(self.state)
        self.vault.save_session(self.payer, self.account, self.state)
        self.verified = True
        self.audit.record(AuditAction.LOGIN, "ok", payer=self.payer, account=self.account)
        log.info("logged in", payer=self.payer, account=self.account)

    def renew(self) -> None:
        """The portal ended the session: forget it and log in again (once)."""
        self.state = None
        self.verified = False
        self.vault.clear_session(self.payer, self.account)
        self.ensure()

    def keep(self, context: BrowserContext) -> None:
        """Portals refresh cookies as they go; keep the newest state for the next item and run."""
        try:
            state: dict[str, Any] = context.storage_state()  # type: ignore[assignment]
        except Exception:  # a closed context keeps the previous state
            return
        if state != self.state:
            self.state = state
            remember_cookie_values(state)
            self.vault.save_session(self.payer, self.account, state)
