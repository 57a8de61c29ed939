"""Transient failures retried where they happen (bot/steps.py, bot/step_retry.py), in real Chromium.

A step that failed because the portal answered 5xx is tried again inside the run, waiting on the
run's clock (a ``ManualClock`` here): after the portal's retry control, or after loading the page
again and doing again the steps since that load. A click is done again only when marked
repeatable, and nothing is retried once the submit gate has let the click through. The small
pages are routed answers on a made-up origin; the same rules on the sandbox portals are in
tests/test_portal_*.py, and through the real worker at the end of this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route

from bot.clock import ManualClock
from bot.demo import APPROVER
from bot.documents import AppealFiles, write_letter
from bot.errors import PortalServerError
from bot.evidence import sha256_file
from bot.interruptions import GATEWAY_ERROR_PAGE, Interruption, RetryControl, Sign
from bot.migrate import upgrade
from bot.models import AppealReason, AppealRequest, DocumentRef, NewItem, SubmissionResult, WorkKind
from bot.portal import Action, Portal, SubmitGate, submit_through_gate
from bot.services import Services, build_services
from bot.settings import Settings
from bot.step_retry import RetryPolicy
from bot.steps import Step, StepKind, StepRecorder
from bot.worker import Worker
from portals import get_portal
from tests.fixtures.sandbox import SandboxPortal, canary_account
from tests.queue_support import appeal_fields
from vault import Keyring

ORIGIN = "http://portal.test"
GATEWAY = "<html><body><h1>503 Service Unavailable</h1></body></html>"
ERROR_STATE = '<div role="alert"><h2>Something went wrong</h2></div>'
# an app's view: its data asked for by script, its error state offering to ask again
APP = """<main><button id="show">Show claims</button></main>
<script>
  async function load() {
    const main = document.querySelector("main");
    const answer = await fetch("/api/claims");
    if (answer.ok) {
      main.innerHTML = "<h1>Claims</h1>";
      return;
    }
    const again = '<button id="again">Try again</button>';
    main.innerHTML = `<div role="alert"><h2>Something went wrong</h2>${again}</div>`;
    document.getElementById("again").onclick = load;
  }
  document.getElementById("show").onclick = load;
</script>"""


class Routed(Portal):
    """A portal that is only declarations: a gateway error page and an app's error state."""

    payer_id = ""  # not registered
    display_name = "Routed Portal"
    default_url = ORIGIN
    actions = frozenset(Action)
    interruptions = (
        GATEWAY_ERROR_PAGE,
        Sign(Interruption.APP_ERROR, role="heading", name="Something went wrong", inside="alert"),
    )


class WithTryAgain(Routed):
    retry_control = RetryControl(role="button", name="Try again")


@dataclass
class Site:
    """Routed answers by path: each path answers its list in turn, then its last one forever."""

    page: Page
    answers: dict[str, list[tuple[int, str]]]

    def __post_init__(self) -> None:
        self.asked: list[tuple[str, str]] = []  # (method, path) of each request, in order
        self.page.route(f"{ORIGIN}/**", self._answer)

    def _answer(self, route: Route) -> None:
        path = "/" + route.request.url.split("/", 3)[3].split("?", 1)[0]
        self.asked.append((route.request.method, path))
        queue = self.answers[path]
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        route.fulfill(status=status, body=body, content_type="text/html")

    def count(self, path: str, method: str = "GET") -> int:
        return self.asked.count((method, path))


@pytest.fixture
def steps(page: Page, clock: ManualClock) -> StepRecorder:
    page.set_default_timeout(3_000)
    return StepRecorder(page, clock=clock)


def _retries(steps: StepRecorder) -> list[Step]:
    return [s for s in steps.steps if s.kind == StepKind.RETRY]


CLAIMS = (200, "<main><h1>Claims</h1></main>")


# -- a page load, a wait, a read -------------------------------------------------------------------


def test_a_page_that_answers_5xx_once_is_loaded_again_after_a_wait_on_the_run_clock(
    page: Page, steps: StepRecorder, clock: ManualClock
) -> None:
    site = Site(page, {"/claims": [(503, GATEWAY), CLAIMS]})
    portal = Routed(page, ORIGIN, steps)
    started = clock.now()
    portal.open("/claims", page.get_by_role("heading", name="Claims"), "claims")
    assert site.count("/claims") == 2
    assert clock.now() - started == timedelta(seconds=0.25)  # the first retry's wait, on the clock
    (retry,) = _retries(steps)
    assert (retry.target, retry.error, retry.meta) == (
        "load again",
        "PortalServerError",  # the kind only: the page's own words stay out of the run's record
        {"try": "1", "wait_ms": "250"},
    )
    assert [s.kind for s in steps.steps][:3] == [StepKind.NAVIGATE, StepKind.RETRY, StepKind.NAVIGATE]


def test_a_failure_that_persists_is_tried_a_bounded_number_of_times_with_growing_waits(
    page: Page, steps: StepRecorder, clock: ManualClock
) -> None:
    site = Site(page, {"/claims": [(503, GATEWAY)]})
    portal = Routed(page, ORIGIN, steps)
    started = clock.now()
    with pytest.raises(PortalServerError, match=r"gateway error page \(503 Service Unavailable\)"):
        portal.open("/claims", page.get_by_role("heading", name="Claims"), "claims")
    assert site.count("/claims") == 1 + 3
    assert [r.meta["wait_ms"] for r in _retries(steps)] == ["250", "500", "1000"]
    assert clock.now() - started == timedelta(seconds=1.75)


def test_the_retries_of_one_run_are_bounded_too(page: Page, clock: ManualClock) -> None:
    steps = StepRecorder(page, clock=clock, retry=RetryPolicy(per_run=2))
    site = Site(page, {"/a": [(503, GATEWAY), CLAIMS], "/b": [(503, GATEWAY), CLAIMS]})
    portal = Routed(page, ORIGIN, steps)
    portal.open("/a")
    portal.open("/b")  # each failed once: the run's two retries are spent
    site.answers["/a"] = [(503, GATEWAY), CLAIMS]
    with pytest.raises(PortalServerError):
        portal.open("/a")
    assert len(_retries(steps)) == 2


def test_an_error_state_is_asked_again_through_the_portals_retry_control_without_a_reload(
    page: Page, steps: StepRecorder
) -> None:
    site = Site(page, {"/claims": [(200, APP)], "/api/claims": [(503, "{}"), (200, "{}")]})
    portal = WithTryAgain(page, ORIGIN, steps)
    portal.open("/claims")
    steps.click(page.get_by_role("button", name="Show claims"), repeatable=True)
    portal.land(page.get_by_role("heading", name="Claims"), "claims")
    assert site.count("/claims") == 1 and site.count("/api/claims") == 2  # asked again, no reload
    (retry,) = _retries(steps)
    assert retry.target == "retry control"
    clicked = [s for s in steps.steps if s.kind == StepKind.CLICK]
    assert [(s.target, s.meta.get("retry")) for s in clicked] == [(None, None), ("retry control", "1")]


def test_a_failed_wait_rebuilds_the_page_by_loading_it_and_doing_its_steps_again(
    page: Page, steps: StepRecorder
) -> None:
    form = '<main><label>Number <input name="n"></label><button>Next</button></main>'
    site = Site(page, {"/form": [(200, form)]})
    portal = Routed(page, ORIGIN, steps)
    portal.open("/form")
    steps.fill(page.get_by_label("Number"), "N-1", safe=True)
    # the page's error state shows (its data failed late); loaded again, the page is whole
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend', "
        "'<div role=alert><h2>Something went wrong</h2></div>')"
    )
    portal.land(page.get_by_role("button", name="Next"), "next")
    assert site.count("/form") == 2
    assert page.get_by_label("Number").input_value() == "N-1"  # typed again
    (retry,) = _retries(steps)
    assert retry.target == "load again, then 1 steps again"
    redone = [s for s in steps.steps if s.meta.get("retry") == "1"]
    assert [s.kind for s in redone] == [StepKind.NAVIGATE, StepKind.FILL]


# -- clicks -----------------------------------------------------------------------------------------

SEARCH_FORM = (
    '<main><form method="METHOD" action="/result"><label>Number <input name="n"></label>'
    "<button>Search</button></form></main>"
)
RESULT = (200, "<main><h1>Result</h1></main>")


def _search(portal: Portal, page: Page, steps: StepRecorder, *, repeatable: bool) -> None:
    portal.open("/search")
    steps.fill(page.get_by_label("Number"), "N-1", safe=True)
    steps.click(page.get_by_role("button", name="Search"), navigates=True, repeatable=repeatable)
    portal.land(page.get_by_role("heading", name="Result"), "result")


def test_a_search_posted_again_only_because_its_click_is_marked_repeatable(
    page: Page, steps: StepRecorder
) -> None:
    site = Site(
        page,
        {
            "/search": [(200, SEARCH_FORM.replace("METHOD", "post"))],
            "/result": [(502, GATEWAY.replace("503 Service Unavailable", "502 Bad Gateway")), RESULT],
        },
    )
    _search(Routed(page, ORIGIN, steps), page, steps, repeatable=True)
    assert site.count("/result", "POST") == 2 and site.count("/search") == 2
    (retry,) = _retries(steps)
    assert retry.target == "load again, then 1 steps again"  # the form loaded, the number typed


def test_a_click_not_marked_repeatable_is_never_done_again(page: Page, steps: StepRecorder) -> None:
    site = Site(
        page,
        {
            "/search": [(200, SEARCH_FORM.replace("METHOD", "post"))],
            "/result": [(502, GATEWAY.replace("503 Service Unavailable", "502 Bad Gateway")), RESULT],
        },
    )
    with pytest.raises(PortalServerError, match="502"):
        _search(Routed(page, ORIGIN, steps), page, steps, repeatable=False)
    assert site.count("/result", "POST") == 1 and not _retries(steps)


# a single-page app: the same shell at every address, each view drawn from its data by script
SHELL = """<main></main>
<script>
  async function route() {
    const main = document.querySelector("main");
    if (location.pathname === "/search") {
      main.innerHTML = '<button id="search">Search</button>';
      document.getElementById("search").onclick = () => {
        history.pushState({}, "", "/result?n=N-1");
        route();
      };
      return;
    }
    const answer = await fetch("/api/result");
    main.innerHTML = answer.ok ? "<h1>Result</h1>" : '<div role="alert"><h2>Something went wrong</h2></div>';
  }
  route();
</script>"""


def test_an_app_view_a_click_led_to_is_loaded_again_at_its_own_address(
    page: Page, steps: StepRecorder
) -> None:
    site = Site(
        page,
        {"/search": [(200, SHELL)], "/result": [(200, SHELL)], "/api/result": [(503, "{}"), (200, "{}")]},
    )
    portal = Routed(page, ORIGIN, steps)
    portal.open("/search")
    steps.click(page.get_by_role("button", name="Search"), repeatable=True)
    portal.land(page.get_by_role("heading", name="Result"), "result")
    assert site.count("/search") == 1 and site.count("/result") == 1  # the view's address, loaded
    (retry,) = _retries(steps)
    assert retry.target == "load again"
    (load,) = [s for s in steps.steps if s.meta.get("retry") == "1"]
    assert load.target == "/result"  # named without its query (it holds what was searched for)


# -- the submit gate ---------------------------------------------------------------------------------


class Submits(WithTryAgain):
    """Submits from its page; its confirmation may fail into an error state with "Try again"."""

    def submit_appeal(
        self, request: AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> SubmissionResult:
        self.open("/appeal")
        self.click_submit(self.page.get_by_role("button", name="Submit"), gate)
        number = self.confirmation(
            self.page.get_by_role("heading", name=re.compile("Appeal received")),
            self.page.get_by_role("status"),
            "confirmation",
        )
        return SubmissionResult(confirmation_id=number, reference=reference)


# the submit answers with the app's error state, whose "Try again" would show a confirmation
SUBMIT_FAILS = """<main><button id="submit">Submit</button></main>
<script>
  document.getElementById("submit").onclick = () => {
    const main = document.querySelector("main");
    main.innerHTML = '<div role="alert"><h2>Something went wrong</h2>'
      + '<button id="again">Try again</button></div>';
    document.getElementById("again").onclick = () => { main.innerHTML = "<h1>Appeal received APL-1</h1>"; };
  };
</script>"""


def test_nothing_is_retried_once_the_submit_gate_has_let_the_click_through(
    page: Page, steps: StepRecorder, tmp_path: Path
) -> None:
    Site(page, {"/appeal": [(200, SUBMIT_FAILS)]})
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
    gates: list[str] = []
    portal = Submits(page, ORIGIN, steps)
    # transient as it was: the next attempt reconciles through the history before any new submit
    with pytest.raises(PortalServerError, match="shows an error"):
        submit_through_gate(portal, request, AppealFiles(letter), "R-1", lambda: gates.append("gate"))
    assert gates == ["gate"] and not _retries(steps)
    assert page.get_by_role("button", name="Try again").is_visible()  # never clicked
    submits = [s for s in steps.steps if s.kind == StepKind.CLICK and "Submit" in (s.locator or "")]
    assert len(submits) == 1


# -- through the real worker ------------------------------------------------------------------------


@dataclass
class Deployment:
    services: Services
    portal: SandboxPortal
    account: str
    browser: Browser
    documents: Path

    def run(self, item: NewItem, *, settle: bool = False) -> int:
        report = self.services.queue.enqueue([item])
        assert not report.rejected, report.rejected
        Worker(self.services, self.browser).drain(until_settled=settle)
        return report.queued[0]

    def steps_of_runs(self, item_id: int) -> list[list[dict[str, object]]]:
        """The steps each run of the item kept in the database, oldest run first."""
        runs = self.services.runs.list(item_id=item_id)
        return [list(r["steps"]["steps"]) for r in reversed(runs)]


@pytest.fixture
def bluepeak_deployment(
    bluepeak_sandbox: SandboxPortal, browser: Browser, tmp_path: Path
) -> Iterator[Deployment]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'payerbot.db'}",
        vault_key=Keyring.generate().dump(),  # type: ignore[arg-type]
        artifacts_dir=tmp_path / "artifacts",
        documents_dir=tmp_path / "documents",
        retry_base_seconds=0.2,
        retry_max_seconds=1,
        action_timeout_ms=6_000,
        navigation_timeout_ms=8_000,
    )
    (tmp_path / "documents").mkdir()
    services = build_services(settings)
    upgrade(services.engine)
    account = canary_account(bluepeak_sandbox.state)  # a login of its own
    services.vault.add_account(
        "bluepeak",
        account.account,
        username=account.username,
        password=account.password,
        second_factor=get_portal("bluepeak").second_factor.value,
        answers=account.security_answers or None,
        portal_url=bluepeak_sandbox.url,
    )
    yield Deployment(services, bluepeak_sandbox, account.account, browser, tmp_path / "documents")
    services.engine.dispose()


def test_a_claim_whose_data_request_fails_once_is_read_in_one_attempt_with_the_retry_in_its_steps(
    bluepeak_deployment: Deployment,
) -> None:
    d = bluepeak_deployment
    state = d.portal.state
    claim = state.add_claim("Not covered", newest=True)  # the list's first row
    state.update_knobs(fail_path="/api/claims/", fail_times=1)  # the claim's own data, once
    injected = state.errors_injected
    payload = {"claim_number": claim.claim_number}
    item_id = d.run(NewItem(kind=WorkKind.CLAIM_STATUS, payer="bluepeak", account=d.account, payload=payload))
    view = d.services.queue.get(item_id)
    assert (view.state, view.attempts) == ("done", 1), (view.last_error_kind, view.last_error)
    assert view.result is not None and view.result["category"] == claim.category
    assert state.errors_injected == injected + 1
    ((run_steps),) = d.steps_of_runs(item_id)
    retries = [s for s in run_steps if s["kind"] == "retry"]
    assert [r["error"] for r in retries] == ["PortalServerError"]


def _submit_click(step: dict[str, object]) -> bool:
    return step["kind"] == "click" and "Submit appeal" in str(step["locator"])


@pytest.mark.parametrize(
    ("knobs", "recorded"),
    [({"record_then_fail": "502"}, 1), ({"fail_path": "/api/appeals", "fail_times": 1}, 0)],
    ids=["recorded-then-failed", "failed-before-recording"],
)
def test_a_submit_click_is_never_retried_and_the_appeal_reconciles_as_before(
    bluepeak_deployment: Deployment, knobs: dict[str, object], recorded: int
) -> None:
    d = bluepeak_deployment
    state = d.portal.state
    claim = state.add_claim("Not covered", newest=True)
    letter = write_letter(d.documents, "letter.pdf", "Appeal: please reconsider.")
    payload = {
        "claim_number": claim.claim_number,
        "reason": AppealReason.MEDICAL_NECESSITY.value,
        "explanation": "Medically necessary; see the letter.",
        "letter": {"path": letter.name, "sha256": sha256_file(letter)},
        "approved_by": APPROVER,
        **appeal_fields(),
    }
    item = NewItem(kind=WorkKind.APPEAL_SUBMISSION, payer="bluepeak", account=d.account, payload=payload)
    state.update_knobs(**knobs)  # the answer to the submit fails (after the portal recorded it, or before)
    item_id = d.run(item, settle=True)
    view = d.services.queue.get(item_id)
    entries = state.ledger_entries(reference=view.submission_reference)
    assert view.state == "done", (view.last_error_kind, view.last_error)
    assert [e.appeal_number for e in entries] == [view.confirmation_id]
    first, second = d.steps_of_runs(item_id)
    clicked = [i for i, s in enumerate(first) if _submit_click(s)]
    assert len(clicked) == 1  # the first attempt clicked once and retried nothing after the click
    assert not [s for s in first[clicked[0] :] if s["kind"] == "retry"]
    # the next attempt looked the reference up first: found, it clicks nothing; not found, it submits
    assert len([s for s in second if _submit_click(s)]) == 1 - recorded
    confirmed = [s.via for s in view.submissions if s.state == "confirmed"]
    assert confirmed == (["history"] if recorded else ["click"])
