"""One small tree of errors: a root and three families, one per queue outcome.

A portal error's family decides what the runner does with the item: ``Transient`` goes to
``retry_wait``, ``Terminal`` to ``failed``, ``NeedsHuman`` to ``needs_human``. Messages never carry
secrets or patient data: they name the record, the field or the locator, never its value.

Every payerbot error class is defined here, so ``error_class`` can turn a recorded error kind (a
run's ``error_kind``, an item's ``last_error_kind``) back into its class and family.
"""

from __future__ import annotations

from enum import StrEnum


class Disposition(StrEnum):
    """What the queue does with an item whose run raised the error."""

    RETRY = "retry"
    FAIL = "fail"
    HUMAN = "human"


class PayerbotError(Exception):
    """Something went wrong in payerbot."""

    disposition: Disposition = Disposition.FAIL

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or type(self).__name__).strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- configuration and input ----------------------------------------------------------------


class ConfigError(PayerbotError):
    """A setting is missing or has a value payerbot cannot use."""


class BrowserNotFound(ConfigError):
    """No Chromium was found for Playwright to drive."""


class IntakeError(PayerbotError):
    """A work item was refused at intake."""

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        self.field = field
        self.line = line
        super().__init__(message)


class UnsupportedAction(PayerbotError):
    """The payer's portal does not support this action."""


class SchedulerBusy(ConfigError):
    """Another scheduler already runs against this database."""


class StaleLease(PayerbotError):
    """This worker's lease on the item was taken back; its write was refused."""


class LeaseExpired(PayerbotError):
    """A worker's lease on the item ran out and no attempt is left; the reaper failed the item."""


class InvalidTransition(PayerbotError):
    """The item is not in a state that allows this."""


class NotFound(PayerbotError):
    """No such record."""


# --- vault ---------------------------------------------------------------------------------


class VaultError(PayerbotError):
    """The vault could not do what was asked."""


class VaultKeyError(VaultError):
    """The vault key is missing, malformed, unsafe to use, or not the one that sealed a record."""


class RecordTampered(VaultError):
    """A vault record failed authentication: wrong key, altered bytes, or moved from another record."""


# --- portal run outcomes --------------------------------------------------------------------


class PortalError(PayerbotError):
    """A portal run did not end as expected."""


class Transient(PortalError):
    """Worth another attempt later: the portal was slow, down or busy."""

    disposition = Disposition.RETRY


class PortalTimeout(Transient):
    """The portal did not answer in time."""


class PortalServerError(Transient):
    """The portal answered with a server error."""


class PortalMaintenance(Transient):
    """The portal shows a maintenance page."""


class SessionExpired(Transient):
    """The portal ended the session; a fresh login is needed."""


class TotpStepBusy(VaultError, Transient):
    """No unused TOTP time step came up in time: another process keeps using them, or clocks disagree."""


class Terminal(PortalError):
    """The portal gave a definite answer that another attempt would not change."""

    disposition = Disposition.FAIL


class NotFoundOnPortal(Terminal):
    """The portal does not know the claim, authorization or reference."""


class PortalValidationError(Terminal):
    """The portal refused the form with a validation message."""


class DocumentProblem(Terminal):
    """A document named by the appeal is missing, unreadable, or not the one that was approved."""


class NeedsHuman(PortalError):
    """A person has to look: the bot must not guess."""

    disposition = Disposition.HUMAN


class LoginRejected(NeedsHuman):
    """The portal rejected the account's credentials; the account is disabled until a person fixes it."""


class SecondFactorRejected(LoginRejected):
    """The portal rejected the one-time code or security answer; the account is disabled."""


class PasswordExpired(LoginRejected):
    """The portal demands a password change; a person must change it."""


class LoginRefused(LoginRejected):
    """payerbot refused to log in off the account's sealed portal origin; the account is disabled."""


class UntrustedPortalUrl(LoginRefused):
    """The account's portal URL is not its sealed one, not sealed, or not https; nothing was requested."""


class SecretOriginMismatch(LoginRefused):
    """A page or frame outside the account's sealed origin asked for a secret; nothing was typed."""


class AccountDisabled(NeedsHuman):
    """The account is disabled after a rejected login; `payerbot vault enable` re-enables it."""


class CaptchaShown(NeedsHuman):
    """The portal shows a CAPTCHA, which only a person may answer."""


class UnknownSecondFactorPrompt(NeedsHuman):
    """The portal asked a security question the vault has no answer for."""


class CodeInboxMissing(ConfigError, NeedsHuman):
    """The payer sends its login code by e-mail or SMS and no usable inbox is configured for the
    account (``PAYERBOT_CODE_INBOXES``); no login was tried."""


class PortalChanged(NeedsHuman):
    """The portal's page no longer has a control the bot relies on."""

    def __init__(self, message: str | None = None, *, locator: str | None = None) -> None:
        self.locator = locator
        super().__init__(message)


class AmbiguousSubmission(NeedsHuman):
    """An earlier submit may have reached the portal and its history cannot tell: no blind resubmit."""


class UnmappedStatus(NeedsHuman):
    """The portal's status wording matches no mapping and no confident model answer."""


class InternalError(NeedsHuman):
    """payerbot hit an unexpected error; a person should look at the run's bundle."""


# --- planned stops and operator tools -------------------------------------------------------


class PlannedStop(PayerbotError):
    """The run stopped where it was told to: before the submit click of a dry run or a replay."""

    outcome: str = "stopped"
    """The run's recorded outcome."""


class DryRunStop(PlannedStop):
    """Dry run: the submission stopped at the final review page, before the click."""

    outcome = "dry_run"


class ReplayStop(PlannedStop):
    """Replay: stopped at the final page, before the submit click."""


class ReplayRefused(PayerbotError):
    """This replay cannot run as asked."""


_BY_NAME: dict[str, type[PayerbotError]] = {
    name: value
    for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, PayerbotError)
}


def error_class(kind: str) -> type[PayerbotError] | None:
    """The payerbot error class named ``kind`` (a recorded error kind), or None when the kind is not
    payerbot's own (a bug's ``KeyError``, a Playwright error)."""
    return _BY_NAME.get(kind)
