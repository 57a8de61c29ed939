"""A replay that submits for real: only for an approved item not yet submitted, and only exactly once.

The operator asked for it (``payerbot replay ID --allow-submit``) after looking at the failure and
fixing its cause. The item then takes the worker's own path, not a shortcut: it is leased alone
with its account (a fencing token), marked running, the ``submitting`` record is committed before
the click, and the confirmation and evidence after it. A second replay finds the item submitted
and refuses.
"""

from __future__ import annotations

import socket

from playwright.sync_api import Browser

from bot.audit import AuditAction, operator_actor
from bot.errors import ReplayRefused
from bot.models import ItemState, SubmissionState, WorkKind
from bot.queue import ItemView
from bot.recording.recorder import RecordMode
from bot.runner import Runner, held
from bot.services import Services
from scenarios.replay import Printer, ReplayedStep, ReplayResult, compare
from scenarios.runs import RunView, load_run

RETRYABLE = (ItemState.NEEDS_HUMAN, ItemState.FAILED)


def submit_refusal(view: ItemView) -> str | None:
    """Why this item may not be submitted by a replay, or None when it may."""
    if view.kind != WorkKind.APPEAL_SUBMISSION:
        return f"item {view.id} is a {view.kind}, not an appeal submission"
    confirmed = [s for s in view.submissions if s.state == SubmissionState.CONFIRMED or s.confirmation_id]
    if confirmed or view.confirmation_id:
        number = view.confirmation_id or confirmed[0].confirmation_id
        return f"item {view.id} is already submitted (confirmation {number}); it is never submitted twice"
    open_ones = [s for s in view.submissions if s.state == SubmissionState.SUBMITTING]
    if open_ones:
        return (
            f"item {view.id} has an open submitting record ({open_ones[0].reference}, attempt "
            f"{open_ones[0].attempt}): an earlier submit may have reached the portal. `payerbot queue retry "
            f"{view.id}` lets a worker look it up in the portal's history first"
        )
    if view.state == ItemState.DONE:
        return f"item {view.id} is done"
    if view.state in (ItemState.CANCELLED, ItemState.REJECTED):
        return f"item {view.id} is {view.state.value}: it is no longer an approved appeal"
    if view.state in (ItemState.LEASED, ItemState.RUNNING):
        return f"item {view.id} is {view.state.value} by {view.lease_owner}; a worker is on it right now"
    if not (view.payload.get("approved_by") and view.payload.get("approved_at")):
        return f"item {view.id} does not name who approved it and when"
    return None


def _owner(operator: str) -> str:
    return f"replay:{operator.removeprefix('operator:')}@{socket.gethostname()}"


def submit_for_real(
    services: Services, browser: Browser, run: RunView, view: ItemView, *, out: Printer
) -> ReplayResult:
    reason = submit_refusal(view)
    if reason is not None:
        raise ReplayRefused(f"--allow-submit refused: {reason}")
    queue = services.queue
    operator = operator_actor()  # the OS user, not $USER: this sends an appeal to a payer
    owner = _owner(operator)
    if view.state in RETRYABLE:
        queue.retry(view.id, actor=operator, reason=f"replay of run {run.id} with --allow-submit")
    batch = queue.lease_item(owner, view.id)
    if batch is None:
        raise ReplayRefused(
            f"item {view.id} could not be leased (a worker holds its account {view.payer}/{view.account}, "
            "or has just taken the item); it stays queued for the workers"
        )
    out(
        f"submitting item {view.id} for real (run {run.id} replayed with --allow-submit): its own lease, "
        "a submitting record before the click, the confirmation after it"
    )
    with held(queue, batch, services.settings.lease_seconds) as heartbeat:
        services.audit.record(  # the operator's act, before the worker's own records of it
            AuditAction.REPLAY_SUBMIT,
            "started",
            actor=operator,
            payer=view.payer,
            account=view.account,
            item_id=view.id,
            detail={"run": run.id, "lease_owner": owner},
        )
        report = Runner(services, browser, record=RecordMode.ALWAYS).run_batch(batch, heartbeat)
    outcome = report.outcomes[0] if report.outcomes else None
    result = ReplayResult(recorded=run, mode="live")
    if outcome is None:
        raise ReplayRefused(f"item {view.id} was not run (its lease was lost); it stays queued")
    result.run_id = outcome.run_id
    if outcome.run_id:
        replayed = load_run(services.engine, outcome.run_id)
        result.error_kind, result.error = replayed.error_kind, replayed.error
        for step in replayed.bundle.steps if replayed.bundle else []:
            recorded = run.steps[step.index] if step.index < len(run.steps) else None
            line = ReplayedStep(step, recorded, compare(step, recorded))
            result.steps.append(line)
            out(line.line())
    if outcome.state == ItemState.DONE:
        result.outcome, result.detail = "ok", f"submitted: confirmation {outcome.confirmation_id}"
    else:
        result.outcome = "failed"
        result.error = result.error or outcome.error
    out(f"result: item {view.id} is {outcome.state}: {result.detail or result.error}")
    if result.run_id:
        out(f"this submission is run {result.run_id} (`payerbot scenarios show {result.run_id}`)")
    return result
