"""Operator commands for the queue: ``db upgrade``, ``enqueue``, ``status`` and ``queue ...``.

Tables on a terminal; ``--json`` for tools. Errors end with a clean message and exit code 2; an
``enqueue`` that refused any line exits 1 after queueing the good ones.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.table import Table

import portals
from bot.audit import operator_actor
from bot.cli import common
from bot.errors import IntakeError
from bot.models import ItemState, NewItem
from bot.queue import Queue
from bot.queue.intake import parse_row

ENQUEUE_CHUNK = 1000
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for tools instead of tables.")]


def _queue(*, audited: bool = False) -> Queue:
    """The queue; ``audited`` for an operator's change, which is chained with its record."""
    if not audited:
        return Queue(
            common.engine(),
            common.settings(),
            check=portals.check_request,
            deadlines=portals.filing_deadline_days,
        )
    from bot.services import audit_trail

    trail = audit_trail(common.engine(), common.settings())
    return Queue(
        common.engine(),
        common.settings(),
        audit=trail,
        check=portals.check_request,
        deadlines=portals.filing_deadline_days,
    )


Reason = Annotated[
    str | None, typer.Option("--reason", help="Why, recorded in the audit trail with who did it.")
]


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


def _print_json(data: Any) -> None:
    common.console.print_json(json.dumps(data, default=str))


# -- db ----------------------------------------------------------------------------------------------


@common.command
def db_upgrade() -> None:
    """Create or update the queue tables (safe to run again)."""
    from bot.migrate import upgrade

    upgrade(common.engine())
    common.console.print("database is up to date", highlight=False)


# -- enqueue -----------------------------------------------------------------------------------------


def _lines(source: TextIO) -> Iterator[tuple[int, NewItem | IntakeError]]:
    """(line number, item or the reason the line was refused); blank lines are skipped."""
    for number, text in enumerate(source, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, IntakeError(f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        try:
            yield number, parse_row(data)
        except IntakeError as exc:
            yield number, exc


def _open(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return Path(path).open(encoding="utf-8")
    except OSError as exc:
        raise common.fail(f"cannot read {path}: {exc.strerror}") from None


@common.command
def enqueue(
    file: Annotated[str, typer.Argument(help="JSON Lines file of work items, or - for stdin.")],
    as_json: JsonOption = False,
) -> None:
    """Queue work items from a JSON Lines file; every bad line is refused with its number and reason."""
    queue = _queue()
    queued: list[int] = []
    duplicates: list[dict[str, int]] = []
    rejected: list[dict[str, Any]] = []
    source = _open(file)
    try:
        numbered = _lines(source)
        while chunk := list(itertools.islice(numbered, ENQUEUE_CHUNK)):
            good: list[tuple[int, NewItem]] = []
            for number, parsed in chunk:
                if isinstance(parsed, IntakeError):
                    rejected.append({"line": number, "field": parsed.field, "reason": parsed.message})
                else:
                    good.append((number, parsed))
            report = queue.enqueue(item for _, item in good)
            queued.extend(report.queued)
            duplicates.extend({"line": good[d.index][0], "item_id": d.item_id} for d in report.duplicates)
            rejected.extend(
                {"line": good[r.index][0], "field": r.field, "reason": r.message} for r in report.rejected
            )
    finally:
        if source is not sys.stdin:
            source.close()
    rejected.sort(key=lambda r: r["line"])
    summary = f"queued {len(queued)}, duplicates {len(duplicates)}, rejected {len(rejected)}"
    if as_json:
        _print_json({"queued": queued, "duplicates": duplicates, "rejected": rejected, "summary": summary})
    else:
        for r in rejected:
            common.err_console.print(f"line {r['line']}: {r['reason']}", highlight=False, markup=False)
        for d in duplicates:
            common.console.print(
                f"line {d['line']}: already queued as item {d['item_id']}", highlight=False, markup=False
            )
        common.console.print(summary, highlight=False)
    if rejected:
        raise typer.Exit(1)


# -- status and queue ------------------------------------------------------------------------------


def _split_table(title: str, rows: dict[str, dict[str, int]]) -> Table:
    states = [s.value for s in ItemState if any(s.value in r for r in rows.values())]
    table = Table(title=title)
    table.add_column(title.split()[-1])
    for state in states:
        table.add_column(state, justify="right")
    for name, by_state in sorted(rows.items()):
        table.add_row(name, *(str(by_state.get(s, 0)) for s in states))
    return table


@common.command
def status(as_json: JsonOption = False) -> None:
    """Items by state, and by payer and kind."""
    counts = _queue().counts()
    if as_json:
        _print_json(counts)
        return
    table = Table(title=f"work items ({counts['total']})")
    table.add_column("state")
    table.add_column("items", justify="right")
    for state, n in counts["by_state"].items():
        table.add_row(state, str(n))
    common.console.print(table)
    common.console.print(
        f"appeals due within 7 days (filing deadline, those with a person included): "
        f"{counts['appeals_due_7d']}",
        highlight=False,
    )
    if counts["by_payer"]:
        common.console.print(_split_table("by payer", counts["by_payer"]))
        common.console.print(_split_table("by kind", counts["by_kind"]))


def _check_state(state: str | None) -> None:
    valid = [s.value for s in ItemState]
    if state is not None and state not in valid:
        raise common.fail(f"--state: unknown state '{state}' (states: {', '.join(valid)})")


@common.command
def queue_list(
    state: Annotated[str | None, typer.Option(help="Only items in this state.")] = None,
    payer: Annotated[str | None, typer.Option(help="Only items of this payer.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only items of this kind.")] = None,
    due_within: Annotated[
        str | None,
        typer.Option(
            "--due-within",
            help="Only open appeals (with a person too) whose filing deadline falls within this "
            "span from today, or has passed, nearest first: 7d, 2w.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many items.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List work items, oldest first (with --due-within: by filing deadline)."""
    _check_state(state)
    span = _days(due_within) if due_within is not None else None
    rows = _queue().list(state=state, payer=payer, kind=kind, due_within=span, limit=limit)
    if as_json:
        _print_json([dataclasses.asdict(r) for r in rows])
        return
    table = Table()
    columns = ("id", "kind", "payer", "account", "state", "attempts", "updated", "last error")
    for column in (*columns, "deadline") if span is not None else columns:
        table.add_column(column)
    for r in rows:
        cells = [
            str(r.id),
            r.kind,
            r.payer,
            r.account,
            r.state,
            str(r.attempts),
            _when(r.updated_at),
            r.last_error or "",
        ]
        table.add_row(*cells, *([r.deadline.isoformat() if r.deadline else "-"] if span is not None else []))
    common.console.print(table)


def _days(span: str) -> timedelta:
    """``7d`` or ``2w`` as a span of days (filing deadlines are days)."""
    match = re.fullmatch(r"\s*(\d{1,4})\s*([dw])\s*", span.lower())
    if match is None:
        raise common.fail(f"--due-within: '{span}' is not a span of days or weeks (e.g. 7d, 2w)")
    return timedelta(days=int(match[1]) * (7 if match[2] == "w" else 1))


@common.command
def queue_show(
    item_id: Annotated[int, typer.Argument(help="Work item id.")], as_json: JsonOption = False
) -> None:
    """One item: state, attempts, last error, result, submissions and history."""
    view = _queue().get(item_id)
    if as_json:
        _print_json(dataclasses.asdict(view))
        return
    fields = Table(show_header=False, title=f"item {view.id}")
    for name, value in (
        ("kind", view.kind),
        ("payer / account", f"{view.payer} / {view.account}"),
        ("state", view.state.value),
        ("attempts", str(view.attempts)),
        ("idempotency key", view.idempotency_key),
        ("not before", _when(view.not_before)),
        ("lease", f"{view.lease_owner} until {_when(view.lease_expires_at)}" if view.lease_owner else "-"),
        ("last error", f"{view.last_error_kind}: {view.last_error}" if view.last_error else "-"),
        ("canonical status", view.canonical_status or "-"),
        ("result", json.dumps(view.result) if view.result is not None else "-"),
        ("confirmation", view.confirmation_id or "-"),
        ("reference", view.submission_reference or "-"),
    ):
        fields.add_row(name, value)
    common.console.print(fields)
    if view.submissions:
        subs = Table(title="submissions")
        for column in ("id", "attempt", "reference", "state", "started", "confirmation", "via", "evidence"):
            subs.add_column(column)
        for s in view.submissions:
            evidence = (
                ", ".join(p for p in (s.evidence.png_path, s.evidence.html_path) if p) if s.evidence else ""
            )
            subs.add_row(
                str(s.id),
                str(s.attempt),
                s.reference,
                s.state,
                _when(s.started_at),
                s.confirmation_id or "",
                s.via or "",
                evidence,
            )
        common.console.print(subs)
    history = Table(title="history")
    for column in ("at", "from", "to", "attempt", "worker", "detail"):
        history.add_column(column)
    for e in view.history:
        history.add_row(
            _when(e.at), e.from_state or "", e.to_state, str(e.attempt), e.worker or "", e.detail or ""
        )
    common.console.print(history)


@common.command
def queue_retry(
    item_id: Annotated[int, typer.Argument(help="Work item id.")],
    not_submitted: Annotated[
        bool,
        typer.Option(
            "--not-submitted",
            help="You checked the portal: its open submission never arrived, so it may be sent again "
            "(needs --reason: what you checked).",
        ),
    ] = False,
    reason: Reason = None,
) -> None:
    """Put a needs_human, failed or rejected item back in the queue."""
    if not_submitted and not (reason and reason.strip()):
        raise common.fail(
            "--not-submitted needs --reason: say what you checked in the portal's history "
            "(it is kept in the audit trail)"
        )
    _queue(audited=True).retry(item_id, actor=operator_actor(), not_submitted=not_submitted, reason=reason)
    common.console.print(f"item {item_id} queued again", highlight=False)


@common.command
def queue_cancel(
    item_id: Annotated[int, typer.Argument(help="Work item id.")], reason: Reason = None
) -> None:
    """Cancel an item; a worker holding it is refused its next write."""
    _queue(audited=True).cancel(item_id, actor=operator_actor(), reason=reason)
    common.console.print(f"item {item_id} cancelled", highlight=False)


@common.command
def queue_reap() -> None:
    """Take back expired leases now (the scheduler does this on its own)."""
    taken = _queue().reap()
    common.console.print(f"took back {taken} item(s) from expired leases", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``payerbot`` app."""
    db_app = typer.Typer(help="The queue database.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")

    app.command("enqueue")(enqueue)
    app.command("status")(status)

    queue_app = typer.Typer(help="Inspect and steer work items.", no_args_is_help=True)
    for name, func in (
        ("list", queue_list),
        ("show", queue_show),
        ("retry", queue_retry),
        ("cancel", queue_cancel),
        ("reap", queue_reap),
    ):
        queue_app.command(name)(func)
    app.add_typer(queue_app, name="queue")
