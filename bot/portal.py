"""What a payer module implements, and what the engine hands it.

A portal class knows one payer's pages: its locators, its page steps, its status vocabulary. It does
not know the queue, the vault or the model: the runner hands it a ``Page``, a ``StepRecorder`` and,
for login, a ``LoginSecrets`` whose second factors are small callables. What every portal shares
(sessions, retries, pacing, evidence, recording, status mapping) lives in the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import ClassVar

from playwright.sync_api import Locator, Page

from bot.documents import MAX_UPLOAD_BYTES, AppealFiles
from bot.errors import IntakeError, UnsupportedAction
from bot.login import LoginSecrets, SecondFactorKind
from bot.models import (
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


class Portal:
    """One payer's portal. Subclasses set the class attributes and implement their actions."""

    payer_id: ClassVar[str]
    display_name: ClassVar[str]
    default_url: ClassVar[str]
    actions: ClassVar[frozenset[Action]]
    second_factor: ClassVar[SecondFactorKind] = SecondFactorKind.NONE
    history_reliable: ClassVar[bool] = False
    """True when ``find_submission`` sees every submission at once, so "not found" means not sent."""
    claim_number_pattern: ClassVar[str] = r"^[A-Za-z0-9-]{3,40}$"
    needs_fill_date: ClassVar[bool] = False
    max_upload_bytes: ClassVar[int] = MAX_UPLOAD_BYTES
    """The largest document the portal's upload takes; a larger one is refused before the upload."""
    claim_statuses: ClassVar[dict[str, ClaimRule]] = {}
    pa_statuses: ClassVar[dict[str, PaRule]] = {}
    known_fields: ClassVar[frozenset[str]] = frozenset()
    """The label of every value field the portal's pages show, patient data or not. A page that
    shows a field labelled otherwise has changed, and its screenshots mask the whole content area."""

    def __init__(self, page: Page, base_url: str, steps: StepRecorder) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.steps = steps
        # the step recorder asks the portal what a failed step's page means
        steps.check_page = self.check_page
        steps.busy = self.is_busy

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

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

    # -- the session ----------------------------------------------------------------------------

    def is_logged_in(self) -> bool:
        """Open a page that needs a session; True when the portal did not send us to its login."""
        raise NotImplementedError

    def login(self, secrets: LoginSecrets) -> None:
        """Log in once. Raise LoginRejected (or a subclass) when the portal refuses; never retry."""
        raise NotImplementedError

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
        """Raise the matching error when the current page is maintenance, a CAPTCHA, an expired
        session or a password-change demand. Called after navigations and on every failed step."""

    def is_busy(self, page: Page) -> bool:
        """True while the portal shows a spinner or similar: a timeout then is slowness."""
        return False

    def sensitive_locators(self) -> list[Locator]:
        """Elements showing patient data, masked in every screenshot, and whose texts every
        artifact is scrubbed of: names, member ids, dates of birth, dates of service and fill dates,
        Rx numbers, drugs and services, prescribers, the typed explanation."""
        return []

    def content_area(self) -> Locator:
        """Where the portal shows its pages' content. A screenshot masks it whole when none of
        ``sensitive_locators`` matches on the page, or when ``field_labels`` shows a label
        outside ``known_fields`` (``bot.evidence.screenshot_mask``); the page's body when it
        matches nothing either."""
        return self.page.get_by_role("main")

    def field_labels(self) -> Locator:
        """The labels of the value fields the current page shows (the terms of its description
        lists, by default), compared with ``known_fields``."""
        return self.content_area().get_by_role("term")
