"""What a payer module implements, and what the engine hands it.

A portal class is a payer's declarations (its ids, actions, sign-in form, claim numbers, plans,
status vocabulary, the fields its pages show, the pages it shows instead of the one asked for, its
content frame), its locators, and its intent methods (log in, check a claim, submit an appeal, find
a submission). It does not know the queue, the vault or the model: the runner hands it a ``Page``,
a ``StepRecorder`` and, for login, a ``LoginSecrets`` whose second factors are small callables.
The rules every portal shares are the engine's: the page steps it inherits (``bot.page_steps``),
the interruption checks (``bot.interruptions``), the readers (``bot.readers``), intake's refusals
(``Portal.check_request``) and what an error after the submit gate means (``submit_through_gate``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page

from bot.documents import MAX_UPLOAD_BYTES, AppealFiles
from bot.errors import IntakeError, PortalError, PortalTimeout, Transient, UnsupportedAction
from bot.interruptions import GATEWAY_ERROR_PAGE, InterruptionWatch, Interstitial, RetryControl, Sign
from bot.login import LoginSecrets, SecondFactorKind
from bot.models import (
    AppealLevel,
    AppealRequest,
    ClaimReading,
    ClaimStatusRequest,
    PaReading,
    PaStatusRequest,
    Payload,
    SubmissionLookup,
    SubmissionResult,
    WorkKind,
)
from bot.navigation import NavigationTracker
from bot.page_steps import PageSteps
from bot.sign_in import SignInForm, sign_in, signed_in
from bot.status import ClaimRule, PaRule
from bot.steps import StepRecorder


class Action(StrEnum):
    CLAIM_STATUS = "check_claim_status"
    PA_STATUS = "check_pa_status"
    SUBMIT_APPEAL = "submit_appeal"
    FIND_SUBMISSION = "find_submission"


ACTION_FOR_KIND: dict[WorkKind, Action] = {
    WorkKind.CLAIM_STATUS: Action.CLAIM_STATUS,
    WorkKind.PA_STATUS: Action.PA_STATUS,
    WorkKind.APPEAL_SUBMISSION: Action.SUBMIT_APPEAL,
}


SubmitGate = Callable[[], None]
"""Called by ``submit_appeal`` immediately before the click that submits.

The engine commits its "submitting" record here and raises if this worker's lease is stale; a page
object must call it exactly once, and click submit only if it returned.
"""

APPEAL_FIELDS = frozenset({"denial_date", "member_id"})
"""What every payer's appeal form asks for: which denial, and whose."""
MEDICAL_APPEAL_FIELDS = APPEAL_FIELDS | {"billing_npi"}
"""A medical claim's appeal also names the billing provider."""
PHARMACY_APPEAL_FIELDS = APPEAL_FIELDS
"""A pharmacy claim's appeal (a redetermination) is keyed by the Rx and fill date it already has."""


def filing_deadlines(
    *,
    reconsideration: int | None = None,
    first_level: int | None = None,
    second_level: int | None = None,
    external_review: int | None = None,
) -> dict[AppealLevel, int]:
    """A portal's ``filing_deadline_days``: days from the denial date, per level it names."""
    given = {
        AppealLevel.RECONSIDERATION: reconsideration,
        AppealLevel.FIRST_LEVEL: first_level,
        AppealLevel.SECOND_LEVEL: second_level,
        AppealLevel.EXTERNAL_REVIEW: external_review,
    }
    return {level: days for level, days in given.items() if days is not None}


UNCONFIRMED_SUBMIT = "no confirmation after the submit click; reconcile before any new submit"


class Portal(PageSteps):
    """One payer's portal. Subclasses set the class attributes and implement their actions."""

    payer_id: ClassVar[str]
    display_name: ClassVar[str]
    default_url: ClassVar[str]
    actions: ClassVar[frozenset[Action]]
    second_factor: ClassVar[SecondFactorKind] = SecondFactorKind.NONE
    history_lag: ClassVar[timedelta | None] = None
    """How long a submission may take to show in ``find_submission``'s history: zero when it shows
    at once (so "not found" means not sent), None when the portal has no history to look in. A
    possible submit not found before the lag has passed since its intent is looked up again then."""
    claim_number_pattern: ClassVar[str] = r"^[A-Za-z0-9-]{3,40}$"
    needs_fill_date: ClassVar[bool] = False
    max_upload_bytes: ClassVar[int] = MAX_UPLOAD_BYTES
    """The largest document the portal's upload takes; a larger one is refused before the upload."""
    claim_statuses: ClassVar[dict[str, ClaimRule]] = {}
    pa_statuses: ClassVar[dict[str, PaRule]] = {}
    known_fields: ClassVar[frozenset[str]] = frozenset()
    """The label of every value field the portal's pages show, patient data or not. A page that
    shows a field labelled otherwise has changed, and its screenshots mask the whole content area."""
    sensitive_labels: ClassVar[tuple[str, ...]] = ()
    """The labels of the fields that show patient data (``sensitive_locators``)."""
    plans_required: ClassVar[bool] = False
    """True on a portal that serves several health plans: every request names its ``plan``."""
    plans: ClassVar[frozenset[str]] = frozenset()
    """The plans such a portal serves, when it declares them; a request naming another is refused."""
    sign_in_form: ClassVar[SignInForm | None] = None
    """The sign-in pages, as data: the engine's ``login`` and ``is_logged_in`` walk them. A portal
    whose sign-in is of another kind declares none and writes both methods."""
    interruptions: ClassVar[tuple[Sign, ...]] = ()
    """What the portal shows instead of the page asked for (maintenance, CAPTCHA, expired password or
    session, an application error), in the order the engine checks them; a load balancer's gateway
    error page is checked for every portal."""
    content_frame: ClassVar[str | None] = None
    """The title of the iframe the portal shows its pages in (beside a menu in the window), if any:
    interruptions are looked for there too, a page still loading there is slowness, and patient
    data is found there."""
    not_found_words: ClassVar[str | None] = None
    """How the portal's message begins when a step finds no such record ("No claim found")."""
    interstitial: ClassVar[Interstitial | None] = None
    """A page that may stand in for any other and that ``land`` passes with one click."""
    busy_role: ClassVar[Literal["progressbar"] | None] = None
    """The role of what the portal shows while it loads (a spinner)."""
    retry_control: ClassVar[RetryControl | None] = None
    """The control the portal's error state offers to ask again for what failed ("Try again"): the
    engine's step retries click it where it shows, before loading the page again."""
    appeal_requires: ClassVar[frozenset[str]] = frozenset()
    """The ``AppealRequest`` fields the payer's appeal form asks for (``MEDICAL_APPEAL_FIELDS``,
    ``PHARMACY_APPEAL_FIELDS``): intake refuses an appeal without one, naming the field."""
    filing_deadline_days: ClassVar[dict[AppealLevel, int]] = {}
    """Per appeal level, the days from the denial date within which the payer takes an appeal
    (``PAYERBOT_FILING_DEADLINES`` overrides them); a level not named has no deadline here."""

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.steps = steps
        frames = (self.content_frame,) if self.content_frame else ()
        signs = tuple(dict.fromkeys((*self.interruptions, GATEWAY_ERROR_PAGE)))  # in order, once each
        self.watch = InterruptionWatch(page, self.display_name, signs, frames)
        self.content = self.watch.root(self.content_frame)  # the window, or the content frame
        # the step recorder asks the portal what a failed step's page means
        steps.check_page = self.check_page
        steps.busy = self.is_busy
        if self.retry_control is not None:
            steps.retry_control = self.retry_control.locate(self.content)

    # -- what the engine asks before any browser starts -----------------------------------------

    @classmethod
    def supports(cls, action: Action) -> bool:
        return action in cls.actions

    @classmethod
    def require(cls, action: Action) -> None:
        if action not in cls.actions:
            known = ", ".join(sorted(a.value for a in cls.actions))
            raise UnsupportedAction(
                f"payer '{cls.payer_id}' does not support {action.value} (it supports: {known})"
            )

    @classmethod
    def check_request(cls, kind: WorkKind, request: Payload) -> None:
        """Refuse, at intake, a request this portal could never run; name the field."""
        cls.require(ACTION_FOR_KIND[kind])
        number = getattr(request, "claim_number", None)
        if number is not None and not re.fullmatch(cls.claim_number_pattern, number):
            raise IntakeError(
                f"payload.claim_number: not a {cls.display_name} claim number "
                f"(expected pattern {cls.claim_number_pattern})",
                field="payload.claim_number",
            )
        if number is not None and cls.needs_fill_date and getattr(request, "fill_date", None) is None:
            raise IntakeError(
                f"payload.fill_date: {cls.display_name} looks claims up by Rx number and fill date",
                field="payload.fill_date",
            )
        cls._check_plan(request.plan)
        if isinstance(request, AppealRequest):
            cls._check_appeal(request)

    @classmethod
    def _check_appeal(cls, request: AppealRequest) -> None:
        for name in sorted(cls.appeal_requires):
            if getattr(request, name) in (None, ()):  # the message names the field, never a value
                raise IntakeError(
                    f"payload.{name}: {cls.display_name} requires it on an appeal",
                    field=f"payload.{name}",
                )

    @classmethod
    def _check_plan(cls, plan: str | None) -> None:
        if plan is None and cls.plans_required:
            known = f" (its plans: {', '.join(sorted(cls.plans))})" if cls.plans else ""
            raise IntakeError(
                f"payload.plan: {cls.display_name} serves several health plans; name one{known}",
                field="payload.plan",
            )
        if plan is not None and not cls.plans_required:
            raise IntakeError(
                f"payload.plan: {cls.display_name} serves one plan; a request names none",
                field="payload.plan",
            )
        if plan is not None and cls.plans and plan not in cls.plans:
            raise IntakeError(
                f"payload.plan: not a plan {cls.display_name} serves "
                f"(its plans: {', '.join(sorted(cls.plans))})",
                field="payload.plan",
            )

    # -- the session ----------------------------------------------------------------------------

    def is_logged_in(self) -> bool:
        """Open a page that needs a session; True when the portal did not send us to its login."""
        return signed_in(self, self._sign_in_form())

    def login(self, secrets: LoginSecrets) -> None:
        """Log in once. Raise LoginRejected (or a subclass) when the portal refuses; never retry."""
        sign_in(self, self._sign_in_form(), self.second_factor, secrets)

    def _sign_in_form(self) -> SignInForm:
        if self.sign_in_form is None:
            raise NotImplementedError(f"{self.display_name} declares no sign_in_form and no login of its own")
        return self.sign_in_form

    # -- actions --------------------------------------------------------------------------------

    def check_claim_status(self, request: ClaimStatusRequest) -> ClaimReading:
        raise UnsupportedAction

    def check_pa_status(self, request: PaStatusRequest) -> PaReading:
        raise UnsupportedAction

    def submit_appeal(
        self, request: AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
    ) -> SubmissionResult:
        raise UnsupportedAction

    def find_submission(self, reference: str) -> SubmissionLookup:
        """Look a reference up in the portal's appeal history.

        Raise a transient or human error when the history cannot be read: "not found" must mean
        the history was read and does not hold the reference.
        """
        raise UnsupportedAction

    # -- what the engine needs to keep artifacts clean and runs classified ----------------------

    def check_page(self) -> None:
        """Raise the matching error when the current page is one of the declared ``interruptions``,
        in the window or a declared frame. Called after navigations and on every failed step."""
        self.watch.check()

    def is_busy(self, page: Page) -> bool:
        """True while the portal shows its ``busy_role`` (a spinner) or its content frame is still on
        its way: a timeout then is slowness, not a changed portal."""
        try:
            if self.busy_role is not None and page.get_by_role(self.busy_role).first.is_visible():
                return True
            if self.content_frame is None:
                return False
            if NavigationTracker.of(page).child_frames_loading:
                return True
            frames = [f for f in page.frames if f.parent_frame is not None]
            return any(f.evaluate("document.readyState") != "complete" for f in frames)
        except PlaywrightError:
            return self.content_frame is not None  # a frame gone mid-navigation is still loading

    def sensitive_locators(self) -> list[Locator]:
        """Elements showing patient data, masked in every screenshot, and whose texts every
        artifact is scrubbed of: names, member ids, dates of birth, dates of service and fill dates,
        Rx numbers, drugs and services, prescribers, the typed explanation. By default the fields
        labelled with one of ``sensitive_labels``."""
        return [self.content.get_by_label(label, exact=True) for label in self.sensitive_labels]

    def content_area(self) -> Locator:
        """Where the portal shows its pages' content. A screenshot masks it whole when none of
        ``sensitive_locators`` matches on the page, or when ``field_labels`` shows a label
        outside ``known_fields`` (``bot.evidence.screenshot_mask``); the page's body when it
        matches nothing either."""
        if self.content_frame is not None:
            return self.page.get_by_title(self.content_frame, exact=True)
        return self.page.get_by_role("main")

    def field_labels(self) -> Locator:
        """The labels of the value fields the current page shows (the terms of its description
        lists, by default), compared with ``known_fields``."""
        return self.content_area().get_by_role("term")


def submit_through_gate(
    portal: Portal, request: AppealRequest, files: AppealFiles, reference: str, gate: SubmitGate
) -> SubmissionResult:
    """The portal's ``submit_appeal`` under the engine's rule for what an error means once the
    gate has let the click through: the appeal may be recorded whatever the page says, so any
    portal error that is not already transient becomes the transient ``UNCONFIRMED_SUBMIT``, and
    the next attempt reconciles through the history before any new submit. Errors before the
    gate (refusals, a changed form, a stale lease) pass unchanged.
    """
    gate_passed = False

    def gate_then_click() -> None:
        nonlocal gate_passed
        gate()
        gate_passed = True
        portal.steps.submitting()  # the click may now reach the portal: nothing is retried after it

    try:
        return portal.submit_appeal(request, files, reference, gate_then_click)
    except Transient:
        raise
    except PortalError as exc:
        if not gate_passed:
            raise
        raise PortalTimeout(f"{UNCONFIRMED_SUBMIT} ({type(exc).__name__})") from None
