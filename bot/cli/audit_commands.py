"""``payerbot audit``: verify the keyed chain (and checkpoints of it), take a checkpoint, list events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from bot.audit import AuditTrail, append_checkpoint, read_checkpoints
from bot.cli.common import command, console, engine, fail, settings
from bot.db import AuditEvent


def _trail() -> AuditTrail:
    from bot.services import audit_trail

    return audit_trail(engine(), settings())


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="The append-only audit trail, chained by a keyed MAC.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command()
    @command
    def verify(
        checkpoint: Annotated[
            list[Path] | None,
            typer.Option(
                "--checkpoint",
                help="A file of checkpoints (`payerbot audit checkpoint --append`): each row it names "
                "must still be there with the same hash. May be given more than once.",
            ),
        ] = None,
    ) -> None:
        """Check the chain; name the first row that was changed or removed."""
        checkpoints = [c for path in checkpoint or [] for c in read_checkpoints(path)]
        report = _trail().verify(checkpoints)
        if report.ok:
            matched = f"; {len(checkpoints)} checkpoint(s) match" if checkpoint else ""
            console.print(f"audit trail intact: {report.checked} records{matched}", highlight=False)
            return
        raise fail(
            f"audit trail broken at row {report.first_broken_id}: {report.reason} "
            f"({report.checked} records before it are intact)",
            code=1,
        )

    @audit.command("checkpoint")
    @command
    def take_checkpoint(
        append: Annotated[
            Path | None,
            typer.Option("--append", help="Also append the line to this file (created 0600)."),
        ] = None,
    ) -> None:
        """Print the verified head (id, hash, time) as one JSON line, to keep outside the database.

        Keep the lines where a database writer cannot reach them; `payerbot audit verify
        --checkpoint FILE` then catches newest rows deleted and a rewritten head.
        """
        point = _trail().checkpoint()
        if append is not None:
            try:
                append_checkpoint(append, point)
            except OSError as exc:
                raise fail(f"cannot append to the checkpoint file {append}: {exc.strerror}") from None
        typer.echo(point.line())

    @audit.command("list")
    @command
    def list_events(
        limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
        item: Annotated[int | None, typer.Option(help="Only this work item's events.")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """The newest audit events (who, what, which item, when, outcome)."""
        query = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if item is not None:
            query = query.where(AuditEvent.item_id == item)
        with engine().connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        if as_json:
            typer.echo(json.dumps(rows, default=str))
            return
        table = Table()
        for col in ("id", "at", "actor", "account", "approver", "action", "item", "outcome", "submission"):
            table.add_column(col)
        for r in reversed(rows):
            table.add_row(
                str(r["id"]),
                r["at"].isoformat(),
                r["actor"],
                f"{r['payer'] or ''}/{r['account'] or ''}",
                r["approver"] or "",
                r["action"],
                str(r["item_id"] or ""),
                r["outcome"],
                r["submission_id"] or "",
            )
        console.print(table)
