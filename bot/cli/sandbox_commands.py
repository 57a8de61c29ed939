"""``payerbot sandbox``: serve the simulated payer portals, list their demo accounts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import command, console, fail

sandbox_app = typer.Typer(
    help="Simulated payer portals on loopback, for the demo and for trying the bot.",
    invoke_without_command=True,
    no_args_is_help=False,
)

PortBase = Annotated[
    int | None,
    typer.Option("--port-base", min=1, max=65000, help="Serve payer N on port BASE+N (default: free ports)."),
]
Payers = Annotated[
    list[str] | None, typer.Option("--payer", help="Serve only this payer (repeatable; default: all).")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the synthetic claims, PAs and accounts.")]


def _check_payers(payers: list[str] | None) -> list[str]:
    from sandbox import payer_ids

    known = payer_ids()
    for payer in payers or []:
        if payer not in known:
            raise fail(f"--payer {payer}: no such sandbox payer (known: {', '.join(known)})")
    return payers or known


@sandbox_app.callback()
@command
def serve(
    ctx: typer.Context,
    port_base: PortBase = None,
    payer: Payers = None,
    seed: Seed = 7,
    knobs: Annotated[
        str | None,
        typer.Option("--knobs", help="Knobs for every portal as JSON, e.g. '{\"latency_ms\": 300}'."),
    ] = None,
) -> None:
    """Serve the sandbox portals in the foreground until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from sandbox import Knobs, SandboxError, SandboxServer

    server = SandboxServer(_check_payers(payer), seed=seed, port_base=port_base)
    if knobs is not None:
        try:
            chosen = Knobs.model_validate_json(knobs)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the value"
            raise fail(f"--knobs: {where}: {first['msg']}") from None
        for pid in server.payers:
            server.portal(pid).set_knobs(chosen)
    try:
        server.start()
    except SandboxError as exc:
        raise fail(str(exc)) from None
    for pid, url in server.urls.items():
        console.print(f"{pid}\t{url}", highlight=False)
    _print_code_inboxes(server.urls)
    console.print("Demo accounts: `payerbot sandbox accounts`. Ctrl-C stops.", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")


@sandbox_app.command("accounts")
@command
def accounts_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON array, for tools that seed a vault.")
    ] = False,
    port_base: PortBase = None,
    payer: Payers = None,
    seed: Seed = 7,
) -> None:
    """Print the sandbox portals' demo accounts (these are test logins of fictional portals)."""
    from sandbox import accounts, code_inboxes

    ids = _check_payers(payer)
    # without --port-base the URLs are the ones `payerbot sandbox` printed
    urls = {
        pid: f"http://127.0.0.1:{port_base + n}" if port_base is not None else f"<{pid} URL>"
        for n, pid in enumerate(ids)
    }
    inboxes = code_inboxes(urls)
    rows = []
    for acct in accounts(ids, seed=seed):
        url = urls[acct.payer] if port_base is not None else None
        rows.append({**acct.model_dump(mode="json"), "url": url, "code_inbox": inboxes.get(acct.payer)})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("payer", "account", "username", "password", "totp_secret", "url")
    for row in rows:
        table.add_row(
            *(str(row[k] or "") for k in ("payer", "account", "username", "password", "totp_secret", "url"))
        )
    console.print(table)
    _print_code_inboxes(urls)


def _print_code_inboxes(urls: dict[str, str]) -> None:
    """The setting that has the bot read the e-mailed login codes, as a deployment sets its relay's."""
    from sandbox import code_inboxes

    inboxes = code_inboxes(urls)
    if inboxes:
        console.print(
            f"Login codes e-mailed by {', '.join(inboxes)} are read from the sandbox's inbox with:\n"
            f"export PAYERBOT_CODE_INBOXES='{json.dumps(inboxes)}'",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``payerbot`` app."""
    app.add_typer(sandbox_app, name="sandbox")
