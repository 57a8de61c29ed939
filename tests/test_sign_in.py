"""The engine's sign-in: a portal declares its sign-in pages (``SignInForm``) and the engine walks
them, in a real Chromium against a small app served on the portal's origin.

The app swaps its views in place (``navigates=False``, like BluePeak's): Sign in shows the second
step (or, for a remembered device, the signed-in view); Verify shows the signed-in view or an alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

import pytest
from playwright.sync_api import Page, Route
from pydantic import SecretStr

from bot.errors import LoginRejected, SecondFactorRejected, UnknownSecondFactorPrompt
from bot.login import LoginSecrets, SecondFactorKind
from bot.portal import Action, Portal
from bot.sign_in import Control, SignInForm
from bot.steps import StepKind, StepRecorder

ORIGIN = "http://portal.test"
SIGNED_IN = '<a href="/logout">Sign out</a><h1>Claims</h1>'
CODE_STEP = (
    '<label>One-time code <input id="code"></label>'
    '<label><input type="checkbox" id="remember"> Remember this device</label>'
    '<button id="verify">Verify</button>'
)
QUESTION_STEP = (
    '<output aria-label="Security question">Name of your first pet?</output>'
    '<label>Answer <input id="a"></label><button id="verify">Verify</button>'
)
APP = """
<main id="view">
  <label>Username <input id="u"></label>
  <label>Password <input id="p" type="password"></label>
  <button id="go">Sign in</button>
</main>
<script>
  const view = document.getElementById("view");
  document.getElementById("go").onclick = () => {
    if (document.getElementById("p").value !== "pw") {
      view.insertAdjacentHTML("beforeend", '<div role="alert">Invalid username or password.</div>');
      return;
    }
    view.innerHTML = SECOND;
    const verify = document.getElementById("verify");
    if (verify) verify.onclick = () => {
      const typed = (document.getElementById("code") || document.getElementById("a")).value;
      window.remembered = !!(document.getElementById("remember") || {}).checked;
      view.innerHTML = typed === "123456" || typed === "Rex" ? SIGNED
        : '<div role="alert">That code is not valid.</div>';
    };
  };
</script>
"""


class Declared(Portal):
    payer_id = ""  # not registered
    display_name = "Declared Portal"
    default_url = ORIGIN
    actions = frozenset(Action)
    second_factor = SecondFactorKind.TOTP
    sign_in_form: ClassVar[SignInForm | None] = SignInForm(
        "/login",
        home="/home",
        signed_out=Control("button", "Sign in"),
        signed_in=Control("link", "Sign out"),
        code="One-time code",
        remember_device="Remember this device",
        navigates=False,
    )


class WithQuestion(Declared):
    second_factor = SecondFactorKind.SECURITY_QUESTIONS
    sign_in_form = replace(
        Declared.sign_in_form,  # type: ignore[type-var]
        code=None,
        remember_device=None,
        question="Security question",
        answer="Answer",
        steps=("sign-in", "security answer"),
    )


def _serve(page: Page, second: str) -> None:
    app = APP.replace("SECOND", repr(second)).replace("SIGNED", repr(SIGNED_IN))

    def answer(route: Route) -> None:
        route.fulfill(body=f"<html><body>{app}</body></html>", content_type="text/html")

    page.route(f"{ORIGIN}/**", answer)


def _portal(cls: type[Portal], page: Page) -> tuple[Portal, StepRecorder]:
    page.set_default_timeout(3_000)
    steps = StepRecorder(page)
    return cls(page, ORIGIN, steps), steps


def _secrets(
    password: str = "pw",  # noqa: S107 - the test app's password
    code: Callable[[], str] | None = lambda: "123456",
) -> LoginSecrets:
    return LoginSecrets(username="front-desk", password=SecretStr(password), one_time_code=code)


def test_the_engine_types_the_code_ticks_remember_and_ends_signed_in(page: Page) -> None:
    _serve(page, CODE_STEP)
    portal, steps = _portal(Declared, page)
    portal.login(_secrets())
    assert page.get_by_role("link", name="Sign out").is_visible()
    assert page.evaluate("window.remembered") is True
    fills = [s for s in steps.steps if s.kind == StepKind.FILL]
    assert len(fills) == 3 and all(s.value is None for s in fills)  # no secret written down
    assert page.get_by_text("front-desk").count() == 0


def test_a_remembered_device_is_signed_in_without_a_code(page: Page) -> None:
    _serve(page, SIGNED_IN)  # the portal skips its code page for this device

    def no_code() -> str:
        raise AssertionError("no code may be asked for")

    portal, _ = _portal(Declared, page)
    portal.login(_secrets(code=no_code))
    assert page.get_by_role("link", name="Sign out").is_visible()


def test_a_refused_password_is_login_rejected_after_one_try(page: Page) -> None:
    _serve(page, CODE_STEP)
    portal, steps = _portal(Declared, page)
    with pytest.raises(
        LoginRejected, match="Declared Portal refused the sign-in: Invalid username"
    ) as refused:
        portal.login(_secrets(password="wrong"))
    assert type(refused.value) is LoginRejected
    clicks = [s for s in steps.steps if s.kind == StepKind.CLICK]
    assert len(clicks) == 1  # the password is never typed twice: a second try may lock the account


def test_a_refused_code_is_second_factor_rejected(page: Page) -> None:
    _serve(page, CODE_STEP)
    portal, _ = _portal(Declared, page)
    with pytest.raises(SecondFactorRejected, match="refused the one-time code: That code is not valid"):
        portal.login(_secrets(code=lambda: "000000"))


def test_a_code_the_vault_cannot_give_goes_to_a_person(page: Page) -> None:
    _serve(page, CODE_STEP)
    portal, _ = _portal(Declared, page)
    with pytest.raises(
        UnknownSecondFactorPrompt, match="asks for its one-time code and the vault holds no TOTP"
    ):
        portal.login(_secrets(code=None))


def test_a_security_question_is_answered_by_the_vault(page: Page) -> None:
    _serve(page, QUESTION_STEP)
    portal, _ = _portal(WithQuestion, page)
    asked: list[str] = []

    def answer(question: str) -> str:
        asked.append(question)
        return "Rex"

    secrets = LoginSecrets(username="front-desk", password=SecretStr("pw"), answer=answer)
    portal.login(secrets)
    assert asked == ["Name of your first pet?"]
    assert page.get_by_role("link", name="Sign out").is_visible()


def test_the_signed_in_check_reads_the_home_page(page: Page) -> None:
    portal, _ = _portal(Declared, page)
    shown = {"body": SIGNED_IN}
    page.route(
        f"{ORIGIN}/home",
        lambda route: route.fulfill(body=f"<main>{shown['body']}</main>", content_type="text/html"),
    )
    assert portal.is_logged_in() is True
    shown["body"] = "<label>Username <input></label><button>Sign in</button>"
    assert portal.is_logged_in() is False


def test_a_portal_with_neither_a_form_nor_a_login_says_so(page: Page) -> None:
    class Bare(Declared):
        sign_in_form = None

    portal, _ = _portal(Bare, page)
    with pytest.raises(NotImplementedError, match="declares no sign_in_form"):
        portal.login(_secrets())
