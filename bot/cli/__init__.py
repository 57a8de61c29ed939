"""The ``payerbot`` command. Each group of subcommands lives in its own module."""

from __future__ import annotations

import typer

from bot.cli import (
    audit_commands,
    codes_commands,
    queue_commands,
    run_commands,
    sandbox_commands,
    scenario_commands,
    vault_commands,
)

app = typer.Typer(
    name="payerbot",
    help="Works insurance payers' web portals: status sweeps, approved appeals exactly once, replays.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback must never print a secret held in a local
    add_completion=False,
)

COMMAND_MODULES = (
    run_commands,
    queue_commands,
    vault_commands,
    sandbox_commands,
    audit_commands,
    scenario_commands,
    codes_commands,
)
for module in COMMAND_MODULES:
    module.register(app)


def main() -> None:
    app()
