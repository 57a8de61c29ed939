"""The engine's page steps in real Chromium: interruptions declared as data and classified once,
landing on a page, interstitials, sign-in refusals, the navigation tracker, and what an error after
the submit gate means.

Small pages are served with ``page.set_content`` or routed answers; the portal under test is a few
lines of declarations on ``Portal``. The same rules through the three sandbox portals are covered by
tests/test_portal_*.py, and the rule after the submit click with the sandbox's ``record_then_fail``
knob through the real runner by tests/test_contract.py
(``test_a_submit_recorded_while_its_answer_failed_is_never_sent_twice``).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from playwright.sync_api import Page

from bot.clock import ManualClock
from bot.documents import AppealFiles
from bot.errors import (
    CaptchaShown,
    LoginRejected,
    NotFoundOnPortal,
    PasswordExpired,
    PayerbotError,
    PortalChanged,
    PortalMaintenance,
    PortalServerError,
    PortalTimeout,
    PortalValidationError,
    SecondFactorRejected,
    SessionExpired,
    StaleLease,
)
from bot.interruptions import Interruption, Interstitial, Sign, heading, shown_text
from bot.models import AppealReason, AppealRequest, DocumentRef, SubmissionResult
from bot.navigation import NavigationTracker
from bot.portal import UNCONFIRMED_SUBMIT, Action, Portal, SubmitGate, submit_through_gate
from bot.steps import Outcome, StepKind, StepRecorder

ORIGIN = "http://portal.test"


class Declared(Portal):
    """A portal that is only declarations, as a payer module's header is."""

    payer_id = ""  # not registered: the registry skips a class without a payer id
    display_name = "Declared Portal"
    default_url = ORIGIN
    actions = frozenset(Action)
    interruptions = (
        heading("Scheduled maintenance", Interruption.MAINTENANCE),
        heading("Verify you are human", Interruption.CAPTCHA),
        shown_text("Your password has expired", Interruption.PASSWORD_EXPIRED),
        shown_text("Your session has expired", Interruption.SESSION_EXPIRED),
        Sign(Interruption.SESSION_EXPIRED, url=re.compile(r"[?&]timeout=1\b")),
        # no gateway error page: the engine checks a load balancer's bare 5xx page for every portal
        Sign(Interruption.APP_ERROR, role="heading", name="Something went wrong", inside="alert"),
        Sign(Interruption.CONNECTION_LOST, role="heading", name="Connection problem", inside="alert"),
    )


class InFrame(Declared):
    content_frame = "Work area"


class WithTerms(Declared):
    interstitial = Interstitial("the terms of use", role="button", name="I agree", times=2)


@pytest.fixture
def steps(page: Page, clock: ManualClock) -> StepRecorder:
    page.set_default_timeout(3_000)
    return StepRecorder(page, clock=clock)  # a retry's wait moves the test's clock


def _portal(cls: type[Portal], page: Page, steps: StepRecorder) -> Portal:
    return cls(page, ORIGIN, steps)


# -- interruptions, declared as data --------------------------------------------------------------

SHOWN: list[tuple[str, type[PayerbotError], str]] = [
    ("<h1>Scheduled maintenance</h1>", PortalMaintenance, "shows its maintenance page"),
    ("<h1>Verify you are human</h1>", CaptchaShown, "shows a CAPTCHA"),
    ("<p>Your password has expired.</p>", PasswordExpired, "demands a password change"),
    ("<p>Your session has expired.</p>", SessionExpired, "ended the session"),
    (
        "<h1>502 Bad Gateway</h1>",
        PortalServerError,
        r"answered with a gateway error page \(502 Bad Gateway\)",
    ),
    (
        '<div role="alert"><h2>Something went wrong</h2><p>The claims could not load (503).</p></div>',
        PortalServerError,
        "shows an error: Something went wrong The claims could not load",
    ),
    ('<div role="alert"><h2>Connection problem</h2></div>', PortalTimeout, "lost the connection"),
]


@pytest.mark.parametrize(
    ("html", "raised", "words"), SHOWN, ids=[s[1].__name__ + str(i) for i, s in enumerate(SHOWN)]
)
def test_each_declared_interruption_raises_its_error_in_the_portals_name(
    page: Page, steps: StepRecorder, html: str, raised: type[PayerbotError], words: str
) -> None:
    portal = _portal(Declared, page, steps)
    page.set_content(f"<main>{html}</main>")
    with pytest.raises(raised, match=f"^Declared Portal {words}"):
        portal.check_page()


def test_an_ordinary_page_and_an_ordinary_alert_are_no_interruption(page: Page, steps: StepRecorder) -> None:
    portal = _portal(Declared, page, steps)
    page.set_content('<main><h1>Claims</h1><div role="alert">Claim number is required</div></main>')
    portal.check_page()  # raises nothing


def test_an_address_declared_as_an_ended_session_is_recognised(page: Page, steps: StepRecorder) -> None:
    page.route(f"{ORIGIN}/**", lambda route: route.fulfill(body="<h1>Sign in</h1>", content_type="text/html"))
    portal = _portal(Declared, page, steps)
    steps.goto(f"{ORIGIN}/login")  # no sign there: the same sign-in page without the marker
    with pytest.raises(SessionExpired, match="ended the session"):
        steps.goto(f"{ORIGIN}/login?timeout=1")  # the engine looks after every navigation
    assert portal.page.url.endswith("timeout=1")


def test_interruptions_in_the_declared_frame_name_the_frame(page: Page, steps: StepRecorder) -> None:
    portal = _portal(InFrame, page, steps)
    page.set_content(
        '<nav>Menu</nav><iframe title="Work area" srcdoc="<h1>Your session has expired</h1>"></iframe>'
    )
    with pytest.raises(SessionExpired, match="ended the session in its work area"):
        portal.land(portal.content.get_by_role("table"), "claim search result", frame="Work area")
    # the window itself shows nothing declared: a portal without the frame sees no interruption
    _portal(Declared, page, StepRecorder(page)).check_page()


# -- landing on a page ---------------------------------------------------------------------------


def test_land_ends_its_wait_on_an_interruption_instead_of_timing_out(page: Page, steps: StepRecorder) -> None:
    portal = _portal(Declared, page, steps)
    page.set_default_timeout(60_000)  # a wait that ran out would fail the test's own timeout first
    page.set_content("<main><h1>Scheduled maintenance</h1></main>")
    with pytest.raises(PortalMaintenance):
        portal.land(page.get_by_role("button", name="Search"), "claim search")
    (wait,) = [s for s in steps.steps if s.kind == StepKind.EXPECT]
    assert wait.outcome == Outcome.OK  # the page arrived; what it is was classified after


def test_land_waits_for_a_control_that_the_page_draws_later(page: Page, steps: StepRecorder) -> None:
    portal = _portal(Declared, page, steps)
    page.set_content(
        "<main></main><script>setTimeout(() => document.querySelector('main').innerHTML ="
        " '<button>Search</button>', 200)</script>"
    )
    portal.land(page.get_by_role("button", name="Search"), "claim search")
    assert page.get_by_role("button", name="Search").is_visible()


TERMS_THEN_FORM = """
<main id="view"><h1>Terms of use</h1><button id="agree">I agree</button></main>
<script>
  let shown = 0;
  document.getElementById("agree").onclick = function again() {
    shown += 1;
    const view = document.getElementById("view");
    if (shown < COMES_BACK) {
      view.innerHTML = '<h1>Terms of use</h1><button id="agree">I agree</button>';
      document.getElementById("agree").onclick = again;
    } else {
      view.innerHTML = '<button>Search</button>';
    }
  };
</script>
"""


def test_a_declared_interstitial_is_clicked_through(page: Page, steps: StepRecorder) -> None:
    portal = _portal(WithTerms, page, steps)
    page.set_content(TERMS_THEN_FORM.replace("COMES_BACK", "2"))  # shown twice, then the form
    portal.land(page.get_by_role("button", name="Search"), "claim search")
    clicks = [s for s in steps.steps if s.kind == StepKind.CLICK]
    assert len(clicks) == 2 and all("I agree" in (s.locator or "") for s in clicks)


def test_an_interstitial_that_keeps_coming_back_is_a_changed_portal(page: Page, steps: StepRecorder) -> None:
    portal = _portal(WithTerms, page, steps)
    page.set_content(TERMS_THEN_FORM.replace("COMES_BACK", "99"))
    with pytest.raises(PortalChanged, match="the terms of use came back 2 times in a row") as changed:
        portal.land(page.get_by_role("button", name="Search"), "claim search")
    assert changed.value.locator and "I agree" in changed.value.locator


def test_a_check_that_must_not_pass_the_interstitial_leaves_it(page: Page, steps: StepRecorder) -> None:
    portal = _portal(WithTerms, page, steps)
    page.set_content(TERMS_THEN_FORM.replace("COMES_BACK", "2"))
    page.set_default_timeout(500)
    with pytest.raises(PortalChanged):
        portal.land(page.get_by_role("button", name="Search"), "signed-in check", interstitial=False)
    assert not [s for s in steps.steps if s.kind == StepKind.CLICK]


# -- sign-in refusals, messages, "found nothing" --------------------------------------------------


def test_a_sign_in_alert_becomes_login_rejected_with_the_portals_words(
    page: Page, steps: StepRecorder
) -> None:
    portal = _portal(Declared, page, steps)
    page.set_content('<main><div role="alert">Invalid username or password.</div></main>')
    with pytest.raises(
        LoginRejected, match="Declared Portal refused the sign-in: Invalid username"
    ) as refused:
        portal.sign_in_outcome(page.get_by_label("One-time code"), page.get_by_role("alert"), "sign-in")
    assert type(refused.value) is LoginRejected
    with pytest.raises(SecondFactorRejected, match="refused the one-time code: Invalid"):
        portal.sign_in_outcome(
            page.get_by_role("link", name="Sign out"),
            page.get_by_role("alert"),
            "one-time code",
            second_factor=True,
        )


def test_no_alert_after_sign_in_passes(page: Page, steps: StepRecorder) -> None:
    portal = _portal(Declared, page, steps)
    page.set_content('<main><label>One-time code <input name="otp"></label></main>')
    portal.sign_in_outcome(page.get_by_label("One-time code"), page.get_by_role("alert"), "sign-in")


def test_a_sign_in_that_reached_the_next_page_is_no_refusal_whatever_alert_shows_beside_it(
    page: Page, steps: StepRecorder
) -> None:
    # the first view after signing in may draw an alert of its own once its wait has ended (its data
    # failed to load, a notice): the next page is there, so the portal did not refuse the sign-in
    portal = _portal(Declared, page, steps)
    page.set_content('<main><a href="/out">Sign out</a><p role="alert">Claims could not load.</p></main>')
    sign_out, alert = page.get_by_role("link", name="Sign out"), page.get_by_role("alert")
    portal.sign_in_outcome(sign_out, alert, "one-time code", second_factor=True)


def test_messages_instead_of_the_next_step_are_refusals_or_not_found(page: Page, steps: StepRecorder) -> None:
    class Wizard(Declared):
        not_found_words = "No claim found"

    portal = _portal(Wizard, page, steps)
    alert, next_step = page.get_by_role("alert"), page.get_by_label("Reason")
    page.set_content('<main><p role="alert">This claim cannot be appealed yet.</p></main>')
    with pytest.raises(PortalValidationError, match="refused the appeal: This claim cannot be appealed yet"):
        portal.proceed(next_step, alert, "appeal reason step", refused="the appeal")
    page.set_content('<main><p role="alert">No claim found for that number.</p></main>')
    with pytest.raises(NotFoundOnPortal, match="No claim found"):
        portal.proceed(next_step, alert, "appeal reason step", refused="the appeal")


def test_a_found_nothing_message_is_not_found_on_portal(page: Page, steps: StepRecorder) -> None:
    portal = _portal(Declared, page, steps)
    page.set_content('<main><p role="status">No claims found</p></main>')
    with pytest.raises(NotFoundOnPortal, match=r"^Declared Portal has no claim X1$"):
        portal.found_nothing(page.get_by_role("status").filter(has_text="No claims found"), "claim X1")
    portal.found_nothing(page.get_by_role("status").filter(has_text="No appeals found"), "appeal")


# -- the navigation tracker ----------------------------------------------------------------------


def test_one_tracker_a_page_sees_a_child_frame_load_until_it_settles(page: Page) -> None:
    tracker = NavigationTracker.of(page)
    assert StepRecorder(page).navigation is tracker  # the step recorder asks the same one
    page.set_content("<main>Menu</main>")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the connection, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/workarea"
        with page.expect_request(url):
            page.evaluate(
                "url => { const f = document.createElement('iframe'); f.title = 'Work area';"
                " f.src = url; document.body.append(f); }",
                url,
            )
        assert tracker.child_frames_loading and not tracker.main_frame_waiting
        with page.expect_event("requestfailed"):
            silent.close()  # the connection drops: the frame's load has ended
    assert not tracker.child_frames_loading


# -- the submit gate: what an error after it means ------------------------------------------------


class Submits(Declared):
    """Its appeal form: a refusal before the gate, or a click after it that gets no confirmation."""

    def submit_appeal(
        self, request: AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> SubmissionResult:
        self.proceed(
            self.page.get_by_role("button", name="Submit"),
            self.page.get_by_role("alert"),
            "review",
            refused="the appeal",
        )
        self.click_submit(self.page.get_by_role("button", name="Submit"), gate)
        number = self.confirmation(
            self.page.get_by_role("heading", name="Appeal received"),
            self.page.get_by_role("alert"),
            "confirmation",
        )
        return SubmissionResult(confirmation_id=number, reference=reference)


ANSWERS_WITH_A_MESSAGE = """
<main><button onclick="document.querySelector('main').innerHTML =
  '<p role=alert>Something unexpected happened.</p>'">Submit</button></main>
"""


@pytest.fixture
def appeal(tmp_path: Path) -> tuple[AppealRequest, AppealFiles]:
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(b"%PDF-1.4\n%%EOF\n")
    request = AppealRequest(
        claim_number="X-0001",
        reason=AppealReason.OTHER,
        explanation="Synthetic.",
        letter=DocumentRef(path="letter.pdf", sha256="0" * 64),
        approved_by="Test Reviewer",
        approved_at="2026-11-28T16:02:00+00:00",
    )
    return request, AppealFiles(letter)


def test_any_error_after_the_gate_becomes_a_submit_to_reconcile(
    page: Page, steps: StepRecorder, appeal: tuple[AppealRequest, AppealFiles]
) -> None:
    portal = _portal(Submits, page, steps)
    page.set_content(ANSWERS_WITH_A_MESSAGE)
    calls: list[str] = []
    with pytest.raises(PortalTimeout, match=re.escape(f"{UNCONFIRMED_SUBMIT} (PortalChanged)")):
        submit_through_gate(portal, *appeal, "REF-1", lambda: calls.append("gate"))
    assert calls == ["gate"]
    # the page object alone reports what it saw; only the engine knows the gate had run
    page.set_content(ANSWERS_WITH_A_MESSAGE)
    with pytest.raises(PortalChanged, match="message instead of a confirmation"):
        portal.submit_appeal(*appeal, "REF-2", lambda: None)


def test_errors_before_the_gate_and_from_the_gate_pass_unchanged(
    page: Page, steps: StepRecorder, appeal: tuple[AppealRequest, AppealFiles]
) -> None:
    portal = _portal(Submits, page, steps)
    page.set_content('<main><p role="alert">This claim cannot be appealed yet.</p></main>')
    with pytest.raises(PortalValidationError):
        submit_through_gate(portal, *appeal, "REF-3", lambda: None)

    def stale() -> None:
        raise StaleLease("the lease is someone else's")

    page.set_content(ANSWERS_WITH_A_MESSAGE)
    with pytest.raises(StaleLease):
        submit_through_gate(portal, *appeal, "REF-4", stale)
    assert page.get_by_role("button", name="Submit").is_visible()  # never clicked
