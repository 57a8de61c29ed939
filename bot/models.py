"""The domain: work items, their payloads, and what a portal run returns.

Everything that crosses a boundary (intake, queue, portal, results) is one of these pydantic models,
so a bad value is refused where it enters, with the field's name.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)


class WorkKind(StrEnum):
    CLAIM_STATUS = "claim_status"
    PA_STATUS = "pa_status"
    APPEAL_SUBMISSION = "appeal_submission"


class ItemState(StrEnum):
    QUEUED = "queued"
    LEASED = "leased"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    DONE = "done"
    FAILED = "failed"
    NEEDS_HUMAN = "needs_human"
    REJECTED = "rejected"  # a row written upstream that failed validation when read
    CANCELLED = "cancelled"


FINAL_STATES = frozenset(
    {ItemState.DONE, ItemState.FAILED, ItemState.NEEDS_HUMAN, ItemState.REJECTED, ItemState.CANCELLED}
)


class SubmissionState(StrEnum):
    """An appeal submission record's state (``submissions.state``)."""

    SUBMITTING = "submitting"  # the intent is committed; the click may or may not have happened
    CONFIRMED = "confirmed"  # the portal's confirmation number is stored
    NOT_FOUND = "not_found"  # the portal's reliable history lacks it: it was never sent


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


Identifier = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$"
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


# --- payloads ------------------------------------------------------------------------------


class PortalRequest(Strict):
    """What every request may carry: on a portal that serves several health plans, the plan."""

    plan: Name | None = None

    @model_serializer(mode="wrap")
    def _plan_only_when_named(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a request with no plan dumps (and digests) as it did before plans existed, so rows
        # and idempotency keys written then still match
        data: dict[str, Any] = handler(self)
        if data.get("plan", "") is None:
            del data["plan"]
        return data


class ClaimStatusRequest(PortalRequest):
    """Look up one claim. Pharmacy portals key claims by Rx number and fill date."""

    claim_number: Identifier
    fill_date: date | None = None


class PaStatusRequest(PortalRequest):
    """Look up one prior authorization."""

    pa_number: Identifier


MediaType = Literal["application/pdf", "image/png", "image/jpeg", "image/tiff"]
"""What payers take as appeal documents: letters as PDF, scans as PNG, JPEG or TIFF."""


class DocumentRef(Strict):
    """A file the bot uploads: a path under PAYERBOT_DOCUMENTS_DIR, its SHA-256 and media type.

    The path is relative and stays inside the folder on paper (no ``..``, no leading ``/``); the bot
    also checks, after symlinks, that it stays inside on disk, and uploads only the approved bytes.
    """

    path: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    media_type: MediaType = "application/pdf"

    @field_validator("path")
    @classmethod
    def _relative_inside(cls, value: str) -> str:
        # messages name the rule, never the value: a path may carry a patient's name
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters")
        if "\\" in value:
            raise ValueError("must use '/' between folders, not '\\'")
        if value.startswith("/"):
            raise ValueError("must be relative to PAYERBOT_DOCUMENTS_DIR, not absolute")
        if ".." in value.split("/"):
            raise ValueError("must not contain a '..' segment")
        return value


class AppealReason(StrEnum):
    MEDICAL_NECESSITY = "medical_necessity"
    CODING_ERROR = "coding_error"
    TIMELY_FILING = "timely_filing"
    COORDINATION_OF_BENEFITS = "coordination_of_benefits"
    DUPLICATE_DENIAL = "duplicate_denial"
    OTHER = "other"


class AppealRequest(PortalRequest):
    """An appeal a person has reviewed and approved; the bot only types it in."""

    claim_number: Identifier
    fill_date: date | None = None
    reason: AppealReason
    explanation: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    letter: DocumentRef
    attachments: list[DocumentRef] = Field(default_factory=list, max_length=10)
    approved_by: Name
    approved_at: AwareDatetime


Payload = ClaimStatusRequest | PaStatusRequest | AppealRequest

PAYLOAD_MODELS: dict[WorkKind, type[Payload]] = {
    WorkKind.CLAIM_STATUS: ClaimStatusRequest,
    WorkKind.PA_STATUS: PaStatusRequest,
    WorkKind.APPEAL_SUBMISSION: AppealRequest,
}


def parse_payload(kind: WorkKind, data: Any) -> Payload:
    return PAYLOAD_MODELS[kind].model_validate(data)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def payload_digest(kind: WorkKind, payer: str, account: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json([kind, payer, account, payload]).encode()).hexdigest()


class NewItem(Strict):
    """One row of intake (a line of `payerbot enqueue FILE.jsonl`)."""

    kind: WorkKind
    payer: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
    account: Name
    payload: dict[str, Any]
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    priority: int = Field(default=0, ge=-100, le=100)

    @model_validator(mode="after")
    def _payload_matches_kind(self) -> NewItem:
        parse_payload(self.kind, self.payload)
        return self

    @property
    def request(self) -> Payload:
        return parse_payload(self.kind, self.payload)

    @property
    def digest(self) -> str:
        normalized = self.request.model_dump(mode="json")
        return payload_digest(self.kind, self.payer, self.account, normalized)

    @property
    def key(self) -> str:
        return self.idempotency_key or f"auto:{self.digest[:32]}"


# --- what page objects read ------------------------------------------------------------------


class CodeSystem(StrEnum):
    X12_CATEGORY = "x12_277_category"
    X12_STATUS = "x12_277_status"
    CARC = "carc"
    RARC = "rarc"
    NCPDP_REJECT = "ncpdp_reject"
    PAYER = "payer"


class PayerCode(Strict):
    system: CodeSystem
    code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    description: str | None = None


class Reading(Strict):
    """What a page object saw; `sensitive` lists patient values on the page, for scrubbing only."""

    status_text: Name
    codes: tuple[PayerCode, ...] = ()
    detail: str | None = None
    sensitive: tuple[str, ...] = Field(default=(), exclude=True, repr=False)


class ClaimReading(Reading):
    claim_number: str
    paid_amount: str | None = None


class PaReading(Reading):
    pa_number: str
    valid_from: date | None = None
    valid_to: date | None = None


class SubmissionResult(Strict):
    """The portal accepted an appeal and gave its confirmation number."""

    confirmation_id: Name
    reference: Name
    submitted_at: datetime | None = None


class SubmissionLookup(Strict):
    """What the portal's history says about a reference we may have submitted."""

    reference: Name
    found: bool
    confirmation_id: str | None = None

    @field_validator("confirmation_id")
    @classmethod
    def _found_has_id(cls, value: str | None) -> str | None:
        return value or None
