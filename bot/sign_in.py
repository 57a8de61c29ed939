"""A portal's sign-in, declared as data and walked by the engine.

Most portals sign in the same way: a form with a username, a password and a button; then a second
page asking for a one-time code (an authenticator's, or one the portal e-mailed) or the answer to a
security question; then a page with a way to sign out. A portal module declares the labels and
names of that (``SignInForm``); ``sign_in`` types and clicks through it and ``signed_in`` checks a
kept session, so no payer module writes a login method unless its sign-in is of another kind.

The password is typed once and never retried (a second wrong try may lock the account); the step
recorder types it only on the account's own origin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from playwright.sync_api import Locator, Page

from bot.errors import UnknownSecondFactorPrompt
from bot.login import LoginSecrets, SecondFactorKind
from bot.page_steps import PageSteps

ControlRole = Literal["button", "link"]


@dataclass(frozen=True)
class Control:
    """A control by role and exact name, optionally inside a landmark (``inside``: its role and
    name) where the same name stands elsewhere on the page too."""

    role: ControlRole
    name: str
    inside: tuple[Literal["navigation", "banner"], str] | None = None

    def locate(self, page: Page) -> Locator:
        root = page if self.inside is None else page.get_by_role(self.inside[0], name=self.inside[1])
        return root.get_by_role(self.role, name=self.name, exact=True)


@dataclass(frozen=True)
class SignInForm:
    """A portal's sign-in pages: field labels and control names as the portal shows them.

    ``steps`` names the two steps in the portal's words, for errors ("the one-time code");
    ``code`` labels the one-time code field, ``question`` and ``answer`` a security question;
    ``remember_device`` labels a box ticked before ``verify`` so that a kept session skips the
    code next time. ``navigates``: False for an app that swaps views without loading a page.
    """

    path: str  # the sign-in page
    home: str  # a page that needs a session: the signed-in check opens it
    signed_out: Control  # the control that signs in
    signed_in: Control  # what shows once signed in (a way to sign out)
    username: str = "Username"
    password: str = "Password"  # noqa: S105 - a field's label
    code: str | None = None
    question: str | None = None
    answer: str | None = None
    verify: Control = Control("button", "Verify")
    remember_device: str | None = None
    steps: tuple[str, str] = ("sign-in", "one-time code")
    navigates: bool = True


# What a second factor lacks when the vault has nothing to type, by kind (for the operator).
_LACKING = {
    SecondFactorKind.TOTP: "the vault holds no TOTP secret",
    SecondFactorKind.OUT_OF_BAND: "no inbox is configured for its codes",
}


def signed_in(portal: PageSteps, form: SignInForm) -> bool:
    """Open ``form.home``; True when it shows the signed-in control, False on the sign-in page."""
    page = portal.page
    return portal.session_shows(form.home, form.signed_in.locate(page), form.signed_out.locate(page))


def sign_in(portal: PageSteps, form: SignInForm, kind: SecondFactorKind, secrets: LoginSecrets) -> None:
    """Type the credentials, then the second factor the vault gives for ``kind``. A refusal raises
    LoginRejected or SecondFactorRejected with the portal's words; a device the portal remembers
    may be signed in at once."""
    page, steps, label = portal.page, portal.steps, _label(portal.page)
    alert, done = page.get_by_role("alert"), form.signed_in.locate(page)
    username = label(form.username)
    portal.open(form.path, username, "sign-in form")
    steps.fill(username, secrets.username)
    steps.fill(label(form.password), secrets.password.get_secret_value())
    steps.click(form.signed_out.locate(page), navigates=form.navigates)  # the one login POST
    if kind == SecondFactorKind.NONE:
        portal.sign_in_outcome(done, alert, form.steps[0])
        return
    asks = label(form.code or form.answer or "")
    portal.sign_in_outcome(asks.or_(done), alert, form.steps[0])
    if steps.read_optional(done.filter(visible=True)) is not None:
        return  # a remembered device: no second factor asked
    if kind == SecondFactorKind.SECURITY_QUESTIONS:
        # the vault answers; a question it does not know raises UnknownSecondFactorPrompt there
        steps.fill(asks, secrets.answer(steps.read(label(form.question or ""))))
    elif secrets.one_time_code is None:
        lacking = _LACKING.get(kind, "the vault has no source for it")
        raise UnknownSecondFactorPrompt(f"{portal.display_name} asks for its {form.steps[1]} and {lacking}")
    else:
        steps.fill(asks, secrets.one_time_code())
    if form.remember_device is not None:
        steps.check(label(form.remember_device))
    steps.click(form.verify.locate(page), navigates=form.navigates)
    portal.sign_in_outcome(done, alert, form.steps[1], second_factor=True)


def _label(page: Page) -> Callable[[str], Locator]:
    return lambda text: page.get_by_label(text, exact=True)
