"""Turning a recorded run into a regression catalog entry, with nothing of the run's own input.

The entry keeps what the run teaches: the payer, the kind of work, how it ended (the state its
error's family leads to, and the error kind) and the non-identifying choices of the input (the
appeal's reason, how many attachments). Everything else is synthetic: the catalog makes a fresh
sandbox claim or authorization (a made-up patient) by its wording, a made-up letter, explanation
and approver. The sandbox knobs that reproduce the failure are the operator's to name (a production
portal's knobs cannot be read off a bundle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, Disposition, PayerbotError, error_class
from bot.models import AppealReason, ItemState, WorkKind
from bot.services import Services
from sandbox import get_payer
from scenarios.catalog import CATALOG_DIR, CatalogInput, Entry, Expect, default_claim_wording, entry_yaml
from scenarios.runs import RunView

STATE_FOR = {
    Disposition.HUMAN: ItemState.NEEDS_HUMAN,
    Disposition.RETRY: ItemState.RETRY_WAIT,
    Disposition.FAIL: ItemState.FAILED,
}


@dataclass(frozen=True)
class Promoted:
    entry: Entry
    path: Path
    text: str


def expected_state(run: RunView) -> ItemState:
    """The state the run's error leads a first attempt to (its error family's disposition)."""
    if run.outcome == "ok":
        return ItemState.DONE
    if run.bundle is not None and run.bundle.disposition:
        return STATE_FOR[Disposition(run.bundle.disposition)]
    cls = error_class(run.error_kind or "")
    if cls is not None:
        return STATE_FOR[cls.disposition]
    return ItemState.NEEDS_HUMAN  # an unexpected error goes to a person


def entry_name(run: RunView) -> str:
    ending = re.sub(r"(?<!^)(?=[A-Z])", "-", run.error_kind).lower() if run.error_kind else "ok"
    tail = run.id.rsplit("-", 1)[-1]
    return re.sub(r"[^a-z0-9-]+", "-", f"{run.payer}-{run.kind.replace('_', '-')}-{ending}-{tail}")[:80]


def promote(
    run: RunView,
    services: Services | None = None,
    *,
    knobs: dict[str, Any] | None = None,
    name: str | None = None,
    claim: str | None = None,
    pa: str | None = None,
    folder: Path = CATALOG_DIR,
    force: bool = False,
) -> Promoted:
    """Write ``<folder>/<name>.yaml`` from ``run``; refuse to overwrite an entry unless ``force``."""
    if run.outcome not in {"ok", "failed"}:
        raise ConfigError(
            f"run {run.id} ended '{run.outcome}' (a planned stop): promote a failed or finished run"
        )
    kind = WorkKind(run.kind)
    reason, attachments = _input_choices(run, services)
    spec = get_payer(run.payer).data
    if kind == WorkKind.PA_STATUS:
        pa = pa or spec.pa_kinds[0].hcr01.value
        synthetic = CatalogInput(pa=pa)
    else:
        claim = claim or default_claim_wording(run.payer, kind)
        synthetic = CatalogInput(claim=claim, reason=reason, attachments=attachments)
    state = expected_state(run)
    expect: dict[str, Any] = {"state": state}
    if state != ItemState.DONE:
        expect["error_kind"] = run.error_kind
    elif kind == WorkKind.CLAIM_STATUS:
        expect["canonical_status"] = spec.claim_kind(str(claim)).category
    elif kind == WorkKind.PA_STATUS:
        expect["canonical_status"] = spec.pa_kind(str(pa)).hcr01.value
    else:
        expect["submissions"] = 1
    where = f" on {run.url_path}" if run.url_path else ""
    entry = Entry(
        name=name or entry_name(run),
        description=f"Promoted from run {run.id} ({run.payer} {run.action}): it ended {state}"
        + (f" with {run.error_kind}{where}" if run.error_kind else ""),
        payer=run.payer,
        kind=kind,
        input=synthetic,
        knobs=knobs or {},
        expect=Expect(**expect),
        from_run=run.id,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{entry.name}.yaml"
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (--force replaces it)")
    header = (
        f"Promoted from run {run.id} on {datetime.now(UTC):%Y-%m-%d}.\n"
        "The input is synthetic: the catalog makes a fresh sandbox claim and patient for it.\n"
        f"Check the knobs reproduce what the portal did, then run it: {run_command(entry.name, folder)}"
    )
    text = entry_yaml(entry, header)
    path.write_text(text, encoding="utf-8")
    return Promoted(entry, path, text)


def run_command(name: str, folder: Path) -> str:
    where = "" if folder.resolve() == CATALOG_DIR.resolve() else f" --catalog {folder}"
    return f"payerbot scenarios run {name}{where}"


def _input_choices(run: RunView, services: Services | None) -> tuple[AppealReason, int]:
    """The appeal's reason and attachment count: choices, not data about the patient."""
    if services is None or run.item_id is None:
        return AppealReason.MEDICAL_NECESSITY, 0
    try:
        payload = services.queue.get(run.item_id).payload
    except PayerbotError:
        return AppealReason.MEDICAL_NECESSITY, 0
    try:
        reason = AppealReason(payload.get("reason", AppealReason.MEDICAL_NECESSITY.value))
    except ValueError:
        reason = AppealReason.MEDICAL_NECESSITY
    return reason, min(len(payload.get("attachments") or []), 3)
