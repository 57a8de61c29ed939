"""`payerbot scenarios promote`: a failed run becomes a catalog entry with its ending and no trace of
its input; the entry then runs against the sandbox and passes, and fails when the knobs that
reproduce the portal's change are left out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser
from typer.testing import CliRunner

from bot.cli import app, common
from sandbox import SandboxServer
from scenarios.catalog import load_entry, run_entry
from scenarios.catalog.workspace import Workspace
from tests.scenarios_support import claim_item, drain, enqueue, env_of, spellings_of


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    ws = Workspace.create(tmp_path / "deployment")
    for name, value in env_of(ws).items():
        if name.startswith("PAYERBOT_"):
            monkeypatch.setenv(name, value)
    common.settings.cache_clear()
    common.engine.cache_clear()
    yield ws
    common.engine().dispose()
    common.settings.cache_clear()
    common.engine.cache_clear()
    ws.close()


def test_promoted_failure_is_synthetic_and_passes_in_the_catalog_only_with_its_knobs(
    configured: Workspace, sandbox: SandboxServer, browser: Browser, tmp_path: Path
) -> None:
    ws = configured
    state = sandbox.portal("meridian")
    state.reset()
    account, _ = ws.seed_account(state)
    canary = state.add_patient(
        first_name="Wilhelmina",
        last_name="Thistlewood",
        member_id="MCANARY0917",
        date_of_birth=date(1948, 2, 29),
    )
    claim = state.add_claim("Denied", patient=canary)
    [item_id] = enqueue(ws, claim_item(account, claim.claim_number))
    state.update_knobs(redesign="renamed")
    try:
        [failed] = drain(ws, browser).outcomes
    finally:
        state.reset()
    assert failed.state == "needs_human" and failed.run_id

    catalog = tmp_path / "catalog"
    args = ["scenarios", "promote", str(item_id), "--name", "renamed-search", "--out", str(catalog)]
    promoted = CliRunner().invoke(app, [*args, "--knobs", "redesign=renamed"])
    assert promoted.exit_code == 0, promoted.output
    path = catalog / "renamed-search.yaml"
    text = path.read_text()
    forbidden = spellings_of(canary.first_name, canary.last_name, canary.member_id, canary.date_of_birth)
    assert not sorted(v for v in forbidden | {claim.claim_number, account} if v in text)
    data = yaml.safe_load(text)
    assert data["payer"] == "meridian" and data["kind"] == "claim_status"
    assert data["knobs"] == {"redesign": "renamed"} and data["from_run"] == failed.run_id
    assert data["expect"] == {"state": "needs_human", "error_kind": "PortalChanged"}
    assert data["input"] == {"claim": "Paid"}  # a claim made fresh by its wording when the entry runs
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output

    entry = load_entry(path)
    passed = run_entry(entry, sandbox, browser, tmp_path / "run-1")
    assert passed.passed, passed.summary()
    without_knobs = entry.model_copy(update={"knobs": {}})
    unchanged_portal = run_entry(without_knobs, sandbox, browser, tmp_path / "run-2")
    assert not unchanged_portal.passed
    assert any("expected needs_human" in p for p in unchanged_portal.problems), unchanged_portal.problems
