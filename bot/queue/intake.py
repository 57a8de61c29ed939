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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.documents import documents_fields, escapes
from bot.errors import IntakeError
from bot.models import AppealRequest, NewItem, Payload, WorkKind, parse_payload

RequestCheck = Callable[[WorkKind, str, Payload], None]
"""The payer's rules for one request (kind, payer id, request): raises IntakeError naming the field."""


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
