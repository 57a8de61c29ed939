"""``payerbot audit``: verify the hash chain, list recent events."""

from __future__ import annotations

import json
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from bot.audit import AuditTrail
from bot.cli.common import command, console, engine, fail, settings
from bot.db import AuditEvent


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="The append-only, hash-chained audit trail.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command()
    @command
    def verify() -> None:
        """Check the chain; name the first row that was changed or removed."""
        report = AuditTrail(engine(), actor=settings().service_identity).verify()
        if report.ok:
            console.print(f"audit trail intact: {report.checked} records")
            return
        raise fail(
            f"audit trail broken at row {report.first_broken_id}: {report.reason} "
            f"({report.checked} records before it are intact)",
            code=1,
        )

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
