"""`payerbot codes show|search` as a person looking up a code runs them: no database needed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app, common


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.delenv("PAYERBOT_CODELISTS_DIR", raising=False)
    monkeypatch.setenv("PAYERBOT_DATABASE_URL", "sqlite:////nonexistent/never-opened.db")
    common.settings.cache_clear()
    yield CliRunner()
    common.settings.cache_clear()


def test_show_an_active_code_with_its_source(cli: CliRunner) -> None:
    result = cli.invoke(app, ["codes", "show", "carc", "45"])
    assert result.exit_code == 0, result.output
    assert "CARC 45: Charge exceeds fee schedule" in result.output
    assert "status: active" in result.output
    assert "source: carc_vista.csv" in result.output and "WorldVistA/VistA-M" in result.output
    assert "Apache-2.0" in result.output


def test_show_a_deactivated_code_with_its_date(cli: CliRunner) -> None:
    result = cli.invoke(app, ["codes", "show", "CARC", "w8"])
    assert result.exit_code == 0, result.output
    assert "CARC W8:" in result.output and "status: deactivated 2014-07-01" in result.output


@pytest.mark.parametrize(
    ("system", "code", "label"),
    [
        ("RARC", "N130", "RARC"),
        ("Status", "19", "X12 claim status code"),
        ("CATEGORY", "F2", "X12 claim status category"),
        ("ncpdp", "75", "NCPDP reject code"),
    ],
)
def test_every_system_answers_case_insensitively(cli: CliRunner, system: str, code: str, label: str) -> None:
    result = cli.invoke(app, ["codes", "show", system, code])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{label} {code}: ")


def test_an_unknown_code_or_system_exits_2_naming_it(cli: CliRunner) -> None:
    result = cli.invoke(app, ["codes", "show", "RARC", "N9999"])
    assert result.exit_code == 2
    assert "unknown RARC 'N9999'" in result.output and len(result.output.strip().splitlines()) == 1
    result = cli.invoke(app, ["codes", "show", "HCPCS", "A0428"])
    assert result.exit_code == 2
    assert (
        "unknown code system 'HCPCS'" in result.output
        and "CARC, RARC, status, category, NCPDP" in result.output
    )


def test_show_json_is_one_object(cli: CliRunner) -> None:
    result = cli.invoke(app, ["codes", "show", "category", "X0", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown == {
        "system": "X12 claim status category",
        "code": "X0",
        "description": "Supplemental Messages",
        "active": False,
        "deactivated": "2003-10-16",
        "source": shown["source"],
        "provenance": shown["provenance"],
    }
    assert shown["source"].endswith("claim_status_category_codes_hippo.csv")
    assert "mcollie007/hippo" in shown["provenance"] and "BSD-3-Clause" in shown["provenance"]


def test_search_lists_matching_codes_at_most_20(cli: CliRunner) -> None:
    result = cli.invoke(app, ["codes", "search", "NCPDP", "refill", "too", "soon"])
    assert result.exit_code == 0, result.output
    assert "79\tRefill Too Soon" in result.output
    many = cli.invoke(app, ["codes", "search", "rarc", "missing", "--json"])
    assert many.exit_code == 0, many.output
    rows = json.loads(many.output)
    assert len(rows) == 20 and all("missing" in r["description"].lower() for r in rows)
    none = cli.invoke(app, ["codes", "search", "carc", "zebra"])
    assert none.exit_code == 0 and "no CARC matches 'zebra'" in none.output


def test_a_users_newer_list_is_the_one_shown(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "carc_vista.csv").write_text("code,description,stop_date\n300,A code from 2026,\n")
    monkeypatch.setenv("PAYERBOT_CODELISTS_DIR", str(folder))
    common.settings.cache_clear()
    result = cli.invoke(app, ["codes", "show", "carc", "300"])
    assert result.exit_code == 0, result.output
    assert "A code from 2026" in result.output and "PAYERBOT_CODELISTS_DIR" in result.output
