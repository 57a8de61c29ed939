"""Intake is strict: a row is refused with the field named, before anything is queued.

Two doors lead in. ``payerbot enqueue`` (and ``Queue.enqueue``) checks a ``NewItem`` here before it is
written; rows that upstream systems write straight into ``work_items`` are checked here when a
worker leases them, and a bad one is marked ``rejected`` instead of blocking the queue. Messages
name fields and patterns, never the values (which may be patient data).

The payer's own rules (does it exist, does it support the kind, could it have issued this claim
number) are a ``RequestCheck`` handed in by ``bot.services`` (the portal registry's): the queue
knows no portal, and so no browser.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.documents import documents_fields, escapes
from bot.errors import IntakeError
from bot.models import (
    APPEAL_LEVELS,
    AppealLevel,
    AppealRequest,
    ItemState,
    NewItem,
    Payload,
    WorkKind,
    parse_payload,
)
from bot.settings import Settings

RequestCheck = Callable[[WorkKind, str, Payload], None]
"""The payer's rules for one request (kind, payer id, request): raises IntakeError naming the field."""

DeadlineDays = Callable[[str, AppealLevel], int | None]
"""The payer's own filing deadline (payer id, level): days from the denial date, or None."""

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future an approval may be stamped (another machine's clock) before it is refused."""


def _describe(errors: list[ErrorDetails], prefix: str = "") -> tuple[str, str | None]:
    """(message, first field) from pydantic's errors: locations and rules, never the input."""
    problems: list[str] = []
    first: str | None = None
    for err in errors:
        where = ".".join(str(part) for part in err["loc"])
        where = f"{prefix}.{where}" if prefix and where else (prefix or where)
        first = first or where or None
        problems.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return "; ".join(problems), first


def parse_row(data: Any) -> NewItem:
    """One intake row (a decoded JSON line) as a NewItem, or an IntakeError naming the field."""
    if not isinstance(data, dict):
        raise IntakeError("a row must be a JSON object", field=None)
    try:
        return NewItem.model_validate(data)
    except ValidationError as exc:
        envelope = [err for err in exc.errors() if err["loc"] and str(err["loc"][0]) in NewItem.model_fields]
        if envelope:
            message, field = _describe(envelope)
            raise IntakeError(message, field=field) from None
        # Only the payload failed (NewItem checks it after its own fields): say so by its path.
        kind = WorkKind(data["kind"])
        try:
            parse_payload(kind, data["payload"])
        except ValidationError as inner:
            message, field = _describe(inner.errors(), prefix="payload")
            raise IntakeError(message, field=field) from None
        message, field = _describe(exc.errors())
        raise IntakeError(message, field=field) from None


def check_new_item(item: NewItem, documents_dir: Path | None, check: RequestCheck) -> None:
    request = item.request
    check(item.kind, item.payer, request)
    if isinstance(request, AppealRequest):
        check_documents(request, documents_dir)


def check_documents(request: AppealRequest, documents_dir: Path | None) -> None:
    """Where the documents lead on this machine: inside the folder, after symlinks.

    A file not there yet passes (it may be written later); the worker checks every document again,
    with its digest and content, before anything is uploaded.
    """
    if documents_dir is None:
        raise IntakeError(
            "payload.letter: PAYERBOT_DOCUMENTS_DIR is not set, so an appeal's documents cannot be found",
            field="payload.letter",
        )
    for name, ref in documents_fields(request):
        if escapes(documents_dir, ref.path):
            raise IntakeError(
                f"{name}.path: resolves outside PAYERBOT_DOCUMENTS_DIR after symlinks", field=f"{name}.path"
            )


def validate_stored(kind: str, payer: str, payload: Any, *, check: RequestCheck) -> tuple[WorkKind, Payload]:
    """Check a row as it lies in ``work_items`` (written by anyone); IntakeError names the field."""
    try:
        work_kind = WorkKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in WorkKind)
        raise IntakeError(f"kind: unknown kind (known kinds: {known})", field="kind") from None
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except ValueError:
            raise IntakeError("payload: not valid JSON", field="payload") from None
    if not isinstance(payload, dict):
        raise IntakeError("payload: must be a JSON object", field="payload")
    try:
        request = parse_payload(work_kind, payload)
    except ValidationError as exc:
        message, field = _describe(exc.errors(), prefix="payload")
        raise IntakeError(message, field=field) from None
    check(work_kind, payer, request)
    return work_kind, request


# -- filing deadlines -------------------------------------------------------------------------------


def filing_deadline(
    payer: str, request: AppealRequest, settings: Settings, payer_days: DeadlineDays | None
) -> date | None:
    """The last day ``payer`` takes this appeal: the denial date plus the days configured for the
    payer and level (``PAYERBOT_FILING_DEADLINES``), else the payer's own; None without either."""
    days = settings.filing_deadline_days(payer, request.level.value)
    if days is None and payer_days is not None:
        days = payer_days(payer, request.level)
    if days is None or request.denial_date is None:
        return None
    return request.denial_date + timedelta(days=days)


def check_appeal_dates(request: AppealRequest, deadline: date | None, now: datetime) -> None:
    """An approval stamped in the future or before the denial, or an appeal past its filing
    deadline (in time through the deadline's whole day, UTC), is refused naming the field."""
    if request.approved_at > now + CLOCK_SKEW:
        raise IntakeError(
            "payload.approved_at: is in the future (more than 5 minutes ahead of this machine's clock)",
            field="payload.approved_at",
        )
    if request.denial_date is not None and request.approved_at.date() < request.denial_date:
        raise IntakeError(
            "payload.approved_at: is before payload.denial_date (an appeal is approved after the denial)",
            field="payload.approved_at",
        )
    if deadline is not None and now.date() > deadline:
        raise IntakeError(
            f"payload.denial_date: the filing deadline of a {request.level.value} appeal passed on "
            f"{deadline.isoformat()}; the payer no longer takes it",
            field="payload.denial_date",
        )


# -- one appeal per claim and level ------------------------------------------------------------------

ENDED = frozenset({ItemState.CANCELLED, ItemState.FAILED, ItemState.REJECTED})
"""An appeal in one of these states was never filed (cancelled, failed without a possible submit,
refused): it holds no claim's level, and another item may appeal it."""
RESULTED = frozenset({ItemState.DONE})
"""An appeal done was filed (its confirmation is stored): a higher level may follow it."""


@dataclass(frozen=True)
class StoredAppeal:
    """An appeal item already in ``work_items``, as the one-per-level rule reads it."""

    id: int  # 0 for an earlier row of the same intake, not inserted yet
    idempotency_key: str
    state: str
    payload: Any

    @property
    def name(self) -> str:
        return f"item {self.id}" if self.id else "an earlier row of this input"


def claim_of(payer: str, request: AppealRequest) -> tuple[str, str | None, str, date | None]:
    """What identifies the appealed claim: payer, plan, claim (or Rx) number and fill date."""
    return payer, request.plan, request.claim_number, request.fill_date


def appeal_conflict(
    payer: str, request: AppealRequest, key: str, stored: Iterable[StoredAppeal]
) -> IntakeError | None:
    """Why this appeal may not be queued beside ``stored`` (other appeals of its payer and claim
    number), or None. Refused: a second appeal of the claim at the same or a higher level than one
    still standing (any state but ``ENDED``), or at a higher level than one with no result yet (not
    done). Rows under the same idempotency key are this appeal itself (a duplicate, not a conflict).
    """
    claim = claim_of(payer, request)
    rank = APPEAL_LEVELS.index(request.level)
    for row in stored:
        if row.idempotency_key == key or ItemState(row.state) in ENDED:
            continue
        try:
            other = parse_payload(WorkKind.APPEAL_SUBMISSION, _decoded(row.payload))
        except (ValidationError, ValueError):
            continue  # a row the lease will reject: it appeals nothing
        assert isinstance(other, AppealRequest)
        if claim_of(payer, other) != claim:
            continue
        other_rank = APPEAL_LEVELS.index(other.level)
        if other_rank == rank:
            why = f"{row.name} already appeals this claim at {request.level.value} ({row.state})"
        elif other_rank > rank:
            why = f"{row.name} already appeals this claim at a higher level ({other.level.value})"
        elif ItemState(row.state) not in RESULTED:
            why = (
                f"{row.name} appeals this claim at {other.level.value} and has no result yet "
                f"({row.state}); a {request.level.value} appeal follows it once it is done"
            )
        else:
            continue
        return IntakeError(f"payload.claim_number: {why}", field="payload.claim_number")
    return None


def checked_claim_of(payer: str, payload: Any) -> tuple[str, str | None, str, date | None]:
    """The claim a stored status check looked up, as ``claim_of`` names an appeal's."""
    data = _decoded(payload)
    fill = data.get("fill_date")
    return payer, data.get("plan"), data["claim_number"], date.fromisoformat(fill) if fill else None


def not_appealable(request: AppealRequest, latest: Any) -> IntakeError | None:
    """Refuse an appeal of a pharmacy claim whose latest status check found a primary reject that
    no redetermination can take (``bot.pharmacy``), naming the reject and what fixes it instead."""
    view = (_decoded(latest) or {}).get("pharmacy") if latest is not None else None
    rejects = (view or {}).get("rejects") or []
    if not rejects or rejects[0].get("appealable", True):
        return None
    primary = rejects[0]
    words = f" ({primary['description']})" if primary.get("description") else ""
    return IntakeError(
        f"payload.claim_number: the claim's latest status is reject {primary['code']}{words}, which an "
        f"appeal cannot change: {primary.get('instead') or 'resolve the reject and resubmit'}",
        field="payload.claim_number",
    )


def _decoded(payload: Any) -> Any:
    return json.loads(payload) if isinstance(payload, str | bytes) else payload
