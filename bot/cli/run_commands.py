"""Running the work: ``payerbot worker``, ``payerbot schedule``, ``payerbot demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import command, console, err_console, fail, is_terminal, settings
from bot.errors import ConfigError
from bot.logging import configure_logging
from bot.recording.recorder import RecordMode


def parse_knobs(text: str | None) -> dict[str, Any]:
    """``errors=0.2,latency=200ms,maintenance=on`` into sandbox knobs."""
    if not text:
        return {}
    aliases = {
        "errors": "error_rate",
        "latency": "latency_ms",
        "expiry": "session_expiry_requests",
        "captcha": "captcha_after_logins",
        "slow_confirmation": "slow_confirmation_ms",
    }
    out: dict[str, Any] = {}
    for part in text.split(","):
        name, sep, raw = part.strip().partition("=")
        if not sep:
            raise ConfigError(f"--knobs: '{part}' is not name=value")
        key = aliases.get(name.strip(), name.strip())
        value: Any = raw.strip()
        if value.endswith("ms") and value[:-2].isdigit():
            value = int(value[:-2])
        elif value.endswith("s") and value[:-1].replace(".", "", 1).isdigit():
            value = int(float(value[:-1]) * 1000)
        elif value.lower() in {"on", "true", "yes"}:
            value = True
        elif value.lower() in {"off", "false", "no"}:
            value = False
        out[key] = value
    from sandbox.knobs import Knobs

    try:
        Knobs.model_validate(out)
    except ValidationError as exc:
        raise ConfigError(f"--knobs: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    return out


def register(app: typer.Typer) -> None:
    @app.command()
    @command
    def worker(
        once: Annotated[bool, typer.Option("--once", help="Drain what is due now, then exit.")] = False,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run", help="Walk each item to its last page before any write; submit nothing."
            ),
        ] = False,
        record: Annotated[
            RecordMode | None, typer.Option(help="Keep run bundles: failures (default), always, never.")
        ] = None,
        headed: Annotated[bool, typer.Option("--headed", help="Show the browser window.")] = False,
    ) -> None:
        """Lease batches (one payer account each) and work them in real Chromium."""
        import threading

        from bot.migrate import upgrade
        from bot.services import build_services
        from bot.worker import Worker, open_browser

        cfg = settings()
        configure_logging(cfg.log_level, cfg.log_format)
        services = build_services(cfg)
        upgrade(services.engine)
        stop = threading.Event()
        with open_browser(cfg, headless=not headed) as browser:
            w = Worker(services, browser, record=record, dry_run=dry_run)
            while True:
                report = w.drain(stop=stop)
                console.print(
                    f"worker: {len(report.outcomes)} item runs in {report.batches} batches "
                    f"({report.logins} logins): {report.counts()}"
                )
                if dry_run:  # what each item would have done, and where its bundle is
                    for outcome in report.outcomes:
                        where = f"payerbot scenarios show {outcome.run_id}" if outcome.run_id else "no bundle"
                        console.print(f"  item {outcome.item_id}: {outcome.state}, {where}", soft_wrap=True)
                if once or dry_run:
                    break
                if stop.wait(cfg.worker_interval_seconds):
                    break

    @app.command()
    @command
    def schedule() -> None:
        """Run the scheduler (sweeps, workers, reaper) until Ctrl-C or SIGTERM: `python scheduler.py`."""
        import scheduler as sched

        raise typer.Exit(sched.run(settings()))

    @app.command()
    @command
    def demo(
        items: Annotated[int, typer.Option(min=1, max=500, help="How many status checks to queue.")] = 20,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object instead of a table.")
        ] = False,
        knobs: Annotated[
            str | None,
            typer.Option(help="Sandbox failure knobs, e.g. errors=0.2,latency=200ms,maintenance=off"),
        ] = None,
        keep: Annotated[
            Path | None,
            typer.Option(help="Keep the demo's database, vault key and artifacts in this folder."),
        ] = None,
        payer: Annotated[list[str] | None, typer.Option(help="Only these payers (default: all).")] = None,
    ) -> None:
        """Start the sandbox portals, queue work for each payer, drain it in Chromium, check the truth."""
        from bot.demo import run_demo

        knob_values = parse_knobs(knobs)
        configure_logging("warning", "json")
        progress: Progress | None = None
        task = None
        if is_terminal() and not as_json:
            progress = Progress(
                TextColumn("demo"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
            )
            progress.start()
            task = progress.add_task("items", total=None)

        def on_progress(done: int, total: int) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=done, total=total)

        try:
            result = run_demo(
                items=items, knobs=knob_values or None, keep=keep, payers=payer, on_progress=on_progress
            )
        finally:
            if progress is not None:
                progress.stop()
        if as_json:
            typer.echo(json.dumps(result.as_json()))
        else:
            table = Table(title="payerbot demo")
            for col in ("id", "payer", "kind", "state", "status", "confirmation", "expected", "ok"):
                table.add_column(col)
            for c in result.checks:
                table.add_row(
                    str(c.item_id),
                    c.payer,
                    c.kind,
                    c.state,
                    c.canonical_status or "",
                    c.confirmation_id or "",
                    c.expected or "",
                    "yes" if c.correct else f"NO: {c.problem}",
                )
            console.print(table)
            console.print(result.counts())
            if keep:
                console.print(f"kept in {keep}")
        if not result.ok:
            raise fail("some items did not end as the sandbox's truth says", code=1)
