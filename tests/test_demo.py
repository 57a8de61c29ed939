"""The demo: the main job end to end, and its check against the sandbox's own truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser

from bot.db import WorkItem
from bot.demo import DemoResult, run_demo, verify
from bot.services import Services, build_services
from bot.settings import Settings
from bot.status import claim_facts
from sandbox.server import SandboxServer

ITEMS = 8


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> Iterator[tuple[DemoResult, SandboxServer, Path]]:
    keep = tmp_path_factory.mktemp("demo")
    # the session's Chromium: a second sync Playwright cannot start beside pytest-playwright's
    with SandboxServer(["meridian"]) as sandbox:
        result = run_demo(items=ITEMS, keep=keep, sandbox=sandbox, browser=browser)
        yield result, sandbox, keep


def _services(keep: Path) -> Services:
    return build_services(
        Settings(
            data_dir=keep, database_url=f"sqlite:///{keep / 'payerbot.db'}", vault_key_file=keep / "vault.key"
        )
    )


def test_every_demo_item_matches_the_sandbox_truth(demo_run: tuple[DemoResult, SandboxServer, Path]) -> None:
    result, sandbox, keep = demo_run
    assert result.ok, [c for c in result.checks if not c.correct]
    portal = sandbox.portal("meridian")
    services = _services(keep)
    items = services.queue.list(limit=1000)
    kinds = [i.kind for i in items]
    assert len(items) == ITEMS + 3 and kinds.count("appeal_submission") == 3
    for summary in items:
        item = services.queue.get(summary.id)
        assert item.state == "done"
        if item.kind == "claim_status":
            truth = portal.claims[item.payload["claim_number"]]
            assert claim_facts(item.result) == truth.facts
            assert item.result["payer_wording"] == truth.wording
        elif item.kind == "pa_status":
            truth = portal.pas[item.payload["pa_number"]]
            assert item.canonical_status == item.result["hcr01"] == truth.hcr01.value
            assert item.result["decision"] == truth.decision
        else:
            entries = portal.ledger_entries(reference=item.submission_reference)
            assert [e.appeal_number for e in entries] == [item.confirmation_id]
            (submission,) = item.submissions
            assert submission.evidence is not None
            assert Path(submission.evidence.png_path).is_file()
            assert Path(submission.evidence.html_path).is_file()
    assert result.logins == 1  # one login served every batch of the account


def test_the_check_catches_a_wrong_status(demo_run: tuple[DemoResult, SandboxServer, Path]) -> None:
    _, sandbox, keep = demo_run
    services = _services(keep)
    with services.engine.begin() as conn:
        row = conn.execute(
            sa.select(WorkItem.id, WorkItem.result).where(WorkItem.kind == "claim_status").limit(1)
        ).first()
        assert row is not None
        wrong = dict(row.result or {})
        wrong["category"] = "P1" if wrong.get("category") != "P1" else "F2"
        conn.execute(sa.update(WorkItem).where(WorkItem.id == row.id).values(result=wrong))
    checks = {c.item_id: c for c in verify(services, sandbox)}
    assert not checks[row.id].correct
    assert sum(not c.correct for c in checks.values()) == 1


def test_demo_json_prints_one_object_and_exits_zero(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--json", "--items", "3", "--payer", "meridian"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert set(data) >= {"items", "counts"}
    assert data["counts"]["items"] == 3 + 3
    for item in data["items"]:
        assert set(item) >= {"id", "kind", "payer", "state", "canonical_status", "confirmation_id"}
    appeals = [i for i in data["items"] if i["kind"] == "appeal_submission"]
    assert all(i["confirmation_id"] for i in appeals)
