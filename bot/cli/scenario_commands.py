"""Recorded runs for operators: ``payerbot scenarios ...``, ``payerbot replay``, ``payerbot report``.

From a failed item to its screenshots, its replay and a catalog entry: ``scenarios list --failed``
(or ``--item ID``), ``scenarios show RUN`` (steps, error, files, the page's change, the replay
command), ``replay RUN [--offline]``, ``scenarios promote RUN``, ``scenarios run``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from bot.cli import common
from bot.logging import configure_logging

if TYPE_CHECKING:  # the commands import what they run when they run (a quick --help)
    from scenarios.runs import RunView

RunRef = Annotated[str, typer.Argument(help="A run id, or a work item id for that item's newest run.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for tools instead of tables.")]


def _say(text: str) -> None:
    common.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


# -- scenarios list / show ---------------------------------------------------------------------


@common.command
def scenarios_list(
    failed: Annotated[bool, typer.Option("--failed", help="Only runs that failed.")] = False,
    item: Annotated[int | None, typer.Option(help="Only runs of this work item.")] = None,
    since: Annotated[str | None, typer.Option(help="Only runs since: 24h, 7d, or an ISO date.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Recorded portal runs, newest first: outcome, error, and whether a bundle was kept."""
    from bot.recording.store import RunStore
    from scenarios.report import parse_since
    from scenarios.runs import KIND_FOR_ACTION

    rows = RunStore(common.engine()).list(
        failed_only=failed, item_id=item, since=parse_since(since) if since else None, limit=limit
    )
    if as_json:
        out = [{k: v for k, v in r.items() if k != "steps"} for r in rows]
        common.console.print_json(json.dumps(out, default=str))
        return
    table = Table(title=f"runs ({len(rows)})")
    table.add_column("run", no_wrap=True, min_width=24)  # the id an operator copies: never cut
    for column in ("started (UTC)", "item", "payer", "kind", "outcome", "error", "bundle"):
        table.add_column(column)
    for r in rows:
        outcome = r["outcome"] + (" (replay)" if r.get("replay_of") else "")
        table.add_row(
            r["id"],
            r["started_at"].strftime("%m-%d %H:%M:%S") if r["started_at"] else "-",
            str(r["item_id"] or "-"),
            r["payer"],
            KIND_FOR_ACTION.get(r["action"], r["action"]),
            outcome,
            r["error_kind"] or "",
            "yes" if r["bundle_path"] else "-",
        )
    common.console.print(table)
    if rows:
        _say("payerbot scenarios show RUN shows a run's steps, files and replay command")


@common.command
def scenarios_show(run_ref: RunRef, as_json: JsonOption = False) -> None:
    """One run: steps and outcomes, error, files, page change, replay command.

    The page change compares the failing page with its last good look (from runs that went well).
    """
    from scenarios.runs import load_run

    run = load_run(common.engine(), run_ref)
    change = run.change()
    files = _files(run)
    if as_json:
        common.console.print_json(
            json.dumps(
                {
                    "run": {k: v for k, v in run.row.items() if k != "steps"},
                    "kind": run.kind,
                    "url_path": run.url_path,
                    "steps": [s.__dict__ for s in run.steps],
                    "files": {k: str(v) for k, v in files.items()},
                    "fingerprint": run.fingerprint,
                    "last_good": run.last_good,
                    "page_change": change.lines() if change else None,
                    "replay": run.replay_commands(),
                },
                default=str,
            )
        )
        return
    head = Table(show_header=False, title=f"run {run.id}")
    for name, value in (
        ("item", f"{run.item_id}  (payerbot queue show {run.item_id})" if run.item_id else "-"),
        ("payer / account", f"{run.payer} / {run.account}"),
        ("kind / action", f"{run.kind} / {run.action}"),
        ("attempt", str(run.row.get("attempt"))),
        ("started / ended", f"{_when(run.row.get('started_at'))} / {_when(run.row.get('ended_at'))}"),
        ("outcome", run.outcome + (f" (replay of {run.replay_of})" if run.replay_of else "")),
        ("error", f"{run.error_kind}: {run.error}" if run.error_kind else "-"),
        ("page", run.url_path or "-"),
        ("input", f"by reference: item {run.item_id}, payload sha256 {run.payload_digest or '-'}"),
    ):
        head.add_row(name, value)
    common.console.print(head)
    steps = Table(title="steps")
    for column in ("#", "kind", "on", "outcome", "ms", "screenshot", "error"):
        steps.add_column(column)
    for s in run.steps:
        steps.add_row(
            str(s.index), s.kind, s.what, s.outcome, str(s.duration_ms), s.screenshot or "", s.error or ""
        )
    common.console.print(steps)
    if files:
        _say("files:")
        for name, path in files.items():
            _say(f"  {name:<11} {path}")
        if "trace" in files:
            _say(f"open the trace: playwright show-trace {files['trace']}")
    else:
        _say("no bundle kept for this run (a run that went as expected keeps one only with --record always)")
    if change is not None and change.changed:
        _say(f"page {run.url_path} compared with its last good look:")
        for line in change.lines():
            _say(f"  {line}")
    elif run.outcome == "failed" and run.url_path:
        _say(
            f"page {run.url_path}: "
            + ("same controls as its last good look" if change else "no good run had recorded it to compare")
        )
    _say("replay:")
    for line in run.replay_commands():
        _say(f"  {line}")


def _files(run: RunView) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if run.folder is None:
        return out
    out["bundle"] = run.folder
    for key in ("trace", "har", "dom", "screenshot"):
        path = run.file(key)
        if path is not None:
            out[key] = path
    shots = run.screenshots()
    if shots:
        out["steps"] = shots[0].parent
    return out


# -- promote and run the catalog ---------------------------------------------------------------


@common.command
def scenarios_promote(
    run_ref: RunRef,
    knobs: Annotated[
        str | None,
        typer.Option(help="Sandbox knobs that reproduce what the portal did, e.g. redesign=renamed."),
    ] = None,
    claim: Annotated[
        str | None, typer.Option(help="Wording of the sandbox claim to make, e.g. Denied.")
    ] = None,
    pa: Annotated[
        str | None, typer.Option(help="Decision of the sandbox authorization, e.g. approved.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The entry's name (default: from the run).")] = None,
    out: Annotated[Path | None, typer.Option(help="Catalog folder (default: scenarios/catalog).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an entry of the same name.")] = False,
) -> None:
    """Turn a run into a regression catalog entry: its ending kept, its input synthetic (no PHI)."""
    from bot.cli.run_commands import parse_knobs
    from bot.services import build_services
    from scenarios.catalog import CATALOG_DIR
    from scenarios.catalog.promote import promote, run_command
    from scenarios.runs import load_run

    services = build_services(common.settings(), engine=common.engine())
    run = load_run(common.engine(), run_ref)
    done = promote(
        run,
        services,
        knobs=parse_knobs(knobs),
        name=name,
        claim=claim,
        pa=pa,
        folder=out or CATALOG_DIR,
        force=force,
    )
    _say(f"wrote {done.path}")
    _say(done.text)
    _say(f"run it against the sandbox: {run_command(done.entry.name, out or CATALOG_DIR)}")


@common.command
def scenarios_run(
    names: Annotated[
        list[str] | None, typer.Argument(help="Entry names (default: the whole catalog).")
    ] = None,
    catalog: Annotated[Path | None, typer.Option(help="Catalog folder (default: scenarios/catalog).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run catalog entries against the sandbox portals, each in a throwaway deployment."""
    import tempfile

    from bot.errors import ConfigError
    from bot.worker import open_browser
    from sandbox.server import SandboxServer
    from scenarios.catalog import CATALOG_DIR, Logins, load_catalog, run_entry
    from scenarios.catalog.workspace import migrated_template

    configure_logging("error", "json")
    entries = load_catalog(catalog or CATALOG_DIR)
    if names:
        known = {e.name: e for e in entries}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"no catalog entry named {', '.join(missing)} (`ls {catalog or CATALOG_DIR}`)")
        entries = [known[n] for n in names]
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="payerbot-catalog-") as tmp,
        SandboxServer(sorted({e.payer for e in entries})) as sandbox,
        open_browser(common.settings()) as browser,
    ):
        template = migrated_template(Path(tmp) / "template")
        logins = Logins()
        for entry in entries:
            result = run_entry(
                entry, sandbox, browser, Path(tmp) / entry.name, template=template, logins=logins
            )
            results.append(result)
            if not as_json:
                _say(result.summary())
    failed = [r for r in results if not r.passed]
    if as_json:
        common.console.print_json(
            json.dumps([{"name": r.entry.name, "passed": r.passed, "problems": r.problems} for r in results])
        )
    else:
        _say(f"{len(results) - len(failed)} of {len(results)} scenarios passed")
    if failed:
        raise typer.Exit(1)


# -- replay and report ---------------------------------------------------------------------------


@common.command
def replay(
    run_ref: RunRef,
    offline: Annotated[
        bool, typer.Option("--offline", help="Serve every request from the run's recorded network log.")
    ] = False,
    headed: Annotated[bool, typer.Option("--headed", help="Show the browser window.")] = False,
    slow_mo: Annotated[int, typer.Option("--slow-mo", min=0, help="Pause this many ms between actions.")] = 0,
    allow_submit: Annotated[
        bool,
        typer.Option(
            "--allow-submit",
            help="Really submit an appeal (only an approved one, not yet submitted, with no open submit).",
        ),
    ] = False,
) -> None:
    """Replay a run live (or --offline from its network log), step by step beside the recorded one.

    The same portal action runs with the same input, read from the work item. Nothing is submitted
    without --allow-submit: a submission walks to the final page and stops before the click.
    """
    from bot.services import build_services
    from bot.worker import open_browser
    from scenarios.replay import Replayer
    from scenarios.runs import load_run

    cfg = common.settings()
    configure_logging("error", cfg.log_format)
    services = build_services(cfg, engine=common.engine())
    run = load_run(services.engine, run_ref)
    with open_browser(cfg, headless=not headed, slow_mo=slow_mo or None) as browser:
        result = Replayer(services, browser, out=_say).replay(run, offline=offline, allow_submit=allow_submit)
    if result.outcome == "failed":
        raise typer.Exit(1)


@common.command
def report(
    since: Annotated[str, typer.Option(help="The period: 24h, 7d, 90m, or an ISO date.")] = "24h",
    out: Annotated[Path, typer.Option(help="Where to write the HTML page.")] = Path("report.html"),
) -> None:
    """Write one self-contained HTML page about the runs of a period.

    Runs by payer, kind and outcome; every failure with its screenshot, error, page change and
    replay command; every submission with its confirmation number and evidence hash.
    """
    from scenarios.report import parse_since, write_report

    data = write_report(common.engine(), parse_since(since), out)
    _say(
        f"wrote {out}: {len(data.runs)} runs, {len(data.failures)} failed, "
        f"{len(data.submissions)} submissions since {data.since:%Y-%m-%d %H:%M} UTC"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``payerbot`` app."""
    scenarios_app = typer.Typer(
        help="Recorded portal runs: list, show, promote to the regression catalog, run the catalog.",
        no_args_is_help=True,
    )
    for name, func in (
        ("list", scenarios_list),
        ("show", scenarios_show),
        ("promote", scenarios_promote),
        ("run", scenarios_run),
    ):
        scenarios_app.command(name)(func)
    app.add_typer(scenarios_app, name="scenarios")
    app.command("replay")(replay)
    app.command("report")(report)
