"""``payerbot codes show|search``: what a CARC, RARC, claim status, category or NCPDP code means.

Reads the code lists only (the shipped ones, or a user's newer ones in ``PAYERBOT_CODELISTS_DIR``);
no database. An unknown system or code exits 2 with a one-line error naming it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from bot.cli import common
from bot.codelists import Code, CodeLists, load_codelists, provenance
from bot.models import CodeSystem

# What a person types → the code system, and the name shown back.
SYSTEMS: dict[str, tuple[CodeSystem, str]] = {
    "carc": (CodeSystem.CARC, "CARC"),
    "rarc": (CodeSystem.RARC, "RARC"),
    "status": (CodeSystem.X12_STATUS, "X12 claim status code"),
    "category": (CodeSystem.X12_CATEGORY, "X12 claim status category"),
    "ncpdp": (CodeSystem.NCPDP_REJECT, "NCPDP reject code"),
}
SYSTEM_CHOICES = "CARC, RARC, status, category, NCPDP"
SEARCH_LIMIT = 20

SystemArg = Annotated[str, typer.Argument(help=f"One of {SYSTEM_CHOICES} (any case).", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for tools.")]


def _system(name: str) -> tuple[CodeSystem, str]:
    found = SYSTEMS.get(name.strip().casefold())
    if found is None:
        raise common.fail(f"unknown code system {escape(repr(name))}: use one of {SYSTEM_CHOICES}")
    return found


def _lists() -> CodeLists:
    return load_codelists(common.settings().codelists_dir)


def _state(code: Code) -> str:
    if code.active:
        return "active"
    return f"deactivated {code.deactivated.isoformat()}" if code.deactivated else "deactivated"


def _as_json(code: Code, label: str) -> dict[str, Any]:
    return {
        "system": label,
        "code": code.code,
        "description": code.description,
        "active": code.active,
        "deactivated": code.deactivated.isoformat() if code.deactivated else None,
        "source": str(code.source) if code.source else None,
        "provenance": provenance(code.source) if code.source else None,
    }


def register(app: typer.Typer) -> None:
    codes = typer.Typer(
        help="Look up CARC, RARC, X12 claim status and category, and NCPDP reject codes.",
        no_args_is_help=True,
    )
    app.add_typer(codes, name="codes")

    @codes.command()
    @common.command
    def show(
        system: SystemArg,
        code: Annotated[str, typer.Argument(help="The code, e.g. 45, N130, F2, 75.", show_default=False)],
        as_json: JsonOption = False,
    ) -> None:
        """Print a code's description, whether it is active or deactivated, and its source list."""
        kind, label = _system(system)
        found = _lists().get(kind, code)
        if found is None:
            raise common.fail(f"unknown {label} {escape(repr(code.strip()))}: not in the code list")
        if as_json:
            typer.echo(json.dumps(_as_json(found, label)))
            return
        out = common.console
        out.print(
            f"[bold]{escape(label)} {escape(found.code)}[/]: {escape(found.description)}", soft_wrap=True
        )
        out.print(f"status: {_state(found)}", highlight=False)
        if found.source is not None:
            where = escape(f"{found.source.name}: {provenance(found.source)}")
            out.print(f"source: {where}", highlight=False, soft_wrap=True)

    @codes.command()
    @common.command
    def search(
        system: SystemArg,
        words: Annotated[list[str], typer.Argument(help="Words the description must all hold.")],
        as_json: JsonOption = False,
    ) -> None:
        """List the codes whose description holds every word (at most 20)."""
        kind, label = _system(system)
        found = _lists().search(kind, " ".join(words), limit=SEARCH_LIMIT)
        if as_json:
            typer.echo(json.dumps([_as_json(c, label) for c in found]))
            return
        if not found:
            common.console.print(escape(f"no {label} matches {' '.join(words)!r}"), highlight=False)
            return
        for c in found:
            flag = "" if c.active else f"  [{_state(c)}]"
            typer.echo(f"{c.code}\t{c.description}{flag}")
        if len(found) == SEARCH_LIMIT:
            typer.echo(f"(the first {SEARCH_LIMIT}; add words to narrow the search)")
