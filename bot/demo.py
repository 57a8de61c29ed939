"""``payerbot demo``: the main job, end to end, on the embedded default, checked against the truth.

It starts the sandbox portals, makes a throwaway SQLite queue, vault and artifacts folder, seeds
the vault with the sandbox's demo accounts, queues status checks for each payer plus approved
appeals, drains them with real Chromium, and then checks every item against the sandbox's own
truth: each status equal to the true one, each appeal in the portal's ledger exactly once with the
confirmation number payerbot stored. An item handed to a person with a reason is honest; a wrong
status or a second submission is a failure.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser

from bot.documents import write_letter
from bot.evidence import sha256_file
from bot.migrate import upgrade
from bot.models import FINAL_STATES, AppealReason, ItemState, NewItem, WorkKind
from bot.portal import Portal
from bot.queue import ItemView
from bot.runner import BatchReport
from bot.services import Services, build_services
from bot.settings import Settings
from bot.status import claim_facts
from bot.worker import Worker, open_browser
from portals import get_portal, payer_ids
from sandbox.data import Claim, PriorAuth
from sandbox.payers import code_inboxes
from sandbox.server import SandboxServer
from vault import Keyring

APPROVER = "Dana Reviewer, CPhT"
HONEST_STATES = frozenset({ItemState.NEEDS_HUMAN, ItemState.FAILED})


@dataclass
class Check:
    item_id: int
    kind: str
    payer: str
    state: str
    canonical_status: str | None
    confirmation_id: str | None
    expected: str | None
    correct: bool
    problem: str | None = None
    last_error: str | None = None


@dataclass
class DemoResult:
    checks: list[Check] = field(default_factory=list)
    workdir: Path | None = None
    logins: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.correct for c in self.checks)

    def counts(self) -> dict[str, Any]:
        by_state: dict[str, int] = {}
        for c in self.checks:
            by_state[c.state] = by_state.get(c.state, 0) + 1
        return {
            "items": len(self.checks),
            "correct": sum(c.correct for c in self.checks),
            "wrong": sum(not c.correct for c in self.checks),
            "by_state": by_state,
            "logins": self.logins,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "items": [
                {
                    "id": c.item_id,
                    "kind": c.kind,
                    "payer": c.payer,
                    "state": c.state,
                    "canonical_status": c.canonical_status,
                    "confirmation_id": c.confirmation_id,
                    "expected": c.expected,
                    "correct": c.correct,
                    "problem": c.problem,
                }
                for c in self.checks
            ],
            "counts": self.counts(),
            "ok": self.ok,
        }


def plan_items(
    sandbox: SandboxServer,
    payers: list[str],
    accounts: dict[str, str],
    n: int,
    documents: Path,
    rng: random.Random,
) -> list[NewItem]:
    """``n`` status checks spread over the payers, plus at least one approved appeal per payer
    (three in all at least), drawn from the sandbox's own seeded claims and authorizations."""
    items: list[NewItem] = []
    per_payer = max(1, n // len(payers))
    appeals_each = max(1, -(-3 // len(payers)))
    for payer in payers:
        state = sandbox.portal(payer)
        portal_cls = get_portal(payer)
        claims = sorted(state.claims.values(), key=lambda c: c.claim_number)
        pas = sorted(state.pas.values(), key=lambda p: p.pa_number)
        wanted = per_payer + (n - per_payer * len(payers) if payer == payers[-1] else 0)
        n_pa = wanted // 3 if pas else 0
        for claim in rng.sample(claims, min(wanted - n_pa, len(claims))):
            payload = claim_fields(portal_cls, claim)
            items.append(
                NewItem(kind=WorkKind.CLAIM_STATUS, payer=payer, account=accounts[payer], payload=payload)
            )
        for pa in rng.sample(pas, min(n_pa, len(pas))):
            items.append(
                NewItem(
                    kind=WorkKind.PA_STATUS,
                    payer=payer,
                    account=accounts[payer],
                    payload={"pa_number": pa.pa_number, **plan_of(pa)},
                )
            )
        appealable = [c for c in claims if c.appealable]
        for claim in rng.sample(appealable, min(appeals_each, len(appealable))):
            letter = write_letter(
                documents,
                f"appeal-{payer}-{claim.claim_number}.pdf",
                f"Appeal of claim {claim.claim_number}: please reconsider.",
            )
            payload = {
                **claim_fields(portal_cls, claim),
                "reason": AppealReason.MEDICAL_NECESSITY.value,
                "explanation": "The service was medically necessary; see the attached letter.",
                "letter": {"path": letter.name, "sha256": sha256_file(letter)},
                "approved_by": APPROVER,
                **appeal_form_fields(claim, datetime.now(UTC)),
            }
            items.append(
                NewItem(
                    kind=WorkKind.APPEAL_SUBMISSION, payer=payer, account=accounts[payer], payload=payload
                )
            )
    return items


DEMO_BILLING_NPI = "1234567893"  # the CMS example NPI (a valid check digit), billing for every claim


def appeal_form_fields(claim: Claim, approved_at: datetime) -> dict[str, Any]:
    """What payers' appeal forms ask for beyond the claim (``Portal.appeal_requires``): the member,
    the denial (ten days before the approval, well within every filing deadline) and the provider."""
    return {
        "approved_at": approved_at.isoformat(),
        "denial_date": (approved_at.date() - timedelta(days=10)).isoformat(),
        "member_id": claim.patient.member_id,
        "billing_npi": DEMO_BILLING_NPI,
    }


def claim_fields(portal_cls: type[Portal], claim: Claim) -> dict[str, Any]:
    """How a work item names a sandbox claim: its number, its fill date where the portal looks
    claims up by one, and its plan on a portal that serves several."""
    fill = {"fill_date": claim.service_date.isoformat()} if portal_cls.needs_fill_date else {}
    return {"claim_number": claim.claim_number, **fill, **plan_of(claim)}


def plan_of(record: Claim | PriorAuth) -> dict[str, str]:
    """A sandbox claim's or authorization's plan as a payload field, when it has one."""
    return {"plan": record.plan} if record.plan is not None else {}


PA_FIELDS = ("hcr01", "certification_number", "units_requested", "units_approved", "reason_code")


def pa_result_matches(result: dict[str, Any], pa: PriorAuth) -> bool:
    """The stored PA result against the sandbox's truth: its HCR01 code and, on a portal that shows
    them (BluePeak and RxPress show none), all of its certification number, units and reason code."""
    truth = pa.truth()
    shows_details = any(result.get(name) is not None for name in PA_FIELDS[1:])
    return all(result.get(name) == truth[name] for name in (PA_FIELDS if shows_details else PA_FIELDS[:1]))


def verify(services: Services, sandbox: SandboxServer) -> list[Check]:
    """Every item against the sandbox's truth and ledger."""
    checks = []
    for view in services.queue.list(limit=100_000):
        item = services.queue.get(view.id)
        state = sandbox.portal(item.payer)
        payload = item.payload
        expected: str | None
        if item.kind == WorkKind.CLAIM_STATUS:
            truth = state.claim(payload["claim_number"], payload.get("plan"))
            if truth is None:
                checks.append(_check(item, None, False, "no such claim in the sandbox"))
                continue
            expected = " ".join(str(part) for part in truth.composite if part)
            correct_value = claim_facts(item.result or {}) == truth.facts  # composite, amounts, CARCs
        elif item.kind == WorkKind.PA_STATUS:
            pa = state.pa(payload["pa_number"], payload.get("plan"))
            if pa is None:
                checks.append(_check(item, None, False, "no such authorization in the sandbox"))
                continue
            expected = pa.hcr01.value  # and what backs it: certification, units, reason code
            correct_value = pa_result_matches(item.result or {}, pa)
        else:
            # an appeal that never reached its submit has no reference: nothing of it can be in the ledger
            reference = item.submission_reference
            entries = state.ledger_entries(reference=reference) if reference else []
            expected = entries[0].appeal_number if len(entries) == 1 else None
            if len(entries) > 1:
                checks.append(_check(item, expected, False, f"submitted {len(entries)} times"))
                continue
            correct_value = len(entries) == 1 and entries[0].appeal_number == item.confirmation_id
            if item.state in HONEST_STATES and not entries:
                correct_value = True
        if item.state == ItemState.DONE:
            checks.append(
                _check(item, expected, correct_value, None if correct_value else "differs from the truth")
            )
        elif item.state in HONEST_STATES and item.kind != WorkKind.APPEAL_SUBMISSION:
            checks.append(
                _check(item, expected, bool(item.last_error), None if item.last_error else "no reason")
            )
        elif item.state in HONEST_STATES:
            checks.append(
                _check(item, expected, correct_value, None if correct_value else "recorded by the portal")
            )
        else:
            checks.append(_check(item, expected, False, f"left in state {item.state}"))
    return checks


def _check(item: ItemView, expected: str | None, correct: bool, problem: str | None) -> Check:
    return Check(
        item_id=item.id,
        kind=str(item.kind),
        payer=item.payer,
        state=str(item.state),
        canonical_status=item.canonical_status,
        confirmation_id=item.confirmation_id,
        expected=expected,
        correct=correct,
        problem=problem,
        last_error=item.last_error,
    )


@contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    tmp = Path(tempfile.mkdtemp(prefix="payerbot-demo-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_demo(
    *,
    items: int = 20,
    knobs: dict[str, Any] | None = None,
    keep: Path | None = None,
    payers: list[str] | None = None,
    seed: int = 7,
    on_progress: Callable[[int, int], None] | None = None,
    base_settings: dict[str, Any] | None = None,
    sandbox: SandboxServer | None = None,
    browser: Browser | None = None,
) -> DemoResult:
    """Run the demo; a caller that wants to look at the portals afterwards hands in ``sandbox``,
    one that already drives a Chromium (a test session) hands in ``browser``."""
    chosen = payers or (sandbox.payers if sandbox else payer_ids())
    with workspace(keep) as work, _serving(sandbox, chosen, seed) as sandbox:
        for payer in chosen:
            if knobs:
                sandbox.portal(payer).set_knobs(knobs)
        documents = work / "documents"
        documents.mkdir(exist_ok=True)
        keyring = Keyring.generate()
        key_file = work / "vault.key"
        key_file.write_text(keyring.dump(), encoding="utf-8")
        key_file.chmod(0o600)
        settings = Settings(
            data_dir=work,
            database_url=f"sqlite:///{work / 'payerbot.db'}",
            artifacts_dir=work / "artifacts",
            documents_dir=documents,
            vault_key_file=key_file,
            lease_seconds=60,
            retry_base_seconds=0.5,
            retry_max_seconds=3,
            # where RxPress's e-mailed codes are read, set as a deployment sets its own relay
            **{"code_inboxes": code_inboxes(sandbox.urls), **(base_settings or {})},
        )
        services = build_services(settings)
        upgrade(services.engine)
        accounts: dict[str, str] = {}
        for acct in _demo_accounts(sandbox, chosen):
            services.vault.add_account(
                acct.payer,
                acct.account,
                username=acct.username,
                password=acct.password,
                second_factor=get_portal(acct.payer).second_factor.value,
                totp_secret=acct.totp_secret,
                answers=acct.security_answers or None,
                portal_url=sandbox.url(acct.payer),
            )
            accounts.setdefault(acct.payer, acct.account)
        plan = plan_items(sandbox, chosen, accounts, items, documents, random.Random(seed))
        report = services.queue.enqueue(plan)
        total = len(report.queued)
        result = DemoResult(workdir=work if keep else None)

        def progress(_batch: BatchReport) -> None:
            if on_progress is not None:
                by_state = services.queue.counts()["by_state"]
                on_progress(sum(by_state.get(str(s), 0) for s in FINAL_STATES), total)

        with nullcontext(browser) if browser is not None else open_browser(settings) as chromium:
            worker = Worker(services, chromium, on_batch=progress)
            drained = worker.drain(until_settled=True)
        result.logins = drained.logins
        result.checks = verify(services, sandbox)
        services.engine.dispose()
        return result


@contextmanager
def _serving(given: SandboxServer | None, payers: list[str], seed: int) -> Iterator[SandboxServer]:
    if given is not None:
        yield given.start()
        return
    with SandboxServer(payers, seed=seed) as server:
        yield server


def _demo_accounts(sandbox: SandboxServer, payers: list[str]) -> list[Any]:
    """The first demo account of each payer."""
    out = []
    for payer in payers:
        accounts = sorted(sandbox.portal(payer).accounts.values(), key=lambda a: a.account)
        out.append(accounts[0])
    return out
