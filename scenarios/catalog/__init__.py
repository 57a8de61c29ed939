"""The regression catalog: scenarios checked in as data, each run against the sandbox portals.

An entry (``scenarios/catalog/<name>.yaml``) names a payer, a kind of work, a synthetic input (the
sandbox claim or authorization to make, by its wording, and the appeal's synthetic fields), the
sandbox knobs to turn, and the outcome expected: a state, and the error kind, canonical status or
number of submissions the portal recorded. Running an entry makes a throwaway deployment and a
fresh sandbox claim (a synthetic patient), queues the item, and drains it with the real worker and
runner in real Chromium; then the item and the portal's ledger are compared with the entry.

Logging in is a third of a short run, so entries whose knobs leave the login alone share one
logged-in sandbox account per payer (``Logins``: its session is handed to each workspace's vault,
as a worker reuses a stored session); an entry whose knobs act on logins or sessions logs in fresh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from playwright.sync_api import Browser
from pydantic import Field, StringConstraints, ValidationError, field_validator, model_validator

from bot.clock import FastForwardClock
from bot.documents import write_letter
from bot.errors import ConfigError
from bot.evidence import sha256_file
from bot.models import AppealReason, ItemState, NewItem, Strict, WorkKind
from bot.queue import submission_reference
from bot.worker import Worker
from portals import get_portal, payer_ids
from sandbox import Knobs, SandboxAccount, SandboxServer, get_payer
from scenarios.catalog.workspace import Workspace

CATALOG_DIR = Path(__file__).parent  # the entries lie beside the harness that runs them
SYNTHETIC_APPROVER = "Catalog Reviewer (synthetic)"
SYNTHETIC_EXPLANATION = "Synthetic catalog appeal: the service was medically necessary, see the letter."

EntryName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,80}$")]
LOGIN_KNOBS = frozenset(
    {"captcha_after_logins", "reject_password", "password_expired", "session_expiry_requests"}
)


class CatalogInput(Strict):
    """What to make in the sandbox and type into the portal: all synthetic, no patient's data."""

    claim: str | None = Field(default=None, description="the wording of a fresh claim, e.g. Denied")
    pa: str | None = Field(
        default=None, description="the HCR01 code (or word) of a fresh authorization, e.g. A1 or approved"
    )
    rejects: tuple[str, ...] = Field(
        default=(), description="a pharmacy claim's NCPDP reject codes, the primary first, e.g. [70]"
    )
    reason: AppealReason = AppealReason.MEDICAL_NECESSITY
    explanation: str = SYNTHETIC_EXPLANATION
    attachments: int = Field(default=0, ge=0, le=3)


class Expect(Strict):
    state: Literal[ItemState.DONE, ItemState.RETRY_WAIT, ItemState.FAILED, ItemState.NEEDS_HUMAN]
    error_kind: str | None = None
    canonical_status: str | None = None
    submissions: int | None = Field(default=None, ge=0, description="ledger entries for the item")
    min_logins: int | None = Field(default=None, ge=0, description="at least this many logins (renewals)")


class Entry(Strict):
    name: EntryName
    description: str = ""
    payer: str
    kind: WorkKind
    input: CatalogInput = Field(default_factory=CatalogInput)
    knobs: dict[str, Any] = Field(default_factory=dict)
    items: int = Field(default=1, ge=1, le=5, description="items of this input, leased as one batch")
    settle: bool = Field(default=False, description="drain until the item is final (retries included)")
    expect: Expect
    from_run: str | None = None

    @field_validator("payer")
    @classmethod
    def _known_payer(cls, value: str) -> str:
        if value not in payer_ids():
            raise ValueError(f"unknown payer '{value}' (known: {', '.join(payer_ids())})")
        return value

    @field_validator("knobs")
    @classmethod
    def _valid_knobs(cls, value: dict[str, Any]) -> dict[str, Any]:
        Knobs.model_validate(value)
        return value

    @model_validator(mode="after")
    def _input_fits_kind(self) -> Entry:
        if self.kind == WorkKind.PA_STATUS and not self.input.pa:
            raise ValueError("input.pa: a pa_status scenario names the HCR01 code of its authorization")
        if self.kind != WorkKind.PA_STATUS and not self.input.claim:
            raise ValueError(f"input.claim: a {self.kind} scenario names the wording of its claim")
        return self


def load_entry(path: Path) -> Entry:
    """One entry; a bad file is refused with its name and the field at fault."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not readable YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a catalog entry is a mapping of fields")
    try:
        entry = Entry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "entry"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    if entry.name != path.stem:
        raise ConfigError(f"{path}: name '{entry.name}' differs from the file's name '{path.stem}'")
    return entry


def load_catalog(folder: Path = CATALOG_DIR) -> list[Entry]:
    return [load_entry(p) for p in sorted(folder.glob("*.yaml"))]


def entry_yaml(entry: Entry, header: str = "") -> str:
    data = entry.model_dump(mode="json", exclude_defaults=True)
    data = {"name": entry.name, "payer": entry.payer, "kind": str(entry.kind), **data}
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return "".join(f"# {line}\n" for line in header.splitlines()) + text


def default_claim_wording(payer: str, kind: WorkKind) -> str:
    """A claim the payer's sandbox has: an appealable one for an appeal, else its first kind."""
    spec = get_payer(payer).data
    for claim_kind in spec.claim_kinds:
        appealable = (
            claim_kind.category.startswith("F") if claim_kind.appealable is None else claim_kind.appealable
        )
        if kind != WorkKind.APPEAL_SUBMISSION or appealable:
            return claim_kind.wording
    raise ConfigError(f"the {payer} sandbox has no claim it takes appeals on")


# -- running an entry --------------------------------------------------------------------------


@dataclass
class Logins:
    """A logged-in sandbox account per payer, and its newest session state."""

    accounts: dict[str, SandboxAccount] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def seed(self, ws: Workspace, state: Any) -> str:
        payer = state.payer_id
        name, login = ws.seed_account(state, self.accounts.get(payer))
        self.accounts[payer] = login
        if payer in self.sessions:
            ws.services.vault.save_session(payer, name, self.sessions[payer])
        return name

    def keep(self, ws: Workspace, payer: str, name: str) -> None:
        session = ws.services.vault.load_session(payer, name)
        if session is not None:
            self.sessions[payer] = session


@dataclass
class EntryResult:
    entry: Entry
    item_ids: list[int] = field(default_factory=list)
    state: str | None = None
    error_kind: str | None = None
    error: str | None = None
    canonical_status: str | None = None
    confirmation_id: str | None = None
    submissions: int = 0
    logins: int = 0
    run_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        got = f"{self.state} {self.error_kind or self.canonical_status or self.confirmation_id or ''}".strip()
        if self.passed:
            return f"{self.entry.name}: ok ({got})"
        return f"{self.entry.name}: FAILED ({got}): " + "; ".join(self.problems)


SYNTHETIC_BILLING_NPI = "1234567893"  # the CMS example NPI: a valid check digit


def _item(entry: Entry, ws: Workspace, account: str, sandbox: SandboxServer) -> tuple[NewItem, Any]:
    state = sandbox.portal(entry.payer)
    portal_cls = get_portal(entry.payer)
    if entry.kind == WorkKind.PA_STATUS:
        pa = state.add_pa(entry.input.pa)
        payload: dict[str, Any] = {"pa_number": pa.pa_number}
        truth: Any = pa
    else:
        rejects = {"ncpdp": entry.input.rejects} if entry.input.rejects else {}
        claim = state.add_claim(entry.input.claim, newest=True, **rejects)
        payload = {"claim_number": claim.claim_number}
        if portal_cls.needs_fill_date:
            payload["fill_date"] = claim.service_date.isoformat()
        truth = claim
    if truth.plan is not None:  # the health plan it belongs to, on a portal that serves several
        payload["plan"] = truth.plan
    if entry.kind == WorkKind.APPEAL_SUBMISSION:
        stem = re.sub(r"[^A-Za-z0-9-]", "", str(payload["claim_number"]))
        letter = write_letter(ws.documents, f"letter-{stem}.pdf", "Synthetic appeal letter.")
        attachments = [
            write_letter(ws.documents, f"attachment-{stem}-{i}.pdf", f"Synthetic attachment {i}.")
            for i in range(entry.input.attachments)
        ]
        approved = datetime.now(UTC)
        payload |= {
            "reason": entry.input.reason.value,
            "explanation": entry.input.explanation,
            "letter": {"path": letter.name, "sha256": sha256_file(letter)},
            "attachments": [{"path": a.name, "sha256": sha256_file(a)} for a in attachments],
            "approved_by": SYNTHETIC_APPROVER,
            "approved_at": approved.isoformat(),
            # what payers' forms ask for (Portal.appeal_requires): a denial well within every deadline
            "denial_date": (approved.date() - timedelta(days=10)).isoformat(),
            "member_id": truth.patient.member_id,
            "billing_npi": SYNTHETIC_BILLING_NPI,
        }
    item = NewItem(
        kind=entry.kind,
        payer=entry.payer,
        account=account,
        payload=payload,
        idempotency_key=f"catalog-{entry.name}-{payload.get('claim_number') or payload.get('pa_number')}",
    )
    return item, truth


def run_entry(
    entry: Entry,
    sandbox: SandboxServer,
    browser: Browser,
    root: Path,
    *,
    template: Path | None = None,
    logins: Logins | None = None,
) -> EntryResult:
    """Run one entry in a throwaway deployment under ``root``; the portal's knobs are reset after.

    With ``logins``, an entry that leaves the login alone reuses the payer's shared session.
    """
    result = EntryResult(entry)
    state = sandbox.portal(entry.payer)
    # settling waits out retries and a lagging history on a clock that moves instead of waiting
    clock = FastForwardClock() if entry.settle else None
    ws = Workspace.create(root, template=template, clock=clock, retry_base_seconds=0.2, retry_max_seconds=1.0)
    try:
        shared = logins is not None and not (LOGIN_KNOBS & set(entry.knobs))
        account = logins.seed(ws, state) if logins is not None and shared else ws.seed_account(state)[0]
        made = [_item(entry, ws, account, sandbox) for _ in range(entry.items)]
        report = ws.services.queue.enqueue([item for item, _ in made])
        if not report.ok:
            raise ConfigError(
                f"{entry.name}: the queue refused a synthetic item: {report.rejected[0].message}"
            )
        result.item_ids = list(report.queued)
        state.set_knobs(entry.knobs)
        try:
            # one batch shows the items as their first attempt left them; settling waits out retries
            worker = Worker(ws.services, browser)
            drained = worker.drain(until_settled=True) if entry.settle else worker.drain(max_batches=1)
        finally:
            state.reset()
        result.run_ids = [o.run_id for o in drained.outcomes if o.run_id]
        result.logins = drained.logins
        if entry.expect.min_logins is not None and drained.logins < entry.expect.min_logins:
            result.problems.append(f"{drained.logins} logins, expected at least {entry.expect.min_logins}")
        if logins is not None and shared:
            logins.keep(ws, entry.payer, account)
        for item_id, (_, truth) in zip(result.item_ids, made, strict=True):
            _check(result, item_id, ws, state, truth)
    finally:
        ws.close()
    return result


def _check(result: EntryResult, item_id: int, ws: Workspace, state: Any, truth: Any) -> None:
    entry, expect = result.entry, result.entry.expect
    view = ws.services.queue.get(item_id)
    result.state, result.error_kind, result.error = view.state.value, view.last_error_kind, view.last_error
    result.canonical_status, result.confirmation_id = view.canonical_status, view.confirmation_id
    problems: list[str] = []
    if view.state != expect.state:
        problems.append(
            f"state {view.state.value}, expected {expect.state} ({view.last_error or 'no error'})"
        )
    if expect.error_kind is not None and view.last_error_kind != expect.error_kind:
        problems.append(f"error kind {view.last_error_kind}, expected {expect.error_kind}")
    if expect.canonical_status is not None and view.canonical_status != expect.canonical_status:
        problems.append(f"status {view.canonical_status}, expected {expect.canonical_status}")
    if entry.kind == WorkKind.APPEAL_SUBMISSION:
        reference = view.submission_reference or submission_reference(view.id, view.idempotency_key)
        ledger = state.ledger_entries(reference=reference)
        result.submissions = len(ledger)
        if expect.submissions is not None and len(ledger) != expect.submissions:
            problems.append(f"the portal recorded {len(ledger)} submissions, expected {expect.submissions}")
        if len(ledger) > 1:
            problems.append(f"submitted {len(ledger)} times")
        if view.state == ItemState.DONE and (not ledger or ledger[0].appeal_number != view.confirmation_id):
            problems.append("the stored confirmation is not the one the portal recorded")
    elif view.state == ItemState.DONE:
        true_status = truth.category if entry.kind == WorkKind.CLAIM_STATUS else truth.hcr01.value
        if view.canonical_status != true_status:
            problems.append(f"status {view.canonical_status} differs from the sandbox's truth {true_status}")
    prefix = f"item {item_id}: " if len(result.item_ids) > 1 else ""
    result.problems += [prefix + p for p in problems]
