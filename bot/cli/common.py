"""What every command shares: settings, the database, the console, and clean errors."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.db import make_engine
from bot.errors import PayerbotError
from bot.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 2


@cache
def settings() -> Settings:
    return load_settings()


@cache
def engine() -> Engine:
    return make_engine(settings().resolved_database_url)


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Our own errors end the command with their message and exit code 2, never a traceback; so
    does a database that cannot be opened or has no tables yet, named by its URL (no password)."""
    try:
        yield
    except PayerbotError as exc:
        raise fail(f"{exc.message}") from None
    except (OperationalError, ProgrammingError) as exc:
        url = engine().url.render_as_string(hide_password=True)
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        raise fail(
            f"cannot read the database at {url} ({reason}); check PAYERBOT_DATABASE_URL "
            "and run `payerbot db upgrade`"
        ) from None


def command(func: Callable[P, R]) -> Callable[P, R]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with clean_errors():
            return func(*args, **kwargs)

    return wrapper


def is_terminal() -> bool:
    return sys.stdout.isatty()
