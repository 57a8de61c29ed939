"""The domain: work items, their payloads, and what a portal run returns.

Everything that crosses a boundary (intake, queue, portal, results) is one of these pydantic models,
so a bad value is refused where it enters, with the field's name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
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

    omitted_when_default: ClassVar[dict[str, Any]] = {"plan": None}
    """Fields added after rows were first written: left out of a dump (and so of the digest) while
    they hold their default, so rows and idempotency keys written before them still match."""

    @model_serializer(mode="wrap")
    def _plan_only_when_named(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a request with no plan dumps (and digests) as it did before plans existed, so rows
        # and idempotency keys written then still match; so do the later appeal fields
        data: dict[str, Any] = handler(self)
        for name, default in self.omitted_when_default.items():
            if name in data and data[name] == default:
                del data[name]
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


class AppealLevel(StrEnum):
    """How far up the payer's appeal ladder this appeal goes, lowest first (``APPEAL_LEVELS``)."""

    RECONSIDERATION = "reconsideration"
    FIRST_LEVEL = "first_level"
    SECOND_LEVEL = "second_level"
    EXTERNAL_REVIEW = "external_review"


APPEAL_LEVELS: tuple[AppealLevel, ...] = tuple(AppealLevel)
"""The levels in the order an appeal climbs them."""


def _npi_check(value: str) -> str:
    """A National Provider Identifier: 10 digits, the last a Luhn check digit computed over the
    first nine prefixed with 80840 (CMS, "NPI check digit"). Messages never repeat the value."""
    if not (len(value) == 10 and value.isascii() and value.isdigit()):
        raise ValueError("must be 10 digits")
    total = 0
    for position, char in enumerate(reversed("80840" + value[:9])):
        digit = int(char)
        if position % 2 == 0:  # every second digit from the right of the base, doubled
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    if (10 - total % 10) % 10 != int(value[9]):
        raise ValueError("has a wrong check digit (not a valid NPI)")
    return value


def _tin_check(value: str) -> str:
    digits = value.replace("-", "")
    if not (len(digits) == 9 and digits.isascii() and digits.isdigit()) or value.count("-") > 1:
        raise ValueError("must be 9 digits (an EIN may be written 12-3456789)")
    return digits


def _two_decimals(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))  # 125.5 and 125.50 are one amount (and one digest)


Npi = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_npi_check)]
Tin = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_tin_check)]
Amount = Annotated[
    Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False), AfterValidator(_two_decimals)
]
_ADJUSTMENT_CODE = re.compile(r"(?:(?:CO|CR|OA|PI|PR)-)?[A-Z]{0,2}\d{1,3}")


def _adjustment_code(value: str) -> str:
    code = value.upper()
    if not _ADJUSTMENT_CODE.fullmatch(code):
        raise ValueError("must be a CARC or RARC code, its group code optional (CO-50, N115)")
    return code


AdjustmentCode = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_adjustment_code)]
"""A disputed CARC (``50``, ``CO-50``, ``B7``) or RARC (``N115``, ``MA130``), its group code optional."""


class ServiceDates(Strict):
    """The dates of service the appeal is about: patient data, never logged."""

    from_date: date
    to_date: date | None = None

    @model_validator(mode="after")
    def _in_order(self) -> ServiceDates:
        if self.to_date is not None and self.to_date < self.from_date:
            raise ValueError("to_date must not be before from_date")
        return self


class Contact(Strict):
    """Who at the provider the payer may call or write about this appeal: personal data."""

    name: Name
    phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ().-]{7,25}$")] | None
    ) = None
    email: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if self.phone is None and self.email is None:
            raise ValueError("a contact needs a phone or an e-mail")
        return self


class AppealRequest(PortalRequest):
    """An appeal a person has reviewed and approved; the bot only types it in.

    The fields after ``approved_at`` are what payer forms ask for. They are optional here (rows
    written before them still parse, and dump and digest as before: ``omitted_when_default``); each
    portal names those it requires (``Portal.appeal_requires``), which intake checks. The member id,
    dates of service and contact are patient or personal data: kept out of ``repr`` and logs, and
    refusals name their field, never their value.
    """

    claim_number: Identifier
    fill_date: date | None = None
    reason: AppealReason
    explanation: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
    letter: DocumentRef
    attachments: list[DocumentRef] = Field(default_factory=list, max_length=10)
    approved_by: Name
    approved_at: AwareDatetime
    level: AppealLevel = AppealLevel.FIRST_LEVEL
    denial_date: date | None = None
    service_dates: ServiceDates | None = Field(default=None, repr=False)
    disputed_codes: tuple[AdjustmentCode, ...] = Field(default=(), max_length=20)
    disputed_amount: Amount | None = None
    member_id: Identifier | None = Field(default=None, repr=False)
    billing_npi: Npi | None = None
    rendering_npi: Npi | None = None
    tin: Tin | None = None
    contact: Contact | None = Field(default=None, repr=False)

    omitted_when_default: ClassVar[dict[str, Any]] = {
        "plan": None,
        "level": AppealLevel.FIRST_LEVEL,
        "denial_date": None,
        "service_dates": None,
        "disputed_codes": [],
        "disputed_amount": None,
        "member_id": None,
        "billing_npi": None,
        "rendering_npi": None,
        "tin": None,
        "contact": None,
    }

    def form_fields(self, dates: Callable[[date], str] = date.isoformat) -> dict[str, str]:
        """The form fields this appeal fills, each as a string (dates through ``dates``), keyed by
        a name every portal and sandbox share: level, denial_date, service_from, service_to,
        disputed_codes (comma-separated), disputed_amount, member_id, billing_npi, rendering_npi,
        tin, contact_name, contact_phone, contact_email. A field not given is left out."""
        dated, contact = self.service_dates, self.contact
        values: dict[str, str | None] = {
            "level": self.level.value,
            "denial_date": dates(self.denial_date) if self.denial_date else None,
            "service_from": dates(dated.from_date) if dated else None,
            "service_to": dates(dated.to_date) if dated and dated.to_date else None,
            "disputed_codes": ", ".join(self.disputed_codes) or None,
            "disputed_amount": str(self.disputed_amount) if self.disputed_amount is not None else None,
            "member_id": self.member_id,
            "billing_npi": self.billing_npi,
            "rendering_npi": self.rendering_npi,
            "tin": self.tin,
            "contact_name": contact.name if contact else None,
            "contact_phone": contact.phone if contact else None,
            "contact_email": contact.email if contact else None,
        }
        return {name: value for name, value in values.items() if value is not None}

    def patient_values(self) -> tuple[str | date | None, ...]:
        """The patient's and the contact's values this request holds, for every artifact's scrub."""
        dates = self.service_dates
        contact = self.contact
        return (
            self.member_id,
            dates.from_date if dates else None,
            dates.to_date if dates else None,
            contact.name if contact else None,
            contact.phone if contact else None,
            contact.email if contact else None,
        )


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


AdjustmentGroup = Literal["CO", "PR", "OA", "PI", "CR"]
"""Claim adjustment group codes: contractual, patient responsibility, other, payer initiated, correction."""


class PayerCode(Strict):
    """A code the payer showed, with its words (``description``) and, once mapped, the code list's
    (``official_description``)."""

    system: CodeSystem
    code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    description: str | None = None
    official_description: str | None = None
    official_deactivated: date | None = None  # the code list retired the code on this day
    group: AdjustmentGroup | None = None  # a CARC's claim adjustment group
    amount: Decimal | None = None  # what the CARC adjusted


class Reading(Strict):
    """What a page object saw; `sensitive` lists patient values on the page, for scrubbing only."""

    status_text: Name
    codes: tuple[PayerCode, ...] = ()
    detail: str | None = None
    sensitive: tuple[str, ...] = Field(default=(), exclude=True, repr=False)


class ClaimReading(Reading):
    claim_number: str
    billed_amount: str | None = None
    paid_amount: str | None = None
    patient_responsibility: str | None = None


class PaReading(Reading):
    pa_number: str
    valid_from: date | None = None
    valid_to: date | None = None
    certification_number: str | None = None  # the payer's number for its decision (278 HCR02)
    units_requested: int | None = Field(default=None, ge=0)
    units_approved: int | None = Field(default=None, ge=0)
    reason_code: str | None = None  # the code of the decision's reason (278 HCR03), where shown


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
