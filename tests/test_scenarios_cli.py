"""The scenario commands' own errors: one line naming what is wrong, exit code 2, no traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app, common


@pytest.fixture
def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    monkeypatch.setenv("PAYERBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYERBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'missing' / 'nowhere' / 'x.db'}")
    common.settings.cache_clear()
    common.engine.cache_clear()

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, list(args))

    yield invoke
    common.settings.cache_clear()
    common.engine.cache_clear()


@pytest.mark.parametrize("command", [("scenarios", "list"), ("status",), ("audit", "verify")], ids=" ".join)
def test_a_database_that_cannot_be_opened_is_named_in_one_line(
    run_cli: Callable[..., Result], command: tuple[str, ...]
) -> None:
    result = run_cli(*command)
    assert result.exit_code == 2
    assert (
        "cannot read the database at sqlite:///" in result.output and "payerbot db upgrade" in result.output
    )
    assert "Traceback" not in result.output


def test_scenarios_run_names_an_unknown_entry_before_starting_anything(
    run_cli: Callable[..., Result], tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "known-entry.yaml").write_text(
        "name: known-entry\npayer: meridian\nkind: pa_status\ninput: {pa: approved}\nexpect: {state: done}\n"
    )
    result = run_cli("scenarios", "run", "no-such-entry", "--catalog", str(catalog))
    assert result.exit_code == 2 and "no catalog entry named no-such-entry" in result.output


def test_report_refuses_a_period_it_cannot_read(run_cli: Callable[..., Result]) -> None:
    result = run_cli("report", "--since", "last tuesday")
    assert result.exit_code == 2 and "--since: 'last tuesday'" in result.output
